"""The plain-Keras baseline for CIFAR-10: what a user writes from the Keras examples.

`image_dataset_from_directory` + cache + prefetch, a small CNN (Conv2D/MaxPooling2D stacks,
Dense head), Adam, trained until the time budget (measured from process start) is nearly
spent, then evaluated on the test split. Prints one JSON line.

    python bench/plain_keras_cifar.py --data ../shared/data/image/cifar10-jpg.tar.gz --budget 600
"""
import argparse
import json
import time

START = time.perf_counter()

import os  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402


class Budget(keras.callbacks.Callback):
    """Stops before an epoch that would end past the budget (epochs take about as long as the last)."""

    def __init__(self, budget, reserve):
        super().__init__()
        self.budget, self.reserve, self.last = budget, reserve, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.last = time.perf_counter() - self.t0
        if time.perf_counter() - START + self.last + self.reserve > self.budget:
            self.model.stop_training = True


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--budget", type=float, default=600)
    args = p.parse_args()
    tmp = tempfile.mkdtemp()
    with tarfile.open(args.data) as tar:
        tar.extractall(tmp, filter="data")
    root = os.path.join(tmp, "cifar10")
    train = keras.utils.image_dataset_from_directory(os.path.join(root, "train"), image_size=(32, 32), batch_size=128,
                                                     seed=0, verbose=False)
    test = keras.utils.image_dataset_from_directory(os.path.join(root, "test"), image_size=(32, 32), batch_size=256,
                                                    shuffle=False, verbose=False)
    train = train.cache().prefetch(tf.data.AUTOTUNE)
    test = test.cache().prefetch(tf.data.AUTOTUNE)
    # The convnet of the TensorFlow/Keras CIFAR-10 tutorials, with the examples' augmentation.
    model = keras.Sequential([
        keras.Input((32, 32, 3)),
        layers.RandomFlip("horizontal"),
        layers.RandomTranslation(0.1, 0.1),
        layers.Rescaling(1.0 / 255),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(128, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(128, activation="relu"),
        layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(train, epochs=1000, callbacks=[Budget(args.budget, reserve=15)], verbose=2)
    _, acc = model.evaluate(test, verbose=0)
    print(json.dumps({"row": "plain-keras-cnn", "epochs": len(history.history["loss"]), "test_accuracy": round(acc, 4),
                      "wall_seconds": round(time.perf_counter() - START, 1), "budget_seconds": args.budget}))


if __name__ == "__main__":
    main()
