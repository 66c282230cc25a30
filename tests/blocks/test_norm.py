"""FusedBatchNorm: the same numbers as keras.layers.BatchNormalization, in training and inference."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkit.blocks.norm import FusedBatchNorm


@pytest.mark.parametrize("shape", [(8, 5, 5, 3), (4, 7, 6)])
def test_matches_keras_batch_norm(shape):
    ref, fused = keras.layers.BatchNormalization(momentum=0.9), FusedBatchNorm(momentum=0.9)
    x = tf.random.stateless_normal(shape, seed=(1, 2)) * 3 + 1
    for _ in range(3):
        np.testing.assert_allclose(fused(x, training=True), ref(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean.numpy(), ref.moving_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), ref.moving_variance.numpy(), atol=1e-5)
    np.testing.assert_allclose(fused(x, training=False), ref(x, training=False), atol=1e-5)


def test_gradients_match():
    x = tf.random.stateless_normal((6, 4, 4, 2), seed=(3, 4))
    grads = []
    for layer in (keras.layers.BatchNormalization(), FusedBatchNorm()):
        layer.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(layer(x, training=True) * tf.range(32, dtype=tf.float32)[None, None, None, :2])
        grads.append(tape.gradient(y, [x, layer.gamma, layer.beta]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, atol=1e-4)
