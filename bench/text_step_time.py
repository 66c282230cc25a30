"""Milliseconds per training step of a text-cls network on a benchmark set, variants side by side.

Builds the recipe's network (one member, a 10 % test split held out) for each variant, trains
each for one epoch on the same first N batches to warm up, then times one epoch of them per
variant in turn, ROUNDS times (the machine's speed varies within minutes: alternating rounds and
the median keep variants comparable). Prints the per-round figures and the medians.

    python bench/text_step_time.py mr                              # the defaults
    python bench/text_step_time.py mr --variants default one_input subwords0
    python bench/text_step_time.py sst5 --variants default lazy

Variants: default (the recipe as it trains); one_input (MR: the training words cut from the
vocabulary read as [UNK] alone, one-input training model); subwords0 (no subwords); lazy
(`train.sparse_updates=true`).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETS = {"mr": ROOT.parent / "shared" / "data" / "text" / "mr" / "all.csv",
        "sst2": ROOT.parent / "shared" / "data" / "text" / "sst2",
        "sst5": ROOT.parent / "shared" / "data" / "text" / "sst5",
        "trec": ROOT.parent / "shared" / "data" / "text" / "trec"}
SETS_OF = {"subwords0": ["preprocess.subwords=0"], "lazy": ["train.sparse_updates=true"],
           "length_buckets": ["preprocess.length_buckets=8"]}


def build(name: str, variant: str, batches: int):
    """(compiled training model, its first `batches` training batches, cached) for one variant."""
    from cnnkit import api, tasks, training
    from cnnkit.tasks import text_cls

    sets = ["data.test_split=0.1", "model.members=1"] + (["data.cv=0"] if name == "mr" else []) + SETS_OF.get(variant, [])
    cfg = api.resolve_config(name, data=str(SETS[name]), sets=sets)
    task = tasks.get("text-cls")
    prepared = api.prepare(cfg, task, api.load_data(cfg, task))
    cuts = text_cls.TextClassification._cuts_training_words
    if variant == "one_input":
        text_cls.TextClassification._cuts_training_words = lambda self, prepared: False
    try:
        model, _ = task.build(cfg, prepared)
    finally:
        text_cls.TextClassification._cuts_training_words = cuts
    classes = len(prepared.class_names)
    ds = task.dataset(*prepared.splits["train"], cfg, training=True, num_classes=classes).take(batches).cache()
    training.compile_model(model, cfg.train, batches, classes, soft_labels=False, multi_label=prepared.multi_label)
    model.fit(ds, epochs=1, verbose=0)  # traced, cache filled
    return model, ds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--variants", nargs="+", default=["default"], choices=["default", "one_input", *SETS_OF])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    models = {v: build(args.set, v, args.batches) for v in args.variants}
    times = {v: [] for v in models}
    for _ in range(args.rounds):
        for variant, (model, ds) in models.items():
            start = time.perf_counter()
            model.fit(ds, epochs=1, verbose=0)
            times[variant].append(1000 * (time.perf_counter() - start) / args.batches)
    for variant, ms in times.items():
        print(f"{args.set} {variant}: {len(models[variant][0].inputs)} input(s), ms a step "
              f"{[round(t, 1) for t in ms]}, median {np.median(ms):.1f}")


if __name__ == "__main__":
    main()
