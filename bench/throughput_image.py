"""Training throughput of the cnnkit image-cls pipeline against the same architecture written
as plain `keras.Model.fit` with a hand-written `tf.data` pipeline, interleaved in one process.

Both train on the same decoded CIFAR-10 images (uint8 arrays in memory), batch size and
augmentation of the recipe. Each round is one epoch of each (its steps, timed from the start to
the end of the epoch); medians of the rounds after a warm-up epoch. Prints one JSON line and
appends it (with the date, the machine and the command) to bench/results/image.jsonl, unless
--no-record (bench/image_bench.py passes it: it records the rows of the scripts it runs).

    python bench/throughput_image.py --recipe recipes/cifar10.yaml \
        --data ../shared/data/image/cifar10-jpg.tar.gz --images 10000 --rounds 3 [--set KEY=VALUE ...]

`--set` overrides the recipe as `cnnkit train --set` does; the plain model follows the backbone
arguments and the optimizer settings it reads from the resolved config.
"""
import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cnnkit import api, tasks, training
from machine import describe  # bench/machine.py
from timing import epoch_seconds  # bench/timing.py

RESULTS = Path(__file__).parent / "results" / "image.jsonl"


def plain_simple_cnn(input_shape, num_classes, filters, dropout, head_dropout, aug):
    """simple_cnn + head, written with plain Keras layers."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0)(inputs)
    for layer in aug:
        x = layer(x)
    x = layers.Normalization(mean=[0.0] * input_shape[-1], variance=[1.0] * input_shape[-1])(x)
    size = input_shape[0]
    for f in filters:
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        if size >= 4:
            x = layers.MaxPooling2D()(x)
            size //= 2
        if dropout:
            x = layers.SpatialDropout2D(dropout)(x)
    x = layers.GlobalAveragePooling2D()(x)
    if head_dropout:
        x = layers.Dropout(head_dropout)(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def plain_airbench(input_shape, num_classes, widths, stem, stem_filters, norm_scale, norm_momentum, logit_scale,
                   head_dropout, aug):
    """airbench + global max-pooling head, written with plain Keras layers: the whitening stem
    as a frozen 2x2 Conv2D (its kernel values do not change the speed), each group's first
    convolution max-pooled before batch norm and ReLU."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0)(inputs)
    for layer in aug:
        x = layer(x)
    x = layers.Normalization(mean=[0.0] * input_shape[-1], variance=[1.0] * input_shape[-1])(x)

    def cbr(x, f, pool=False):
        x = layers.Conv2D(f, 3, padding="same", use_bias=False)(x)
        if pool:
            x = layers.MaxPooling2D()(x)
        return layers.ReLU()(layers.BatchNormalization(scale=norm_scale, momentum=norm_momentum)(x))

    if stem == "whiten":
        x = layers.ReLU()(layers.Conv2D(4 * 2 * input_shape[-1], 2, trainable=False)(x))
    else:
        x = cbr(x, stem_filters)
    size = x.shape[1]
    for f in widths:
        x = cbr(x, f, pool=size >= 4)
        size = size // 2 if size >= 4 else size
        x = cbr(x, f)
    x = layers.GlobalMaxPooling2D()(x)
    if head_dropout:
        x = layers.Dropout(head_dropout)(x)
    x = layers.Dense(num_classes, use_bias=logit_scale == 1.0)(x)
    if logit_scale != 1.0:
        x = layers.Rescaling(logit_scale)(x)
    return keras.Model(inputs, layers.Activation("softmax")(x))


def plain_resnet(input_shape, num_classes, blocks, head_dropout, aug):
    """A CIFAR ResNet (16/32/64 widths, `blocks` basic blocks per stage) + head in plain Keras."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0)(inputs)
    for layer in aug:
        x = layer(x)
    x = layers.Normalization(mean=[0.0] * input_shape[-1], variance=[1.0] * input_shape[-1])(x)
    x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same", use_bias=False)(x)))
    for s, width in enumerate((16, 32, 64)):
        for b in range(blocks):
            stride = 2 if s > 0 and b == 0 else 1
            y = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.BatchNormalization()(layers.Conv2D(width, 3, padding="same", use_bias=False)(y))
            if stride != 1 or x.shape[-1] != width:
                x = layers.BatchNormalization()(layers.Conv2D(width, 1, strides=stride, use_bias=False)(x))
            x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    if head_dropout:
        x = layers.Dropout(head_dropout)(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--recipe", default="recipes/cifar10.yaml")
    p.add_argument("--data", required=True)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", default=None, help="float32 | mixed_bfloat16 | mixed_float16 (both models)")
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE overrides of the recipe")
    p.add_argument("--no-record", action="store_true", help="print the row without appending it to bench/results/image.jsonl")
    args = p.parse_args()

    cfg = api.resolve_config(args.recipe, args.data, limit=args.images, val_split=0.0, precision=args.precision,
                             sets=args.set)
    cfg.train.precision = training.set_precision(cfg.train.precision)  # a recipe's "auto" resolved, as cnnkit train
    task = tasks.get(cfg.task)
    prepared = api.load_prepared(cfg, task)
    x, y = prepared.splits["train"]
    n = len(y)
    num_classes = len(prepared.class_names)
    keras.utils.set_random_seed(0)
    ours, _ = task.build(cfg, prepared)
    training.compile_model(ours, cfg.train, int(np.ceil(n / cfg.train.batch_size)), num_classes,
                           soft_labels=task.soft_labels(cfg))
    our_ds = task.dataset(x, y, cfg, training=True, num_classes=num_classes)

    # The same network by hand: plain layers, plain compile, a hand-written tf.data pipeline.
    from cnnkit.features import image as image_features

    pp = cfg.preprocess
    aug = image_features.augmentation_layers(pp.flip, pp.translate, pp.rotation, pp.zoom, pp.cutout)
    args_ = cfg.model.backbone_args
    if cfg.model.backbone == "simple_cnn":
        plain = plain_simple_cnn(x.shape[1:], num_classes, args_.get("filters", (32, 64, 128)), args_.get("dropout", 0.1),
                                 cfg.model.head_dropout, aug)
    elif cfg.model.backbone == "airbench":
        plain = plain_airbench(x.shape[1:], num_classes, args_.get("widths", (64, 256, 256)), args_.get("stem", "whiten"),
                               args_.get("stem_filters", 24), args_.get("norm_scale", False),
                               args_.get("norm_momentum", 0.4), cfg.model.head_logit_scale, cfg.model.head_dropout, aug)
    else:
        blocks = {"resnet8": 1, "resnet20": 3, "resnet56": 9}[cfg.model.backbone]
        plain = plain_resnet(x.shape[1:], num_classes, blocks, cfg.model.head_dropout, aug)
    # The recipe's optimizer as Keras has it (without cnnkit's per-variable learning rates).
    if cfg.train.optimizer == "sgd":
        optimizer = keras.optimizers.SGD(cfg.train.lr, momentum=cfg.train.momentum, nesterov=True,
                                         weight_decay=cfg.train.weight_decay or None)
    else:
        optimizer = keras.optimizers.AdamW(cfg.train.lr, weight_decay=cfg.train.weight_decay)
    plain.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    plain_ds = (tf.data.Dataset.from_tensor_slices((x, y)).shuffle(n).batch(cfg.train.batch_size)
                .prefetch(tf.data.AUTOTUNE))
    print(f"params: cnnkit {ours.count_params():,}, plain {plain.count_params():,}", flush=True)

    epoch_seconds(ours, our_ds)  # warm-up: tracing
    epoch_seconds(plain, plain_ds)
    times = {"cnnkit": [], "plain_keras": []}
    fit_calls = {"cnnkit": [], "plain_keras": []}
    for _ in range(args.rounds):
        times["cnnkit"].append(epoch_seconds(ours, our_ds, fit_seconds=fit_calls["cnnkit"]))
        times["plain_keras"].append(epoch_seconds(plain, plain_ds, fit_seconds=fit_calls["plain_keras"]))
    rates = {k: round(n / statistics.median(v), 1) for k, v in times.items()}

    # The input pipeline alone (model removed).
    t0 = time.perf_counter()
    for _ in our_ds:
        pass
    pipeline_rate = round(n / (time.perf_counter() - t0), 1)
    row = {"row": "image-throughput", "backbone": cfg.model.backbone, "images": n,
           "cnnkit_images_per_second": rates["cnnkit"], "plain_keras_images_per_second": rates["plain_keras"],
           "ratio": round(rates["cnnkit"] / rates["plain_keras"], 3),
           "pipeline_only_images_per_second": pipeline_rate,
           "precision": cfg.train.precision,
           "decode_images_per_second": round(sum(len(v[1]) for v in prepared.splits.values())
                                             / prepared.prepare_seconds, 1),
           "epoch_seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
           "fit_call_seconds": fit_calls,
           "date": time.strftime("%Y-%m-%d"), "machine": describe(),
           "command": "python bench/throughput_image.py " + " ".join(sys.argv[1:])}
    print(json.dumps(row), flush=True)
    if not args.no_record:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
