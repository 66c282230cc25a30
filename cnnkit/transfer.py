"""Transfer learning: start a run from an earlier run's network, and fine-tune in two phases.

`cnnkit train TASK --from RUN_DIR` (or `cnnkit finetune RUN_DIR --data NEW`) builds the task's
model with the earlier run's preprocessing settings, copies every weight but the classifier
head's from RUN_DIR/model.keras (the input normalisation keeps the new data's statistics: the
network gets inputs standardised as in its first training), and trains:

1. the new head alone, everything before it frozen (batch norm in inference mode), for
   `train.freeze_epochs` epochs (default: a quarter of the epochs, or 100 steps if that is
   more, at most half) at `train.head_lr` (default 10 x lr: a new linear head on frozen
   features needs larger steps than the whole network);
2. then the top `train.unfreeze` layers (`all` by default) at `train.finetune_lr` (default
   lr / 2, as fastai's `fine_tune`), batch norm still in inference mode, as the Keras
   transfer-learning guide does (a small target set's batches are poor estimates).

The same schedule applies to `keras.applications` backbones with `--weights imagenet|PATH`,
and to a pretrained Keras model given to `cnnkit.finetune`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import numpy as np

from cnnkit.blocks import SubwordEmbedding
from cnnkit.errors import CnnkitError

HEAD_NAME = "head"  # the name every task gives its ClassifierHead
# Layers with one weight column per class, trained and replaced with the head: the head and the
# n-gram branch of text-cls, whose logits the head adds.
CLASSIFIER_NAMES = (HEAD_NAME, "ngram_logits", "nb_member")  # nb_member: a text model's naive-Bayes member


@dataclasses.dataclass
class Source:
    """An earlier run to start from: its folder, saved config (a dict) and end-to-end model."""

    run_dir: Path
    config: dict
    model: keras.Model


def read_source_config(run_dir: str | Path) -> dict:
    """The config.yaml of the run `run_dir`, checked to hold a finished model.

    Raises:
        CnnkitError: when the folder is not a run, or the run has no model.keras yet.
    """
    from cnnkit import runs

    path, cfg, _ = runs.read_run(str(run_dir))
    if not (path / "model.keras").exists():
        raise CnnkitError(f"--from: {runs.no_model_reason(path)}")
    return cfg


def inherited_overrides(source_cfg: dict, task_name: str) -> dict:
    """The config layer a run started `--from` a source run gets before the user's own settings:
    the source's preprocessing (image size and channels, vocabulary settings and sequence length,
    sample rate, clip length and mel bins: what the backbone was trained on) and its backbone.

    Raises:
        CnnkitError: when the source run is of another task (another kind of input).
    """
    if source_cfg["task"] != task_name:
        raise CnnkitError(f"The run to start from is a {source_cfg['task']} run, but this is {task_name}: start "
                          f"{task_name} from a {task_name} run (or run `cnnkit finetune RUN_DIR --data NEW`).")
    model = source_cfg["model"]
    if int(model.get("members", 1)) > 1:
        raise CnnkitError(f"The run to start from is an ensemble of {model['members']} networks (model.members); "
                          f"start from a run of one network (model.members=1).")
    return {"preprocess": dict(source_cfg["preprocess"]),
            "model": {"backbone": model["backbone"], "backbone_args": model.get("backbone_args", {}),
                      "weights": None}}


def load_source(run_dir: str | Path) -> Source:
    """The run `run_dir` with its model loaded (safe mode: no code from the file)."""
    from cnnkit import runs

    cfg = read_source_config(run_dir)
    path = Path(run_dir).resolve()
    return Source(path, cfg, runs.load_model(path))


def weighted_layers(model: keras.Model) -> list:
    """The top-level layers of `model` that hold weights, in order, except the classifier's
    (`CLASSIFIER_NAMES`)."""
    return [layer for layer in model.layers if layer.weights and layer.name not in CLASSIFIER_NAMES]


def copy_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copies every weight of `source` to `target` except the classifier's (the head, and the
    n-gram branch of a text model) and the input normalisation's: a task's top-level Keras
    `Normalization` holds statistics of the data it was adapted on, and the target's are the new
    data's, so that the network gets inputs standardised as its source training's were (the
    statistics of a normalisation inside a network are copied, with their effect:
    `refresh_computed_state`).

    Both are end-to-end models of the same task built from the same config, so their weighted
    top-level layers (normalisation, embedding, backbone) pair up in order. An embedding of the
    target may have more rows than the source's (a vocabulary extended with the target's
    words): the source rows are copied, the new ones keep their random start. A
    `SubwordEmbedding` keeps the target's n-gram table (built from that extended vocabulary; the
    source's words keep their ids and so their rows) and gets the source's n-gram vectors.

    Returns:
        The names of the target layers that received weights.
    Raises:
        CnnkitError: when the layers do not pair up (another backbone or input size).
    """
    src, dst = weighted_layers(source), weighted_layers(target)
    if len(src) != len(dst):
        raise CnnkitError(f"The source model has {len(src)} weighted layers before its head "
                          f"({', '.join(l.name for l in src)}) and the new one {len(dst)} "
                          f"({', '.join(l.name for l in dst)}): build it with the source run's backbone and settings.")
    copied = []
    for a, b in zip(src, dst):
        if isinstance(b, keras.layers.Normalization) and isinstance(a, keras.layers.Normalization):
            continue  # the new data's statistics (see above)
        if type(a).__name__ != type(b).__name__:
            raise CnnkitError(f"Layer {a.name} ({type(a).__name__}) of the source does not match {b.name} "
                              f"({type(b).__name__}) of the new model.")
        if isinstance(a, keras.Model) and len(a.weights) != len(b.weights):
            copy_weights_by_name(a, b)  # a network from Python without its own classifier (`network_of`)
            copied.append(b.name)
            continue
        values = []
        for wa, wb in zip(a.weights, b.weights):
            va = keras.ops.convert_to_numpy(wa)
            if isinstance(b, SubwordEmbedding) and wb is b.grams:
                values.append(keras.ops.convert_to_numpy(wb))
            elif va.shape == tuple(wb.shape):
                values.append(va)
            elif isinstance(b, keras.layers.Embedding) and va.shape[1:] == tuple(wb.shape[1:]) \
                    and va.shape[0] <= wb.shape[0]:
                grown = keras.ops.convert_to_numpy(wb).copy()
                grown[: va.shape[0]] = va
                values.append(grown)
            else:
                raise CnnkitError(f"Weight {wa.path} has shape {va.shape} in the source but {tuple(wb.shape)} in the "
                                  f"new model: keep the source run's preprocessing and backbone settings.")
        if len(values) != len(b.weights):
            raise CnnkitError(f"Layer {a.name} holds {len(a.weights)} weights in the source, {len(b.weights)} here.")
        for w, v in zip(b.weights, values):
            w.assign(v)
        refresh_computed_state(b)
        copied.append(b.name)
    return copied


def refresh_computed_state(layer) -> None:
    """Recomputes what Keras' `Normalization` layers in `layer` (itself included) derive from
    their weights. Such a layer normalises with a mean and variance computed from its variables
    when it is adapted or loaded (`finalize_state`), not read from them at each call: weights
    assigned later (a source run's statistics) would otherwise be in the saved model but not in
    the one that trains, which kept normalising with the new data's."""
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras.layers.Normalization) and sub.built:
            sub.finalize_state()


def copy_weights_by_name(source: keras.Model, target: keras.Model) -> None:
    """Copies into each weighted layer of the nested network `target` the weights of the layer
    of the same name in `source` (a network `target` was cloned from, with layers left out).

    Raises:
        CnnkitError: naming a layer of `target` that `source` lacks or holds in another shape.
    """
    def leaves(model):
        return {l.name: l for l in model._flatten_layers(include_self=False, recursive=True) if l.weights and not l._layers}

    src = leaves(source)
    for name, layer in leaves(target).items():
        shapes = [tuple(w.shape) for w in layer.weights]
        if name not in src or [tuple(w.shape) for w in src[name].weights] != shapes:
            raise CnnkitError(f"Layer {name} of {target.name} has no counterpart of the same shapes in the source "
                              f"network {source.name}: build it with the source run's settings.")
        layer.set_weights([keras.ops.convert_to_numpy(w) for w in src[name].weights])
        refresh_computed_state(layer)


def body_layers(model: keras.Model) -> list:
    """The leaf layers with weights before the head, in order (nested backbones flattened):
    what `--unfreeze N` counts from the top."""
    out = []
    for layer in model.layers:
        if layer.name in CLASSIFIER_NAMES:
            continue
        if isinstance(layer, keras.Model):
            out += [l for l in layer._flatten_layers(include_self=False, recursive=True)
                    if l.weights and not l._layers]
        elif layer.weights:
            out.append(layer)
    return out


def freeze_body(model: keras.Model) -> None:
    """Phase 1: everything but the head frozen. Frozen batch norm runs in inference mode (Keras 3)."""
    for layer in model.layers:
        layer.trainable = layer.name in CLASSIFIER_NAMES


def unfreeze(model: keras.Model, spec: str | int) -> int:
    """Phase 2: the top `spec` weighted layers before the head trainable (`all`: every one;
    `none` or 0: none, i.e. the head alone keeps training). Batch norm stays frozen.

    Returns:
        The number of trainable layers before the head.
    """
    body = body_layers(model)
    n = parse_unfreeze(spec, len(body))
    for layer in model.layers:
        layer.trainable = True  # containers open; the leaves are set below
    top = set(id(l) for l in body[len(body) - n:]) if n else set()
    for leaf in body:
        leaf.trainable = id(leaf) in top and not isinstance(leaf, keras.layers.BatchNormalization)
    return sum(1 for leaf in body if leaf.trainable)


def parse_unfreeze(spec: str | int, available: int) -> int:
    """`all` -> available, `none` -> 0, an integer N -> min(N, available)."""
    if isinstance(spec, str):
        if spec.lower() == "all":
            return available
        if spec.lower() == "none":
            return 0
        try:
            spec = int(spec)
        except ValueError:
            raise CnnkitError(f"train.unfreeze must be all, none or a number of layers. Received: {spec!r}") from None
    if spec < 0:
        raise CnnkitError(f"train.unfreeze must be all, none or a number of layers >= 0. Received: {spec}")
    return min(int(spec), available)


def make_trainable(model: keras.Model) -> None:
    """Every layer trainable again (what a saved model should hold for later training)."""
    for layer in model._flatten_layers(include_self=False, recursive=True):
        layer.trainable = True


def is_pretrained(cfg) -> bool:
    """Whether a run starts from learned weights: --from RUN_DIR, --weights imagenet|PATH, or
    `cnnkit.finetune` of a Keras model (weights "pretrained")."""
    return bool(cfg.model.from_run or cfg.model.weights not in (None, "none"))


MIN_HEAD_STEPS = 100  # optimizer steps a new head gets at least (within half the epochs) by default


def phase_epochs(train_cfg, steps_per_epoch: int) -> tuple[int, int]:
    """(head-only epochs, fine-tuning epochs) of a pretrained start.

    `train_cfg.freeze_epochs` when set; else a quarter of the epochs, raised so that the head
    gets MIN_HEAD_STEPS steps (a small data set has few steps per epoch: 500 images at batch
    64 make 8), but never more than half the epochs (at least 1).
    """
    total = train_cfg.epochs
    freeze = train_cfg.freeze_epochs
    if freeze is None:
        freeze = max(int(np.ceil(total / 4)), int(np.ceil(MIN_HEAD_STEPS / max(1, steps_per_epoch))))
        freeze = min(freeze, max(1, total // 2))
    if freeze < 0:
        raise CnnkitError(f"train.freeze_epochs must be >= 0. Received: {freeze}")
    freeze = min(freeze, total)
    return freeze, total - freeze


def network_of(model: keras.Model, name: str):
    """For a run trained with a network from Python (`custom:NAME`): a model function
    `(input_shape, num_classes) -> keras.Model` giving a copy of that network as `model` (the
    run's end-to-end model) holds it, without its own classifier if it has one. `copy_weights`
    then fills in the trained weights.

    Raises:
        CnnkitError: when `model` does not hold exactly one nested network before its head.
    """
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model) and layer.name not in CLASSIFIER_NAMES]
    if len(nested) != 1:
        raise CnnkitError(f"The run to start from was trained with a model from Python, and its model.keras holds "
                          f"{len(nested)} nested networks ({', '.join(l.name for l in nested) or 'none'}) instead of "
                          f"one: fine-tune that network with cnnkit.finetune(network, data, task=...).")

    def source_network(input_shape, num_classes):
        return strip_classifier(keras.models.clone_model(nested[0]))

    source_network.__name__ = name
    return source_network


def strip_classifier(model: keras.Model) -> keras.Model:
    """A Keras model without its final classifier layer (for `cnnkit.finetune` of a user's
    model): the output of the layer before a softmax/sigmoid Dense or ClassifierHead."""
    from cnnkit.tasks.custom import has_classifier

    if not has_classifier(model):
        return model
    if len(model.layers) < 3:
        raise CnnkitError(f"Model {model.name} has nothing before its classifier to fine-tune.")
    return keras.Model(model.inputs, model.layers[-2].output, name=f"{model.name}_body")
