"""Every registered backbone builds and runs forward and backward on a tiny input; the
keras.applications weights paths (file, cached ImageNet, missing) behave."""
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import cnnkit.backbones as backbones
from cnnkit.backbones import applications
from cnnkit.errors import CnnkitError


@pytest.mark.parametrize("name", backbones.names())
def test_every_backbone_forward_and_backward(name):
    shape = backbones.info(name)["test_shape"]
    model = backbones.get(name, shape)
    x = tf.random.uniform((2,) + tuple(shape), 0, 255)
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_mean(tf.square(tf.cast(y, tf.float32)))
    grads = tape.gradient(loss, model.trainable_weights)
    assert y.shape[0] == 2 and len(y.shape) >= 2
    assert np.isfinite(y.numpy()).all()
    assert any(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_unknown_name_lists_known_ones():
    with pytest.raises(CnnkitError, match="Known backbones: .*resnet20"):
        backbones.get("resnet21", (32, 32, 3))


def test_required_backbones_are_registered():
    required = {"lenet5", "alexnet", "resnet18", "resnet34", "resnet50", "resnet8", "resnet20", "resnet56",
                "simple_cnn", "kim_cnn", "resnet1d", "spectrogram_cnn", "mobilenet_v2", "mobilenet_v3_small",
                "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_b0", "keras_resnet50"}
    assert required <= set(backbones.names())


def test_lenet5_is_the_textbook_network():
    model = backbones.get("lenet5", (28, 28, 1))
    shapes = {l.name: tuple(l.output.shape[1:]) for l in model.layers if l.name in ("c1", "s2", "c3", "s4", "c5", "f6")}
    assert shapes == {"c1": (28, 28, 6), "s2": (14, 14, 6), "c3": (10, 10, 16), "s4": (5, 5, 16), "c5": (120,), "f6": (84,)}


def test_cifar_resnet_depths():
    # depth = 6n + 2: count the weighted conv layers on the main path
    for name, n in (("resnet8", 1), ("resnet20", 3), ("resnet56", 9)):
        model = backbones.get(name, (32, 32, 3))
        blocks = [l for l in model.layers if l.name.startswith("stage")]
        assert len(blocks) == 3 * n


def test_airbench_groups_pool_before_their_second_conv():
    model = backbones.get("airbench", (32, 32, 3), widths=(8, 16, 32))
    out = {l.name: tuple(l.output.shape[1:]) for l in model.layers}
    # the 2x2 whitening stem (24 channels for RGB), then conv1 of each group pools and conv2 runs
    # at the pooled size: 31 -> 15 -> 7 -> 3
    assert out["stem_whiten"] == (31, 31, 24)
    assert out["group1_conv1"] == out["group1_conv2"] == (15, 15, 8)
    assert out["group3_conv2"] == (3, 3, 32)
    assert model.get_layer("group1_conv1").pool_first
    # airbench's init: conv2 of group 2 (16 -> 16 channels) starts as the identity
    kernel = model.get_layer("group2_conv2").conv.kernel.numpy()
    np.testing.assert_array_equal(kernel[1, 1], np.eye(16))
    assert not backbones.get("airbench", (32, 32, 3), widths=(8, 16, 32), identity_init=False).get_layer(
        "group2_conv2").identity_init
    conv = backbones.get("airbench", (32, 32, 3), widths=(8, 16, 32), stem="conv")
    assert tuple(conv.get_layer("group3_conv2").output.shape[1:]) == (4, 4, 32)
    # an 8x8 input stops pooling under 4 pixels instead of failing
    assert tuple(backbones.get("airbench", (8, 8, 1), widths=(4, 4, 4)).output.shape[1:]) == (3, 3, 4)
    with pytest.raises(ValueError, match="stem"):
        backbones.get("airbench", (32, 32, 3), stem="patchify")


def test_airbench_stem_uses_the_networks_activation():
    # airbench's own network applies GELU after the whitening stem as after every conv
    gelu = backbones.get("airbench", (16, 16, 3), widths=(4, 4, 4), activation="gelu")
    assert gelu.get_layer("stem_act").get_config()["activation"] == "gelu"
    x = np.linspace(-2, 2, 16 * 16 * 3, dtype="float32").reshape(1, 16, 16, 3)
    stem = keras.Model(gelu.input, gelu.get_layer("stem_act").output)
    assert float(stem(x).numpy().min()) < 0  # GELU passes small negatives; a ReLU would not
    relu = backbones.get("airbench", (16, 16, 3), widths=(4, 4, 4))
    assert relu.get_layer("stem_act").get_config()["activation"] == "relu"


def test_alexnet_has_both_layouts():
    small = backbones.get("alexnet", (32, 32, 3))
    large = backbones.get("alexnet", (224, 224, 3), width=0.25)
    assert small.get_layer("conv1").kernel_size == 3
    assert large.get_layer("conv1").kernel_size == 11 and large.output.shape[-1] == 1024


def test_register_custom_backbone():
    @backbones.register("test_tiny_cnn", test_shape=(8, 8, 1))
    def tiny(input_shape, filters=4):
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Conv2D(filters, 3)(inputs))

    try:
        assert "test_tiny_cnn" in backbones.names()
        assert backbones.get("test_tiny_cnn", (8, 8, 1), filters=None).output.shape[-1] == 4  # None dropped
        assert backbones.get("test_tiny_cnn", (8, 8, 1), filters=6).output.shape[-1] == 6
        with pytest.raises(CnnkitError, match="already registered"):
            backbones.register("test_tiny_cnn")(tiny)
    finally:
        backbones.BACKBONES._entries.pop("test_tiny_cnn")


def test_application_grey_input_and_preprocessing():
    model = backbones.get("mobilenet_v3_small", (32, 32, 1))
    assert model(np.zeros((1, 32, 32, 1), "float32")).shape[-1] == 576
    pre = applications.ImagenetPreprocess("caffe")
    out = pre(np.full((1, 1, 1, 3), [10.0, 20.0, 30.0], "float32")).numpy().ravel()
    np.testing.assert_allclose(out, [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-5)
    np.testing.assert_allclose(applications.ImagenetPreprocess("tf")(np.array([[[[0.0, 127.5, 255.0]]]])).numpy().ravel(),
                               [-1, 0, 1])


def test_application_weights_from_file(tmp_path):
    source = backbones.get("mobilenet_v3_small", (32, 32, 3))
    app = source.layers[-1]
    rng = np.random.default_rng(0)
    app.set_weights([rng.normal(size=w.shape).astype("float32") for w in app.get_weights()])
    path = tmp_path / "mnv3.weights.h5"
    app.save_weights(path)
    loaded = backbones.get("mobilenet_v3_small", (32, 32, 3), weights=str(path))
    for a, b in zip(app.get_weights(), loaded.layers[-1].get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(CnnkitError, match="does not exist"):
        backbones.get("mobilenet_v3_small", (32, 32, 3), weights=str(tmp_path / "missing.h5"))


def test_imagenet_weights_missing_offline_gives_clear_error(monkeypatch, capsys):
    """Also: ImageNet weights on 32x32 images get cnnkit's warning naming --image-size, instead of
    Keras' "`input_shape` is undefined or non-square ... Weights for input shape (224, 224) will
    be loaded as the default"."""
    from keras.src.applications import mobilenet_v2

    def offline(fname, origin, **kwargs):  # Keras' message when there is no network
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] name resolution")

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", offline)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras' own warning would raise here
        with pytest.raises(CnnkitError, match="not in the Keras cache .*--weights PATH"):
            backbones.get("mobilenet_v2", (32, 32, 3), weights="imagenet")
    assert "trained on 224x224 images; these are 32x32" in capsys.readouterr().err
    with pytest.raises(CnnkitError, match="not in the Keras cache") as error:
        backbones.get("mobilenet_v2", (96, 96, 3), weights="imagenet")
    # the file of this input size (MobileNets have one per size), not the 224-pixel default's
    assert "download https://storage.googleapis.com/" in str(error.value)
    assert "_1.0_96_no_top.h5" in str(error.value) and "input_shape=(96, 96, 3)" in str(error.value)
    assert "Warning" not in capsys.readouterr().err


def test_imagenet_weights_read_from_keras_cache(tmp_path, monkeypatch):
    """A weights file placed in $KERAS_HOME/models under the name Keras asks for is used, with no network."""
    from keras.src.applications import mobilenet_v2

    reference = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3), alpha=1.0)
    rng = np.random.default_rng(1)
    reference.set_weights([rng.normal(size=w.shape).astype("float32") for w in reference.get_weights()])
    cache = tmp_path / "keras-home" / "models"  # Keras read KERAS_HOME at import: pass the folder explicitly
    cache.mkdir(parents=True)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(cache / name, "w") as f:  # the legacy .h5 layout that keras.applications loads
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    real_get_file = mobilenet_v2.file_utils.get_file

    def no_download(fname, origin=None, cache_subdir="datasets", **kwargs):
        assert (cache / fname).exists(), f"would download {fname}"
        kwargs["cache_dir"] = str(cache.parent)
        return real_get_file(fname, origin=origin, cache_subdir=cache_subdir, **kwargs)

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", no_download)
    model = backbones.get("mobilenet_v2", (96, 96, 3), weights="imagenet")
    for a, b in zip(reference.get_weights(), model.layers[-1].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_describe_tells_whether_imagenet_weights_are_cached(tmp_path, monkeypatch):
    from cnnkit.backbones import applications

    monkeypatch.setattr(applications, "keras_cache_dir", lambda: tmp_path)
    d = backbones.describe("mobilenet_v3_small")
    assert d["pretrained"] == "imagenet: not cached"
    assert d["input_shape"] == (224, 224, 3) and d["parameters"] == 939_120
    (tmp_path / applications.WEIGHTS_FILES["mobilenet_v3_small"]).write_bytes(b"")
    assert backbones.describe("mobilenet_v3_small")["pretrained"] == "imagenet: cached"
    (tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5").write_bytes(b"")
    assert backbones.describe("mobilenet_v2")["pretrained"] == "imagenet: cached"
    own = backbones.describe("resnet20")
    assert own["pretrained"] == "-" and own["parameters"] > 0
