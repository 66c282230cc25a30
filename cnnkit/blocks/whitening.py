"""Patch whitening: the frozen first convolution of airbench (Jordan 2024).

A 2x2 convolution whose filters are the eigenvectors of the covariance of the training
images' 2x2 patches, each scaled by 1/sqrt(eigenvalue), and their negations: its outputs are
decorrelated, unit-variance views of the patches. The network's later layers then train
on inputs whose directions all have the same scale, which takes fewer epochs; and the layer
itself costs nothing to train (its kernel is fixed).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers


@keras.saving.register_keras_serializable(package="cnnkit")
class PatchWhitening(layers.Layer):
    """A `patch_size` x `patch_size` "valid" convolution with a fixed whitening kernel.

    Args:
        patch_size: side of the patches (2 in airbench).
        epsilon: added to each eigenvalue before the square root, so that the directions of
            (almost) no variance are not blown up.

    Until `adapt` is called the kernel extracts each pixel value of the patch as it is (and
    its negation): the whitening of data that is already white.

    Call arguments:
        inputs: (batch, h, w, c) float images, normalised per channel.
        Returns (batch, h - patch_size + 1, w - patch_size + 1, 2 * patch_size**2 * c).

    Example:
        >>> layer = PatchWhitening()
        >>> layer.adapt(np.random.default_rng(0).normal(size=(8, 6, 6, 3)))
        >>> layer(np.zeros((1, 6, 6, 3), "float32")).shape
        (1, 5, 5, 24)
    """

    def __init__(self, patch_size=2, epsilon=5e-4, **kwargs):
        super().__init__(**kwargs)
        if patch_size < 1:
            raise ValueError(f"patch_size must be >= 1. Received: patch_size={patch_size}")
        self.patch_size = patch_size
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = input_shape[-1]
        dim = self.patch_size * self.patch_size * channels
        self.kernel = self.add_weight(
            name="kernel", shape=(self.patch_size, self.patch_size, channels, 2 * dim),
            initializer=keras.initializers.Constant(self.whitening_kernel(np.eye(dim), np.ones(dim), channels)),
            trainable=False)
        self.bias = self.add_weight(name="bias", shape=(2 * dim,), initializer="zeros")

    def whitening_kernel(self, eigenvectors: np.ndarray, eigenvalues: np.ndarray, channels: int) -> np.ndarray:
        """(dim, dim) eigenvectors as columns and (dim,) eigenvalues, dim = patch_size**2 * c
        -> the (patch_size, patch_size, c, 2 * dim) kernel [scaled vectors, their negations]."""
        scaled = eigenvectors / np.sqrt(eigenvalues + self.epsilon)
        p = self.patch_size
        return np.concatenate([scaled, -scaled], axis=1).reshape(p, p, channels, -1).astype("float32")

    def adapt(self, images, max_patches: int = 2_000_000) -> None:
        """Fits the kernel to `images`, (n, h, w, c) floats normalised as the layer's inputs will
        be. Uses at most `max_patches` patches (from the first images)."""
        images = np.asarray(images, dtype="float32")
        if images.ndim != 4:
            raise ValueError(f"adapt takes images of shape (n, h, w, c). Received: shape={images.shape}")
        if not self.built:
            self.build(images.shape)
        p, channels = self.patch_size, images.shape[-1]
        per_image = max(1, (images.shape[1] - p + 1) * (images.shape[2] - p + 1))
        images = images[: max(1, max_patches // per_image)]
        windows = np.lib.stride_tricks.sliding_window_view(images, (p, p), axis=(1, 2))  # n, h', w', c, p, p
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, p * p * channels)  # the kernel's (p, p, c) order
        covariance = patches.T.astype("float64") @ patches / len(patches)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]  # the strongest directions first, as airbench
        self.kernel.assign(self.whitening_kernel(eigenvectors[:, order], np.maximum(eigenvalues[order], 0.0), channels))

    def call(self, inputs):
        x = keras.ops.conv(inputs, keras.ops.cast(self.kernel, inputs.dtype), padding="valid")
        return x + keras.ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        shrink = self.patch_size - 1
        return (n, None if h is None else h - shrink, None if w is None else w - shrink, 2 * self.patch_size ** 2 * c)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon}
