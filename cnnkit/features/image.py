"""Image preprocessing and augmentation as Keras layers (they live inside the model).

Inputs to these layers are images with values in [0, 255] (uint8 or float).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers


def normalization_layer(sample: np.ndarray) -> layers.Normalization:
    """A per-channel `Normalization` adapted on `sample` (N, h, w, c) uint8 images."""
    norm = layers.Normalization(axis=-1, name="normalize")
    norm.adapt(sample.astype("float32"))
    return norm


def augmentation_layers(flip: str, translate: float, rotation: float, zoom: float, cutout: float,
                        seed: int = 0) -> list[layers.Layer]:
    """The train-time augmentation stack; every layer is a no-op at inference.

    Args:
        flip: "horizontal", "vertical", "horizontal_and_vertical" or "none".
        translate: maximum shift as a fraction of height/width (0 disables), zero-filled borders:
            the "padded random crop" of CIFAR training. (Reflected borders would duplicate the
            strokes of digits and letters.)
        rotation: maximum rotation as a fraction of a full turn (0 disables).
        zoom: maximum zoom in/out as a fraction (0 disables).
        cutout: side of one random square per image, as a fraction of the image side, filled with
            the batch's mean colour (0 disables; `Cutout`).
    """
    aug = []
    if flip != "none":
        aug.append(layers.RandomFlip(flip, seed=seed, name="aug_flip"))
    if translate:
        aug.append(layers.RandomTranslation(translate, translate, fill_mode="constant", seed=seed, name="aug_translate"))
    if rotation:
        aug.append(layers.RandomRotation(rotation, fill_mode="constant", seed=seed, name="aug_rotate"))
    if zoom:
        aug.append(layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed, name="aug_zoom"))
    if cutout:
        aug.append(Cutout(cutout, seed=seed, name="aug_cutout"))
    return aug


@keras.saving.register_keras_serializable(package="cnnkit")
class Cutout(layers.Layer):
    """Cutout (DeVries & Taylor 2017): in training, one square per image, placed at random wholly
    inside the image, is filled with the batch's mean colour; at inference the identity.
    (batch, h, w, c) -> (batch, h, w, c), h and w known when the layer is built.

    Built from a mask of broadcast comparisons (a few element-wise operations on the batch) rather
    than Keras' `RandomErasing`, which costs about 12 % of the 30-minute CIFAR-10 recipe's training
    speed (BENCHMARKS.md). The mean colour, not black, so that the square carries no colour of its
    own after normalisation (airbench96 zeroes normalised images, the same thing).

    Args:
        size: side of the square as a fraction of the image's height and width, in (0, 1].
        seed: seed of the squares' positions.
    """

    def __init__(self, size=0.25, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 < size <= 1:
            raise ValueError(f"Cutout size must be a fraction of the image side in (0, 1]. Received: size={size}")
        self.size = size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=None):
        if not training:
            return images
        ops = keras.ops
        height, width = images.shape[1], images.shape[2]
        if height is None or width is None:
            raise ValueError("Cutout needs images of a known size; resize them first.")
        side_h, side_w = max(1, round(self.size * height)), max(1, round(self.size * width))  # pixels
        batch = ops.shape(images)[0]
        top = keras.random.randint((batch, 1, 1, 1), 0, height - side_h + 1, seed=self.seed_generator)
        left = keras.random.randint((batch, 1, 1, 1), 0, width - side_w + 1, seed=self.seed_generator)
        rows = ops.reshape(ops.arange(height, dtype="int32"), (1, height, 1, 1))
        cols = ops.reshape(ops.arange(width, dtype="int32"), (1, 1, width, 1))
        inside = (rows >= top) & (rows < top + side_h) & (cols >= left) & (cols < left + side_w)
        mean = ops.mean(images, axis=(0, 1, 2), keepdims=True)
        return ops.where(inside, ops.cast(mean, images.dtype), images)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}


@keras.saving.register_keras_serializable(package="cnnkit")
class HorizontalFlip(layers.Layer):
    """Mirrors images left to right, always (RandomFlip only flips in training): the second view
    of flip test-time augmentation. (batch, h, w, c) -> (batch, h, w, c)."""

    def call(self, images):
        return keras.ops.flip(images, axis=-2)


def flip_tta(images, network):
    """Flip test-time augmentation: the mean of `network`'s probabilities on `images` and on their
    mirror images, for a network trained with horizontal flips (it has learned the two to be the
    same class, so the mean of two views is a steadier estimate). Returns (batch, classes)."""
    views = [network(images), network(HorizontalFlip(name="tta_flip")(images))]
    return layers.Average(name="tta_average")(views)


@keras.saving.register_keras_serializable(package="cnnkit")
class ImageShift(layers.Layer):
    """Moves images by `shift` pixels along both axes (+1: content one pixel up and left, -1:
    down and right), the uncovered border filled by reflection: the shifted views of
    flip_shift test-time augmentation. (batch, h, w, c) -> (batch, h, w, c)."""

    def __init__(self, shift=1, **kwargs):
        super().__init__(**kwargs)
        if shift not in (-1, 1):
            raise ValueError(f"shift must be -1 or 1. Received: shift={shift}")
        self.shift = shift

    def call(self, images):
        padded = keras.ops.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="reflect")
        return padded[:, 2:, 2:] if self.shift == 1 else padded[:, :-2, :-2]

    def get_config(self):
        return {**super().get_config(), "shift": self.shift}


def flip_shift_tta(images, network):
    """airbench's test-time augmentation: half the weight on the image and its mirror image (as
    `flip_tta`), half on the four views shifted by one pixel up-left or down-right, each also
    mirrored. Returns (batch, classes); the first input of "tta_average" is the plain view."""
    flip = HorizontalFlip(name="tta_flip")
    plain, mirrored = network(images), network(flip(images))
    shifted = []
    for shift, name in ((1, "tta_shift_up_left"), (-1, "tta_shift_down_right")):
        moved = ImageShift(shift, name=name)(images)
        shifted += [network(moved), network(flip(moved))]
    # the mean of 8 entries, the unshifted views twice: weights 1/4, 1/4 and 1/8 x 4
    return layers.Average(name="tta_average")([plain, mirrored, plain, mirrored, *shifted])


def tta_views(model: keras.Model) -> int:
    """How many times `model` runs its network per image: 1 without test-time augmentation."""
    names = {layer.name for layer in model.layers}
    if "tta_average" not in names:
        return 1
    return len({id(t) for t in model.get_layer("tta_average").input})


def without_tta(model: keras.Model) -> keras.Model | None:
    """The same end-to-end model on the plain view alone, or None when `model` has no
    test-time augmentation: how much the other views added is measured with it."""
    names = {layer.name for layer in model.layers}
    if "tta_average" not in names:
        return None
    return keras.Model(model.inputs, model.get_layer("tta_average").input[0], name=f"{model.name}_no_tta")


def cast_to_float(name="to_float") -> layers.Layer:
    """uint8 images -> float32 (a Rescaling by 1 is serializable and exportable)."""
    return layers.Rescaling(1.0, name=name)
