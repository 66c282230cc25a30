"""The backbone registry: `register`, `get`, `names`, `info`.

A backbone builder takes `(input_shape, **kwargs)` and returns a `keras.Model` from
inputs to features: feature maps (batch, ..., channels) or vectors (batch, features).
The classifier head comes after it (`cnnkit.blocks.ClassifierHead`).
"""
from __future__ import annotations

import keras

from cnnkit.errors import CnnkitError
from cnnkit.registry import Registry

BACKBONES = Registry("backbone")


def register(name: str | None = None, *, modality: str = "image", test_shape=(32, 32, 3), **meta):
    """Decorator: makes a builder reachable as `--backbone NAME`.

    Args:
        name: registry name (default: the function's name).
        modality: "image" (h, w, c), "sequence" (steps, channels) or "spectrogram" (time, mels, 1).
        test_shape: a small input shape that the builder accepts (used by the tests).
        **meta: anything else a listing should show (pretrained=True, min_size=...).

    Example:
        >>> @register("tiny_cnn", test_shape=(16, 16, 1))
        ... def tiny_cnn(input_shape, **kwargs):
        ...     inputs = keras.Input(input_shape)
        ...     return keras.Model(inputs, keras.layers.Conv2D(4, 3)(inputs))
    """
    return BACKBONES.register(name, modality=modality, test_shape=tuple(test_shape), **meta)


_plugins_loaded = False


def load_plugins() -> None:
    """Imports the modules of installed packages that declare a `cnnkit.backbones` entry point
    (in their pyproject.toml: `[project.entry-points."cnnkit.backbones"] name = "pkg.module"`),
    once, so that their `@register` backbones are known everywhere."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group="cnnkit.backbones"):
        try:
            ep.load()
        except Exception as e:  # a broken plug-in must not break cnnkit
            import sys

            print(f"cnnkit: could not load backbone plug-in {ep.name} ({ep.value}): {e}", file=sys.stderr)


def names() -> list[str]:
    """Every registered backbone name, sorted."""
    load_plugins()
    return BACKBONES.names()


def info(name: str) -> dict:
    """What is known of backbone `name` without building it (modality, test_shape, ...)."""
    load_plugins()
    return dict(BACKBONES.get(name).meta)


def get(name: str, input_shape, **kwargs) -> keras.Model:
    """Builds backbone `name` for `input_shape`; keyword arguments set to None are dropped
    so that flags a user did not set never override the builder's defaults.

    Returns:
        A `keras.Model` from `input_shape` to features.
    """
    load_plugins()
    entry = BACKBONES.get(name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    try:
        model = entry.builder(tuple(input_shape), **kwargs)
    except TypeError as e:
        raise CnnkitError(f"Backbone '{name}' does not take these arguments ({e}). Check model.backbone_args.") from None
    if not isinstance(model, keras.Model):
        raise CnnkitError(f"Backbone builder '{name}' returned {type(model).__name__}, not a keras.Model.")
    return model


def describe(name: str) -> dict:
    """`info(name)` plus what `cnnkit backbones` shows: the input shape it is listed at
    (an application's default size, else its test shape), its parameter count there (head
    excluded), and whether pretrained weights are on this machine ("imagenet: cached",
    "imagenet: not cached" or "-")."""
    meta = info(name)
    shape = tuple(meta["test_shape"])
    if meta.get("default_size"):
        shape = (meta["default_size"], meta["default_size"], 3)
    pretrained = "-"
    if meta.get("pretrained") == "imagenet":
        from cnnkit.backbones.applications import imagenet_weights_cached

        pretrained = "imagenet: " + ("cached" if imagenet_weights_cached(name) else "not cached")
    model = get(name, shape)
    return {**meta, "name": name, "input_shape": shape, "parameters": model.count_params(), "pretrained": pretrained}
