"""cnnkit.train(task, model=...): a keras.Model, a function, a backbone name, a registered user
backbone from a recipe file; and the errors that name what to change."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import cnnkit
from cnnkit import api
from cnnkit.blocks import ClassifierHead, ConvBlock, ResidualBlock
from cnnkit.errors import CnnkitError

FAST = dict(epochs=1, verbose=0)


def test_a_keras_model_without_head_gets_the_tasks_head(tmp_path):
    inputs = keras.Input((None, None, 1))
    x = ConvBlock(16, 3)(inputs)
    x = ResidualBlock(16)(x)
    model = keras.Model(inputs, x, name="my_resnet")
    result = cnnkit.train("image-cls", model=model, out=str(tmp_path / "run"), limit=300, **FAST)
    assert result.metrics["backbone"] == "custom:my_resnet"
    assert result.model.get_layer("head").num_classes == 10
    loaded = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    images = np.zeros((2, 8, 8, 1), "uint8")
    np.testing.assert_allclose(loaded.predict(images, verbose=0), result.model.predict(images, verbose=0), atol=1e-5)


def test_a_function_with_its_own_classifier_gets_no_second_head(tmp_path):
    def text_cnn(input_shape, num_classes):
        inputs = keras.Input(input_shape)
        x = ConvBlock(32, 3, rank=1)(inputs)
        return keras.Model(inputs, ClassifierHead(num_classes, pooling="max")(x), name="text_cnn")

    result = cnnkit.train("text-cls", model=text_cnn, out=str(tmp_path / "run"), limit=400, **FAST)
    names = [layer.name for layer in result.model.layers]
    assert "text_cnn" in names and "head" not in names
    assert result.model.predict(np.array(["a fine film"], dtype=object), verbose=0).shape == (1, 2)


def test_a_backbone_name(tmp_path):
    result = cnnkit.train("speech-cls", model="spectrogram_cnn1d", out=str(tmp_path / "run"), **FAST)
    assert result.metrics["backbone"] == "spectrogram_cnn1d"


def test_errors_name_what_to_change(tmp_path):
    inputs = keras.Input((64,))
    flat = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(inputs))
    with pytest.raises(CnnkitError, match=r"takes inputs of shape \(None, 64\).*image-cls feeds it \(batch, 8, 8, 1\)"):
        cnnkit.train("image-cls", model=flat, out=str(tmp_path / "a"), **FAST)

    def three_classes(input_shape, num_classes):
        inputs = keras.Input(input_shape)
        x = keras.layers.GlobalAveragePooling2D()(inputs)
        return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))

    with pytest.raises(CnnkitError, match="ends in 3 class probabilities, but the data has 10 classes"):
        cnnkit.train("image-cls", model=three_classes, out=str(tmp_path / "b"), **FAST)
    with pytest.raises(CnnkitError, match="returned str, not a keras.Model"):
        cnnkit.train("image-cls", model=lambda shape, n: "not a model", out=str(tmp_path / "c"), **FAST)
    with pytest.raises(CnnkitError, match="model must be a keras.Model"):
        cnnkit.train("image-cls", model=42, out=str(tmp_path / "d"), **FAST)


def test_registered_backbone_from_a_recipe_trains_and_reloads_in_fresh_processes(tmp_path):
    (tmp_path / "my_backbones.py").write_text(textwrap.dedent('''
        import keras
        from cnnkit.backbones import register
        from cnnkit.blocks import ConvBlock

        @register("tiny_cnn", test_shape=(8, 8, 1))
        def tiny_cnn(input_shape, filters=8):
            inputs = keras.Input(input_shape)
            return keras.Model(inputs, ConvBlock(filters, 3, pooling="max")(inputs), name="tiny_cnn")
        '''))
    (tmp_path / "tiny.yaml").write_text("task: image-cls\nmodel:\n  backbone: tiny_cnn\n  backbone_args: {filters: 12}\n"
                                         "train:\n  epochs: 1\n  verbose: 0\ndata:\n  limit: 300\n")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    train = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", "tiny.yaml", "--import", "my_backbones",
                            "--out", "run"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert train.returncode == 0, train.stderr[-2000:]
    # a fresh process that never imports my_backbones loads the model safely
    load = subprocess.run([sys.executable, "-c", "import cnnkit, keras, numpy as np; "
                           "m = keras.models.load_model('run/model.keras', safe_mode=True); "
                           "print(m.get_layer('tiny_cnn').count_params(), m.predict(np.zeros((1, 8, 8, 1), 'uint8'), verbose=0).shape)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True)
    assert load.returncode == 0, load.stderr[-2000:]
    assert load.stdout.split()[-2:] == ["(1,", "10)"]
    missing = subprocess.run([sys.executable, "-m", "cnnkit.cli", "train", "tiny.yaml", "--import", "no_such_module"],
                             cwd=tmp_path, env=env, capture_output=True, text=True)
    assert missing.returncode == 2 and "--import no_such_module" in missing.stderr
