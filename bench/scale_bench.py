"""Accuracy and time of one training run on one device, on two replicas of `--strategy mirrored`
(two logical CPU devices) and on two workers of `--strategy multiworker` (two processes on
localhost with TF_CONFIG), for several seeds: "accuracy equal to one device within noise".

    python bench/scale_bench.py                       # image-cls defaults on builtin:digits, seeds 0 1 2
    python bench/scale_bench.py --seeds 0 1 --epochs 10

Each run is `cnnkit train image-cls --seed S [--strategy ...]` in fresh processes (the logical
devices and TF_CONFIG must be set before TensorFlow starts). The global batch size is the same
in every setting (each of the two replicas gets half of it) and so is the learning rate.
Rows go to bench/results/scale.jsonl; BENCHMARKS.md quotes them.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "scale.jsonl"

# Runs cnnkit's CLI after splitting the CPU into N logical devices (argv[1]); the rest of argv is
# the CLI's.
LAUNCHER = """
import sys
import tensorflow as tf
n = int(sys.argv[1])
if n > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
from cnnkit.cli import main
sys.exit(main(sys.argv[2:]))
"""


def free_ports(n: int) -> list[int]:
    """`n` TCP ports that are free on localhost now."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run(setting: str, seed: int, epochs: int | None, out: Path) -> dict:
    """One training run of `setting` (one-device | mirrored-2 | multiworker-2); its metrics.json."""
    args = ["train", "image-cls", "--seed", str(seed), "--out", str(out), "--set", "train.verbose=0"]
    if epochs:
        args += ["--epochs", str(epochs)]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
    if setting == "one-device":
        procs = [subprocess.Popen([sys.executable, "-c", LAUNCHER, "1", *args], env=env)]
    elif setting == "mirrored-2":
        procs = [subprocess.Popen([sys.executable, "-c", LAUNCHER, "2", *args, "--strategy", "mirrored"], env=env)]
    else:
        hosts = [f"localhost:{p}" for p in free_ports(2)]
        procs = [subprocess.Popen([sys.executable, "-c", LAUNCHER, "1", *args, "--strategy", "multiworker"],
                                  env=dict(env, TF_CONFIG=json.dumps({"cluster": {"worker": hosts},
                                                                      "task": {"type": "worker", "index": i}})))
                 for i in range(2)]
    codes = [p.wait(timeout=1800) for p in procs]
    if any(codes):
        raise SystemExit(f"{setting} seed {seed} failed: exit codes {codes}")
    return json.loads((out / "metrics.json").read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="default: the task's")
    parser.add_argument("--settings", nargs="+", default=["one-device", "mirrored-2", "multiworker-2"],
                        choices=["one-device", "mirrored-2", "multiworker-2"])
    args = parser.parse_args(argv)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:  # interleaved: each seed runs every setting
            for setting in args.settings:
                m = run(setting, seed, args.epochs, Path(tmp) / f"{setting}-{seed}")
                row = {"setting": setting, "seed": seed, "test_accuracy": m["test_accuracy"],
                       "train_seconds": m["train_seconds"], "epochs": m["epochs"], "num_train": m["num_train"],
                       "command": f"cnnkit train image-cls --seed {seed}" + (f" --epochs {args.epochs}" if args.epochs else "")
                                  + {"one-device": "", "mirrored-2": " --strategy mirrored (2 logical CPUs)",
                                     "multiworker-2": " --strategy multiworker (2 workers on localhost)"}[setting],
                       "date": dt.date.today().isoformat(),
                       "machine": describe()}
                print(json.dumps(row), flush=True)
                with RESULTS.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
