"""Residual blocks (skip connections), 1D and 2D, basic and bottleneck (He et al. 2016)."""
from __future__ import annotations

import keras
from keras import layers

from cnnkit.blocks.conv import CONV, build_chain, check_activation, check_rank, SqueezeExcite
from cnnkit.blocks.norm import FusedBatchNorm


@keras.saving.register_keras_serializable(package="cnnkit")
class ResidualBlock(layers.Layer):
    """A residual block: `activation(F(x) + shortcut(x))`.

    basic:      3x3 conv (stride) -> BN -> act -> 3x3 conv -> BN            (out: filters)
    bottleneck: 1x1 conv -> BN -> act -> 3x3 conv (stride) -> BN -> act
                -> 1x1 conv -> BN                                          (out: 4 * filters)

    The shortcut is the identity, or a 1x1 convolution with batch norm (a projection)
    when the stride or the number of channels changes.

    Args:
        filters: channels of the inner convolutions.
        rank: 1 for sequences, 2 for images.
        kind: "basic" or "bottleneck".
        strides: stride of the block (2 halves each spatial axis).
        kernel_size: width of the inner (non-1x1) convolutions.
        activation: one of relu, gelu, swish, tanh, sigmoid, linear.
        squeeze_excite: squeeze-and-excitation ratio on the residual branch (0: off).
        dropout: dropout on the residual branch before the addition (0: off).
        expansion: bottleneck output channels = filters * expansion.

    Call arguments:
        inputs: a float tensor of rank `rank + 2`.

    Example:
        >>> block = ResidualBlock(32, rank=2, strides=2)
        >>> block(keras.ops.ones((1, 16, 16, 16))).shape
        (1, 8, 8, 32)
    """

    def __init__(
        self,
        filters,
        rank=2,
        kind="basic",
        strides=1,
        kernel_size=3,
        activation="relu",
        squeeze_excite=0.0,
        dropout=0.0,
        expansion=4,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = check_rank(rank)
        if kind not in ("basic", "bottleneck"):
            raise ValueError(f"kind must be 'basic' or 'bottleneck'. Received: kind={kind!r}")
        if filters < 1:
            raise ValueError(f"filters must be >= 1. Received: filters={filters}")
        self.filters = filters
        self.kind = kind
        self.strides = strides
        self.kernel_size = kernel_size
        self.activation = check_activation(activation)
        self.squeeze_excite = squeeze_excite
        self.dropout = dropout
        self.expansion = expansion
        self.out_channels = filters * expansion if kind == "bottleneck" else filters

        conv = CONV[rank]
        k = kernel_size
        dt = self.dtype_policy  # sub-layers follow this layer's policy (see ConvBlock)
        if kind == "basic":
            specs = [(filters, k, strides, True), (filters, k, 1, False)]
        else:
            specs = [(filters, 1, 1, True), (filters, k, strides, True), (self.out_channels, 1, 1, False)]
        self.branch = []
        for i, (f, size, s, act) in enumerate(specs, start=1):
            self.branch.append(conv(f, size, strides=s, padding="same", use_bias=False, name=f"conv{i}", dtype=dt))
            # Zero-init the last BN's scale so each block starts as the identity (Goyal et al. 2017).
            last = i == len(specs)
            self.branch.append(
                FusedBatchNorm(name=f"bn{i}", gamma_initializer="zeros" if last else "ones", dtype=dt)
            )
            if act:
                self.branch.append(layers.Activation(activation, name=f"act{i}", dtype=dt))
        if squeeze_excite:
            self.branch.append(SqueezeExcite(rank, squeeze_excite, name="se", dtype=dt))
        if dropout:
            self.branch.append(layers.Dropout(dropout, name="dropout", dtype=dt))
        self.out_act = layers.Activation(activation, name="out_act", dtype=dt)
        self.shortcut = []

    def build(self, input_shape):
        if self.strides != 1 or input_shape[-1] != self.out_channels:
            self.shortcut = [
                CONV[self.rank](self.out_channels, 1, strides=self.strides, use_bias=False, name="proj_conv",
                                dtype=self.dtype_policy),
                FusedBatchNorm(name="proj_bn", dtype=self.dtype_policy),
            ]
            build_chain(self.shortcut, input_shape)
        out_shape = build_chain(self.branch, input_shape)
        self.out_act.build(out_shape)

    def call(self, inputs):
        x = inputs
        for layer in self.branch:
            x = layer(x)
        skip = inputs
        for layer in self.shortcut:
            skip = layer(skip)
        return self.out_act(x + skip)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.branch:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def get_config(self):
        config = {
            "filters": self.filters,
            "rank": self.rank,
            "kind": self.kind,
            "strides": self.strides,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
            "squeeze_excite": self.squeeze_excite,
            "dropout": self.dropout,
            "expansion": self.expansion,
        }
        return {**super().get_config(), **config}
