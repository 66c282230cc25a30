"""Run configuration: dataclasses with commented defaults, and how they are resolved.

Override order (later wins): the dataclass defaults below, the task's own defaults,
a recipe YAML file, command-line flags, then `--set section.key=value`. Every value is
type-checked against the field it sets; an unknown key names the known ones.

Imports nothing of cnnkit but `errors` and `datasets.sources.decoding` (one message for an
unknown encoding).
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from cnnkit.datasets.sources import decoding
from cnnkit.errors import CnnkitError


@dataclasses.dataclass
class DataConfig:
    source: str = ""  # --data SRC; empty means the task's embedded default
    val_split: float = 0.1  # fraction of train held out (stratified) when no val/ split exists
    test_split: float = 0.0  # fraction held out as test when the source has no test split
    text_column: str = "text"  # CSV/TSV column holding the input
    label_column: str = "label"  # CSV/TSV column holding the label (a `labels` column is read when there is none)
    encoding: str = "utf-8"  # of CSV/TSV and .txt files (a UTF-8 byte-order mark is dropped), e.g. cp1252, latin-1
    multi_label: Optional[bool] = None  # labels are |-separated sets; unset: when the column is `labels`
    # A folder of files named by class (cat.12.jpg) instead of class folders: a regular expression
    # searched in each file name, its first group (or whole match) the label, e.g. ^(.+?)[ ._-]*\d+\.\w+$
    label_pattern: Optional[str] = None
    # Examples that belong together (a speaker's recordings, a recording's slices, a predefined
    # fold) are held out whole: in the val/test splits taken from train and in --cv folds.
    # group_column: a table's column naming each row's group; auto: a column named `fold`
    # (ESC-50, UrbanSound8K), none: no groups. group_pattern: a regular expression searched in
    # each file's name, its first group (or whole match) the group, e.g. ^\d+_([a-z]+)_ (speakers).
    group_column: Optional[str] = "auto"
    group_pattern: Optional[str] = None
    strict: bool = False  # fail on an unreadable file instead of skipping it
    limit: int = 0  # use at most this many training examples (0: all); for quick trials
    cv: int = 0  # K > 1: stratified K-fold cross-validation over all examples instead of one run
    cache: str = "memory"  # decoded image files: memory | disk (a tf.data cache file) | none (decoded every epoch)


@dataclasses.dataclass
class ModelConfig:
    backbone: str = "auto"  # a name from `cnnkit.backbones.names()`; auto: the task chooses
    backbone_args: dict = dataclasses.field(default_factory=dict)  # passed to the builder
    weights: Optional[str] = None  # none | imagenet | path to a weights file (applications)
    from_run: Optional[str] = None  # start from this run's network (its head replaced): --from RUN_DIR
    head_pooling: str = "avg"  # avg | max | flatten (ignored when the backbone gives vectors)
    head_dropout: float = 0.0  # dropout before the classifier's dense layer
    head_hidden: int = 0  # units of an extra dense layer before the output (0: none)
    head_logit_scale: float = 1.0  # multiplies the logits; != 1: the output layer has no bias (airbench: 1/9)
    # text-cls: N > 1 trains N networks (embedding, backbone, head) one after the other, each from
    # its own seed and with its own early stopping, and the saved model averages their
    # probabilities (an ensemble in one model; api.fit_members).
    members: int = 1
    # Where a member's validation texts come from when the source has no val split (they are held
    # out of train): "rotate": member i holds out slice i of 1/val_split disjoint slices, so the
    # ensemble trains on every training text (api.member_splits; MR +0.55 points over 10 folds, TREC
    # +0.30 over two seeds, BENCHMARKS.md); "same": one held-out slice for all members.
    members_val: str = "rotate"
    # Member i's backbone_args are backbone_args updated with entry i (cycled), e.g. other filter
    # widths per member: an ensemble of different networks as well as different seeds. Empty: every
    # member has backbone_args.
    members_backbone_args: list[dict] = dataclasses.field(default_factory=list)
    # text-cls: a naive-Bayes-weighted logistic regression on the texts' unigram and bigram counts
    # (NBSVM, `blocks.NaiveBayesLR`, fitted by scikit-learn in seconds) is averaged with the network,
    # or joins an ensemble as one more member: it errs elsewhere than the CNNs (one network: TREC,
    # SST-2, SST-5 and the embedded sample +0.8 to +1.9; five: MR, SST-2, SST-5, TREC +0.1 to +0.6;
    # BENCHMARKS.md). Not with the n-gram branch (long texts), for multi-label data, --from or a
    # model from Python (api.fit_nb_member).
    nb_member: bool = True


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # peak learning rate
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop
    weight_decay: float = 0.0  # decoupled for adamw, L2-style for sgd (Keras `weight_decay`)
    momentum: float = 0.9  # sgd only
    # adam/adamw: a sparse gradient (embedding rows) updates only its rows and their moments
    # ("lazy" Adam, cnnkit.optimizers); off, the whole table and its moments are updated every step.
    sparse_updates: bool = False
    bias_lr_scale: float = 1.0  # sgd only: learning rate of biases and batch-norm shifts, times lr (airbench: 64)
    schedule: str = "cosine"  # constant | cosine | onecycle | step
    warmup_epochs: float = 0.0  # linear warm-up before cosine/step (onecycle has its own)
    label_smoothing: float = 0.0
    # none | balanced: each training example's loss weighted n / (classes x its class's count)
    # (scikit-learn's "balanced"), so that every class weighs the same in the loss; for imbalanced
    # single-label data (training.balanced_class_weights).
    class_weight: str = "none"
    seed: int = 0
    deterministic: bool = False  # TF op determinism: identical metrics twice on a CPU, slower
    # float32 | mixed_float16 | mixed_bfloat16 | auto (mixed where the hardware has it; the run's
    # config.yaml records what auto became)
    precision: str = "float32"
    jit_compile: bool = False  # XLA; measured slower for small CNNs on CPU (docs/PLATFORM)
    strategy: str = "auto"  # auto | mirrored | multiworker
    # What picks the epoch whose weights are kept, and what early stopping and the anneals watch:
    # accuracy (highest) | loss (lowest); on the val split when there is one, else on train.
    monitor: str = "accuracy"
    early_stopping: int = 0  # patience in epochs on the monitored metric (0: off)
    # At an epoch whose monitored metric does not beat the best so far, put back the best epoch's
    # weights and multiply the learning rate by anneal_factor, at most this many times; the next
    # such epoch ends training (0: off; needs schedule=constant). training.AnnealOnPlateau.
    anneal_on_plateau: int = 0
    anneal_factor: float = 0.2
    # Batch norm's moving statistics re-estimated each epoch, before validation, as the mean over
    # this many training batches (0: off; training.PreciseBatchNorm). Models without batch norm: no effect.
    precise_bn: int = 0
    # Seconds from the start of `train` (the CLI: of the process) to the saved model (0: off): the
    # epochs and the lr schedule are shortened so that training ends in time (epochs is the most it runs).
    time_budget: float = 0.0
    # Pretrained starts (--from, --weights, cnnkit.finetune) train in two phases: the new head
    # alone for freeze_epochs (unset: a quarter of the epochs, or 100 steps if more, at most
    # half) at head_lr (unset: 10 x lr), then the top `unfreeze` layers (all | none | a number)
    # at finetune_lr (unset: lr / 2). Batch norm stays frozen.
    freeze_epochs: Optional[int] = None
    head_lr: Optional[float] = None
    unfreeze: str = "all"
    finetune_lr: Optional[float] = None
    steps_per_execution: int = 1
    # Keras progress: 0 silent, 1 progress bar, 2 one line per epoch; auto: the bar on a terminal, one
    # line per epoch when the output goes to a file or a pipe (a bar there is a screenful a step).
    verbose: Union[int, str] = "auto"


@dataclasses.dataclass
class Config:
    task: str
    data: DataConfig
    preprocess: Any  # the task's own dataclass (see each module in cnnkit/tasks)
    model: ModelConfig
    train: TrainConfig

    def to_dict(self) -> dict:
        """The config as plain YAML-ready data (what `config.yaml` holds)."""
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


def deep_merge(base: dict, override: dict) -> dict:
    """`base` updated by `override`, recursively for nested dicts; inputs are not changed."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "backbone_args":
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def parse_set(items: list[str]) -> dict:
    """`["train.lr=0.01", "model.backbone=resnet20"]` -> nested dict of YAML-parsed values."""
    out: dict = {}
    for item in items or []:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            key = item.split("=", 1)[0].strip()
            owner = next((name for name, cls in SECTIONS.items() if key in {f.name for f in dataclasses.fields(cls)}), None)
            raise CnnkitError(
                f"--set expects section.key=value (for example train.lr=0.01). Received: {item!r}"
                + (f" ({key} is a key of '{owner}': --set {owner}.{item.strip()})" if owner and "=" in item else "")
            )
        dotted, raw = item.split("=", 1)
        value = yaml.safe_load(raw) if raw != "" else ""
        node = out
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def load_yaml(path: str | Path) -> dict:
    """A recipe or config YAML file as a dict (safe_load: no arbitrary objects)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CnnkitError(f"Cannot read the config file {path}: {e.strerror}.") from None
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise CnnkitError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(loaded, dict):
        raise CnnkitError(f"{path} must hold a mapping of sections (data:, model:, train:...).")
    return loaded


def _check_type(value, hint, where: str):
    """`value` converted to the field type `hint`, or a CnnkitError naming `where`."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except CnnkitError:
                continue
        raise CnnkitError(f"{where} has the wrong type. Received: {value!r}")
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise CnnkitError(f"{where} must be true or false. Received: {value!r}")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise CnnkitError(f"{where} must be an integer. Received: {value!r}")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise CnnkitError(f"{where} must be a number. Received: {value!r}")
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise CnnkitError(f"{where} must be a string. Received: {value!r}")
    if hint is dict or origin is dict:
        if isinstance(value, dict):
            return value
        raise CnnkitError(f"{where} must be a mapping. Received: {value!r}")
    if hint is list or origin is list:
        if isinstance(value, (list, tuple)):
            return list(value)
        raise CnnkitError(f"{where} must be a list. Received: {value!r}")
    return value


def build_section(cls, values: dict, section: str):
    """An instance of dataclass `cls` from `values`, every key checked and type-checked."""
    if not isinstance(values, dict):
        raise CnnkitError(f"Config section '{section}' must be a mapping. Received: {values!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        # the closest known name of each typo (epoch -> epochs; learning_rate -> lr has none close)
        close = [f"{section}.{match[0]}" for k in unknown for match in [difflib.get_close_matches(k, names, n=1)] if match]
        raise CnnkitError(
            f"Unknown key(s) {', '.join(section + '.' + k for k in unknown)}"
            + (f" (did you mean {', '.join(close)}?)" if close else "") + ". "
            f"Known keys in '{section}': {', '.join(names)}."
        )
    kwargs = {k: _check_type(v, hints[k], f"{section}.{k}") for k, v in values.items()}
    return cls(**kwargs)


def resolve(
    task: str,
    preprocess_cls,
    task_defaults: dict | None = None,
    recipe: dict | None = None,
    overrides: dict | None = None,
) -> Config:
    """The full `Config` for `task`: defaults <- task defaults <- recipe <- overrides.

    Args:
        task: the task name ("image-cls", ...).
        preprocess_cls: the task's preprocessing dataclass.
        task_defaults, recipe, overrides: nested dicts `{section: {key: value}}`;
            `overrides` holds CLI flags and `--set` values.
    """
    merged: dict = {}
    for layer in (task_defaults or {}, recipe or {}, overrides or {}):
        merged = deep_merge(merged, {k: v for k, v in layer.items() if k != "task"})
    known = set(SECTIONS) | {"preprocess"}
    unknown = sorted(set(merged) - known)
    if unknown:
        # `--set epochs=5` for `--set train.epochs=5`, `trian` for `train`
        owners = {f.name: name for name, cls in {**SECTIONS, "preprocess": preprocess_cls}.items()
                  for f in dataclasses.fields(cls)}
        hints = [f"{k} is a key of '{owners[k]}': {owners[k]}.{k}" if k in owners else
                 f"did you mean {match[0]}?" for k in unknown
                 for match in [difflib.get_close_matches(k, sorted(known), n=1) or [None]] if k in owners or match[0]]
        raise CnnkitError(
            f"Unknown config section(s) {', '.join(unknown)}" + (f" ({'; '.join(hints)})" if hints else "")
            + f". Known: task, {', '.join(sorted(known))}."
        )
    sections = {name: build_section(cls, merged.get(name, {}), name) for name, cls in SECTIONS.items()}
    preprocess = build_section(preprocess_cls, merged.get("preprocess", {}), "preprocess")
    cfg = Config(task=task, preprocess=preprocess, **sections)
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Range checks that no type hint expresses; errors name the key and the allowed values."""
    t = cfg.train
    choices = {
        "train.optimizer": (t.optimizer, ("adam", "adamw", "sgd", "rmsprop")),
        "train.schedule": (t.schedule, ("constant", "cosine", "onecycle", "step")),
        "train.precision": (t.precision, ("float32", "mixed_float16", "mixed_bfloat16", "auto")),
        "train.strategy": (t.strategy, ("auto", "mirrored", "multiworker")),
        "train.monitor": (t.monitor, ("accuracy", "loss")),
        "train.class_weight": (t.class_weight, ("none", "balanced")),
        "model.head_pooling": (cfg.model.head_pooling, ("avg", "max", "flatten")),
        "model.members_val": (cfg.model.members_val, ("same", "rotate")),
    }
    for key, (value, allowed) in choices.items():
        if value not in allowed:
            raise CnnkitError(f"{key} must be one of {', '.join(allowed)}. Received: {value!r}")
    bad = [a for a in cfg.model.members_backbone_args if not isinstance(a, dict)]
    if bad:
        raise CnnkitError(f"model.members_backbone_args must be a list of mappings (one a member, e.g. "
                          f"[{{widths: [3, 4, 5]}}, {{widths: [2, 3, 4]}}]). Received: {bad[0]!r} in it")
    decoding(cfg.data.encoding, "data.encoding")  # an unknown encoding is refused before any file is read
    if t.verbose not in (0, 1, 2, "auto") or isinstance(t.verbose, bool):
        raise CnnkitError(f"train.verbose must be 0 (silent), 1 (progress bar), 2 (a line per epoch) or auto. "
                          f"Received: {t.verbose!r}")
    if t.sparse_updates and t.optimizer not in ("adam", "adamw"):
        raise CnnkitError(f"train.sparse_updates applies to the adam and adamw optimizers, not {t.optimizer!r}: "
                          "set train.sparse_updates=false or train.optimizer=adam.")
    if not (t.unfreeze.lower() in ("all", "none") or t.unfreeze.isdigit()):
        raise CnnkitError(f"train.unfreeze must be all, none or a number of layers. Received: {t.unfreeze!r}")
    if t.freeze_epochs is not None and t.freeze_epochs < 0:
        raise CnnkitError(f"train.freeze_epochs must be >= 0. Received: {t.freeze_epochs}")
    if t.time_budget < 0:
        raise CnnkitError(f"train.time_budget must be >= 0 seconds (0: off). Received: {t.time_budget}")
    if t.bias_lr_scale != 1.0 and t.optimizer != "sgd":
        raise CnnkitError(f"train.bias_lr_scale applies to train.optimizer=sgd only; this run has "
                          f"train.optimizer={t.optimizer}. Set train.optimizer=sgd or leave train.bias_lr_scale at 1.")
    if t.precise_bn < 0:
        raise CnnkitError(f"train.precise_bn must be >= 0 training batches (0: off). Received: {t.precise_bn}")
    if t.anneal_on_plateau < 0:
        raise CnnkitError(f"train.anneal_on_plateau must be >= 0 (0: off). Received: {t.anneal_on_plateau}")
    if t.anneal_on_plateau and not 0.0 < t.anneal_factor < 1.0:
        raise CnnkitError(f"train.anneal_factor must be in (0, 1). Received: {t.anneal_factor}")
    if t.anneal_on_plateau and (t.schedule != "constant" or t.warmup_epochs):
        raise CnnkitError(f"train.anneal_on_plateau lowers a constant learning rate; this run has "
                          f"train.schedule={t.schedule}, train.warmup_epochs={t.warmup_epochs}. Set "
                          "train.schedule=constant and train.warmup_epochs=0, or train.anneal_on_plateau=0.")
    positives = {"train.epochs": t.epochs, "train.batch_size": t.batch_size, "train.lr": t.lr,
                 "train.bias_lr_scale": t.bias_lr_scale, "model.head_logit_scale": cfg.model.head_logit_scale,
                 "model.members": cfg.model.members}
    for key in ("finetune_lr", "head_lr"):
        if getattr(t, key) is not None:
            positives[f"train.{key}"] = getattr(t, key)
    for key, value in positives.items():
        if value <= 0:
            raise CnnkitError(f"{key} must be > 0. Received: {value}")
    for key, value in {"data.val_split": cfg.data.val_split, "data.test_split": cfg.data.test_split}.items():
        if not 0.0 <= value < 1.0:
            raise CnnkitError(f"{key} must be in [0, 1). Received: {value}")
