"""The training engine: schedules, optimizers, NaN stop, throughput timer."""
import io
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkit import training
from cnnkit.config import TrainConfig
from cnnkit.errors import CnnkitError

MODULE_IMPORTED_AT = __import__("time").time()


def lr_at(schedule, step):
    return float(schedule(step)) if callable(schedule) else schedule


@pytest.mark.parametrize("name", ["constant", "cosine", "onecycle", "step"])
def test_schedules_shape(name):
    cfg = TrainConfig(lr=0.1, epochs=10, schedule=name)
    sched = training.make_schedule(cfg, steps_per_epoch=10)
    lrs = [lr_at(sched, s) for s in range(0, 100)]
    assert max(lrs) == pytest.approx(0.1, rel=1e-3)
    if name == "constant":
        assert min(lrs) == pytest.approx(0.1)
    elif name == "cosine":
        assert lrs[0] == pytest.approx(0.1) and lrs[-1] < 0.001 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    elif name == "onecycle":
        peak = int(np.argmax(lrs))
        assert 20 <= peak <= 26 and lrs[0] == pytest.approx(0.1 / 25, rel=1e-3) and lrs[-1] < 1e-3
    else:
        assert lrs[49] == pytest.approx(0.1) and lrs[60] == pytest.approx(0.01) and lrs[90] == pytest.approx(0.001)


def test_warmup_then_cosine():
    sched = training.make_schedule(TrainConfig(lr=1.0, epochs=10, warmup_epochs=1, schedule="cosine"), 10)
    assert lr_at(sched, 0) == pytest.approx(0.1) and lr_at(sched, 9) == pytest.approx(1.0)
    assert lr_at(sched, 10) == pytest.approx(1.0) and lr_at(sched, 99) < 0.01
    again = training.WarmupSchedule.from_config(sched.get_config())
    assert lr_at(again, 55) == pytest.approx(lr_at(sched, 55))


@pytest.mark.parametrize("name,cls", [("adam", keras.optimizers.Adam), ("adamw", keras.optimizers.AdamW),
                                      ("sgd", keras.optimizers.SGD), ("rmsprop", keras.optimizers.RMSprop)])
def test_optimizers(name, cls):
    assert isinstance(training.make_optimizer(TrainConfig(optimizer=name), 10), cls)


def _tiny_model():
    inputs = keras.Input((4,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    model = _tiny_model()
    training.compile_model(model, TrainConfig(lr=1.0, schedule="constant"), 4, 3)
    x = np.full((32, 4), np.nan, "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(32, "int64"))).batch(8)
    with pytest.raises(CnnkitError, match="loss became NaN at epoch 1, batch 1: lower the learning rate"):
        training.fit(model, ds, None, TrainConfig(epochs=3, verbose=0), tmp_path)


class CountingBackup(training.ThrottledBackup):
    """ThrottledBackup that records the epoch count of each backup it writes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved = []

    def _save_model(self):
        super()._save_model()
        self.saved.append(self._current_epoch)


@pytest.mark.parametrize("ratio,expected", [(0.0, [1, 2, 3, 4, 5]), (1e9, [1, 5])])
def test_throttled_backup_skips_epochs_but_keeps_the_first_and_last(tmp_path, ratio, expected):
    model = _tiny_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices((np.ones((16, 4), "float32"), np.zeros(16, "int64"))).batch(8)
    backup = CountingBackup(str(tmp_path / "backup"), ratio=ratio, delete_checkpoint=False)
    model.fit(ds, epochs=5, callbacks=[backup], verbose=0)
    assert backup.saved == expected
    meta = (tmp_path / "backup" / "training_metadata.json").read_text()
    assert '"epoch": 5' in meta


def test_throttled_backup_saves_the_epoch_an_early_stop_ends_on(tmp_path):
    model = _tiny_model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    ds = tf.data.Dataset.from_tensor_slices((np.ones((16, 4), "float32"), np.zeros(16, "int64"))).batch(8)
    backup = CountingBackup(str(tmp_path / "backup"), ratio=1e9, delete_checkpoint=False)

    class StopAtThree(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 2

    model.fit(ds, epochs=10, callbacks=[backup, StopAtThree()], verbose=0)
    assert backup.saved == [1, 3]


def _mark(model, value):
    """Sets every weight of `model` to `value`."""
    model.set_weights([np.full(w.shape, value, "float32") for w in model.get_weights()])


def test_best_weights_are_written_only_on_flush_and_are_the_best_epochs(tmp_path):
    model = _tiny_model()
    path = tmp_path / "best.weights.h5"
    best = training.BestWeights(path, "val_accuracy", best=0.5)
    best.set_model(model)

    for epoch, acc in enumerate([0.4, 0.7, 0.6, 0.9, 0.8]):  # 0.4 does not beat the resumed 0.5
        _mark(model, epoch)
        best.on_epoch_end(epoch, {"val_accuracy": acc})
        if epoch == 1:
            assert not path.exists()
            best.flush()  # a backup after epoch 1
            assert path.exists()
    assert best.best == pytest.approx(0.9)
    best.on_train_end()
    assert all((w == 4).all() for w in model.get_weights())  # flushing keeps the model's own weights
    again = _tiny_model()
    again.load_weights(str(path))
    assert all((w == 3).all() for w in again.get_weights())  # epoch 3: accuracy 0.9
    assert not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize("monitor", ["accuracy", "loss"])
def test_fit_keeps_the_epoch_best_on_the_monitored_metric(tmp_path, monitor):
    """`train.monitor`: the kept weights are those of the epoch with the highest val_accuracy
    or the lowest val_loss; noisy labels make the two differ and the loss rise at this rate."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(96, 4)).astype("float32")
    y = np.where(rng.random(96) < 0.4, rng.integers(0, 3, 96), x[:, :3].argmax(1))
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    val = tf.data.Dataset.from_tensor_slices((x[:48] + 0.5, y[:48])).batch(16)
    cfg = TrainConfig(epochs=12, verbose=0, lr=0.5, schedule="constant", monitor=monitor)
    model = _tiny_model()
    training.compile_model(model, cfg, 4, 3)
    history = training.fit(model, ds, val, cfg, tmp_path)
    loss, accuracy = model.evaluate(val, verbose=0)
    if monitor == "loss":
        assert loss == pytest.approx(min(history["val_loss"]), rel=1e-5)
    else:
        assert accuracy == pytest.approx(max(history["val_accuracy"]))
    assert training.monitored(cfg, True) == f"val_{monitor}" and training.monitored(cfg, False) == monitor


def test_balanced_class_weights_make_every_class_weigh_the_same(tmp_path):
    y = np.array([0] * 90 + [2] * 10)
    w = training.balanced_class_weights(y, 3)
    assert w == pytest.approx({0: 100 / (2 * 90), 1: 1.0, 2: 100 / (2 * 10)})
    assert 90 * w[0] == pytest.approx(10 * w[2])
    # through fit: a rare class's examples weigh as much in the loss as the common class's
    x = np.eye(4, dtype="float32")[y]
    cfg = TrainConfig(epochs=1, verbose=0, lr=0.0, schedule="constant")
    p = np.exp([2.0, 0.0, 0.0]) / np.exp([2.0, 0.0, 0.0]).sum()  # what the model below predicts for every input
    losses = {}
    for name, cw in (("none", None), ("balanced", w)):
        model = _tiny_model()
        model.set_weights([np.zeros((4, 3), "float32"), np.array([2.0, 0.0, 0.0], "float32")])
        training.compile_model(model, cfg, 1, 3)
        losses[name] = training.fit(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(100), None, cfg,
                                    tmp_path / name, class_weight=cw)["loss"][0]
    assert losses["none"] == pytest.approx(-(90 * np.log(p[0]) + 10 * np.log(p[2])) / 100, rel=1e-4)
    assert losses["balanced"] == pytest.approx(-(90 * w[0] * np.log(p[0]) + 10 * w[2] * np.log(p[2])) / 100, rel=1e-4)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_a_line_per_epoch_in_a_file(tmp_path, capsys):
    """`train.verbose=auto` (the default): Keras' bar on a terminal; captured or redirected
    output gets one line per epoch instead of a bar redrawn at every step."""
    assert training.progress_verbosity("auto", _Terminal()) == 1
    assert training.progress_verbosity("auto", io.StringIO()) == 2
    assert [training.progress_verbosity(v, _Terminal()) for v in (0, 1, 2)] == [0, 1, 2]
    x = np.zeros((64, 4), "float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(64, "int64"))).batch(8)
    model = _tiny_model()
    cfg = TrainConfig(epochs=2)
    training.compile_model(model, cfg, 4, 3)
    training.fit(model, ds, None, cfg, tmp_path)
    out = capsys.readouterr().out  # pytest's capture is no terminal
    assert "Epoch 1/2" in out and "Epoch 2/2" in out
    assert "8/8" in out and "1/8" not in out and "\u2501" not in out  # no bar, no step counts


def test_batchnorm_momentum_follows_the_epoch_length_for_library_defaults_only():
    """Keras' 0.99 and keras.applications MobileNet's 0.999 come down to one epoch's average
    (never up, never below 0.8); a momentum set on purpose stays. MobileNetV2 from scratch on
    40 photos (one step an epoch) kept ImageNet-free statistics near their initial values at 0.999
    and validated at chance while training at 100 %."""
    inputs = keras.Input((32, 32, 3))
    mobilenet = keras.applications.MobileNetV2(input_shape=(32, 32, 3), weights=None, include_top=False)
    x = keras.layers.BatchNormalization(name="keras_default")(mobilenet(inputs))
    x = keras.layers.BatchNormalization(momentum=0.9, name="chosen")(x)
    model = keras.Model(inputs, x)
    library = [layer for layer in training.batchnorm_layers(mobilenet, trainable_only=False)]
    assert library and all(layer.momentum == 0.999 for layer in library)

    assert training.fit_batchnorm_momentum(model, steps_per_epoch=1) == 0.8
    assert all(layer.momentum == 0.8 for layer in library)
    assert model.get_layer("keras_default").momentum == 0.8 and model.get_layer("chosen").momentum == 0.9

    model = keras.Model(inputs, keras.layers.BatchNormalization(name="keras_default")(mobilenet(inputs)))
    for layer in library:
        layer.momentum = 0.999
    training.fit_batchnorm_momentum(model, steps_per_epoch=500)  # one epoch: 0.998
    assert all(layer.momentum == 0.998 for layer in library)
    assert model.get_layer("keras_default").momentum == 0.99  # never above the layer's own
    for layer in library:
        layer.momentum = 0.999
    training.fit_batchnorm_momentum(model, steps_per_epoch=5000)
    assert all(layer.momentum == 0.999 for layer in library)


def test_reestimate_batchnorm_sets_the_mean_of_the_batch_statistics():
    """`reestimate_batchnorm`: the moving mean and variance become the mean of the batches' own
    (biased) statistics, in 1D (sequence) and 2D layers alike; the learned scale and shift, the
    momentum and a frozen batch norm are left as they were."""
    from cnnkit.blocks.norm import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = (rng.normal(size=(30, 5, 3)) * [1.0, 2.0, 3.0] + [0.0, 5.0, -2.0]).astype("float32")
    inputs = keras.Input((5, 3))
    hidden = keras.layers.BatchNormalization(momentum=0.97, name="bn")(inputs)
    frozen = keras.layers.BatchNormalization(name="frozen")
    frozen.trainable = False
    grid = keras.layers.Reshape((5, 3, 1))(frozen(hidden))
    model = keras.Model(inputs, FusedBatchNorm(name="bn2d")(keras.layers.Conv2D(2, 1, name="conv")(grid)))
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(30))).batch(10)  # three batches
    gamma = model.get_layer("bn").gamma.numpy().copy()

    assert training.reestimate_batchnorm(model, ds) == 3
    bn = model.get_layer("bn")
    batches = x.reshape(3, 10 * 5, 3)
    np.testing.assert_allclose(bn.moving_mean.numpy(), batches.mean(axis=1).mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), batches.var(axis=1).mean(axis=0), rtol=1e-4)
    assert bn.momentum == 0.97 and np.array_equal(bn.gamma.numpy(), gamma)
    assert np.array_equal(model.get_layer("frozen").moving_mean.numpy(), np.zeros(3))  # frozen: untouched
    # the 2D layer: the mean of the statistics of its inputs in training mode (each batch normalised by its own)
    features = keras.Model(inputs, model.get_layer("conv").output)
    stats = [features(xb, training=True).numpy().reshape(-1, 2) for xb in x.reshape(3, 10, 5, 3)]
    np.testing.assert_allclose(model.get_layer("bn2d").moving_mean.numpy(),
                               np.mean([s.mean(axis=0) for s in stats], axis=0), rtol=1e-4, atol=1e-5)
    assert training.reestimate_batchnorm(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), ds) == 0


def test_precise_batchnorm_leaves_each_kept_epoch_with_statistics_of_its_own_weights(tmp_path):
    """`train.precise_bn` (fit's `batchnorm_ds`): after fit, the kept epoch's moving statistics
    are those a re-estimation with its weights gives (the moving average of training trails
    them); without the option they are not."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 4)).astype("float32") * 3 + 1
    y = x[:, :3].argmax(1)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)

    def trained(batchnorm_ds, out):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((4,))
        h = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(8, name="hidden")(inputs))
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.ReLU(name="relu")(h)))
        cfg = TrainConfig(epochs=3, verbose=0, lr=0.05, schedule="constant", monitor="loss")
        training.compile_model(model, cfg, 4, 3)
        history = training.fit(model, ds, ds, cfg, out, batchnorm_ds=batchnorm_ds)
        return model, history

    for batchnorm_ds, out in ((ds, tmp_path / "precise"), (None, tmp_path / "moving")):
        model, history = trained(batchnorm_ds, out)
        # the kept epoch was validated with the statistics it is saved with (re-estimated before validation)
        assert model.evaluate(ds, verbose=0)[0] == pytest.approx(min(history["val_loss"]), rel=1e-5)
        after_fit = model.get_layer("bn").moving_mean.numpy().copy()
        training.reestimate_batchnorm(model, ds)
        matches = np.allclose(after_fit, model.get_layer("bn").moving_mean.numpy(), rtol=1e-4, atol=1e-5)
        assert matches == (batchnorm_ds is not None)


def test_best_weights_and_early_stopping_on_a_loss_keep_the_lowest(tmp_path):
    model = _tiny_model()
    best = training.BestWeights(tmp_path / "best.weights.h5", "val_loss")
    best.set_model(model)
    for epoch, loss in enumerate([0.9, 0.5, 0.7]):
        _mark(model, epoch)
        best.on_epoch_end(epoch, {"val_loss": loss})
    assert best.best == pytest.approx(0.5)
    (tmp_path / "history.csv").write_text("epoch,val_loss\n0,0.9\n1,0.5\n2,0.7\n")
    stop = training.ResumableEarlyStopping("val_loss", 2)
    assert not stop.replay([0.9, 0.5, 0.7]) and stop.replay([0.9, 0.5, 0.7, 0.6])
    assert training.best_so_far(tmp_path / "history.csv", "val_loss") == pytest.approx(0.5)


def _compiled_tiny_model(lr):
    model = _tiny_model()
    training.compile_model(model, TrainConfig(lr=lr, schedule="constant"), 4, 3)
    model.optimizer.build(model.trainable_variables)
    return model


def test_anneal_on_plateau_goes_back_to_the_best_epoch_at_a_lower_rate_then_stops(tmp_path, capsys):
    model = _compiled_tiny_model(lr=0.01)
    anneal = training.AnnealOnPlateau("val_accuracy", 2, 0.2, tmp_path / "best.weights.h5")
    anneal.set_model(model)
    anneal.on_train_begin()
    lr = model.optimizer.learning_rate
    # epoch: (val_accuracy, weights after the epoch's end, learning rate after it, stop?)
    expected = [(0.5, 0, 0.01, False), (0.7, 1, 0.01, False), (0.6, 1, 0.002, False),  # back to epoch 1's
                (0.8, 3, 0.002, False), (0.8, 3, 0.0004, False),  # a tie is no improvement
                (0.75, 5, 0.0004, True)]  # after the last anneal: stop, weights left as they are
    for epoch, (acc, weights, rate, stop) in enumerate(expected):
        _mark(model, epoch)
        anneal.on_epoch_end(epoch, {"val_accuracy": acc})
        assert all((w == weights).all() for w in model.get_weights()), epoch
        assert float(lr.numpy()) == pytest.approx(rate) and bool(model.stop_training) == stop, epoch
    assert "after the last anneal; stopping" in capsys.readouterr().err


def test_a_resumed_anneal_replays_the_history_and_reads_the_best_weights(tmp_path):
    """A resumed run counts the anneals of its history.csv (from the phase start) and, at its
    first plateau, puts back the weights of best.weights.h5 but keeps its optimizer state."""
    best_path = tmp_path / "best.weights.h5"
    model = _compiled_tiny_model(lr=0.01)
    _mark(model, 7)
    model.save_weights(str(best_path))  # written at the best epoch, with that epoch's optimizer state
    (tmp_path / "history.csv").write_text(
        "epoch,accuracy,val_accuracy\n0,0.1,0.9\n2,0.5,0.6\n3,0.6,0.7\n4,0.6,0.65\n")
    resumed = _compiled_tiny_model(lr=0.002)  # the backup's lowered rate
    resumed.optimizer.iterations.assign(40)
    anneal = training.AnnealOnPlateau("val_accuracy", 2, 0.2, best_path,
                                      training.monitor_values(tmp_path / "history.csv", "val_accuracy", 2))
    anneal.set_model(resumed)
    anneal.on_train_begin()  # epoch 0 is of an earlier phase: best 0.7, one anneal used
    assert anneal.best == pytest.approx(0.7) and anneal.left == 1
    _mark(resumed, 5)
    anneal.on_epoch_end(5, {"val_accuracy": 0.69})
    assert all((w == 7).all() for w in resumed.get_weights())
    assert float(resumed.optimizer.learning_rate.numpy()) == pytest.approx(0.0004)
    assert int(resumed.optimizer.iterations.numpy()) == 40
    anneal.on_epoch_end(6, {"val_accuracy": 0.7})
    assert resumed.stop_training


def test_fit_with_anneal_on_plateau_stops_before_its_epochs(tmp_path, capsys):
    """Without the anneal this run trains all 20 epochs (no early stopping)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = (5.0 * np.eye(4)[y] + rng.normal(scale=0.1, size=(96, 4))).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    cfg = TrainConfig(epochs=20, verbose=0, lr=0.1, schedule="constant", anneal_on_plateau=1)
    model = _tiny_model()
    training.compile_model(model, cfg, 4, 3)
    history = training.fit(model, ds, ds, cfg, tmp_path)
    assert len(history["val_accuracy"]) < 20
    err = capsys.readouterr().err
    assert "back to the best epoch" in err and "after the last anneal; stopping" in err


def test_a_resumed_early_stopping_counts_the_epochs_of_its_history(tmp_path):
    """Two epochs without improvement in the history (of this phase, from epoch 2 up to 6): with
    patience 3 the first such epoch after the resume stops, as in the uninterrupted run; rows of
    an earlier and a later phase do not count."""
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.99\n2,0.6\n3,0.7\n4,0.65\n5,0.68\n6,0.99\n")
    stop = training.ResumableEarlyStopping(
        "val_accuracy", 3, training.monitor_values(tmp_path / "history.csv", "val_accuracy", 2, 6), initial_epoch=2)
    stop.set_model(_tiny_model())
    stop.model.stop_training = False  # fit's flag
    stop.on_train_begin()
    assert stop.best == pytest.approx(0.7) and stop.wait == 2
    stop.on_epoch_end(6, {"val_accuracy": 0.71})  # better: counting starts over
    assert not stop.model.stop_training and stop.wait == 0
    for epoch in (7, 8):
        stop.on_epoch_end(epoch, {"val_accuracy": 0.5})
    assert not stop.model.stop_training
    stop.on_epoch_end(9, {"val_accuracy": 0.5})
    assert stop.model.stop_training
    assert stop.replay([0.6, 0.7, 0.65, 0.68, 0.69]) and not stop.replay([0.6, 0.7, 0.65, 0.68])


def test_fit_resumed_after_its_early_stop_trains_no_further(tmp_path, capsys):
    """A run killed after early stopping ended its training (before the model was saved) goes on
    to the end with the best weights, training no epoch; Keras' EarlyStopping trained 3 more."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, x[:, :3].argmax(1))).batch(16)
    cfg = TrainConfig(epochs=20, verbose=0, lr=0.0, early_stopping=2)  # lr 0: nothing improves
    model = _tiny_model()
    training.compile_model(model, cfg, 4, 3)
    assert len(training.fit(model, ds, ds, cfg, tmp_path)["val_accuracy"]) == 3
    trained = [w.copy() for w in model.get_weights()]
    resumed = _tiny_model()
    training.compile_model(resumed, cfg, 4, 3)
    history = training.fit(resumed, ds, ds, cfg, tmp_path)
    assert history.get("val_accuracy", []) == []
    assert len((tmp_path / "history.csv").read_text().strip().splitlines()) == 1 + 3
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), trained))
    assert "Training had ended at epoch 3" in capsys.readouterr().err


def test_label_smoothing_loss_matches_keras():
    loss = training.SmoothedSparseCrossentropy(3, 0.1)
    y = np.array([0, 2])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], "float32")
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    assert float(loss(y, p)) == pytest.approx(float(expected), rel=1e-5)


def test_fit_writes_history_checkpoint_and_times(tmp_path):
    model = _tiny_model()
    cfg = TrainConfig(epochs=3, verbose=0, lr=0.05)
    training.compile_model(model, cfg, 4, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = x[:, :3].argmax(1)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    timer = training.TrainTimer()
    history = training.fit(model, ds, ds, cfg, tmp_path, timer)
    assert len(history["val_accuracy"]) == 3 and timer.epochs == 3 and timer.seconds > 0
    assert timer.steps == 3 * 4  # 64 examples in batches of 16, three epochs
    assert (tmp_path / "checkpoints" / "best.weights.h5").exists()
    assert len((tmp_path / "history.csv").read_text().strip().splitlines()) == 4


def test_the_timer_keeps_the_epochs_of_earlier_calls_but_not_those_run_again(tmp_path):
    """`TrainTimer.track`: a killed call had recorded epochs 0-3 and backed up after epoch 1; the
    resumed call runs 2, 3 and 4 again: epochs 0-1 keep their times, 2-4 get the new ones."""
    path = tmp_path / "epoch_seconds-backup.json"
    path.write_text(json.dumps({"0": 1.0, "1": 1.0, "2": 1.0, "3": 1.0}))
    timer = training.TrainTimer()
    timer.track(path)
    for epoch in (2, 3, 4):
        timer.on_epoch_begin(epoch)
        timer.on_test_begin()  # validation is not training time
        timer.on_epoch_end(epoch)
    recorded = json.loads(path.read_text())
    assert sorted(recorded, key=int) == ["0", "1", "2", "3", "4"] and recorded["0"] == recorded["1"] == 1.0
    assert all(recorded[e] < 0.5 for e in ("2", "3", "4")) and timer.epochs == 3
    assert training.tracked_train_seconds(tmp_path) == 0.0  # the file is not under checkpoints/ yet
    (tmp_path / "checkpoints").mkdir()
    path.rename(tmp_path / "checkpoints" / path.name)
    assert training.tracked_train_seconds(tmp_path) == pytest.approx(sum(recorded.values()))


@pytest.mark.parametrize("tf_config,expected", [
    (None, (True, "chief-0")),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, (True, "worker-0")),
    ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, (False, "worker-1")),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, (False, "worker-0")),
    ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, (True, "chief-0")),
])
def test_worker_role_picks_one_chief(tf_config, expected, monkeypatch):
    """Only the chief writes the run directory of a multi-worker run; the others write under workers/."""
    import json

    from cnnkit import training

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert training.worker_role() == expected


def test_time_budget_shortens_the_run_and_its_schedule(monkeypatch):
    """After a 30 s epoch with 100 s to go (7.5 s kept for evaluation), two more epochs fit: the
    run's last epoch becomes the third, and the one-cycle schedule now ends at its 15th step."""
    import time

    cfg = TrainConfig(epochs=10, schedule="onecycle", lr=1e-2)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_model(model, cfg, steps_per_epoch=5, num_classes=2)
    clock = iter([0.0, 30.0])
    monkeypatch.setattr(time, "time", lambda: next(clock))
    budget = training.TimeBudget(deadline=100.0, steps_per_epoch=5, initial_epoch=0, epochs=10, min_reserve=0.0)
    budget.set_model(model)
    budget.on_epoch_begin(0)
    budget.on_epoch_end(0)
    assert budget.last_epoch == 3 and not model.stop_training
    schedule = model.optimizer._learning_rate
    assert float(schedule._total.numpy()) == 15.0
    assert float(schedule(15)) == pytest.approx(1e-2 / 1e4, rel=1e-3)  # annealed by the new end
    assert float(schedule(14)) < float(schedule(8)) < 1e-2
    clock2 = iter([60.0, 62.0, 90.0, 92.0])
    monkeypatch.setattr(time, "time", lambda: next(clock2))
    for epoch in (1, 2):
        budget.on_epoch_begin(epoch)
        budget.on_epoch_end(epoch)
    # 11.3 s an epoch (2.27 s a step) with 8 s to go, 2.8 s kept: two steps of a fourth epoch fit
    assert budget.last_step == 17 and budget.last_epoch == 4 and not model.stop_training
    monkeypatch.setattr(time, "time", lambda: 94.0)
    budget.on_epoch_begin(3)
    budget.on_train_batch_end(0)
    assert not model.stop_training
    budget.on_train_batch_end(1)
    assert model.stop_training  # inside the fourth epoch, at the 17th step


def test_time_budget_lengthens_again_after_slow_epochs(monkeypatch):
    """40 s epochs (8 s a step) with a 200 s budget: 18 more steps fit after the first epoch (10 s
    kept for evaluation), so the run ends 3 steps into the 5th; then 10 s epochs: the run is
    lengthened again, but never beyond the 6 epochs asked for."""
    import time

    cfg = TrainConfig(epochs=6, schedule="cosine", lr=1e-2)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_model(model, cfg, steps_per_epoch=5, num_classes=2)
    budget = training.TimeBudget(deadline=200.0, steps_per_epoch=5, initial_epoch=0, epochs=6, min_reserve=0.0)
    budget.set_model(model)
    schedule = model.optimizer._learning_rate
    ends = []
    for epoch, (start, end) in enumerate([(0.0, 40.0), (40.0, 80.0), (80.0, 90.0), (90.0, 100.0), (100.0, 110.0)]):
        clock = iter([start, end])
        monkeypatch.setattr(time, "time", lambda: next(clock))
        budget.on_epoch_begin(epoch)
        budget.on_epoch_end(epoch)
        ends.append(budget.last_epoch)
    # after epochs 1 and 2: 8 s a step, 150 s then 110 s usable -> step 23 (in the 5th); after the
    # 3rd: mean 30 s, 100 s usable at 6 s a step -> 16 more: past 30, capped at the 6th epoch.
    assert ends == [5, 5, 6, 6, 6]
    assert float(schedule._total.numpy()) == 30.0 and not model.stop_training


def test_time_budget_plans_from_the_first_steps(monkeypatch):
    """100 steps an epoch, the first (tracing) ends at 5 s, then 0.125 s a step: after 10 timed
    steps (at 6.25 s) 670 more steps fit into the 100 s (10 s kept for evaluation), so the run
    ends at step 681, in the 7th epoch, planned while the first epoch is still running."""
    import time

    cfg = TrainConfig(epochs=20, schedule="onecycle", lr=1e-2)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_model(model, cfg, steps_per_epoch=100, num_classes=2)
    budget = training.TimeBudget(deadline=100.0, steps_per_epoch=100, initial_epoch=0, epochs=20, min_reserve=10.0)
    budget.set_model(model)
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    budget.on_epoch_begin(0)
    now[0] = 5.0
    budget.on_train_batch_end(0)
    for batch in range(1, 11):
        now[0] = 5.0 + 0.125 * batch
        budget.on_train_batch_end(batch)
        assert budget.last_epoch == (20 if batch < 10 else 7)
    assert budget.last_step == 681
    assert float(model.optimizer._learning_rate._total.numpy()) == 681.0
    now[0] = 7.0  # a step 6 times slower than the probed ones
    budget.on_train_batch_end(11)  # planned once per run from the steps; then from whole epochs
    assert budget.last_step == 681


def test_time_budget_keeps_the_final_evaluation_free(monkeypatch):
    """As above, but the evaluation after training is worth 200 training steps (25 s at 0.125 s
    a step, more than the 10 s minimum and the quarter epoch): 550 more steps fit, not 670."""
    import time

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_model(model, TrainConfig(epochs=20, schedule="onecycle"), steps_per_epoch=100, num_classes=2)
    budget = training.TimeBudget(deadline=100.0, steps_per_epoch=100, initial_epoch=0, epochs=20, min_reserve=10.0,
                                 reserve_steps=200)
    budget.set_model(model)
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    budget.on_epoch_begin(0)
    for batch in range(0, 11):
        now[0] = 5.0 + 0.125 * batch
        budget.on_train_batch_end(batch)
    assert budget.last_step == 11 + 550


def test_time_budget_stops_steps_that_run_slower_than_planned(monkeypatch):
    """Planned inside a long first epoch at 0.125 s a step (a quarter epoch, 31.25 s, kept for the
    final evaluation: the run's last step near 68.75 s), then every step takes 0.5 s: training
    stops before the kept time is touched instead of running the planned steps into it."""
    import time

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    training.compile_model(model, TrainConfig(epochs=2, schedule="onecycle"), steps_per_epoch=1000, num_classes=2)
    budget = training.TimeBudget(deadline=100.0, steps_per_epoch=1000, initial_epoch=0, epochs=2, min_reserve=10.0)
    budget.set_model(model)
    now = [0.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    budget.on_epoch_begin(0)
    for batch in range(0, 101):
        now[0] = 5.0 + 0.125 * batch
        budget.on_train_batch_end(batch)
    planned = budget.last_step
    assert planned == 101 + 410
    batch = 100
    while not model.stop_training:
        batch += 1
        now[0] += 0.5
        budget.on_train_batch_end(batch)
    assert budget.step < planned and budget.last_step == budget.step
    assert 68.25 < now[0] <= 68.75  # stopped at the kept time, not one slow step past it


def test_process_start_time_is_before_this_test_module():
    assert training.process_start_time() < MODULE_IMPORTED_AT


def test_a_time_budget_counts_from_the_given_start(tmp_path):
    """50 of the 60 s were spent before the call (the CLI passes its process's start): the run
    has 10 s, 10 of which are kept for the final evaluation, so it stops after the first steps
    (the first traces the graph). Counted from the call instead, it would have 50 s: dozens of
    the digits' 1-second epochs. The bound on the seconds leaves room for a loaded machine's
    slower tracing (it failed at 15 s beside two benchmarks)."""
    import time

    import cnnkit

    result = cnnkit.train("image-cls", out=str(tmp_path / "run"), epochs=200, time_budget=60, verbose=0,
                          started=time.time() - 50)
    assert result.metrics["epochs_in_budget"] < 1
    assert result.metrics["train_seconds"] < 30


def test_evaluation_steps_count_the_views_of_flip_tta():
    """val + test images, twice with flip TTA (6 times with flip_shift) and the test split once
    more without it, at half a training step per batch; 0.8 of one after mixed-precision training
    (float32 evaluation)."""
    import types

    from cnnkit import api

    prepared = types.SimpleNamespace(splits={"train": (None, [0] * 900), "val": (None, [0] * 100),
                                             "test": (None, [0] * 300)})
    cfg = types.SimpleNamespace(train=types.SimpleNamespace(batch_size=50, precision="float32"))
    plain, tta = types.SimpleNamespace(tta_views=lambda m: 1), types.SimpleNamespace(tta_views=lambda m: 2)
    assert api.evaluation_steps(plain, None, prepared, cfg) == 0.5 * 400 / 50
    assert api.evaluation_steps(tta, None, prepared, cfg) == 0.5 * (800 + 300) / 50
    six = types.SimpleNamespace(tta_views=lambda m: 6)
    assert api.evaluation_steps(six, None, prepared, cfg) == 0.5 * (2400 + 300) / 50
    cfg.train.precision = "mixed_bfloat16"
    assert api.evaluation_steps(tta, None, prepared, cfg) == pytest.approx(0.8 * (800 + 300) / 50)


def test_a_run_with_a_time_budget_ends_in_time(tmp_path):
    import cnnkit

    result = cnnkit.train("image-cls", out=str(tmp_path / "run"), epochs=200, time_budget=25, verbose=0)
    assert result.metrics["epochs_in_budget"] < 200
    assert result.metrics["train_seconds"] < 25
    # The epochs trained, the last one in part where the budget ended it: at most the epochs
    # of the history (which lists that last epoch), more than one fewer.
    started = len(result.history["loss"])
    assert started - 1 < result.metrics["epochs_in_budget"] <= started


def test_train_timer_counts_the_steps_of_a_shortened_epoch():
    timer = training.TrainTimer()
    timer.on_epoch_begin(0)
    for batch in range(5):
        timer.on_train_batch_end(batch)
    timer.on_test_begin()  # validation is not training time, and adds no steps
    timer.on_epoch_end(0)
    timer.on_epoch_begin(1)
    for batch in (2, 5):  # steps_per_execution=3: one call per three steps, an early end after six
        timer.on_train_batch_end(batch)
    timer.on_epoch_end(1)
    assert (timer.epochs, timer.steps) == (2, 11)


# Splits the CPU into N logical devices (argv[1]) before TensorFlow starts, then runs cnnkit's CLI
# with the remaining arguments.
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
DIGITS_RUN = ["train", "image-cls", "--backbone", "resnet8", "--epochs", "8", "--set", "train.verbose=0"]


@pytest.fixture(scope="module")
def one_device_accuracy(tmp_path_factory):
    """Test accuracy of resnet8 on builtin:digits (8 epochs) on one device, in this process."""
    from cnnkit import api

    result = api.train("image-cls", out=str(tmp_path_factory.mktemp("one") / "run"), backbone="resnet8", epochs=8,
                       verbose=0)
    assert result.metrics["replicas"] == 1
    return result.metrics["test_accuracy"]


def _launch(cpus, args, env_extra=None):
    import os
    import subprocess
    import sys

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, str(cpus), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow  # about a minute on a 2-core CPU: run with --runslow
def test_mirrored_on_two_logical_cpus_matches_one_device(tmp_path, one_device_accuracy):
    import json

    proc = _launch(2, [*DIGITS_RUN, "--strategy", "mirrored", "--out", str(tmp_path / "run")])
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["replicas"] == 2
    assert metrics["test_accuracy"] >= 0.9 and abs(metrics["test_accuracy"] - one_device_accuracy) <= 0.05


@pytest.mark.slow  # about a minute on a 2-core CPU: run with --runslow
def test_two_workers_on_localhost_match_one_device(tmp_path, one_device_accuracy):
    """`--strategy multiworker` with TF_CONFIG, two processes: both train in step (the same final
    weights, hence the same test accuracy), only the chief writes the run directory."""
    import json
    import socket

    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("localhost", 0))
    hosts = [f"localhost:{s.getsockname()[1]}" for s in socks]
    for s in socks:
        s.close()
    run = tmp_path / "run"
    procs = [_launch(1, [*DIGITS_RUN, "--strategy", "multiworker", "--out", str(run)],
                     {"TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})})
             for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n".join(o[-3000:] for o in outs)
    chief = json.loads((run / "metrics.json").read_text())
    worker = json.loads((run / "workers" / "worker-1" / "metrics.json").read_text())
    assert chief["replicas"] == worker["replicas"] == 2
    assert chief["test_accuracy"] == worker["test_accuracy"]
    assert chief["test_accuracy"] >= 0.9 and abs(chief["test_accuracy"] - one_device_accuracy) <= 0.05


def test_without_autotune_thread_keeps_elements():
    ds = tf.data.Dataset.range(10).map(lambda i: i * 2, num_parallel_calls=tf.data.AUTOTUNE).batch(4)
    quiet = training.without_autotune_thread(ds)
    assert ds.options().autotune.enabled is not False
    assert quiet.options().autotune.enabled is False
    assert [b.tolist() for b in quiet.as_numpy_iterator()] == [b.tolist() for b in ds.as_numpy_iterator()]


@pytest.mark.parametrize("flags, expected", [("fpu sse avx2 avx512f avx512_bf16", "mixed_bfloat16"),
                                             ("fpu avx512f amx_bf16 amx_tile", "mixed_bfloat16"),
                                             ("fpu sse avx2 fma", "float32"),
                                             ("fpu avx512f avx512_fp16", "float32")])
def test_auto_precision_follows_the_cpu_flags(tmp_path, flags, expected):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: x\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    assert training.resolve_precision("auto", str(cpuinfo))[0] == expected
    assert training.resolve_precision("float32", str(cpuinfo))[0] == "float32"  # a set name passes through
    assert training.resolve_precision("mixed_bfloat16", str(tmp_path / "missing"))[0] == "mixed_bfloat16"


def test_auto_precision_without_cpuinfo_is_float32(tmp_path):
    assert training.resolve_precision("auto", str(tmp_path / "no-such-file")) == (
        "float32", "auto: this CPU has no native bfloat16")


def test_set_precision_resolves_auto_and_returns_the_policy_it_set():
    try:
        policy = training.set_precision("auto")  # what a recipe's `precision: auto` passes
        assert policy == training.resolve_precision("auto")[0]
        assert keras.mixed_precision.dtype_policy().name == policy
        assert training.set_precision("mixed_bfloat16") == "mixed_bfloat16"
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_float32_copy_keeps_weights_and_vocabulary_and_computes_in_float32():
    from cnnkit.blocks import ConvBlock

    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        vectorize = keras.layers.TextVectorization(output_sequence_length=6)
        vectorize.adapt(["the cat sat", "a dog ran far away"])
        text = keras.Input((), dtype="string")
        x = keras.layers.Embedding(20, 8)(vectorize(text))
        x = ConvBlock(4, 3, rank=1)(x)  # a composite layer: its sublayers take the global policy
        x = keras.layers.GlobalMaxPooling1D()(x)
        out = keras.layers.Dense(2, activation="softmax", dtype="float32")(x)
        model = keras.Model(text, out)
        copy = training.float32_copy(model)
        assert keras.mixed_precision.dtype_policy().name == "mixed_bfloat16"  # the caller's policy is kept
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    assert {layer.compute_dtype for layer in model._flatten_layers()} >= {"bfloat16"}
    assert {layer.compute_dtype for layer in copy._flatten_layers()} - {"string", "int64"} == {"float32"}
    assert copy.layers[1].get_vocabulary() == model.layers[1].get_vocabulary()
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    sentences = tf.constant(["the cat ran", "a dog sat far"])
    np.testing.assert_allclose(copy(sentences), model(sentences), atol=0.02)  # bfloat16 has 8 bits of mantissa


def test_remaining_time_is_said_at_the_second_epochs_pace_when_long(monkeypatch):
    """A first epoch of 59 s (tracing) and a second of 31 s: as the third begins, one line says
    the 28 epochs left take about 14 min; a run whose epochs left take under two minutes, or that
    ends after its second epoch, says nothing."""
    import io
    import time

    now = [1000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])

    def run(epochs, seconds, stop_after=None):
        stream = io.StringIO()
        callback = training.RemainingTime(epochs, early_stopping=True, stream=stream)
        for epoch, took in enumerate(seconds):
            callback.on_epoch_begin(epoch)
            now[0] += took
            callback.on_epoch_end(epoch)
            if stop_after == epoch + 1:
                break
        return stream.getvalue()

    said = run(30, [59, 31, 30])
    assert said.startswith("Epoch 2 of 30 took 31 s (validation included): the 28 left take about 14 min")
    assert said.rstrip().endswith("early stopping may end it sooner") and said.count("\n") == 1
    assert run(30, [59, 31], stop_after=2) == ""  # no third epoch: nothing left to announce
    assert run(10, [3.2, 1.9, 1.8]) == ""  # 8 x 1.9 s: too short to announce
    assert training.spoken_duration(45) == "45 s" and training.spoken_duration(7500) == "2 h 05 min"


def test_a_run_still_improving_at_its_last_epoch_says_more_epochs_may_help(tmp_path, capsys):
    """Separable data at a small constant rate: the validation loss falls at every one of 3
    epochs, and the run says so with the --epochs to try; trained to a plateau, or with a
    schedule that anneals to the end (where the last epoch is best by design), it says nothing."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96)
    x = (5.0 * np.eye(4)[y] + rng.normal(scale=0.1, size=(96, 4))).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    for schedule, said in (("constant", True), ("cosine", False)):
        cfg = TrainConfig(epochs=3, verbose=0, lr=1e-3, schedule=schedule, monitor="loss")
        model = _tiny_model()
        training.compile_model(model, cfg, 3, 3)
        history = training.fit(model, ds, ds, cfg, tmp_path / schedule)
        assert np.all(np.diff(history["val_loss"]) < 0)
        err = capsys.readouterr().err
        assert ("The validation loss still improved at the last epoch (3): more epochs may give a better network "
                "(--epochs 6" in err) is said
    cfg = TrainConfig(epochs=12, verbose=0, lr=0.5, schedule="constant", monitor="accuracy")
    model = _tiny_model()
    training.compile_model(model, cfg, 3, 3)
    history = training.fit(model, ds, ds, cfg, tmp_path / "plateau")
    assert max(history["val_accuracy"]) > history["val_accuracy"][-1] or history["val_accuracy"].count(1.0) > 1
    assert "still improved" not in capsys.readouterr().err
