"""Typographic punctuation against the text-cls defaults, with and without Unicode standardization
(`preprocess.unicode`; thirty-fifth session; BENCHMARKS.md, text-cls, "Unicode punctuation").

A phone keyboard or a word processor writes "don’t", "…" and "—" where the benchmark sets write
"don't", "..." and "--". For a data set folder (train / dev / test CSVs), three copies:
- `plain`: as given;
- `test_typo`: train and dev as given, the test texts typographic (`typographic`): a model trained
  on one source, served on another;
- `half_typo`: half of every split's texts typographic (drawn with seed 0): one data set gathered
  from both.
Each is trained with `cnnkit train text-cls` (the defaults: one network) with
`preprocess.unicode` true and false, for each seed; the test accuracy is appended to
bench/results/text_unicode.jsonl.

    python bench/text_unicode.py ../shared/data/text/sst2 --seeds 0 1 2 [--variants plain test_typo half_typo]
                                                   # from the repo root
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from machine import describe  # bench/machine.py

RESULTS = Path(__file__).resolve().parent / "results" / "text_unicode.jsonl"
# ASCII stand-ins and what typesetting writes for them, longest first.
TYPOGRAPHIC = [("``", "“"), ("''", "”"), ("...", "…"), ("--", "—"), ("`", "‘"), ("'", "’")]


def typographic(text: str) -> str:
    """`text` with its ASCII quotes, apostrophes, ellipses and dashes written as typesetting does:
    "does n't ... -- ``x''" -> "does n’t … — “x”"."""
    for ascii_, typeset in TYPOGRAPHIC:
        text = text.replace(ascii_, typeset)
    return text


def write_variants(source: Path, out: Path) -> dict[str, Path]:
    """The three copies of `source`'s train/dev/test CSVs under `out` (see the module): {name: folder}."""
    rng = np.random.default_rng(0)
    folders = {}
    for name in ("plain", "test_typo", "half_typo"):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "dev", "test"):
            frame = pd.read_csv(source / f"{split}.csv")
            if name == "test_typo" and split == "test":
                frame["text"] = frame["text"].map(typographic)
            elif name == "half_typo":
                pick = rng.random(len(frame)) < 0.5
                frame.loc[pick, "text"] = frame.loc[pick, "text"].map(typographic)
            frame.to_csv(folder / f"{split}.csv", index=False)
        folders[name] = folder
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="a folder of train.csv, dev.csv, test.csv")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["plain", "test_typo", "half_typo"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/text_unicode"))
    args = parser.parse_args()
    folders = write_variants(args.data, args.out / "data")
    for variant in args.variants:
        folder = folders[variant]
        for unicode in (True, False):
            for seed in args.seeds:
                run = args.out / "runs" / f"{args.data.name}-{variant}-{'unicode' if unicode else 'ascii'}-{seed}"
                cmd = [sys.executable, "-m", "cnnkit", "train", "text-cls", "--data", str(folder), "--seed", str(seed),
                       "--out", str(run), "--set", f"preprocess.unicode={str(unicode).lower()}",
                       "--set", "train.verbose=0"]
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                metrics = json.loads((run / "metrics.json").read_text())
                row = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": describe(),
                       "data": args.data.name, "variant": variant, "unicode": unicode, "seed": seed,
                       "test_accuracy": round(100 * metrics["test_accuracy"], 2),
                       "train_seconds": metrics["train_seconds"]}
                print(json.dumps(row), flush=True)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
