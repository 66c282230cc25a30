"""Imbalanced classes: `train.class_weight` none (the default) against balanced, text-cls defaults.

Data: SST-2 with nine in ten positive sentences of each split left out (random_state 0): train
3 310 negative / 361 positive, dev likewise, and two test sets: the test split thinned the same
way (912 / 91, the imbalance the user's data has) and the whole test split (912 / 909, what a
user who cares for both classes alike would score). Also TREC as it is (its train split holds 86
ABBR questions and 1 250 ENTY ones: 14.5 to 1). One network (`cnnkit train text-cls`) per seed.
Rows (test accuracy and macro-F1, training seconds) are appended to bench/results/imbalance.jsonl.

    python bench/imbalance.py                      # seeds 0 1 2
    python bench/imbalance.py --seeds 0 --sets sst2-thin
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text"
RESULTS = ROOT / "bench" / "results" / "imbalance.jsonl"


def thinned(frame: pd.DataFrame, keep: float = 0.1) -> pd.DataFrame:
    """All negative rows and a `keep` share of the positive ones (random_state 0), shuffled."""
    pos = frame[frame.label == "positive"].sample(frac=keep, random_state=0)
    return pd.concat([frame[frame.label == "negative"], pos]).sample(frac=1, random_state=0)


def write_sets(root: Path) -> dict[str, Path]:
    """{name: data folder}: sst2-thin (thinned test), sst2-whole-test (the whole test split) and trec."""
    read = lambda split: pd.read_csv(TEXT / "sst2" / f"{split}.csv")  # noqa: E731
    folders = {}
    for name, test in (("sst2-thin", thinned(read("test"))), ("sst2-whole-test", read("test"))):
        folder = root / name
        folder.mkdir(parents=True)
        thinned(read("train")).to_csv(folder / "train.csv", index=False)
        thinned(read("dev")).to_csv(folder / "dev.csv", index=False)
        test.to_csv(folder / "test.csv", index=False)
        folders[name] = folder
    folders["trec"] = TEXT / "trec"
    return folders


def train(data: Path, seed: int, class_weight: str, out: Path) -> dict:
    """`cnnkit train text-cls` with one setting -> its metrics.json."""
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", "text-cls", "--data", str(data), "--seed", str(seed),
           "--set", f"train.class_weight={class_weight}", "--set", "train.verbose=0", "--out", str(out)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sets", nargs="+", default=["sst2-thin", "sst2-whole-test", "trec"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnkit-imbalance-") as tmp:
        folders = write_sets(Path(tmp) / "data")
        for name in args.sets:
            for class_weight in ("none", "balanced"):
                for seed in args.seeds:
                    m = train(folders[name], seed, class_weight, Path(tmp) / "runs" / f"{name}-{class_weight}-{seed}")
                    row = {"set": name, "class_weight": class_weight, "seed": seed,
                           "test_accuracy": m["test_accuracy"], "test_macro_f1": m["test_macro_f1"],
                           "train_seconds": m["train_seconds"], "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
                           "machine": describe()}
                    print(json.dumps(row), flush=True)
                    with open(RESULTS, "a") as f:
                        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
