"""How an ensemble's members are combined, tried on finished text-cls recipe runs (twenty-eighth
session; BENCHMARKS.md, text-cls, "Early stopping after 2 epochs without improvement").

For each run folder (`cnnkit train recipes/SET.yaml --data ../shared/data/text/SET --seed S --out
RUN`): the test accuracy (%) of
- `arith`: the package's average of the networks' and the naive-Bayes member's probabilities;
- `geom`: their geometric mean (the mean of the log-probabilities; the same networks and member);
- `nets_arith`, `nets_geom`: the networks alone, each way; `member`: the member alone.

    python bench/text_combine.py RUN [RUN ...]     # one JSON line per run
"""
from __future__ import annotations

import json
import sys

import numpy as np

from text_member_fit import run_parts  # bench/text_member_fit.py


def scored(run: str) -> dict:
    """The row of one run: its test accuracy (%) under each way of combining its members."""
    cfg, task, model, tx, ty, fx, fy, pn, n = run_parts(run)
    networks = [m.predict(tx, verbose=0, batch_size=512) for m in task.members_of(model)]
    member = task.nb_member_of(model).predict(tx, verbose=0, batch_size=512)
    acc = lambda p: round(100 * float(np.mean(p.argmax(1) == ty)), 2)  # noqa: E731
    logs = lambda ps: np.log(np.maximum(np.stack(ps), 1e-12)).mean(0)  # noqa: E731
    return {"run": run, "arith": acc(np.mean(networks + [member], 0)), "geom": acc(logs(networks + [member])),
            "nets_arith": acc(np.mean(networks, 0)), "nets_geom": acc(logs(networks)), "member": acc(member)}


if __name__ == "__main__":
    for run in sys.argv[1:]:
        print(json.dumps(scored(run)), flush=True)
