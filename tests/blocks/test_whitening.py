"""PatchWhitening: whitened outputs after adapt, identity start, config and .keras round trip."""
import keras
import numpy as np
import pytest

from cnnkit.blocks.whitening import PatchWhitening


def correlated_images(n=64, size=8, seed=0):
    """Images whose channels and neighbouring pixels are strongly correlated (like photographs)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, size + 1, size + 1, 1))
    smooth = base[:, 1:, 1:] + base[:, :-1, :-1]  # neighbours share a term
    mix = np.array([[1.0, 0.8, 0.6]])
    return (smooth * mix + 0.1 * rng.normal(size=(n, size, size, 3))).astype("float32")


def test_adapted_outputs_are_decorrelated_with_unit_variance():
    x = correlated_images()
    layer = PatchWhitening(epsilon=0.0)
    layer.adapt(x)
    y = keras.ops.convert_to_numpy(layer(x)).reshape(-1, 24)[:, :12]  # the second half is the negation
    covariance = y.T @ y / len(y)
    np.testing.assert_allclose(covariance, np.eye(12), atol=0.05)
    raw = x[:, :2, :2].reshape(len(x), -1)
    assert abs(np.corrcoef(raw.T)[0, 1]) > 0.5  # the inputs were correlated


def test_before_adapt_it_passes_the_patch_values_through():
    layer = PatchWhitening(epsilon=0.0)
    x = np.arange(2 * 3 * 3 * 1, dtype="float32").reshape(2, 3, 3, 1)
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.shape == (2, 2, 2, 8)
    np.testing.assert_allclose(y[0, 0, 0, :4], [0, 1, 3, 4])  # the 2x2 patch at the corner
    np.testing.assert_allclose(y[..., 4:], -y[..., :4])


def test_kernel_is_frozen_and_the_model_reloads(tmp_path):
    x = correlated_images(16)
    layer = PatchWhitening()
    layer.adapt(x)
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, layer(inputs))
    assert [w.name for w in model.trainable_weights] == ["bias"]
    path = tmp_path / "w.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    assert PatchWhitening.from_config(layer.get_config()).get_config() == layer.get_config()


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="patch_size"):
        PatchWhitening(patch_size=0)
    with pytest.raises(ValueError, match="shape"):
        PatchWhitening().adapt(np.zeros((4, 4, 3)))
