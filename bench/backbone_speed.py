"""Training images/s of image backbones (+ a global max-pooling head) on synthetic 32x32x3
batches, and the machine's float32 matmul peak: a quick check of how fast a machine is and
which backbone fits a time budget. Not a data benchmark (no input pipeline, no augmentation).

    python bench/backbone_speed.py                       # the default list
    python bench/backbone_speed.py resnet20 airbench:32,64,128 plain
    python bench/backbone_speed.py airbench:32,64,128 airbench:64,128,256 --precision mixed_bfloat16

Each entry: 5 warm-up steps, then 20 timed steps of batch 128 (AdamW). `plain` is the
plain-Keras CNN of bench/plain_keras_cifar.py (no batch norm).
"""
import argparse
import json
import time

import keras
import numpy as np
import tensorflow as tf
from keras import layers

import cnnkit.backbones as backbones
from cnnkit.blocks import ClassifierHead

DEFAULT = ["resnet20", "airbench:16,32,64", "airbench:32,64,128", "airbench:64,128,256", "plain"]


def plain_cnn() -> keras.Model:
    return keras.Sequential([
        keras.Input((32, 32, 3)), layers.Rescaling(1 / 255.0),
        layers.Conv2D(32, 3, padding="same", activation="relu"), layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"), layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", activation="relu"), layers.MaxPooling2D(), layers.Flatten(),
        layers.Dropout(0.3), layers.Dense(128, activation="relu"), layers.Dense(10, activation="softmax")])


def build(entry: str) -> keras.Model:
    """`name` or `airbench:W1,W2,W3` -> a compiled model from (32, 32, 3) images to 10 classes."""
    if entry == "plain":
        model = plain_cnn()
    else:
        name, _, widths = entry.partition(":")
        kwargs = {"widths": tuple(int(w) for w in widths.split(","))} if widths else {}
        inputs = keras.Input((32, 32, 3))
        model = keras.Model(inputs, ClassifierHead(10, pooling="max")(backbones.get(name, (32, 32, 3), **kwargs)(inputs)))
    model.compile(keras.optimizers.AdamW(1e-3), "sparse_categorical_crossentropy")
    return model


def matmul_peak(n: int = 2048, repeats: int = 20) -> float:
    a, b = tf.random.normal((n, n)), tf.random.normal((n, n))
    for _ in range(3):
        c = tf.matmul(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        c = tf.matmul(a, b)
    c.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entries", nargs="*", default=DEFAULT)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", default="float32", help="Keras dtype policy, e.g. mixed_bfloat16")
    args = parser.parse_args()
    keras.mixed_precision.set_global_policy(args.precision)
    bs, steps = args.batch_size, 20
    x = np.random.rand(bs * 8, 32, 32, 3).astype("float32")
    y = np.random.randint(0, 10, bs * 8)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(bs).repeat()
    print(json.dumps({"matmul_peak_gflops_per_second": round(matmul_peak(), 1)}), flush=True)
    for entry in args.entries:
        model = build(entry)
        model.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        rate = steps * bs / (time.perf_counter() - start)
        print(json.dumps({"backbone": entry, "batch_size": bs, "precision": args.precision, "images_per_second": round(rate, 1),
                          "parameters": model.count_params()}), flush=True)


if __name__ == "__main__":
    main()
