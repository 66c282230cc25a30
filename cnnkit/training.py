"""The training engine shared by every task: compile defaults, schedules, callbacks,
precision, distribution strategy, seeds, resume.

Knows nothing of images, text or audio: it gets a model and `tf.data` datasets.
"""
from __future__ import annotations

import csv
import json
import warnings
import math
import os
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from cnnkit import optimizers
from cnnkit.config import TrainConfig
from cnnkit.errors import CnnkitError


# ------------------------------------------------------------------ global state
def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seeds Python, NumPy, TensorFlow and Keras; `deterministic` also turns on TF op determinism."""
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def set_precision(precision: str) -> str:
    """Sets the Keras global dtype policy: float32, mixed_float16, mixed_bfloat16, or "auto"
    (resolved by `resolve_precision`, so a recipe's value can be passed as it is).

    Returns the policy name set."""
    policy = resolve_precision(precision)[0]
    keras.mixed_precision.set_dtype_policy(policy)
    return policy


def cpu_has_native_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU multiplies bfloat16 in hardware (the `avx512_bf16` or `amx_bf16` flag
    in `cpuinfo`); False without those flags or without the file (not Linux)."""
    try:
        with open(cpuinfo) as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, cpuinfo: str = "/proc/cpuinfo") -> tuple[str, str]:
    """The dtype policy for `train.precision` and why: "auto" becomes mixed_float16 on a GPU of
    compute capability 7.0 or more (tensor cores), float32 on other GPUs, mixed_bfloat16 on a
    CPU with native bfloat16 (1.23-1.36x the float32 images/s on two such CPUs, BENCHMARKS.md)
    and float32 elsewhere (bfloat16 emulated on an AVX2 CPU: 0.88x). Other names pass through.

    Returns (policy name, reason for the log)."""
    if precision != "auto":
        return precision, "as set"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability") or (0, 0)
        if tuple(capability) >= (7, 0):
            return "mixed_float16", f"auto: a GPU of compute capability {capability[0]}.{capability[1]}"
        return "float32", "auto: a GPU without tensor cores"
    if cpu_has_native_bfloat16(cpuinfo):
        return "mixed_bfloat16", "auto: this CPU has native bfloat16 (avx512_bf16/amx_bf16)"
    return "float32", "auto: this CPU has no native bfloat16"


def float32_copy(model: keras.Model) -> keras.Model:
    """The same network and weights with every layer computing in float32: what a run trained in
    mixed precision saves, so that its model.keras runs on any machine and exports to TFLite and
    ONNX (both refused the bfloat16 casts of a mixed model). The variables of a mixed model are
    float32 already; only the layers' compute dtype changes.

    Goes through Keras' own .keras format (config.json with the mixed policies renamed float32,
    weights and assets such as a text vocabulary unchanged) and loads it under the float32 policy,
    so that sublayers made without an explicit dtype are float32 too."""
    import tempfile
    import zipfile

    def to_float32(node):
        """A copy of a config tree with each mixed policy (serialized object or plain name) float32."""
        if isinstance(node, list):
            return [to_float32(v) for v in node]
        if not isinstance(node, dict):
            return node
        if node.get("class_name") in ("DTypePolicy", "FloatDTypePolicy") and \
                str(node.get("config", {}).get("name", "")).startswith("mixed_"):
            return {**node, "config": {**node["config"], "name": "float32"}}
        mixed_name = lambda k, v: k == "dtype" and isinstance(v, str) and v.startswith("mixed_")  # noqa: E731
        return {k: "float32" if mixed_name(k, v) else to_float32(v) for k, v in node.items()}

    policy = keras.mixed_precision.dtype_policy()
    with tempfile.TemporaryDirectory() as tmp:
        mixed, plain = os.path.join(tmp, "mixed.keras"), os.path.join(tmp, "float32.keras")
        model.save(mixed)
        with zipfile.ZipFile(mixed) as src, zipfile.ZipFile(plain, "w") as dst:
            for item in src.infolist():
                data = src.read(item.filename)
                if item.filename == "config.json":
                    data = json.dumps(to_float32(json.loads(data))).encode()
                dst.writestr(item, data)
        keras.mixed_precision.set_dtype_policy("float32")
        try:
            return keras.saving.load_model(plain, safe_mode=True)
        finally:
            keras.mixed_precision.set_dtype_policy(policy)


_STRATEGIES: dict = {}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """auto: the default (one device); mirrored: every local GPU (or CPU device);
    multiworker: the workers that TF_CONFIG describes. One per process and name: a
    MultiWorkerMirroredStrategy must be made once, before TensorFlow runs anything else."""
    if name == "mirrored":
        return _STRATEGIES.setdefault(name, tf.distribute.MirroredStrategy())
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise CnnkitError("--strategy multiworker needs TF_CONFIG set on every worker (see docs/SCALING.md).")
        if name not in _STRATEGIES:
            _STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
        return _STRATEGIES[name]
    return tf.distribute.get_strategy()


def worker_role() -> tuple[bool, str]:
    """(is this process the chief, its name) from TF_CONFIG: the chief is the "chief" task, or
    worker 0 when the cluster has none. Without TF_CONFIG: (True, "chief-0")."""
    import json as _json

    spec = _json.loads(os.environ.get("TF_CONFIG") or "{}")
    task = spec.get("task") or {}
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in (spec.get("cluster") or {})
    return (kind == "chief" or (not has_chief and kind == "worker" and index == 0)), f"{kind}-{index}"


# ------------------------------------------------------------------ schedules
@keras.saving.register_keras_serializable(package="cnnkit")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak` over `warmup_steps`, then cosine to 0, step decay
    (x0.1 at 50 % and 75 %) or constant, until `total_steps`.

    Args:
        peak: the learning rate after warm-up.
        total_steps: all optimizer steps of the run.
        warmup_steps: steps of linear warm-up (0: none).
        decay: "cosine", "step" or "constant".
    """

    def __init__(self, peak, total_steps, warmup_steps=0, decay="cosine"):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.decay = decay
        # A variable, so that a time budget can shorten the schedule after the step is traced.
        self._total = tf.Variable(float(self.total_steps), trainable=False, dtype=tf.float32)

    def set_total_steps(self, total_steps: int) -> None:
        """Ends the decay at `total_steps` instead (see TimeBudget)."""
        self._total.assign(float(max(1, total_steps)))

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = float(max(1, self.warmup_steps))
        decay_steps = keras.ops.maximum(1.0, keras.ops.convert_to_tensor(self._total) - self.warmup_steps)
        progress = keras.ops.clip((step - self.warmup_steps) / decay_steps, 0.0, 1.0)
        if self.decay == "cosine":
            after = 0.5 * self.peak * (1.0 + keras.ops.cos(math.pi * progress))
        elif self.decay == "step":
            after = self.peak * keras.ops.where(progress < 0.5, 1.0, keras.ops.where(progress < 0.75, 0.1, 0.01))
        else:
            after = self.peak * keras.ops.ones_like(progress)
        if self.warmup_steps <= 0:
            return after
        return keras.ops.where(step < self.warmup_steps, self.peak * (step + 1.0) / warm, after)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "decay": self.decay}


@keras.saving.register_keras_serializable(package="cnnkit")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle (Smith 2018, fastai's `fit_one_cycle`): cosine up from peak/25 to `peak`
    over the first 25 % of `total_steps`, then cosine down to peak/1e4."""

    def __init__(self, peak, total_steps, pct_start=0.25):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self._total = tf.Variable(float(self.total_steps), trainable=False, dtype=tf.float32)

    def set_total_steps(self, total_steps: int) -> None:
        """Ends the cycle at `total_steps` instead (see TimeBudget)."""
        self._total.assign(float(max(1, total_steps)))

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        total = keras.ops.convert_to_tensor(self._total)
        up = keras.ops.maximum(1.0, total * self.pct_start)
        down = keras.ops.maximum(1.0, total - up)
        start, end = self.peak / 25.0, self.peak / 1e4

        def cos_interp(a, b, t):
            return b + (a - b) * 0.5 * (1.0 + keras.ops.cos(math.pi * keras.ops.clip(t, 0.0, 1.0)))

        return keras.ops.where(step < up, cos_interp(start, self.peak, step / up),
                               cos_interp(self.peak, end, (step - up) / down))

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "pct_start": self.pct_start}


def make_schedule(cfg: TrainConfig, steps_per_epoch: int):
    """The learning rate (a float or a schedule) that `cfg.schedule` asks for."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "onecycle":
        return OneCycleSchedule(cfg.lr, total)
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if cfg.schedule == "constant" and warmup == 0:
        return cfg.lr
    return WarmupSchedule(cfg.lr, total, warmup, decay=cfg.schedule)


def make_optimizer(cfg: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The optimizer of `cfg` with its learning-rate schedule (Keras' optimizers; Adam and AdamW
    on the fused kernel of `cnnkit.optimizers`)."""
    lr = make_schedule(cfg, steps_per_epoch)
    wd = cfg.weight_decay or None
    if cfg.optimizer == "adam":
        return optimizers.FusedAdam(lr, weight_decay=wd, sparse_updates=cfg.sparse_updates)
    if cfg.optimizer == "adamw":
        return optimizers.FusedAdamW(lr, weight_decay=cfg.weight_decay or 1e-4, sparse_updates=cfg.sparse_updates)
    if cfg.optimizer == "sgd":
        return optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True, weight_decay=wd, bias_lr_scale=cfg.bias_lr_scale)
    return optimizers.RMSprop(lr, weight_decay=wd)


# Batch-norm momenta no one chose for this data: Keras' default, and the 0.999 that
# keras.applications' MobileNetV2/V3 hard-code.
LIBRARY_BN_MOMENTA = (0.99, 0.999)


def fit_batchnorm_momentum(model: keras.Model, steps_per_epoch: int) -> float:
    """Lowers the moving-average momentum of every batch-norm layer left at a library default
    (`LIBRARY_BN_MOMENTA`) to average over about one epoch: 1 - 1/steps_per_epoch, at least
    0.8 and never above the layer's own. A momentum set otherwise (airbench's 0.4, a user's) stays.

    Why: at 0.99 the moving statistics need a few hundred steps to forget their initial
    values, at 0.999 a few thousand; a small data set (300 clips, 5 steps an epoch; 40 photos,
    one step) trains in fewer, and the model then evaluates with wrong statistics (100 %
    training accuracy, chance on validation). Returns the momentum a layer at Keras' 0.99 gets.
    """
    momentum = float(max(0.8, 1.0 - 1.0 / max(1, steps_per_epoch)))
    for layer in batchnorm_layers(model, trainable_only=False):
        if any(abs(layer.momentum - m) < 1e-9 for m in LIBRARY_BN_MOMENTA):
            layer.momentum = min(layer.momentum, momentum)
    return min(0.99, momentum)


def batchnorm_layers(model: keras.Model, trainable_only: bool = True) -> list:
    """The batch-norm layers of `model` (nested ones too); with `trainable_only`, those that
    update their moving statistics in training (Keras runs a frozen one in inference mode)."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization) and (layer.trainable or not trainable_only)]


def reestimate_batchnorm(model: keras.Model, dataset: tf.data.Dataset, forward=None) -> int:
    """Sets the moving mean and variance of `model`'s batch-norm layers (`batchnorm_layers`) to
    the mean of their batch statistics over `dataset` ("precise BN", Wu & Johnson 2021).

    Args:
        model: a built model; its weights are not changed, only the moving statistics.
        dataset: batches of (inputs, labels[, weights]) as in training; the inputs run through
            `model` in training mode (dropout and augmentation on, as the layers saw them).
        forward: a `tf.function` of `model(inputs, training=True)` to reuse between calls (it is
            only ever traced here, with each layer's momentum at 0), or None for a new one.

    Why: a moving average (momentum 0.99, or `fit_batchnorm_momentum`'s one epoch) trails the
    weights; when they move fast (a text network's embedding in its first epochs), the
    statistics describe earlier weights and the network evaluates at chance while it trains at
    90 % (BENCHMARKS.md, text-cls: resnet1d on 2 700 sentences). Returns the batches used.
    """
    bns = batchnorm_layers(model)
    if not bns:
        return 0
    forward = forward or tf.function(lambda x: model(x, training=True))
    momenta = [layer.momentum for layer in bns]
    sums = [[np.zeros(layer.moving_mean.shape), np.zeros(layer.moving_variance.shape)] for layer in bns]
    batches = 0
    try:
        for layer in bns:
            layer.momentum = 0.0  # each call then leaves the batch's own statistics in the moving ones
        for batch in dataset:
            forward(batch[0])
            for total, layer in zip(sums, bns):
                total[0] += keras.ops.convert_to_numpy(layer.moving_mean)
                total[1] += keras.ops.convert_to_numpy(layer.moving_variance)
            batches += 1
    finally:
        for layer, momentum in zip(bns, momenta):
            layer.momentum = momentum
    if batches:
        for (mean, variance), layer in zip(sums, bns):
            layer.moving_mean.assign((mean / batches).astype(layer.moving_mean.dtype))
            layer.moving_variance.assign((variance / batches).astype(layer.moving_variance.dtype))
    return batches


class PreciseBatchNorm(keras.callbacks.Callback):
    """Re-estimates batch norm's statistics (`reestimate_batchnorm` over `dataset`, a few
    training batches) once an epoch: before its validation, or at its end without one, so
    that what is validated, kept as the best epoch and saved has statistics of its own
    weights. Does nothing for a model without batch norm, and under a strategy of several
    replicas (their variables are updated in replica context only)."""

    def __init__(self, dataset: tf.data.Dataset):
        super().__init__()
        self.dataset = dataset
        self._forward = None
        self._done = False

    def on_epoch_begin(self, epoch, logs=None):
        self._done = False

    def on_test_begin(self, logs=None):  # fit's validation of the epoch
        self._estimate()

    def on_epoch_end(self, epoch, logs=None):  # an epoch without validation
        self._estimate()

    def _estimate(self):
        if self._done or self.model.distribute_strategy.num_replicas_in_sync > 1:
            return
        self._done = True
        if self._forward is None:
            model = self.model
            self._forward = tf.function(lambda x: model(x, training=True))
        reestimate_batchnorm(self.model, self.dataset, self._forward)


@keras.saving.register_keras_serializable(package="cnnkit")
def exact_match(y_true, y_pred):
    """Per example 1.0 when every label's prediction (probability >= 0.5) is right, else 0.0:
    the multi-label "accuracy" of scikit-learn's `accuracy_score` (subset accuracy)."""
    ops = keras.ops
    hits = ops.equal(ops.cast(y_true, "float32") >= 0.5, ops.cast(y_pred, "float32") >= 0.5)
    return ops.cast(ops.all(hits, axis=-1), "float32")


def compile_model(model: keras.Model, cfg: TrainConfig, steps_per_epoch: int, num_classes: int,
                  soft_labels: bool = False, multi_label: bool = False) -> None:
    """Compiles `model` for classification: integer labels; one-hot/soft labels (`soft_labels`,
    for MixUp/CutMix); or multi-hot labels (`multi_label`: binary cross-entropy per class, and
    "accuracy" is the exact-match rate). Batch-norm momentum follows the epoch length
    (`fit_batchnorm_momentum`)."""
    fit_batchnorm_momentum(model, steps_per_epoch)
    if multi_label:
        loss = keras.losses.BinaryCrossentropy(label_smoothing=cfg.label_smoothing)
        metric = keras.metrics.MeanMetricWrapper(exact_match, name="accuracy")
    elif soft_labels:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        if cfg.label_smoothing:
            loss = SmoothedSparseCrossentropy(num_classes, cfg.label_smoothing)
        else:
            loss = keras.losses.SparseCategoricalCrossentropy()
    model.compile(
        optimizer=make_optimizer(cfg, steps_per_epoch),
        loss=loss,
        metrics=[metric],
        jit_compile=cfg.jit_compile,
        steps_per_execution=cfg.steps_per_execution,
    )


def balanced_class_weights(y: np.ndarray, num_classes: int) -> dict:
    """{class index: n / (classes present x its count)} for integer labels `y` (N,): scikit-learn's
    "balanced" weights, under which every class present weighs the same in the loss; a class
    without examples gets 1."""
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(y)
    weights = compute_class_weight("balanced", classes=present, y=y)
    out = {i: 1.0 for i in range(num_classes)}
    out.update({int(c): float(w) for c, w in zip(present, weights)})
    return out


@keras.saving.register_keras_serializable(package="cnnkit")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy with label smoothing for integer labels (the Keras sparse loss has none)."""

    def __init__(self, num_classes, label_smoothing=0.1, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = num_classes
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.one_hot(keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32"), self.num_classes)
        return keras.losses.categorical_crossentropy(y_true, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "label_smoothing": self.label_smoothing}


# ------------------------------------------------------------------ callbacks
class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and remembers where it happened."""

    def __init__(self):
        super().__init__()
        self.where = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.where = (self._epoch + 1, batch + 1)
            self.model.stop_training = True


def monitor_values(history_csv: Path, monitor: str, from_epoch: int = 0, to_epoch: int | None = None) -> list[float]:
    """The `monitor` column of `history_csv` (one value per logged epoch, in order) of the
    epochs from `from_epoch` up to `to_epoch` (excluded; None: the last); [] without the file."""
    if not history_csv.exists():
        return []
    with open(history_csv, newline="") as f:
        return [float(r[monitor]) for r in csv.DictReader(f)
                if r.get(monitor) not in (None, "") and from_epoch <= int(r["epoch"])
                and (to_epoch is None or int(r["epoch"]) < to_epoch)]


def best_so_far(history_csv: Path, monitor: str):
    """The best `monitor` value in an earlier part of the run (for resume), or None."""
    values = monitor_values(history_csv, monitor)
    return (min(values) if lower_is_better(monitor) else max(values)) if values else None


def lower_is_better(monitor: str) -> bool:
    """Whether `monitor` (a Keras log key: val_accuracy, val_loss, ...) improves downwards."""
    return monitor.endswith("loss")


def improves(value: float, best: float | None, monitor: str) -> bool:
    """Whether `value` of `monitor` beats `best` (None: nothing to beat yet)."""
    return best is None or (value < best if lower_is_better(monitor) else value > best)


def monitored(train_cfg: TrainConfig, has_val: bool) -> str:
    """The log key that picks the kept epoch: `train.monitor` on the val split, or on the
    training data without one (val_accuracy, val_loss, accuracy, loss)."""
    return ("val_" if has_val else "") + train_cfg.monitor


BACKUPS = ("backup", "backup-head")  # the resume backups, newest phase first (see cnnkit.transfer)


def completed_epochs(run_dir: Path) -> int:
    """Epochs that the resume backups of `run_dir` hold (0 for a new run): the fine-tuning
    phase's backup if there is one, else the head phase's of a pretrained start."""
    for name in BACKUPS:
        meta = run_dir / "checkpoints" / name / "training_metadata.json"
        try:
            return int(json.loads(meta.read_text()).get("epoch", 0))
        except (OSError, ValueError):
            continue
    return 0


def trim_history(run_dir: Path) -> None:
    """Drops history.csv rows of epochs that the backup does not hold: a run killed after
    logging an epoch but before backing it up repeats that epoch on resume."""
    path = run_dir / "history.csv"
    if not path.exists():
        return
    done = completed_epochs(run_dir)
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [l for l in lines[1:] if l.strip() and int(l.split(",", 1)[0]) < done]
    if len(kept) != len(lines):
        from cnnkit.runs import atomic_write

        atomic_write(path, "".join(kept))


class ThrottledBackup(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` (per epoch) that skips an epoch's backup when less than `ratio` times
    the last backup's duration has passed since it ended; the first epoch and the last one
    (at the end of training, also after an early stop) are always backed up.

    Backups thus cost at most about 1/`ratio` of the training time. Why: the CNN of the default
    image run trains an epoch of builtin:digits in about 1 s and writes its backup in 0.4 s,
    40 % of the run (measured with py-spy on a 2-core CPU). A kill loses at most the epochs
    since the last backup (about `ratio` backup durations of training), which a resume repeats;
    `trim_history` drops their history rows.
    """

    def __init__(self, *args, ratio: float = 10.0, before_backup=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.ratio = ratio
        self.before_backup = before_backup  # called first in each backup (BestWeights.flush)
        self._saved_epoch = None
        self._last_end = 0.0
        self._cost = 0.0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._saved_epoch, self._last_end, self._cost = None, time.monotonic(), 0.0

    def _backup(self) -> None:
        start = time.monotonic()
        if self.before_backup is not None:
            self.before_backup()
        self._save_model()
        self._last_end = time.monotonic()
        self._cost = self._last_end - start
        self._saved_epoch = self._current_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        if self._saved_epoch is None or time.monotonic() - self._last_end >= self.ratio * self._cost:
            self._backup()

    def on_train_end(self, logs=None):
        if self._saved_epoch is not None and self._saved_epoch != self._current_epoch:
            self._backup()
        super().on_train_end(logs)  # removes the backup when delete_checkpoint is set


class BestWeights(keras.callbacks.Callback):
    """The weights of the best epoch so far (`monitor`'s highest value, or lowest for a loss),
    kept in memory and written to `path` (a `.weights.h5` file) only by `flush()`: before each
    backup (ThrottledBackup's `before_backup`) and at the end of training.

    Why not `ModelCheckpoint(save_best_only=True)`: it writes the file at every improvement,
    which in the default image run is every other epoch of about one second. Flushed with the
    backups, the file always holds the best weights up to the last backup, which is what a
    resumed run starts from. `best`: the value to beat (a resumed run's best so far).
    """

    def __init__(self, path, monitor: str, best: float | None = None):
        super().__init__()
        self.path, self.monitor, self.best = Path(path), monitor, best
        self._weights = None  # the best weights not yet written
        self.last_improved = None  # the epoch (from 0) that last set `best` in this fit

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and improves(float(value), self.best, self.monitor):
            self.best = float(value)
            self._weights = self.model.get_weights()
            self.last_improved = epoch

    def flush(self) -> None:
        """Writes the best weights kept since the last flush, if any (the model's own are kept)."""
        if self._weights is None:
            return
        current = self.model.get_weights()
        self.model.set_weights(self._weights)
        partial = self.path.with_name(self.path.name.replace(".weights.h5", ".partial.weights.h5"))
        try:
            self.model.save_weights(str(partial))
            os.replace(partial, self.path)  # a kill during the write leaves the last good file
        finally:
            self.model.set_weights(current)
        self._weights = None

    def on_train_end(self, logs=None):
        self.flush()


# Keras' warning when a `.weights.h5` file's optimizer state does not fit the model's optimizer
# (another phase's, or none built yet); only the model weights are wanted where it is silenced.
OPTIMIZER_SKIPPED = "Skipping variable loading for optimizer"


def load_model_weights(model: keras.Model, path: Path) -> None:
    """Loads the model weights of the `.weights.h5` file `path` into the compiled `model` and
    keeps its optimizer state (learning rate, step count, moments) as it was: the file holds
    the optimizer state of the epoch it was written at."""
    state = [v.numpy() for v in model.optimizer.variables]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=OPTIMIZER_SKIPPED)
        model.load_weights(str(path))
    for variable, value in zip(model.optimizer.variables, state):
        variable.assign(value)


class AnnealOnPlateau(keras.callbacks.Callback):
    """At an epoch whose `monitor` does not beat the best so far (a plateau), puts back the best
    epoch's model weights and multiplies the learning rate by `factor`, at most `times` times;
    the plateau after the last of them ends training.

    Why: Kim's CNN on sentence data peaks on the validation split after two to four epochs and
    overfits from there (SST-5 members: 93 % training accuracy three epochs after their peak).
    Going back to the peak at a fifth of the rate gains single networks up to 0.7 points; at
    twice the rate (2e-3) the five-member recipes gained on TREC, SST-2 and MR and lost on SST-5
    (BENCHMARKS.md, text-cls), so it is off by default. Stopping at the plateau after the last
    anneal, instead of waiting out a patience at the lowest rate, cut their training by about a
    fifth (accuracy within 0.6 points either way).

    The optimizer's moments are kept. The learning rate must be a variable (a constant
    schedule); it is optimizer state, so a resumed run gets the lowered rate back with its
    backup. A resumed run replays `replayed` (the `monitor` values of this phase's earlier
    epochs, from history.csv) for the best value and the anneals left, and reads the best
    weights from `best_path` (BestWeights' file) at its first plateau if no better epoch came since.
    """

    def __init__(self, monitor: str, times: int, factor: float, best_path: Path, replayed: list[float] = ()):
        super().__init__()
        self.monitor, self.times, self.factor = monitor, times, factor
        self.best_path, self.replayed = Path(best_path), list(replayed)
        self.best, self.left, self.weights = None, times, None

    def on_train_begin(self, logs=None):
        self.replay(self.replayed)

    def replay(self, values: list[float]) -> bool:
        """Starts over and counts an earlier call's monitored values (one per epoch, in order);
        returns whether that call ended training at its last epoch."""
        self.best, self.left, self.weights = None, self.times, None
        actions = [self.observe(value) for value in values]
        return bool(actions) and actions[-1] == "stop"

    def observe(self, value: float) -> str:
        """Counts an epoch's `value`: "better" (a new best), "anneal" or "stop"."""
        if improves(value, self.best, self.monitor):
            self.best = value
            return "better"
        if self.left > 0:
            self.left -= 1
            return "anneal"
        return "stop"

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        action = self.observe(float(value))
        if action == "better":
            self.weights = self.model.get_weights()
        elif action == "stop":
            self.model.stop_training = True
            print(f"Epoch {epoch + 1}: {self.monitor} did not improve after the last anneal; stopping", file=sys.stderr)
        else:
            if self.weights is not None:
                self.model.set_weights(self.weights)
            elif self.best_path.exists():  # resumed, and no better epoch since
                load_model_weights(self.model, self.best_path)
                self.weights = self.model.get_weights()
            lr = self.model.optimizer.learning_rate
            lr.assign(lr * self.factor)
            print(f"Epoch {epoch + 1}: {self.monitor} did not improve; back to the best epoch "
                  f"({self.best:.4f}) at learning rate {float(lr.numpy()):.2e}", file=sys.stderr)


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """Keras' `EarlyStopping` that a resumed run starts with the best value and the epochs
    without improvement of its earlier epochs: `replayed`, the `monitor` values of the phase's
    epochs from `initial_epoch` on (history.csv). Keras' own starts counting anew, so a run
    killed after two epochs without improvement trained `patience` more after a resume."""

    def __init__(self, monitor: str, patience: int, replayed: list[float] = (), initial_epoch: int = 0):
        super().__init__(monitor=monitor, mode="min" if lower_is_better(monitor) else "max", patience=patience)
        self.replayed, self.initial_epoch = list(replayed), initial_epoch

    def on_train_begin(self, logs=None):
        self.replay(self.replayed)

    def replay(self, values: list[float]) -> bool:
        """Starts over and counts an earlier call's monitored values (one per epoch, in order);
        returns whether that call ended training at its last epoch."""
        super().on_train_begin()
        for value in values:
            self.wait += 1
            if improves(value, self.best, self.monitor):
                self.best, self.wait = value, 0
        return self.wait >= self.patience and self.initial_epoch + len(values) > 1


def make_callbacks(run_dir: Path, cfg: TrainConfig, monitor: str, backup: str = "backup",
                   initial_epoch: int = 0, end_epoch: int | None = None,
                   batchnorm_ds: tf.data.Dataset | None = None) -> tuple[list, StopOnNaN]:
    """[Batch-norm re-estimation on `batchnorm_ds`,] CSV history, best checkpoint, anneal on
    plateau, backup (resume) into checkpoints/`backup`, NaN stop, TensorBoard, early stopping;
    `initial_epoch`, `end_epoch`: the phase's first epoch and the one after its last, whose
    backed-up epochs early stopping and the anneals replay."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    trim_history(run_dir)
    done = monitor_values(run_dir / "history.csv", monitor, initial_epoch, end_epoch)
    # A resumed run keeps the best of its earlier epochs.
    best = BestWeights(ckpt_dir / "best.weights.h5", monitor, best=best_so_far(run_dir / "history.csv", monitor))
    nan = StopOnNaN()
    callbacks = [
        # First: the epoch's end (without validation) re-estimates before the row and checkpoints are written.
        *([PreciseBatchNorm(batchnorm_ds)] if batchnorm_ds is not None else []),
        # The history row is written before the backup, so a backed-up epoch always has its row;
        # the best weights are taken before it too, so a backup flushes this epoch's if it is the best.
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        best,
        # Before the backup, so that a backup holds the weights and learning rate an anneal set.
        *([AnnealOnPlateau(monitor, cfg.anneal_on_plateau, cfg.anneal_factor, ckpt_dir / "best.weights.h5", done)]
          if cfg.anneal_on_plateau else []),
        # double_checkpoint keeps the previous backup, in case a kill lands during a write.
        ThrottledBackup(str(ckpt_dir / backup), save_freq="epoch", double_checkpoint=True, delete_checkpoint=False,
                        before_backup=best.flush),
        nan,
        keras.callbacks.TensorBoard(str(run_dir / "logs"), write_graph=False, update_freq="epoch"),
    ]
    if cfg.early_stopping:
        callbacks.append(ResumableEarlyStopping(monitor, cfg.early_stopping, done, initial_epoch))
    return callbacks, nan


def adapt_for_multiworker(model: keras.Model, train_ds: tf.data.Dataset) -> None:
    """Works around two Keras 3.15 / TensorFlow 2.21 failures of `fit` under a
    MultiWorkerMirroredStrategy (other strategies are left alone). Changes this `model` only.

    1. `fit` builds the model from the first batch of the distributed iterator after averaging
       it over the workers with `strategy.reduce`, which TensorFlow refuses ("Attempt to convert
       a value (PerReplica...) to a Tensor"). The model (layers, loss, metrics, optimizer) is
       built here from `train_ds.element_spec` (the same shapes and dtypes) and Keras' step is
       turned off.
    2. Each step's logs (scalars) are averaged over the workers with
       `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar ("Invalid reduction
       dimension 0 for input with 0 dimensions"). The train and test steps here return each
       scalar as a vector of one, whose axis-0 mean over all replicas is the same scalar.
    """
    strategy = getattr(model, "_distribute_strategy", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    with strategy.scope():
        model._symbolic_build(data_batch=train_ds.element_spec)
    # object.__setattr__: instance attributes that Keras' layer tracking must not wrap.
    object.__setattr__(model, "_maybe_symbolic_build", lambda iterator=None, data_batch=None: None)

    def as_vectors(step):
        def wrapped(data):
            return tf.nest.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, step(data))
        return wrapped

    for name in ("train_step", "test_step"):
        if not getattr(getattr(model, name), "_cnnkit_vectors", False):
            step = as_vectors(getattr(model, name))
            step._cnnkit_vectors = True
            object.__setattr__(model, name, step)


def without_autotune_thread(ds: tf.data.Dataset) -> tf.data.Dataset:
    """`ds` with tf.data's autotuning model thread turned off (same elements).

    Why: with it on, deleting the run's iterator when `model.fit` returns waited 3-41 s in
    about half of the default image runs (2-core CPU, TensorFlow 2.21). py-spy and gdb showed
    the iterator's destructor waiting for the thread (`Model::OptimizeLoop`), which sleeps
    until its next optimisation tick: the period doubles from 10 ms, so the ticks fall
    10 ms x (2^k - 1) after the iterator starts, and `fit` calls measured in
    bench/throughput_image.py ended exactly 40.95 s after their start (k = 12) instead of after
    their 21-23 s epoch. Maps with `num_parallel_calls=AUTOTUNE` still run in
    parallel at TensorFlow's default parallelism: 3 000 matmul maps took 4.9-5.0 s without the
    thread, 5.1 s with it and 10.0 s sequentially on 2 cores (`python bench/autotune_parallelism.py`).
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def fit(model: keras.Model, train_ds: tf.data.Dataset, val_ds, cfg: TrainConfig, run_dir: Path,
        timer: "TrainTimer | None" = None, steps_per_epoch: int | None = None,
        validation_steps: int | None = None, initial_epoch: int = 0, backup: str = "backup",
        deadline: float | None = None, reserve_steps: float = 0.0,
        batchnorm_ds: tf.data.Dataset | None = None, class_weight: dict | None = None) -> dict:
    """Trains a compiled `model` for `cfg.epochs` epochs after `initial_epoch`; resumes from
    `run_dir/checkpoints/<backup>` if one exists.

    Args:
        initial_epoch, backup: for a second phase of training (cnnkit.transfer): the epoch
            number it starts at, and a backup folder of its own.
        deadline: a `time.time()` by which training ends (`TimeBudget`), or None.
        reserve_steps: with a deadline, the work after training (final evaluation, saving) in
            training steps, kept free before the deadline.
        train_ds, val_ds: finite batched datasets (one pass = one epoch); val_ds may be None.
        steps_per_epoch, validation_steps: batches per pass. When given, the datasets are
            repeated and iterated once for the whole run: a new iterator per epoch costs up to
            5 s at each epoch start on a 2-core CPU (measured, see BENCHMARKS.md).
        batchnorm_ds: a few training batches over which batch norm's statistics are
            re-estimated each epoch (`PreciseBatchNorm`; `train.precise_bn`), or None.
        class_weight: {class index: weight of its examples in the loss} (Keras' `class_weight`;
            `balanced_class_weights`), or None.

    Afterwards the model holds the weights of the best epoch on the validation split's
    `train.monitor` (accuracy or loss; `monitored`), or the last ones without a validation set.

    Returns:
        The Keras history of this call ({metric: [values per epoch]}).
    Raises:
        CnnkitError: when the loss became NaN.
    """
    monitor = monitored(cfg, val_ds is not None)
    epochs = initial_epoch + cfg.epochs
    callbacks, nan = make_callbacks(run_dir, cfg, monitor, backup, initial_epoch, epochs, batchnorm_ds)
    ended = [c for c in callbacks if isinstance(c, (ResumableEarlyStopping, AnnealOnPlateau)) and c.replay(c.replayed)]
    if ended:
        # The run was stopped after early stopping (or the last anneal's plateau) had ended its
        # training: the backup is restored and no epoch trained, as the uninterrupted run did.
        epochs = initial_epoch + len(ended[0].replayed)
        print(f"Training had ended at epoch {epochs} (no improvement of {monitor}); resuming after it", file=sys.stderr)
    if timer is not None:
        timer.track(run_dir / "checkpoints" / f"epoch_seconds-{backup}.json")
        callbacks.append(timer)
    budget = None
    if deadline is not None and steps_per_epoch:
        budget = TimeBudget(deadline, steps_per_epoch, initial_epoch, cfg.epochs, reserve_steps=reserve_steps)
        callbacks.append(budget)
    elif progress_verbosity(cfg.verbose):  # a budget sets the end itself; verbose 0 asks for quiet
        callbacks.append(RemainingTime(epochs, early_stopping=bool(cfg.early_stopping)))
    if steps_per_epoch:
        train_ds = train_ds.repeat()
    if val_ds is not None and validation_steps:
        val_ds = val_ds.repeat()
    train_ds = without_autotune_thread(train_ds)
    val_ds = without_autotune_thread(val_ds) if val_ds is not None else None
    adapt_for_multiworker(model, train_ds)
    model._initial_epoch = None  # set by an earlier phase's backup restore; this phase's own is read anew
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=callbacks,
                        initial_epoch=initial_epoch, class_weight=class_weight,
                        steps_per_epoch=steps_per_epoch, validation_steps=validation_steps if val_ds is not None else None,
                        verbose=progress_verbosity(cfg.verbose), shuffle=False)  # the tf.data pipeline shuffles
    if budget is not None:
        print(f"Time budget: trained {budget.step - initial_epoch * steps_per_epoch} steps "
              f"({budget.step / steps_per_epoch - initial_epoch:.2f} epochs of {steps_per_epoch} steps)", file=sys.stderr)
    if nan.where is not None:
        epoch, batch = nan.where
        raise CnnkitError(
            f"The loss became NaN at epoch {epoch}, batch {batch}: lower the learning rate (--lr, now {cfg.lr}) "
            f"or check the data for broken values. The run directory {run_dir} keeps what was written."
        )
    kept = next(c for c in callbacks if isinstance(c, BestWeights))
    if (val_ds is not None and budget is None and cfg.schedule == "constant" and cfg.epochs > 1
            and kept.last_improved == epochs - 1 and backup == "backup"):
        print(still_improving(monitor, epochs, cfg.epochs), file=sys.stderr)
    best = run_dir / "checkpoints" / "best.weights.h5"
    if val_ds is not None and best.exists():
        with warnings.catch_warnings():
            # The best epoch may be of an earlier phase (cnnkit.transfer), whose optimizer had fewer
            # variables: Keras then skips the optimizer state, which is not needed here.
            warnings.filterwarnings("ignore", message=OPTIMIZER_SKIPPED)
            model.load_weights(str(best))
    return history.history


def still_improving(monitor: str, last_epoch: int, epochs: int) -> str:
    """The line said when the last epoch (`last_epoch`, from 1) of a run at a constant learning
    rate was its best on `monitor` (val_loss, ...): training stopped while the network was still
    getting better, which `epochs` more epochs may take further (early stopping ends them once
    it stops)."""
    what = monitor.removeprefix("val_")
    return (f"The validation {what} still improved at the last epoch ({last_epoch}): more epochs may give a better "
            f"network (--epochs {2 * epochs}, train.epochs; early stopping ends training once it stops improving).")


def spoken_duration(seconds: float) -> str:
    """`seconds` as a person reads it: "45 s", "16 min", "2 h 05 min"."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = int(round(seconds / 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def time_left(seconds: float, how: str = "") -> str:
    """`about 14 min[ HOW], until about 06:58`: `seconds` of work from now and the clock time they end."""
    until = time.strftime("%H:%M", time.localtime(time.time() + seconds))
    return f"about {spoken_duration(seconds)}{' ' + how if how else ''}, until about {until}"


REMAINING_SAID_FROM = 120.0  # seconds of training left from which a run says how long they take


class RemainingTime(keras.callbacks.Callback):
    """One line on `stream` (default standard error) as a fit's third epoch begins: how long the
    epochs left take at the second epoch's pace (validation included) and the clock time they
    end, when that is at least `min_seconds`; a long run says near its start what it costs, a
    short one stays quiet. The second epoch sets the pace because the first also traces the
    graph (59 s against 31 s for the others on the 96-pixel photo folder of BENCHMARKS.md).

    Args:
        epochs: the epoch the fit ends at (Keras' `epochs`, counted from 0 like `initial_epoch`).
        early_stopping: whether early stopping may end the fit sooner (said in the line).
    """

    def __init__(self, epochs: int, early_stopping: bool = False, min_seconds: float | None = None, stream=None):
        super().__init__()
        self.epochs, self.early_stopping = epochs, early_stopping
        self.min_seconds = REMAINING_SAID_FROM if min_seconds is None else min_seconds
        self.stream = stream
        self._seen = 0  # epochs of this fit begun
        self._start = None
        self._line = None

    def on_epoch_begin(self, epoch, logs=None):
        self._seen += 1
        self._start = time.time()
        if self._line:  # said as the next epoch begins: after the progress bar has ended the last one's line
            print(self._line, file=self.stream or sys.stderr, flush=True)
            self._line = None

    def on_epoch_end(self, epoch, logs=None):
        if self._seen != 2:
            return
        now = time.time()
        took, left = now - self._start, self.epochs - (epoch + 1)
        if left <= 0 or left * took < self.min_seconds:
            return
        sooner = "; early stopping may end it sooner" if self.early_stopping else ""
        self._line = (f"Epoch {epoch + 1} of {self.epochs} took {spoken_duration(took)} (validation included): "
                      f"the {left} left take {time_left(left * took, 'at that pace')}{sooner}")


def process_start_time() -> float:
    """The `time.time()` at which this process started. The CLI's --time-budget counts from it:
    Python and TensorFlow start-up (5-10 s) is part of the wall time a user measures."""
    import psutil

    return psutil.Process().create_time()


class TimeBudget(keras.callbacks.Callback):
    """Ends training by `deadline` (a `time.time()` value).

    The run is planned in steps. After each epoch, the steps that still fit at the mean time per
    step of the last three epochs (their validation included; a quarter of an epoch or
    `reserve_steps`, whichever is more, and at least `min_reserve` seconds, is kept for the final
    evaluation and saving) set the run's last step,
    and the learning-rate schedule is moved to end there, so a one-cycle or cosine schedule still
    anneals fully. The last step may fall inside an epoch: training stops there and that epoch is
    validated like any other, so a budget of a few long epochs is not left partly unused. A run
    shortened by slow epochs is lengthened again when later epochs are faster, up to the epochs
    asked for, never beyond.

    The first plan is made early in the first epoch: once a tenth of its steps (at least
    `probe_steps`) have run after the first (which traces the graph), the time per step is
    estimated from their rate. Without it, a budget that holds only a few long epochs would
    spend the first of them warming up a schedule planned for all the epochs asked for.

    Steps that run slower than planned (a shared or throttled machine) cannot push the run past
    the deadline: training also stops at the first step after which the next one would eat into
    the time kept for the final evaluation, even before the planned last step. The schedule is
    then a few steps short of its end, which is better than a late run.
    """

    def __init__(self, deadline: float, steps_per_epoch: int, initial_epoch: int, epochs: int, min_reserve: float = 10.0,
                 probe_steps: int = 5, reserve_steps: float = 0.0):
        super().__init__()
        self.deadline, self.steps_per_epoch = deadline, steps_per_epoch
        self.initial_epoch = initial_epoch
        self.planned_last_step = (initial_epoch + epochs) * steps_per_epoch
        self.last_step = self.planned_last_step
        self.min_reserve = min_reserve
        self.reserve_steps = reserve_steps
        self.probe = max(probe_steps, steps_per_epoch // 10)
        self.durations: list[float] = []
        self.step = initial_epoch * steps_per_epoch  # steps done, counted from the run's first epoch
        self._start = None
        self._epoch = initial_epoch
        self._first_step_end = None
        self._probed = False
        self._stop_by = None  # deadline - the reserve for the final evaluation, once planned
        self._per_step = None
        self._last_batch_end = None

    @property
    def last_epoch(self) -> int:
        """The epoch (counted from 1) in which the run's last step falls."""
        return -(-self.last_step // self.steps_per_epoch)

    def _replan(self, now: float, per_step: float) -> None:
        """Makes the last step the last that fits by the deadline at `per_step` seconds a step."""
        reserve = max(self.min_reserve, max(0.25 * self.steps_per_epoch, self.reserve_steps) * per_step)
        self._stop_by, self._per_step = self.deadline - reserve, per_step
        more = int((self.deadline - now - reserve) // per_step)
        last = min(self.planned_last_step, self.step + max(0, more))
        if last != self.last_step:
            self.last_step = last
            schedule = getattr(self.model.optimizer, "_learning_rate", None)
            if hasattr(schedule, "set_total_steps"):
                schedule.set_total_steps(max(1, last - self.initial_epoch * self.steps_per_epoch))

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.time()
        self._epoch = epoch
        self._last_batch_end = None  # the first step's time would include validation and tracing

    def on_train_batch_end(self, batch, logs=None):
        import time

        now = time.time()
        self.step = self._epoch * self.steps_per_epoch + batch + 1
        if self.step >= self.last_step:
            self.model.stop_training = True
            return
        step_time = now - self._last_batch_end if self._last_batch_end is not None else 0.0
        self._last_batch_end = now
        if self._stop_by is not None and now + max(self._per_step, step_time) > self._stop_by:  # behind the plan
            self.last_step = self.step
            self.model.stop_training = True
            return
        if self.durations or self._probed:
            return
        if self._first_step_end is None:
            self._first_step_end, self._first_batch = now, batch
            return
        done = batch - self._first_batch  # steps timed since the first one ended
        if done >= self.probe:
            self._probed = True
            self._replan(now, (now - self._first_step_end) / done)

    def on_epoch_end(self, epoch, logs=None):
        import time

        now = time.time()
        self.durations.append(now - self._start)
        if not self.model.stop_training:  # a whole epoch ran (without batch callbacks too)
            self.step = max(self.step, (epoch + 1) * self.steps_per_epoch)
        if self.step < self.last_step:
            self._replan(now, float(np.mean(self.durations[-3:])) / self.steps_per_epoch)
        if self.step >= self.last_step:
            self.model.stop_training = True


def tracked_train_seconds(run_dir: Path) -> float:
    """The training seconds of every epoch recorded by `TrainTimer.track` in the run `run_dir`
    and in its ensemble members' folders, over all the calls that trained them (an epoch run
    again after a resume counts once, with its last time)."""
    # A finished member keeps its file beside its weights, its checkpoints being removed (api.fit_members).
    files = [path for pattern in ("checkpoints/", "member-*/checkpoints/", "member-*/")
             for path in sorted(run_dir.glob(pattern + "epoch_seconds-*.json"))]
    total = 0.0
    for path in files:
        try:
            total += sum(float(v) for v in json.loads(path.read_text()).values())
        except (ValueError, AttributeError):
            continue
    return total


def progress_verbosity(verbose, stream=None) -> int:
    """Keras' `verbose` for `train.verbose` (checked by config.validate): 0, 1 or 2 as given;
    "auto" is 1 (a progress bar) when `stream` (default sys.stdout) is a terminal, else 2."""
    if verbose != "auto":
        return verbose
    stream = sys.stdout if stream is None else stream
    return 1 if getattr(stream, "isatty", lambda: False)() else 2


class TrainTimer(keras.callbacks.Callback):
    """Seconds spent in the training part of each epoch (validation excluded), and the
    training steps run: `steps` counts those of an epoch that a time budget ended early too,
    so `steps / steps_per_epoch` is the (fractional) number of epochs trained.

    With `track(path)` before a fit, each epoch's seconds also go to that JSON file
    ({epoch: seconds}), which keeps those of the calls before (a killed run's): what
    `tracked_train_seconds` adds up for a resumed run."""

    def __init__(self):
        super().__init__()
        self.seconds = 0.0
        self.epochs = 0
        self.steps = 0
        self.per_epoch: list[float] = []
        self._start = None
        self._epoch_steps = 0
        self._track: Path | None = None
        self._tracked: dict[str, float] = {}
        self._epoch = None

    def track(self, path: Path | None) -> None:
        """Records the next fit's epochs in `path` too (None: not). The first epoch that fit runs
        drops the file's entries from that epoch on: a killed call's epochs after its last
        backup, which the resumed call runs again."""
        self._track, self._tracked, self._epoch = path, {}, None
        if path is not None and path.exists():
            try:
                self._tracked = {str(k): float(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, AttributeError):  # not our JSON: started afresh
                self._tracked = {}

    def on_epoch_begin(self, epoch, logs=None):
        if self._track is not None and self._epoch is None:
            self._tracked = {k: v for k, v in self._tracked.items() if int(k) < epoch}
        self._epoch = epoch
        self._start = time.perf_counter()
        self._epoch_steps = 0

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the epoch's last step run so far (also with steps_per_execution > 1).
        self._epoch_steps = batch + 1

    def _stop(self):
        if self._start is not None:
            elapsed = time.perf_counter() - self._start
            self.seconds += elapsed
            self.per_epoch.append(round(elapsed, 3))
            self.epochs += 1
            self._start = None
            if self._track is not None:
                self._tracked[str(self._epoch)] = round(elapsed, 3)
                partial = self._track.with_name(f".{self._track.name}.partial")
                partial.write_text(json.dumps(self._tracked))
                os.replace(partial, self._track)  # a kill never leaves half a file

    def on_test_begin(self, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()
        self.steps += self._epoch_steps
        self._epoch_steps = 0
