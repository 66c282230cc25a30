"""Text written without spaces between words: `preprocess.split` whitespace against character.

No Chinese, Japanese or Thai set is in ../shared; SST-2 with every space removed from its texts
(train/dev/test) stands in for such writing. One network (`cnnkit train text-cls`) per seed and
setting; `auto` (the default) is also run and should choose character. Rows (test accuracy,
training seconds, the split the run recorded) are appended to bench/results/unspaced.jsonl.

    python bench/unspaced_text.py              # seeds 0 1 2
    python bench/unspaced_text.py --seeds 0
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
import yaml

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "text" / "sst2"
RESULTS = ROOT / "bench" / "results" / "unspaced.jsonl"


def write_unspaced(folder: Path) -> Path:
    """SST-2's train/dev/test with the spaces of every text removed, as CSVs in `folder`."""
    folder.mkdir(parents=True)
    for split in ("train", "dev", "test"):
        frame = pd.read_csv(SST2 / f"{split}.csv")
        frame["text"] = frame.text.str.replace(" ", "", regex=False)
        frame.to_csv(folder / f"{split}.csv", index=False)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnkit-unspaced-") as tmp:
        data = write_unspaced(Path(tmp) / "nospace-sst2")
        for split in ("whitespace", "character", "auto"):
            for seed in args.seeds:
                out = Path(tmp) / "runs" / f"{split}-{seed}"
                cmd = [sys.executable, "-m", "cnnkit.cli", "train", "text-cls", "--data", str(data), "--seed", str(seed),
                       "--set", f"preprocess.split={split}", "--set", "train.verbose=0", "--out", str(out)]
                print("$", " ".join(cmd), flush=True)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                m = json.loads((out / "metrics.json").read_text())
                chosen = yaml.safe_load((out / "config.yaml").read_text())["preprocess"]["split"]
                row = {"split": split, "recorded_split": chosen, "seed": seed, "test_accuracy": m["test_accuracy"],
                       "train_seconds": m["train_seconds"],
                       "date": f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC", "machine": describe()}
                print(json.dumps(row), flush=True)
                with open(RESULTS, "a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
