"""Batch normalisation on TensorFlow's fused kernel.

Keras 3's `BatchNormalization` computes moments and the normalisation as separate ops; on a
CPU, for the small feature maps of CIFAR-sized networks, that costs a large share of each
step. `FusedBatchNorm` is the same layer (same weights, config and inference path) whose
training step uses `FusedBatchNormV3` for 4D channels-last inputs under TensorFlow.
"""
from __future__ import annotations

import keras
from keras import layers


@keras.saving.register_keras_serializable(package="cnnkit")
class FusedBatchNorm(layers.BatchNormalization):
    """`keras.layers.BatchNormalization` with a fused training kernel where one exists.

    Falls back to the Keras implementation for other ranks, axes, backends, masks and
    renormalisation, so it can stand wherever BatchNormalization stands.

    Example:
        >>> FusedBatchNorm()(keras.ops.ones((2, 4, 4, 3)), training=True).shape
        (2, 4, 4, 3)
    """

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and not getattr(self, "synchronized", False))

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and self._fusable(inputs, mask)):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, "float32") if inputs.dtype == tf.bfloat16 else inputs
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels], "float32")
        beta = tf.cast(self.beta, "float32") if self.center else tf.zeros([channels], "float32")
        empty = tf.constant([], "float32")
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=x, scale=gamma, offset=beta, mean=empty, variance=empty, epsilon=self.epsilon,
            exponential_avg_factor=1.0, data_format="NHWC", is_training=True)
        # The kernel returns the unbiased (n - 1) batch variance; Keras tracks the biased one.
        n = tf.cast(tf.size(x) // channels, "float32")
        variance = variance * (n - 1.0) / tf.maximum(n, 2.0)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + tf.cast(mean, self.moving_mean.dtype) * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + tf.cast(variance, self.moving_variance.dtype) * (1.0 - m))
        return tf.cast(y, self.compute_dtype)
