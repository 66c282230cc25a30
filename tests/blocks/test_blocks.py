"""ConvBlock, ResidualBlock, SqueezeExcite, ClassifierHead: shapes, config and .keras round trip."""
import keras
import numpy as np
import pytest

from cnnkit.blocks import ClassifierHead, ConvBlock, ResidualBlock, SqueezeExcite


def randomize(model, seed=0):
    """Random weights everywhere (zero-initialised gammas would hide a weight-loading bug)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 0.1 + (1.0 if "variance" in w.path else 0.0)
                       for w in model.weights])


def run_layer_test(layer, input_shape, expected_shape, tmp_path):
    """Output shape, config round trip, and save/load with safe_mode=True giving the same values."""
    inputs = keras.Input(input_shape[1:])
    model = keras.Model(inputs, layer(inputs))
    randomize(model)
    x = np.random.default_rng(1).normal(size=input_shape).astype("float32")
    y = model.predict(x, verbose=0)
    assert y.shape == expected_shape
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), y, rtol=1e-5, atol=1e-5)
    return model


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("activation", ["relu", "gelu", "swish", "tanh", "sigmoid"])
def test_conv_block_activations(rank, activation, tmp_path):
    shape = (2, 16, 3) if rank == 1 else (2, 16, 16, 3)
    expected = (2, 16, 8) if rank == 1 else (2, 16, 16, 8)
    run_layer_test(ConvBlock(8, 3, rank=rank, activation=activation), shape, expected, tmp_path)


@pytest.mark.parametrize("rank", [1, 2])
def test_conv_block_all_options(rank, tmp_path):
    block = ConvBlock(12, 3, rank=rank, pooling="max", dropout=0.2, spatial_dropout=True, separable=True,
                      squeeze_excite=0.25, kernel_regularizer=1e-4)
    shape = (2, 32, 3) if rank == 1 else (2, 32, 32, 3)
    expected = (2, 16, 12) if rank == 1 else (2, 16, 16, 12)
    run_layer_test(block, shape, expected, tmp_path)


def test_conv_block_avg_pool_valid_padding(tmp_path):
    block = ConvBlock(4, 5, padding="valid", pooling="avg", dropout=0.1, batch_norm=False)
    run_layer_test(block, (1, 32, 32, 1), (1, 14, 14, 4), tmp_path)


def test_conv_block_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rank"):
        ConvBlock(8, rank=3)
    with pytest.raises(ValueError, match="activation"):
        ConvBlock(8, activation="elu6")
    with pytest.raises(ValueError, match="pooling"):
        ConvBlock(8, pooling="min")
    with pytest.raises(ValueError, match="dropout"):
        ConvBlock(8, dropout=1.5)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("kind,strides,in_ch,filters,out_ch", [
    ("basic", 1, 8, 8, 8),        # identity shortcut
    ("basic", 2, 8, 16, 16),      # projection: stride and channels change
    ("basic", 1, 8, 16, 16),      # projection: channels change
    ("bottleneck", 1, 32, 8, 32),  # identity: 4 * 8 = 32
    ("bottleneck", 2, 8, 8, 32),
])
def test_residual_block(rank, kind, strides, in_ch, filters, out_ch, tmp_path):
    block = ResidualBlock(filters, rank=rank, kind=kind, strides=strides, squeeze_excite=0.25, dropout=0.1)
    side = 8
    shape = (2, side, in_ch) if rank == 1 else (2, side, side, in_ch)
    out_side = side // strides
    expected = (2, out_side, out_ch) if rank == 1 else (2, out_side, out_side, out_ch)
    run_layer_test(block, shape, expected, tmp_path)
    projected = any(w.path.endswith("proj_conv/kernel") for w in block.weights)
    assert projected == (strides != 1 or in_ch != out_ch)


def test_residual_block_starts_as_identity_plus_activation():
    # The last BN's gamma starts at zero, so a fresh block computes relu(x) for an identity shortcut.
    block = ResidualBlock(4, rank=2)
    x = np.random.default_rng(0).normal(size=(1, 4, 4, 4)).astype("float32")
    np.testing.assert_allclose(block(x).numpy(), np.maximum(x, 0), atol=1e-6)


def test_squeeze_excite(tmp_path):
    run_layer_test(SqueezeExcite(rank=2, ratio=0.5), (2, 4, 4, 8), (2, 4, 4, 8), tmp_path)


@pytest.mark.parametrize("pooling", ["avg", "max", "flatten"])
def test_head_pooling(pooling, tmp_path):
    model = run_layer_test(ClassifierHead(5, pooling=pooling, dropout=0.2, hidden_units=8), (3, 4, 4, 6), (3, 5), tmp_path)
    probs = model.predict(np.ones((3, 4, 4, 6), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_head_on_vectors_and_sequences_sigmoid(tmp_path):
    run_layer_test(ClassifierHead(3), (2, 10), (2, 3), tmp_path)
    model = run_layer_test(ClassifierHead(4, activation="sigmoid"), (2, 7, 5), (2, 4), tmp_path)
    probs = model.predict(np.ones((2, 7, 5), "float32"), verbose=0)
    assert ((probs > 0) & (probs < 1)).all() and not np.allclose(probs.sum(1), 1.0)


def test_head_output_is_float32_under_mixed_precision():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        head = ClassifierHead(3)
        out = head(keras.ops.ones((1, 2, 2, 4)))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        assert head.dense.compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_conv_block_pool_first_matches_pooling_after_for_max(tmp_path):
    """Max pooling before batch norm and ReLU is the same function (inference: fixed statistics,
    positive scale) at a quarter of the normalised pixels; the config round trip keeps the order."""
    after = ConvBlock(6, 3, pooling="max")
    first = ConvBlock(6, 3, pooling="max", pool_first=True)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    after(x), first(x)
    weights = [w for w in after.get_weights()]
    weights[1] = np.abs(weights[1]) + 0.5  # gamma > 0: the normalisation keeps the order of values
    after.set_weights(weights), first.set_weights(weights)
    np.testing.assert_allclose(first(x, training=False), after(x, training=False), rtol=1e-5, atol=1e-5)
    assert [l.name for l in first.chain][:2] == ["conv", "pool"]
    run_layer_test(ConvBlock(6, 3, pooling="avg", pool_first=True), (2, 8, 8, 3), (2, 4, 4, 6), tmp_path)


def test_head_logit_scale_divides_the_logits_and_drops_the_bias(tmp_path):
    head = ClassifierHead(3, pooling="max", logit_scale=1 / 9)
    model = run_layer_test(head, (2, 4, 4, 5), (2, 3), tmp_path)
    assert [w.name for w in head.dense.weights] == ["kernel"]
    x = np.random.default_rng(2).normal(size=(2, 4, 4, 5)).astype("float32")
    logits = x.max(axis=(1, 2)) @ head.dense.kernel.numpy() / 9
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="logit_scale"):
        ClassifierHead(3, logit_scale=0)


def test_conv_block_batch_norm_without_scale_and_with_its_own_momentum(tmp_path):
    block = ConvBlock(4, 3, norm_scale=False, norm_momentum=0.4)
    run_layer_test(block, (2, 8, 8, 3), (2, 8, 8, 4), tmp_path)
    assert block.bn.gamma is None and block.bn.momentum == 0.4
    assert ConvBlock(4, 3).bn.momentum == 0.99


@pytest.mark.parametrize("rank,shape", [(1, (2, 9, 5)), (2, (2, 7, 7, 5))])
def test_conv_block_identity_init_copies_its_first_channels(rank, shape, tmp_path):
    # 5 inputs -> 8 filters: filters 0-4 start as copies of input channels 0-4 (before batch
    # norm and the activation), filters 5-7 random.
    block = ConvBlock(8, 3, rank=rank, batch_norm=False, activation="linear", identity_init=True)
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    y = keras.ops.convert_to_numpy(block(x))
    np.testing.assert_allclose(y[..., :5], x, atol=1e-6)
    assert np.abs(y[..., 5:]).max() > 0.01
    assert block.get_config()["identity_init"] is True
    run_layer_test(ConvBlock(8, 3, rank=rank, identity_init=True), shape, shape[:-1] + (8,), tmp_path)
    with pytest.raises(ValueError, match="separable"):
        ConvBlock(8, 3, separable=True, identity_init=True)


def test_partial_identity_with_fewer_outputs_than_inputs_and_bad_shapes():
    from cnnkit.blocks import PartialIdentity

    kernel = keras.ops.convert_to_numpy(PartialIdentity(seed=0)((3, 3, 6, 4)))
    np.testing.assert_array_equal(kernel[1, 1, :4, :4], np.eye(4))
    np.testing.assert_array_equal(kernel[1, 1, 4:, :], 0.0)  # every filter is an identity: the rest of it is 0
    assert PartialIdentity.from_config(PartialIdentity(seed=3).get_config()).seed == 3
    with pytest.raises(ValueError, match="convolution kernels"):
        PartialIdentity()((4, 4))
