"""Timing one epoch of `model.fit` for the throughput benchmarks (bench/speed.py,
bench/throughput_image.py)."""
import time

import keras


class EpochClock(keras.callbacks.Callback):
    """Seconds from the start to the end of the epoch: the training steps only. What `fit` spends
    after the epoch (deleting its iterator, which waited until up to 40.95 s after the call's start
    for tf.data's autotuning thread on TensorFlow 2.21, see cnnkit.training.without_autotune_thread)
    is not throughput."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds = time.perf_counter() - self.start


def epoch_seconds(model, ds, steps=None, fit_seconds=None) -> float:
    """One epoch (`steps` batches, or all of `ds`) of `model.fit`: the epoch's seconds;
    `fit_seconds` (a list) gets the whole call's, rounded to 0.01 s."""
    clock, start = EpochClock(), time.perf_counter()
    model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    if fit_seconds is not None:
        fit_seconds.append(round(time.perf_counter() - start, 2))
    return clock.seconds
