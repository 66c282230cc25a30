"""The classifier head, written once for every task and backbone."""
from __future__ import annotations

import keras
from keras import layers

from cnnkit.blocks.conv import GLOBAL_AVG_POOL, GLOBAL_MAX_POOL, build_chain


@keras.saving.register_keras_serializable(package="cnnkit")
class ClassifierHead(layers.Layer):
    """Features -> [global pooling or flatten] -> [dropout] -> [hidden dense] -> dense -> probabilities.

    Args:
        num_classes: number of output units.
        pooling: "avg", "max" or "flatten" for feature maps of rank 3 or 4; ignored
            for (batch, features) inputs, which need none.
        dropout: dropout rate before the output layer (0: off).
        hidden_units: units of an extra ReLU dense layer before the output (0: none).
        activation: "softmax" (one label per input, two or more classes) or
            "sigmoid" (binary with num_classes=1, or multi-label).
        logit_scale: multiplies the logits (1: off). airbench's 1/9 (with an output layer
            without bias) starts training from near-uniform probabilities and slows the output
            layer down against the rest under large SGD learning rates.

    Call arguments:
        inputs: (batch, features), (batch, steps, channels) or (batch, h, w, channels).
        extra_logits: optional (batch, num_classes) added to the output layer's logits before
            the activation: another model's logits (the n-gram branch of text-cls, `NgramLogits`).
        Returns float32 probabilities of shape (batch, num_classes), also under mixed precision.

    Example:
        >>> ClassifierHead(10)(keras.ops.ones((2, 4, 4, 8))).shape
        (2, 10)
    """

    def __init__(self, num_classes, pooling="avg", dropout=0.0, hidden_units=0, activation="softmax", logit_scale=1.0,
                 **kwargs):
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1. Received: num_classes={num_classes}")
        if pooling not in ("avg", "max", "flatten"):
            raise ValueError(f"pooling must be 'avg', 'max' or 'flatten'. Received: pooling={pooling!r}")
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(f"activation must be 'softmax' or 'sigmoid'. Received: activation={activation!r}")
        self.num_classes = num_classes
        self.pooling = pooling
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.activation = activation
        if logit_scale <= 0:
            raise ValueError(f"logit_scale must be > 0. Received: logit_scale={logit_scale}")
        self.logit_scale = float(logit_scale)
        self.pool = None
        dt = self.dtype_policy  # sub-layers follow this layer's policy (see ConvBlock)
        self.drop = layers.Dropout(dropout, name="dropout", dtype=dt) if dropout else None
        self.hidden = layers.Dense(hidden_units, activation="relu", name="hidden", dtype=dt) if hidden_units else None
        self.dense = layers.Dense(num_classes, use_bias=self.logit_scale == 1.0, name="logits", dtype=dt)
        # The output in float32 keeps softmax stable under mixed precision.
        self.out = layers.Activation(activation, dtype="float32", name="probabilities")

    def build(self, input_shape):
        rank = len(input_shape) - 2
        if rank in (1, 2):
            if self.pooling == "flatten":
                self.pool = layers.Flatten(name="flatten", dtype=self.dtype_policy)
            else:
                pool_cls = (GLOBAL_AVG_POOL if self.pooling == "avg" else GLOBAL_MAX_POOL)[rank]
                self.pool = pool_cls(name="pool", dtype=self.dtype_policy)
        elif rank != 0:
            raise ValueError(f"ClassifierHead takes inputs of rank 2, 3 or 4. Received: shape={input_shape}")
        build_chain([l for l in (self.pool, self.drop, self.hidden, self.dense, self.out) if l is not None], input_shape)

    def call(self, inputs, extra_logits=None):
        x = inputs
        for layer in (self.pool, self.drop, self.hidden, self.dense):
            if layer is not None:
                x = layer(x)
        if self.logit_scale != 1.0:
            x = x * keras.ops.cast(self.logit_scale, x.dtype)
        if extra_logits is not None:
            x = x + keras.ops.cast(extra_logits, x.dtype)
        return self.out(x)

    def compute_output_shape(self, inputs_shape, extra_logits_shape=None):
        return (inputs_shape[0], self.num_classes)

    def get_config(self):
        config = {
            "num_classes": self.num_classes,
            "pooling": self.pooling,
            "dropout": self.dropout,
            "hidden_units": self.hidden_units,
            "activation": self.activation,
            "logit_scale": self.logit_scale,
        }
        return {**super().get_config(), **config}
