"""Convolution blocks with one implementation for 1D (sequences) and 2D (images).

`ConvBlock`: convolution -> batch norm -> activation -> optional pooling -> optional
(spatial) dropout, with depthwise-separable and squeeze-and-excitation options.
"""
from __future__ import annotations

import keras
from keras import layers

from cnnkit.blocks.initializers import PartialIdentity
from cnnkit.blocks.norm import FusedBatchNorm

ACTIVATIONS = ("relu", "gelu", "swish", "tanh", "sigmoid", "linear")
POOLINGS = (None, "max", "avg")

# One table per layer family, keyed by rank, so that 1D and 2D share every line of logic.
CONV = {1: layers.Conv1D, 2: layers.Conv2D}
SEPARABLE_CONV = {1: layers.SeparableConv1D, 2: layers.SeparableConv2D}
MAX_POOL = {1: layers.MaxPooling1D, 2: layers.MaxPooling2D}
AVG_POOL = {1: layers.AveragePooling1D, 2: layers.AveragePooling2D}
GLOBAL_AVG_POOL = {1: layers.GlobalAveragePooling1D, 2: layers.GlobalAveragePooling2D}
GLOBAL_MAX_POOL = {1: layers.GlobalMaxPooling1D, 2: layers.GlobalMaxPooling2D}
SPATIAL_DROPOUT = {1: layers.SpatialDropout1D, 2: layers.SpatialDropout2D}


def check_rank(rank: int) -> int:
    """`rank` if it is 1 or 2, else a ValueError in the Keras style."""
    if rank not in (1, 2):
        raise ValueError(f"rank must be 1 (sequences) or 2 (images). Received: rank={rank}")
    return rank


def check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {', '.join(ACTIVATIONS)}. Received: activation={activation!r}"
        )
    return activation


def build_chain(chain, input_shape):
    """Builds each layer of `chain` in turn; returns the shape after the last one."""
    shape = tuple(input_shape)
    for layer in chain:
        layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


@keras.saving.register_keras_serializable(package="cnnkit")
class SqueezeExcite(layers.Layer):
    """Squeeze-and-excitation: rescales each channel by a gate learned from its global mean.

    Args:
        rank: 1 for (batch, steps, channels) inputs, 2 for (batch, h, w, channels).
        ratio: the bottleneck is `channels * ratio` units (0 < ratio <= 1).

    Call arguments:
        inputs: a tensor of rank `rank + 2`. Returns a tensor of the same shape.

    Example:
        >>> SqueezeExcite(rank=2, ratio=0.25)(keras.ops.ones((1, 8, 8, 16))).shape
        (1, 8, 8, 16)
    """

    def __init__(self, rank=2, ratio=0.25, **kwargs):
        super().__init__(**kwargs)
        self.rank = check_rank(rank)
        if not 0.0 < ratio <= 1.0:
            raise ValueError(f"ratio must be in (0, 1]. Received: ratio={ratio}")
        self.ratio = ratio
        self.pool = GLOBAL_AVG_POOL[rank](keepdims=True, dtype=self.dtype_policy)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.squeeze = layers.Dense(max(1, int(channels * self.ratio)), activation="relu", dtype=self.dtype_policy)
        self.excite = layers.Dense(channels, activation="sigmoid", dtype=self.dtype_policy)
        build_chain([self.pool, self.squeeze, self.excite], input_shape)

    def call(self, inputs):
        return inputs * self.excite(self.squeeze(self.pool(inputs)))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "ratio": self.ratio}


@keras.saving.register_keras_serializable(package="cnnkit")
class ConvBlock(layers.Layer):
    """Convolution -> batch norm -> activation -> [pooling] -> [dropout], 1D or 2D.

    Args:
        filters: number of output channels.
        kernel_size: width of the filter (an int, used for every spatial axis).
        rank: 1 for (batch, steps, channels), 2 for (batch, height, width, channels).
        strides: convolution stride.
        padding: "same" or "valid".
        activation: one of relu, gelu, swish, tanh, sigmoid, linear.
        batch_norm: whether to normalise after the convolution (the convolution then
            has no bias, which batch norm would cancel).
        norm_scale: whether batch norm learns a scale (gamma). Without it (airbench) the
            block's output scale is fixed, and only the shift trains.
        norm_momentum: batch norm's moving-average momentum; None: Keras' 0.99 (which
            `cnnkit.training.fit_batchnorm_momentum` fits to the epoch length).
        pooling: None, "max" or "avg", applied after the activation.
        pool_size: pooling window and stride.
        pool_first: pool right after the convolution, before batch norm and the activation
            (airbench's order): the same function for max pooling up to the batch statistics,
            with batch norm and the activation on a quarter of the pixels.
        dropout: dropout rate after pooling (0 disables it).
        spatial_dropout: drop whole channels instead of single values.
        separable: depthwise-separable convolution (fewer parameters and FLOPs).
        squeeze_excite: squeeze-and-excitation ratio (0 disables it).
        kernel_regularizer: an L2 factor for the convolution weights (0 disables it).
        identity_init: start the convolution's first min(in, out) filters as identities
            (`PartialIdentity`, airbench's init); False: Glorot uniform, Keras' default.

    Call arguments:
        inputs: a float tensor of rank `rank + 2`.
        training: whether batch norm and dropout run in training mode.

    Example:
        >>> block = ConvBlock(12, 3, rank=2, pooling="max")
        >>> block(keras.ops.ones((1, 32, 32, 3))).shape
        (1, 16, 16, 12)
    """

    def __init__(
        self,
        filters,
        kernel_size=3,
        rank=2,
        strides=1,
        padding="same",
        activation="relu",
        batch_norm=True,
        norm_scale=True,
        norm_momentum=None,
        pooling=None,
        pool_size=2,
        pool_first=False,
        dropout=0.0,
        spatial_dropout=False,
        separable=False,
        squeeze_excite=0.0,
        kernel_regularizer=0.0,
        identity_init=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.rank = check_rank(rank)
        if filters < 1:
            raise ValueError(f"filters must be >= 1. Received: filters={filters}")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same' or 'valid'. Received: padding={padding!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be None, 'max' or 'avg'. Received: pooling={pooling!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1). Received: dropout={dropout}")
        self.filters = filters
        self.kernel_size = kernel_size
        self.strides = strides
        self.padding = padding
        self.activation = check_activation(activation)
        self.batch_norm = batch_norm
        self.norm_scale = bool(norm_scale)
        self.norm_momentum = norm_momentum
        self.pooling = pooling
        self.pool_size = pool_size
        self.pool_first = bool(pool_first)
        self.dropout = dropout
        self.spatial_dropout = spatial_dropout
        self.separable = separable
        self.squeeze_excite = squeeze_excite
        self.kernel_regularizer = kernel_regularizer
        self.identity_init = bool(identity_init)

        # Sub-layers share this layer's dtype policy, so a reloaded mixed-precision model
        # computes in one dtype whatever the global policy is at load time.
        dt = self.dtype_policy
        conv_cls = SEPARABLE_CONV[rank] if separable else CONV[rank]
        reg = keras.regularizers.L2(kernel_regularizer) if kernel_regularizer else None
        reg_arg = {"depthwise_regularizer": reg, "pointwise_regularizer": reg} if separable else {"kernel_regularizer": reg}
        if identity_init:
            if separable:
                raise ValueError("identity_init applies to plain convolutions, not separable ones (separable=True).")
            reg_arg["kernel_initializer"] = PartialIdentity()
        self.conv = conv_cls(
            filters, kernel_size, strides=strides, padding=padding, use_bias=not batch_norm,
            name="conv", dtype=dt, **reg_arg,
        )
        self.chain = [self.conv]
        if pooling:
            pool_cls = (MAX_POOL if pooling == "max" else AVG_POOL)[rank]
            self.pool = pool_cls(pool_size, name="pool", dtype=dt)
            if pool_first:
                self.chain.append(self.pool)
        if batch_norm:
            momentum = {} if norm_momentum is None else {"momentum": norm_momentum}
            self.bn = FusedBatchNorm(scale=self.norm_scale, name="bn", dtype=dt, **momentum)
            self.chain.append(self.bn)
        self.act = layers.Activation(activation, name="act", dtype=dt)
        self.chain.append(self.act)
        if squeeze_excite:
            self.se = SqueezeExcite(rank, squeeze_excite, name="se", dtype=dt)
            self.chain.append(self.se)
        if pooling and not pool_first:
            self.chain.append(self.pool)
        if dropout:
            drop_cls = SPATIAL_DROPOUT[rank] if spatial_dropout else layers.Dropout
            self.drop = drop_cls(dropout, name="dropout", dtype=dt)
            self.chain.append(self.drop)

    def build(self, input_shape):
        build_chain(self.chain, input_shape)

    def call(self, inputs, training=None):
        # Keras passes `training` on to the sub-layers through its call context.
        x = inputs
        for layer in self.chain:
            x = layer(x)
        return x

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.chain:
            shape = tuple(layer.compute_output_shape(shape))
        return shape

    def get_config(self):
        config = {
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "rank": self.rank,
            "strides": self.strides,
            "padding": self.padding,
            "activation": self.activation,
            "batch_norm": self.batch_norm,
            "norm_scale": self.norm_scale,
            "norm_momentum": self.norm_momentum,
            "pooling": self.pooling,
            "pool_size": self.pool_size,
            "pool_first": self.pool_first,
            "dropout": self.dropout,
            "spatial_dropout": self.spatial_dropout,
            "separable": self.separable,
            "squeeze_excite": self.squeeze_excite,
            "kernel_regularizer": self.kernel_regularizer,
            "identity_init": self.identity_init,
        }
        return {**super().get_config(), **config}
