"""The output-size formulas against Keras, and the textbook walkthroughs."""
import keras
import numpy as np
import pytest
from keras import layers

from cnnkit.blocks import conv_output_size, pool_output_size


@pytest.mark.parametrize("w", [7, 8, 28, 32, 33])
@pytest.mark.parametrize("f", [1, 3, 5])
@pytest.mark.parametrize("s", [1, 2, 3])
def test_conv_formula_matches_keras(w, f, s):
    valid = layers.Conv2D(1, f, strides=s, padding="valid").compute_output_shape((1, w, w, 1))[1]
    assert conv_output_size(w, f, 0, s) == valid
    # 'same' padding with an odd filter is P = (F - 1) / 2
    same = layers.Conv2D(1, f, strides=s, padding="same").compute_output_shape((1, w, w, 1))[1]
    assert conv_output_size(w, f, (f - 1) // 2, s) == same


@pytest.mark.parametrize("w,f,s", [(300, 2, 2), (32, 2, 2), (33, 3, 2), (28, 2, None), (10, 3, 1)])
def test_pool_formula_matches_keras(w, f, s):
    expected = layers.MaxPooling2D(f, strides=s).compute_output_shape((1, w, w, 1))[1]
    assert pool_output_size(w, f, s) == expected


def test_formula_examples_and_errors():
    assert conv_output_size(32, 5, 0, 1) == 28  # LeNet C1
    assert conv_output_size(227, 11, 0, 4) == 55  # AlexNet conv1
    with pytest.raises(ValueError):
        conv_output_size(3, 5, 0, 1)
    with pytest.raises(ValueError):
        conv_output_size(32, 3, 0, 0)


def test_walkthrough_laplacian_300x300():
    """300x300 grey -> fixed 3x3 Laplacian ('same') -> ReLU -> 2x2 max pool -> flatten (22 500) -> dense 64."""
    laplacian = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], "float32").reshape(3, 3, 1, 1)
    inputs = keras.Input((300, 300, 1))
    edge = layers.Conv2D(1, 3, padding="same", use_bias=False, trainable=False, name="laplacian")
    x = edge(inputs)
    edge.set_weights([laplacian])
    x = layers.ReLU()(x)
    pooled = layers.MaxPooling2D(2)(x)
    flat = layers.Flatten()(pooled)
    out = layers.Dense(64)(flat)
    model = keras.Model(inputs, [x, pooled, flat, out])
    assert tuple(x.shape[1:]) == (300, 300, 1)
    assert tuple(pooled.shape[1:]) == (conv_output_size(300, 2, 0, 2),) * 2 + (1,) == (150, 150, 1)
    assert flat.shape[-1] == 22_500
    assert out.shape[-1] == 64
    # The filter finds edges: zero response on a flat image, non-zero on a step.
    img = np.zeros((1, 300, 300, 1), "float32")
    img[:, :, 150:] = 1.0
    edges = model.predict(img, verbose=0)[0][0, :, :, 0]
    assert edges[100, 20] == 0 and edges[100, 149] > 0


def test_walkthrough_32x32x3_to_softmax():
    """32x32x3 -> 12 filters (32x32x12) -> 2x2 max pool (16x16x12) -> flatten (3 072) -> 10-way softmax."""
    inputs = keras.Input((32, 32, 3))
    conv = layers.Conv2D(12, 3, padding="same", activation="relu")(inputs)
    pooled = layers.MaxPooling2D(2)(conv)
    flat = layers.Flatten()(pooled)
    probs = layers.Dense(10, activation="softmax")(flat)
    assert tuple(conv.shape[1:]) == (32, 32, 12)
    assert tuple(pooled.shape[1:]) == (16, 16, 12)
    assert flat.shape[-1] == 3_072
    model = keras.Model(inputs, probs)
    p = model.predict(np.random.default_rng(0).random((2, 32, 32, 3), dtype="float32"), verbose=0)
    assert p.shape == (2, 10)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
