"""Where a training step of an image recipe spends its oneDNN time: runs 20 steps (batch of the
recipe) with ONEDNN_VERBOSE=1 after 20 warm-up steps and sums oneDNN's own execution times per
primitive (convolution forward / backward data / backward weights, batch norm, pooling, ...).

    python bench/onednn_profile.py --precision mixed_bfloat16 [--recipe recipes/cifar10.yaml]
"""
import argparse
import collections
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20


def train_steps(recipe: str, data: str, precision: str) -> None:
    """The child process: 20 warm-up steps, a MARK line, 20 measured steps."""
    import time

    from cnnkit import api, tasks, training

    cfg = api.resolve_config(recipe, data, limit=STEPS * 128, val_split=0.0, precision=precision)
    cfg.train.precision = training.set_precision(cfg.train.precision)  # a recipe's "auto" resolved
    task = tasks.get(cfg.task)
    prepared = api.load_prepared(cfg, task)
    x, y = prepared.splits["train"]
    model, _ = task.build(cfg, prepared)
    training.compile_model(model, cfg.train, STEPS, len(prepared.class_names), soft_labels=task.soft_labels(cfg))
    ds = training.without_autotune_thread(task.dataset(x, y, cfg, training=True, num_classes=len(prepared.class_names)).repeat())
    model.fit(ds, steps_per_epoch=STEPS, epochs=1, verbose=0)
    print("MARK", flush=True)
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=STEPS, epochs=1, verbose=0)
    print(f"STEP_SECONDS {(time.perf_counter() - start) / STEPS:.4f}", flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default=str(ROOT / "recipes" / "cifar10.yaml"))
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "image" / "cifar10-jpg.tar.gz"))
    p.add_argument("--precision", default="float32")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return train_steps(args.recipe, args.data, args.precision)
    out = subprocess.run([sys.executable, __file__, "--child", "--recipe", args.recipe, "--data", args.data,
                          "--precision", args.precision], env=dict(os.environ, ONEDNN_VERBOSE="1"),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True).stdout
    measured = out.split("MARK\n", 1)[1].splitlines()
    totals, counts = collections.Counter(), collections.Counter()
    for line in measured:
        fields = line.split(",")
        if line.startswith("onednn_verbose") and ",exec," in line:
            # kind, implementation, propagation, the problem's shape; the last field is milliseconds
            key = f"{fields[5]} {fields[7]} {fields[-2]}"
            totals[key] += float(fields[-1])
            counts[key] += 1
    step = next(line for line in measured if line.startswith("STEP_SECONDS")).split()[1]
    print(f"{args.precision}: {float(step) * 1000:.1f} ms a step (wall, verbose on); oneDNN's own time "
          f"{sum(totals.values()) / STEPS:.1f} ms a step")
    for key, ms in totals.most_common(25):
        print(f"{ms / STEPS:8.2f} ms  {counts[key] // STEPS:3d}x  {key}")


if __name__ == "__main__":
    main()
