"""image-cls benchmarks: each row is `cnnkit train RECIPE --data SRC` in a fresh process.

Wall time is measured from process start (data loading included) to the saved model.
Results are appended as JSON lines to bench/results/image.jsonl; BENCHMARKS.md quotes them.

    python bench/image_bench.py mnist            # LeNet-5 recipe and the best MNIST recipe
    python bench/image_bench.py cifar10          # 10- and 30-minute rows, the plain-Keras CNN, throughput
    python bench/image_bench.py plain-keras      # the plain-Keras CNN alone
    python bench/image_bench.py cifar10-10min    # the 10-minute row (recipes/cifar10-10min.yaml) and the plain-Keras CNN
    python bench/image_bench.py cifar10-10min-cnnkit   # the 10-minute row alone
    python bench/image_bench.py cifar10-30min    # the recipe as it is (its 30-minute budget)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "image"
ROWS = {
    "mnist-lenet5": [("mnist-lenet5", ROOT / "recipes" / "mnist-lenet5.yaml", SHARED / "mnist.npz")],
    "mnist-best": [("mnist-best", ROOT / "recipes" / "mnist.yaml", SHARED / "mnist.npz")],
    "mnist": [("mnist-lenet5", ROOT / "recipes" / "mnist-lenet5.yaml", SHARED / "mnist.npz"),
              ("mnist-best", ROOT / "recipes" / "mnist.yaml", SHARED / "mnist.npz")],
    "plain-keras": [("plain-keras-10min", None, SHARED / "cifar10-jpg.tar.gz", ["--budget", "600"])],
    # the 10-minute recipe and the plain-Keras CNN with a 600 s budget, in one command
    "cifar10-10min": [("cifar10-10min", ROOT / "recipes" / "cifar10-10min.yaml", SHARED / "cifar10-jpg.tar.gz"),
                      ("plain-keras-10min", None, SHARED / "cifar10-jpg.tar.gz", ["--budget", "600"])],
    "cifar10-10min-cnnkit": [("cifar10-10min", ROOT / "recipes" / "cifar10-10min.yaml", SHARED / "cifar10-jpg.tar.gz")],
    "cifar10-30min": [("cifar10-30min", ROOT / "recipes" / "cifar10.yaml", SHARED / "cifar10-jpg.tar.gz")],
    "cifar10": [("cifar10-10min", ROOT / "recipes" / "cifar10-10min.yaml", SHARED / "cifar10-jpg.tar.gz"),
                ("plain-keras-10min", None, SHARED / "cifar10-jpg.tar.gz", ["--budget", "600"]),
                ("cifar10-30min", ROOT / "recipes" / "cifar10.yaml", SHARED / "cifar10-jpg.tar.gz"),
                ("throughput", ROOT / "recipes" / "cifar10.yaml", SHARED / "cifar10-jpg.tar.gz",
                 ["--images", "10000", "--rounds", "3"])],
}


def run_script(name: str, script: str, args: list[str]) -> dict:
    """A bench script that prints its result as the last JSON line."""
    cmd = [sys.executable, str(ROOT / "bench" / script), *args]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    row = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    row.update(row=name, command="python bench/" + script + " " + " ".join(args).replace(str(ROOT.parent), ".."),
               wall_seconds=row.get("wall_seconds", round(time.perf_counter() - start, 1)),
               date=dt.date.today().isoformat(), machine=describe())
    return row


def run_row(name: str, recipe, data: Path, extra: list[str]) -> dict:
    if recipe is None:  # the plain-Keras baseline
        return run_script(name, "plain_keras_cifar.py", ["--data", str(data), *extra])
    if name == "throughput":
        return run_script(name, "throughput_image.py", ["--recipe", str(recipe), "--data", str(data), "--no-record", *extra])
    out = ROOT / "bench" / "runs" / f"{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", str(recipe), "--data", str(data), "--out", str(out),
           "--set", "train.verbose=2", *extra]
    print("$", " ".join(cmd), flush=True)
    # A fresh archive cache: the wall time includes extracting and decoding the data.
    env = dict(os.environ, CNNKIT_CACHE=tempfile.mkdtemp(prefix="cnnkit-bench-cache-"))
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    return {"row": name, "command": " ".join(["cnnkit train", str(recipe.relative_to(ROOT)), "--data",
                                               str(data).replace(str(ROOT.parent), ".."), *extra]),
            "wall_seconds": round(wall, 1), "test_accuracy": metrics.get("test_accuracy"),
            "train_samples_per_second": metrics.get("train_samples_per_second"), "epochs": metrics.get("epochs"),
            "backbone": metrics.get("backbone"), "prepare_seconds": metrics.get("prepare_seconds"),
            "prepare_samples_per_second": metrics.get("prepare_samples_per_second"),
            "epoch_train_seconds": metrics.get("epoch_train_seconds"),
            "epochs_in_budget": metrics.get("epochs_in_budget"), "precision": metrics.get("precision"),
            "test_accuracy_without_tta": metrics.get("test_accuracy_without_tta"), "date": dt.date.today().isoformat(),
            "machine": describe(), "run_dir": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("group", choices=sorted(ROWS))
    parser.add_argument("extra", nargs="*", help="extra flags for cnnkit train")
    args = parser.parse_args()
    results = ROOT / "bench" / "results" / "image.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    for name, recipe, data, *row_extra in ROWS[args.group]:
        row = run_row(name, recipe, data, (row_extra[0] if row_extra else []) + args.extra)
        print(json.dumps(row), flush=True)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
