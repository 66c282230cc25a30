"""What every task provides; a concrete task is wiring of data, preprocessing, backbone and head."""
from __future__ import annotations

import abc
import dataclasses

import numpy as np

from cnnkit.errors import CnnkitError
from cnnkit.registry import Registry

TASKS = Registry("task")


@dataclasses.dataclass
class Prepared:
    """A task's data, ready for `tf.data`.

    splits: {"train"|"val"|"test": (x, y)} with x the task's arrays and y (N,) int labels.
    ids: {split: a list of N identifiers (file paths, texts, "train[12]")} for reports.
    class_names: label names (y indexes them).
    skipped: (input, reason) for every input left out.
    multi_label: y is (N, num_classes) multi-hot (any number of labels per example).
    """

    splits: dict
    ids: dict
    class_names: list
    skipped: list
    origin: str
    prepare_seconds: float = 0.0  # decoding/featurising time, for throughput reports
    multi_label: bool = False
    val_from_train: bool = False  # the val split was held out of the source's train (no val of its own)
    grouped: bool = False  # the source's examples have groups (held out whole: datasets.ensure_splits)
    # The texts the preprocessing adapts on (vocabulary), when not the train split: the members of
    # an ensemble with rotated validation slices share one vocabulary of train and val together.
    adapt_on: object = None

    def counts(self) -> str:
        return ", ".join(f"{k} {len(v[1])}" for k, v in self.splits.items())


MODALITY_WORDS = {"image": "images", "sequence": "text", "spectrogram": "spectrograms"}


class Task(abc.ABC):
    """Base class of the tasks. Subclasses set the class attributes and the four methods.

    `custom_model` (set by `cnnkit.train(..., model=...)`) replaces the registered backbone: a
    `keras.Model`, or a function `(input_shape, num_classes) -> keras.Model`. It gets what a
    backbone gets (normalised images, embedded tokens, normalised spectrograms); when it ends in
    its own classifier (a softmax/sigmoid output), the task adds no head.
    """

    name: str = ""
    modality: str = "image"  # what the backbone receives: image | sequence | spectrogram
    custom_model = None
    source_model = None  # the end-to-end model of the run this one starts from (--from), or None
    _custom_builds = 0
    preprocess_cls: type = None
    defaults: dict = {}  # {section: {key: value}} on top of the config dataclass defaults
    default_source: str = ""
    extensions: tuple = ()
    cache_modes: tuple = ("memory",)  # data.cache values the task supports (image files stream: disk, none)
    # whether `model.members > 1` (an ensemble of networks trained apart) is supported; such a
    # task has `members_model(networks, nb_member)` and `members_of(model)`, and for
    # `model.nb_member` `nb_member(cfg, texts, y, num_classes)` and `nb_member_of(model)` (see TextClassification)
    ensembles: bool = False

    @abc.abstractmethod
    def prepare(self, cfg, data) -> Prepared:
        """`LoadedData` -> `Prepared`; fills the preprocess fields left on auto (size, ...)."""

    @abc.abstractmethod
    def build(self, cfg, prepared: Prepared):
        """(train_model, inference_model): the same weights; the first with augmentation,
        the second end to end (raw input in, probabilities out) for saving."""

    @abc.abstractmethod
    def dataset(self, x, y, cfg, training: bool, num_classes: int | None = None):
        """A batched, prefetched `tf.data.Dataset` of (inputs, labels); with `num_classes`
        and `soft_labels(cfg)`, labels are one-hot (for mixing)."""

    @abc.abstractmethod
    def preprocessing_layers(self, cfg, prepared: Prepared) -> list:
        """The task's preprocessing as Keras layers, adapted on the training split: what turns
        the raw inputs of `raw_dataset` into what a backbone takes (augmentation excluded)."""

    def raw_dataset(self, x, y, cfg, training: bool):
        """Batches of (raw inputs, labels) for a user's own model or loop (`cnnkit.data.load`):
        the training pipeline's dataset, whose inputs are already raw for images and audio."""
        return self.dataset(x, y, cfg, training)

    def inference_dataset(self, x, cfg, batch_size: int | None = None):
        """Batches of raw inputs `x` (what the saved end-to-end model takes), in order."""
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(x).batch(batch_size or cfg.train.batch_size).prefetch(2)

    def backbone_info(self, name: str) -> dict:
        """Registry facts of backbone `name` (custom models: this task's modality), after
        checking that it takes this task's kind of input."""
        from cnnkit import backbones
        from cnnkit.errors import CnnkitError

        if self.custom_model is not None:
            return {"modality": self.modality, "source": "custom"}
        info = backbones.info(name)
        if info["modality"] != self.modality:
            same = ", ".join(n for n in backbones.names() if backbones.info(n)["modality"] == self.modality)
            raise CnnkitError(f"Backbone '{name}' is for {info['modality']} inputs, not {MODALITY_WORDS[self.modality]}. "
                              f"{self.name} backbones: {same}.")
        return info

    def make_backbone(self, name: str, input_shape, num_classes: int, **kwargs):
        """The registered backbone `name` for `input_shape`, or the custom model (checked)."""
        from cnnkit import backbones
        from cnnkit.tasks.custom import resolve_custom_model

        if self.custom_model is None:
            return backbones.get(name, input_shape, **kwargs)
        self._custom_builds += 1
        return resolve_custom_model(self.custom_model, tuple(input_shape), num_classes, self.name,
                                    fresh=self._custom_builds > 1)

    def head(self, cfg, prepared: Prepared, backbone=None):
        """The task's `ClassifierHead`: softmax over the classes, or one sigmoid per class for
        multi-label data; pooling, dropout and hidden units from `cfg.model`. None when
        `backbone` is a custom model with its own classifier."""
        from cnnkit.blocks import ClassifierHead
        from cnnkit.tasks.custom import has_classifier

        if backbone is not None and self.custom_model is not None and has_classifier(backbone):
            return None
        m = cfg.model
        return ClassifierHead(len(prepared.class_names), pooling=m.head_pooling, dropout=m.head_dropout,
                              hidden_units=m.head_hidden, activation="sigmoid" if prepared.multi_label else "softmax",
                              logit_scale=m.head_logit_scale, name="head")

    def soft_labels(self, cfg) -> bool:
        """Whether training uses one-hot/soft labels (MixUp, CutMix) instead of class indices."""
        return False

    def without_tta(self, model):
        """The end-to-end `model` without its test-time augmentation, or None when it has none."""
        return None

    def tta_views(self, model) -> int:
        """How many times `model` runs its network per input (1: no test-time augmentation)."""
        return 1

    def array_inputs(self, x: np.ndarray, cfg) -> np.ndarray:
        """Model inputs (N, ...) for in-memory inputs given to `cnnkit.predict` as an array (the
        text task: a 1-D array of strings; images and audio: see their tasks).

        Raises:
            CnnkitError: for an array the task cannot take, naming the shapes it takes.
        """
        texts = x.tolist()
        if x.ndim != 1 or not all(isinstance(v, str) for v in texts):
            raise CnnkitError(f"A {self.name} run predicts on an array of texts (strings), one dimension. "
                              f"Received an array of shape {x.shape} and dtype {x.dtype}.")
        return np.asarray(texts, dtype=object)

    @abc.abstractmethod
    def read_inputs(self, inputs: list[str], cfg) -> tuple[np.ndarray, list[str], list]:
        """(model inputs, their names, skipped (input, reason)) for prediction from files."""
