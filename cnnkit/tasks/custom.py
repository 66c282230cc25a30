"""A user's own network in a task (`cnnkit.train(task, model=...)`): checks and errors.

The task feeds the model what it feeds a backbone: (h, w, c) normalised images, (steps,
channels) embedded tokens, or (frames, bins, 1) normalised spectrograms.
"""
from __future__ import annotations

import keras

from cnnkit.errors import CnnkitError


def has_classifier(model: keras.Model) -> bool:
    """Whether `model` ends in class probabilities: a (batch, n) output from a softmax or
    sigmoid (a Dense/Activation with that activation, or cnnkit's ClassifierHead)."""
    if len(model.output.shape) != 2:
        return False
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    name = activation if isinstance(activation, str) else getattr(activation, "__name__", "")
    return name in ("softmax", "sigmoid")


def resolve_custom_model(spec, input_shape: tuple, num_classes: int, task: str, fresh: bool = False) -> keras.Model:
    """The user's model for inputs of `input_shape` (without the batch axis).

    Args:
        spec: a `keras.Model`, or a function `(input_shape, num_classes) -> keras.Model`.
        fresh: a `keras.Model` is cloned (new weights), e.g. for the second fold of a
            cross-validation.
    Raises:
        CnnkitError naming what to change: a function that returns something else than a Keras
        model, an input rank or size that does not fit the task, a classifier with another
        number of outputs than the data has classes.
    """
    if isinstance(spec, keras.Model):
        model = keras.models.clone_model(spec) if fresh else spec
    elif callable(spec):
        model = spec(input_shape, num_classes)
        if not isinstance(model, keras.Model):
            raise CnnkitError(f"The model function {getattr(spec, '__name__', spec)!r} returned {type(model).__name__}, "
                              f"not a keras.Model: return keras.Model(inputs, outputs).")
    else:
        raise CnnkitError(f"model must be a keras.Model, a function (input_shape, num_classes) -> keras.Model or a "
                          f"backbone name. Received: {type(spec).__name__}")
    expected = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if expected is None or len(expected) != len(input_shape) or any(
            e is not None and e != g for e, g in zip(expected, input_shape)):
        raise CnnkitError(f"The model takes inputs of shape {model.input_shape}, but {task} feeds it "
                          f"(batch, {', '.join(map(str, input_shape))}): build it with "
                          f"keras.Input({input_shape}) (or None for any size).")
    if has_classifier(model) and model.output.shape[-1] != num_classes:
        raise CnnkitError(f"The model ends in {model.output.shape[-1]} class probabilities, but the data has "
                          f"{num_classes} classes: end it with {num_classes} units, or leave the classifier "
                          f"out and cnnkit adds its head.")
    return model
