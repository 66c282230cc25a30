"""cnnkit.optimizers: the fused Adam/AdamW give Keras' results with fewer graph ops."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from cnnkit import optimizers
from cnnkit.training import OneCycleSchedule


def _model(seed=0):
    """Conv (no bias: before batch norm its gradient is rounding noise, which Adam amplifies),
    batch norm, dense: (4, 6, 6, 2) -> (4, 3)."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((6, 6, 2)), keras.layers.Conv2D(4, 3, use_bias=False), keras.layers.BatchNormalization(),
                             keras.layers.Flatten(), keras.layers.Dense(3)])


def _train(model, optimizer, steps=6, graph=True):
    """`steps` SGD steps of `optimizer` on fixed data; returns the weights."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(4, 6, 6, 2)), tf.float32)
    y = tf.constant(rng.normal(size=(4, 3)), tf.float32)

    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(x, training=True) - y) ** 2)
        optimizer.apply(tape.gradient(loss, model.trainable_variables), model.trainable_variables)

    step = tf.function(step) if graph else step
    for _ in range(steps):
        step()
    return [w.numpy() for w in model.weights]


@pytest.mark.parametrize("fused, plain, kwargs", [
    (optimizers.FusedAdam, keras.optimizers.Adam, {}),
    (optimizers.FusedAdam, keras.optimizers.Adam, {"weight_decay": 0.1}),
    (optimizers.FusedAdamW, keras.optimizers.AdamW, {"weight_decay": 0.05, "beta_1": 0.8, "epsilon": 1e-3}),
    (optimizers.SGD, keras.optimizers.SGD, {"weight_decay": 0.1, "momentum": 0.9}),
    (optimizers.RMSprop, keras.optimizers.RMSprop, {"weight_decay": 0.1}),
])
@pytest.mark.parametrize("graph", [True, False])
def test_same_weights_as_keras(fused, plain, kwargs, graph):
    lr = lambda: OneCycleSchedule(0.05, 6)  # noqa: E731  (a schedule: the decay reads it)
    ours = _train(_model(), fused(lr(), **kwargs), graph=graph)
    theirs = _train(_model(), plain(lr(), **kwargs), graph=graph)
    assert not np.allclose(ours[0], _model().weights[0].numpy())  # it trained
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _op_types(optimizer, model):
    """The op types of one traced `apply` of `optimizer` on `model`'s variables."""
    grads = [tf.ones_like(v) for v in model.trainable_variables]
    optimizer.build(model.trainable_variables)
    fn = tf.function(lambda: optimizer.apply(grads, model.trainable_variables))
    return [op.type for op in fn.get_concrete_function().graph.get_operations()]


def test_one_fused_op_per_variable_and_fewer_ops():
    model = _model()
    n = len(model.trainable_variables)
    ours = _op_types(optimizers.FusedAdamW(OneCycleSchedule(1e-3, 100), weight_decay=1e-4), model)
    theirs = _op_types(keras.optimizers.AdamW(OneCycleSchedule(1e-3, 100), weight_decay=1e-4), model)
    assert ours.count("ResourceApplyAdam") == n
    assert len(ours) < len(theirs) / 2, (len(ours), len(theirs))


def test_sparse_gradients_are_adam_of_the_summed_gradient_in_one_fused_op():
    """Embedding rows arrive as tf.IndexedSlices, a row once per occurrence: the update is Keras'
    Adam given the dense gradient (a repeated row's slices summed, as tf.keras 2 and PyTorch
    compute it), one ResourceApplyAdam for the table too. Keras' own update given the slices
    squares a repeated row's parts apart: row 1 (three times in the batch) then differs."""
    def model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(20, 4),
                                 keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])

    def train(m, opt, dense, steps=3):
        ids = tf.constant([[1, 2, 3, 4, 5], [5, 6, 7, 1, 1]])

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(m(ids) ** 2)
            grads = tape.gradient(loss, m.trainable_variables)
            assert isinstance(grads[0], tf.IndexedSlices)
            opt.apply([tf.convert_to_tensor(g) for g in grads] if dense else grads, m.trainable_variables)

        for _ in range(steps):
            step()
        return [w.numpy() for w in m.weights]

    ours = train(model(), optimizers.FusedAdamW(0.1, weight_decay=0.01), dense=False)
    dense = train(model(), keras.optimizers.AdamW(0.1, weight_decay=0.01), dense=True)
    for a, b in zip(ours, dense):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # One step: row 1 (three times in the batch) differs from Keras' slice-wise update, row 2 (once) does not.
    ours = train(model(), optimizers.FusedAdamW(0.1, weight_decay=0.01), dense=False, steps=1)
    keras_slices = train(model(), keras.optimizers.AdamW(0.1, weight_decay=0.01), dense=False, steps=1)
    assert not np.allclose(ours[0][1], keras_slices[0][1], rtol=1e-3)
    np.testing.assert_allclose(ours[0][2], keras_slices[0][2], rtol=1e-5, atol=1e-6)
    table = keras.Variable(np.zeros((6, 3), "float32"))
    opt = optimizers.FusedAdam(0.1)
    opt.build([table])
    slices = tf.IndexedSlices(tf.ones((2, 3)), tf.constant([1, 1], tf.int64), tf.constant([6, 3], tf.int64))
    ops = [op.type for op in tf.function(lambda: opt.apply([slices], [table])).get_concrete_function().graph.get_operations()]
    assert ops.count("ResourceApplyAdam") == 1, ops


def _sparse_step(opt, table, indices, values):
    """One `apply` of a tf.IndexedSlices gradient (rows `indices` of `values`) to `table`."""
    opt.apply([tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices, tf.int64), tf.shape(table))], [table])


def test_sparse_updates_first_step_equals_adam_and_sums_repeated_rows():
    """Step 1 of lazy Adam is Adam's on the dense gradient (untouched rows have zero moments in
    both); a row twice in the gradient (a word twice in a batch) counts once with the sum of its
    two gradients. (Keras' Adam given the IndexedSlices itself squares the two parts apart.)"""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3)).astype("float32")
    values = rng.normal(size=(3, 3)).astype("float32")
    ours, theirs = keras.Variable(start), keras.Variable(start)
    _sparse_step(optimizers.FusedAdam(0.1, sparse_updates=True), ours, [4, 1, 4], values)
    dense = tf.convert_to_tensor(tf.IndexedSlices(tf.constant(values), tf.constant([4, 1, 4], tf.int64), tf.shape(theirs)))
    keras.optimizers.Adam(0.1).apply([dense], [theirs])
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours.numpy()[[1, 4]], start[[1, 4]])
    np.testing.assert_array_equal(ours.numpy()[[0, 2, 3, 5]], start[[0, 2, 3, 5]])


@pytest.mark.parametrize("graph", [True, False])
def test_sparse_updates_leave_absent_rows_and_their_moments(graph):
    """Step 2 touches row 2 only: row 1 keeps its value and moments (Keras' Adam moves it on
    its momentum and decays its moments), row 2 gets Adam's row update."""
    start = np.arange(12, dtype="float32").reshape(4, 3) / 10
    table = keras.Variable(start)
    opt = optimizers.FusedAdam(0.1, sparse_updates=True)
    step = (lambda i, g: _sparse_step(opt, table, i, g))
    step = tf.function(step) if graph else step
    step([1], [[1.0, -2.0, 0.5]])
    after_one, m1 = table.numpy().copy(), opt._momentums[0].numpy().copy()
    step([2], [[0.3, 0.3, -0.3]])
    np.testing.assert_array_equal(table.numpy()[1], after_one[1])
    np.testing.assert_array_equal(opt._momentums[0].numpy()[1], m1[1])
    # row 2's first update: m = 0.1 g, v = 0.001 g^2, step = lr * sqrt(1 - b2^2) / (1 - b1^2) * m / (sqrt(v) + eps)
    g = np.array([0.3, 0.3, -0.3])
    m, v = 0.1 * g, 0.001 * g ** 2
    expected = start[2] - 0.1 * np.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2) * m / (np.sqrt(v) + 1e-7)
    np.testing.assert_allclose(table.numpy()[2], expected, rtol=1e-5)


def test_sparse_updates_train_an_embedding_model_and_dense_variables_stay_fused():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((2,), dtype="int32"), keras.layers.Embedding(50, 4),
                          keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2, activation="softmax")])
    m.compile(optimizers.FusedAdam(0.05, sparse_updates=True), "sparse_categorical_crossentropy", metrics=["accuracy"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 50, (200, 2))
    y = (x[:, 0] < 25).astype("int32")  # the first word decides the class
    m.fit(x, y, epochs=15, batch_size=20, verbose=0)
    loss, accuracy = m.evaluate(x, y, verbose=0)
    assert accuracy > 0.9 and loss < 0.45, (loss, accuracy)  # chance: 0.5, loss 0.69
    opt = optimizers.FusedAdam(0.05, sparse_updates=True)
    assert _op_types(opt, _model()).count("ResourceApplyAdam") == len(_model().trainable_variables)


def test_under_a_strategy_keras_update():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        m, opt = _model(), optimizers.FusedAdam(0.05, weight_decay=0.1)
        grads = [tf.ones_like(v) for v in m.trainable_variables]
        before = m.weights[0].numpy()

    @tf.function
    def step():
        strategy.run(lambda: opt.apply(grads, m.trainable_variables))

    step()
    assert not np.allclose(m.weights[0].numpy(), before)
    types = [op.type for op in step.get_concrete_function().graph.get_operations()]
    assert "ResourceApplyAdam" not in types


def test_config_round_trip():
    opt = optimizers.FusedAdamW(OneCycleSchedule(2e-3, 50), weight_decay=5e-4)
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is optimizers.FusedAdamW
    assert again.get_config()["weight_decay"] == pytest.approx(5e-4)
    lazy = keras.optimizers.deserialize(keras.optimizers.serialize(optimizers.FusedAdam(1e-3, sparse_updates=True)))
    assert lazy.sparse_updates is True and optimizers.FusedAdam(1e-3).sparse_updates is False


def test_mixed_float16_loss_scaling_gives_keras_results():
    """Under mixed_float16 Keras wraps the optimizer in a LossScaleOptimizer: same losses."""
    losses = []
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        for cls in (optimizers.FusedAdamW, keras.optimizers.AdamW):
            keras.utils.set_random_seed(0)
            m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3),
                                  keras.layers.Activation("softmax", dtype="float32")])
            m.compile(cls(1e-2, weight_decay=1e-3), "sparse_categorical_crossentropy")
            assert isinstance(m.optimizer, keras.optimizers.LossScaleOptimizer)
            x = np.random.RandomState(0).rand(64, 8).astype("float32")
            y = (x[:, 0] * 3).astype("int64").clip(0, 2)
            losses.append(m.fit(x, y, epochs=3, batch_size=16, verbose=0).history["loss"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert losses[0][-1] < losses[0][0]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_sgd_bias_lr_scale_multiplies_only_the_steps_of_biases_and_shifts():
    """One step: kernels move as with plain SGD, biases and batch-norm shifts `bias_lr_scale`
    times as far; the weight decay is not scaled. The config round trip keeps the factor."""
    import keras
    import numpy as np

    from cnnkit.optimizers import SGD

    def one_step(scale):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((3,))
        x = keras.layers.Dense(4, name="hidden")(inputs)
        x = keras.layers.BatchNormalization(scale=False, name="bn")(x)
        model = keras.Model(inputs, keras.layers.Dense(2, name="out")(x))
        model.compile(SGD(0.05, momentum=0.5, nesterov=True, bias_lr_scale=scale), "mse")
        before = {w.path: w.numpy().copy() for w in model.trainable_weights}
        x_, y_ = np.random.default_rng(0).normal(size=(8, 3)), np.random.default_rng(1).normal(size=(8, 2))
        model.fit(x_, y_, batch_size=8, epochs=1, verbose=0, shuffle=False)
        return {w.path: w.numpy() - before[w.path] for w in model.trainable_weights}, model.optimizer

    plain, _ = one_step(1.0)
    scaled, opt = one_step(4.0)
    for path, step in plain.items():
        factor = 4.0 if path.endswith(("bias", "beta")) else 1.0
        np.testing.assert_allclose(scaled[path], factor * step, rtol=1e-4, atol=1e-7, err_msg=path)
    assert any(np.abs(s).max() > 0 for p, s in plain.items() if p.endswith("beta"))
    assert SGD.from_config(opt.get_config()).bias_lr_scale == 4.0
