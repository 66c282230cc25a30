"""What early stopping's patience would have done, read from finished runs' histories
(twenty-eighth session; BENCHMARKS.md, text-cls, "Early stopping after 2 epochs without
improvement").

Each `history.csv` of a run trained with patience 3 on the validation loss (text-cls until this
session) holds every epoch it trained. Training is deterministic, so a run with patience p < 3
would have trained the same epochs up to its stop: it keeps the same network whenever its best
epoch (the least validation loss seen before it stops) is the one patience 3 kept. Printed: each
history where the best epoch differs (its validation losses), then per patience the epochs trained
in all and how many best epochs differ.

    python bench/text_patience.py "GLOB" [GLOB ...]   # e.g. "/tmp/nb/runs/**/history.csv"
"""
from __future__ import annotations

import csv
import glob
import json
import sys


def stopped(losses: list[float], patience: int) -> tuple[int, int]:
    """(the best epoch's index, the epochs trained) when training stops after `patience` epochs
    without a lower loss than the best so far (Keras' EarlyStopping, min_delta 0)."""
    best = 0
    for i in range(1, len(losses)):
        if losses[i] < losses[best]:
            best = i
        elif i - best >= patience:
            return best, i + 1
    return best, len(losses)


def main(patterns: list[str]) -> dict:
    totals = {p: {"epochs": 0, "best_differs": 0} for p in (1, 2, 3)}
    histories = 0
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            rows = list(csv.DictReader(open(path)))
            if not rows or "val_loss" not in rows[0]:
                continue
            losses = [float(r["val_loss"]) for r in rows]
            histories += 1
            kept, _ = stopped(losses, 3)
            for p in totals:
                best, epochs = stopped(losses, p)
                totals[p]["epochs"] += epochs
                if best != kept:
                    totals[p]["best_differs"] += 1
                    print(json.dumps({"patience": p, "history": path, "best_epoch": best + 1, "kept_by_3": kept + 1,
                                      "val_loss": [round(v, 4) for v in losses]}))
    summary = {"histories": histories, **{f"patience_{p}": t for p, t in totals.items()}}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main(sys.argv[1:])
