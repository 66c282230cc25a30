"""Exploration (not the benchmark): ensembles of *different* networks against ensembles of the same
network from different seeds, and a linear TF-IDF model as one more member.

`run` trains bench/text_explore.py's plain-Keras copy for each variant and seed and keeps its test
probabilities in CACHE (one .npy per set/variant/seed, so a combination is scored without training
again); `combine` averages the cached probabilities of named members and prints test accuracy.

    python bench/text_diverse.py run '{"base": {}, "w1to5": {"widths": [1, 2, 3, 4, 5]}}' trec,sst2,sst5 0,1,2,3,4
    python bench/text_diverse.py combine trec,sst2,sst5 base:0,base:1,base:2,base:3,base:4 base:0,w1to5:1,tfidf:0

A member is `variant:seed`; `tfidf:0` is scikit-learn's TF-IDF word 1-2-gram + logistic regression
(bench/text_bench.py's baseline) fitted on the same training split.
"""
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("TEXT_PROBS", "/tmp/text_probs"))


def path(s: str, member: str) -> Path:
    return CACHE / s / f"{member.replace(':', '_')}.npy"


def tfidf_probs(s: str) -> np.ndarray:
    """(N_test, K) probabilities of the linear baseline trained on the copy's training split."""
    import text_explore as te
    from text_bench import tfidf_pipeline

    name, _, fold = s.partition(":")
    xtr, ytr, _, _, xte, _, _ = te.load(name, int(fold or 0))
    return tfidf_pipeline().fit(xtr, ytr).predict_proba(xte)


def labels(s: str) -> np.ndarray:
    import text_explore as te

    name, _, fold = s.partition(":")
    return te.load(name, int(fold or 0))[5]


def run(variants: dict, sets: list[str], seeds: list[int]) -> None:
    import text_explore as te

    for s in sets:
        (CACHE / s).mkdir(parents=True, exist_ok=True)
        if not path(s, "tfidf:0").exists():
            np.save(path(s, "tfidf:0"), tfidf_probs(s))
        for vn, v in variants.items():
            for seed in seeds:
                p = path(s, f"{vn}:{seed}")
                if p.exists():
                    continue
                name, _, fold = s.partition(":")
                t0 = time.time()
                acc, _, ep = te.run(name, v, seed, int(fold or 0))
                np.save(p, te.LAST["probs"])
                print(f"{s} {vn}:{seed} {acc:.2f} ep={ep} {time.time() - t0:.0f}s", flush=True)


def combine(sets: list[str], combos: list[str]) -> None:
    for s in sets:
        y = labels(s)
        for c in combos:
            members = c.split(",")
            probs = [np.load(path(s, m)) for m in members]
            single = [float((p.argmax(1) == y).mean() * 100) for p in probs]
            acc = float((np.mean(probs, 0).argmax(1) == y).mean() * 100)
            print(f"{s:6s} {acc:6.2f} (members' mean {np.mean(single):.2f}) {c}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(json.loads(sys.argv[2]), sys.argv[3].split(","), [int(x) for x in sys.argv[4].split(",")])
    else:
        combine(sys.argv[2].split(","), sys.argv[3:])
