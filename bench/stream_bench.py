"""Peak memory and throughput of image training with the decoded images in memory, in a disk
cache, or decoded every epoch (`--cache memory|disk|none`), on CIFAR-10 and on a folder ten
times its size.

Each row is `cnnkit train recipes/cifar10.yaml --data SRC --epochs 1 --cache MODE` in a fresh
process under `/usr/bin/time -f %M` (the peak resident set size of the process). The 10x folder
is CIFAR-10's training images linked ten times under new names (hard links: no extra disk, but
500 000 files each decoded on its own) and its test folder once; the decoding and training work
is that of 500 000 images, the accuracy is not a 10x-data accuracy.

    python bench/stream_bench.py cifar10              # memory, disk, none on CIFAR-10 (50 000 + 10 000)
    python bench/stream_bench.py cifar10x10           # none, disk, memory on the 10x folder
    python bench/stream_bench.py cifar10x10 --modes none disk

Results go to bench/results/stream.jsonl; BENCHMARKS.md quotes them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
CIFAR = ROOT.parent / "shared" / "data" / "image" / "cifar10-jpg.tar.gz"
RESULTS = ROOT / "bench" / "results" / "stream.jsonl"


def cifar_folder() -> Path:
    """The extracted CIFAR-10 folder (train/, test/ of class folders), via cnnkit's own extraction."""
    from cnnkit.datasets.sources import extract_archive

    return extract_archive(CIFAR)


def make_tenfold(src: Path, dst: Path, copies: int = 10) -> Path:
    """`dst`/train/<class>/<k>_<file> hard links (k < copies) to `src`/train, `dst`/test linked once."""
    marker = dst / ".complete"
    if marker.exists():
        return dst
    for split, n in (("train", copies), ("test", 1)):
        for cls in sorted(p for p in (src / split).iterdir() if p.is_dir()):
            out = dst / split / cls.name
            out.mkdir(parents=True, exist_ok=True)
            for f in cls.iterdir():
                for k in range(n):
                    link = out / f"{k}_{f.name}"
                    if not link.exists():
                        os.link(f, link)
    marker.write_text("ok")
    return dst


def run_row(name: str, data: Path, cache: str, out_root: Path) -> dict:
    """Trains one epoch of recipes/cifar10.yaml under /usr/bin/time; returns the result row."""
    run_dir = out_root / f"{name}-{cache}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    cmd = ["/usr/bin/time", "-f", "PEAK_RSS_KB %M", str(Path(sys.executable).parent / "cnnkit"), "train",
           str(ROOT / "recipes" / "cifar10.yaml"), "--data", str(data), "--epochs", "1", "--cache", cache,
           "--out", str(run_dir), "--backbone", "resnet20", "--set", "model.backbone_args={}", "--set", "model.head_pooling=avg", "--time-budget", "0"]  # ResNet-20, as in the BENCHMARKS rows
    print("$", " ".join(cmd[3:]), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(cmd, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{name} --cache {cache} failed ({proc.returncode})")
    peak_kb = int([line for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_KB")][-1].split()[1])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"row": name, "cache": cache, "peak_rss_mb": round(peak_kb / 1024, 1), "wall_seconds": round(wall, 1),
            "num_train": metrics["num_train"], "prepare_seconds": metrics["prepare_seconds"],
            "train_samples_per_second": metrics["train_samples_per_second"],
            "epoch_train_seconds": metrics["epoch_train_seconds"], "test_accuracy": metrics.get("test_accuracy"),
            "command": f"cnnkit train recipes/cifar10.yaml --data {data} --epochs 1 --cache {cache}",
            "date": dt.date.today().isoformat(), "machine": describe()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("group", choices=["cifar10", "cifar10x10"])
    parser.add_argument("--modes", nargs="+", choices=["memory", "disk", "none"])
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("CNNKIT_CACHE", Path.home() / ".cache" / "cnnkit")) / "bench",
                        help="where the 10x folder and the runs go")
    args = parser.parse_args(argv)
    src = cifar_folder()
    if args.group == "cifar10":
        data, modes = src, args.modes or ["memory", "disk", "none"]
    else:
        print(f"Linking CIFAR-10 ten times into {args.workdir / 'cifar10x10'} ...", flush=True)
        data, modes = make_tenfold(src, args.workdir / "cifar10x10"), args.modes or ["none", "disk", "memory"]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    for cache in modes:
        row = run_row(args.group, data, cache, args.workdir / "runs")
        print(json.dumps(row), flush=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
