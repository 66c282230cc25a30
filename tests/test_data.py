"""cnnkit.data.load: each task's tf.data datasets and preprocessing layers, used with plain Keras."""
import keras
import numpy as np
import pytest

import cnnkit.data


@pytest.mark.parametrize("task,options,raw_shape,feature_rank", [
    ("image-cls", dict(limit=300), (8, 8, 1), 4),
    ("text-cls", dict(limit=400), (), 2),
    ("speech-cls", dict(), None, 4),
])
def test_load_gives_datasets_and_a_preprocessing_layer(task, options, raw_shape, feature_rank):
    d = cnnkit.data.load(task, batch_size=16, **options)
    x, y = next(iter(d.train))
    assert x.shape[0] == 16 and y.shape == (16,)
    if raw_shape is not None:
        assert tuple(x.shape[1:]) == raw_shape == d.input_shape
    assert d.val is not None and d.num_classes >= 2
    features = d.preprocessing(x)
    assert len(features.shape) == feature_rank
    # a user's own model on top, trained with plain keras fit
    inputs = keras.Input(d.input_shape, dtype=d.input_dtype)
    z = d.preprocessing(inputs)
    if task == "text-cls":
        z = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(d.vocabulary_size, 8)(z))
    else:
        z = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(z))
    model = keras.Model(inputs, keras.layers.Dense(d.num_classes, activation="softmax")(z))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(d.train.take(2), validation_data=d.val.take(1), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_image_preprocessing_normalises_with_training_statistics():
    d = cnnkit.data.load("image-cls", limit=500)
    x = np.concatenate([b.numpy() for b, _ in d.train.take(5)])
    out = keras.ops.convert_to_numpy(d.preprocessing(x))
    assert abs(out.mean()) < 0.3 and 0.6 < out.std() < 1.4
