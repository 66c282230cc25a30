"""Transfer learning (cnnkit.transfer): --from RUN_DIR, `cnnkit finetune`, cnnkit.finetune,
two-phase fine-tuning, and the errors of a wrong start."""
import csv
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

import cnnkit
from cnnkit import api, transfer
from cnnkit.blocks import ConvBlock
from cnnkit.cli import main as cli_main
from cnnkit.errors import CnnkitError

QUIET = dict(verbose=0)


def digits_npz(path: Path, classes) -> str:
    """scikit-learn's 8x8 digits of `classes` as an .npz (uint8 images), a fixed 25 % test part."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.isin(d.target, classes)
    x = np.round(d.images[keep] * (255.0 / 16.0)).astype("uint8")
    y = d.target[keep]
    test = np.arange(len(y)) % 4 == 0
    np.savez(path, x_train=x[~test], y_train=y[~test], x_test=x[test], y_test=y[test])
    return str(path)


@pytest.fixture(scope="module")
def image_source(tmp_path_factory):
    """A finished image-cls run on digits 0-4 (3 epochs)."""
    tmp = tmp_path_factory.mktemp("source")
    result = cnnkit.train("image-cls", digits_npz(tmp / "d04.npz", [0, 1, 2, 3, 4]), out=str(tmp / "run"),
                          epochs=3, **QUIET)
    return result


def backbone_weights(model):
    return [keras.ops.convert_to_numpy(w) for w in model.get_layer("resnet20").weights]


def test_head_only_phase_keeps_the_source_backbone_exactly(image_source, tmp_path):
    """One epoch, all of it the frozen phase: the backbone (batch-norm statistics included) is
    the source's, bit for bit; only the new 5-class head learned."""
    target = digits_npz(tmp_path / "d59.npz", [5, 6, 7, 8, 9])
    result = cnnkit.finetune(image_source.run_dir, target, out=str(tmp_path / "ft"), epochs=1, freeze_epochs=1, **QUIET)
    assert result.metrics["fine_tuning"]["head_epochs"] == 1 and result.metrics["fine_tuning"]["finetune_epochs"] == 0
    for a, b in zip(backbone_weights(image_source.model), backbone_weights(result.model)):
        np.testing.assert_array_equal(a, b)
    assert json.loads((result.run_dir / "labels.json").read_text()) == ["5", "6", "7", "8", "9"]
    assert result.model.get_layer("head").num_classes == 5
    # the saved model is fully trainable again (no frozen flags left from the schedule)
    loaded = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    assert all(layer.trainable for layer in loaded._flatten_layers(include_self=False, recursive=True))


def test_the_input_normalisation_keeps_the_new_datas_statistics(image_source, tmp_path):
    """The task's input Normalization is adapted on the new data and keeps its statistics (the
    backbone gets inputs standardised as in its first training); the network that trains
    normalises as the saved one does. Before, the source's statistics were assigned without
    taking effect: the saved model scored its validation split 0.27 where training had measured
    0.47. Inverted digits make the two sets of statistics far apart."""
    inverted = tmp_path / "inverted.npz"
    with np.load(digits_npz(tmp_path / "d59.npz", [5, 6, 7, 8, 9])) as d:
        np.savez(inverted, **{k: 255 - v if k.startswith("x") else v for k, v in d.items()})
        new_mean = float(np.mean(255 - d["x_train"]))
    result = cnnkit.finetune(image_source.run_dir, str(inverted), out=str(tmp_path / "ft"), epochs=1,
                             freeze_epochs=1, **QUIET)
    mean = float(keras.ops.convert_to_numpy(result.model.get_layer("normalize").mean).ravel()[0])
    assert abs(mean - new_mean) < 5.0  # adapted on (a sample of) the new training images
    with open(result.run_dir / "history.csv") as f:
        last = list(csv.DictReader(f))[-1]
    # one head-only epoch: the saved model is the network of that epoch, and scores as it did
    assert result.metrics["val_accuracy"] == pytest.approx(float(last["val_accuracy"]), abs=1e-6)


def test_a_keras_model_with_a_normalization_inside_trains_with_its_statistics(tmp_path):
    """A Normalization inside a given network (EfficientNet has one) keeps the statistics it was
    adapted with, in the network that trains as in the saved one (copies of it had mean 0 and
    variance 1 while training)."""
    inputs = keras.Input((8, 8, 1))
    norm = keras.layers.Normalization(name="own_norm")
    norm.adapt(np.linspace(150.0, 250.0, 4 * 64, dtype="float32").reshape(4, 8, 8, 1))
    x = keras.layers.GlobalAveragePooling2D()(ConvBlock(8, 3)(norm(inputs)))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="mine")
    result = cnnkit.finetune(model, digits_npz(tmp_path / "d.npz", [0, 1, 2]), task="image-cls",
                             out=str(tmp_path / "ft"), epochs=1, freeze_epochs=1, **QUIET)
    copied = next(l for l in result.model._flatten_layers(recursive=True) if l.name == "own_norm")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copied.mean).ravel(), [200.0], rtol=1e-5)
    with open(result.run_dir / "history.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert result.metrics["val_accuracy"] == pytest.approx(float(last["val_accuracy"]), abs=1e-6)


def test_cli_finetune_runs_two_phases_and_beats_chance(image_source, tmp_path, capsys):
    target = digits_npz(tmp_path / "d59.npz", [5, 6, 7, 8, 9])
    out = tmp_path / "ft"
    code = cli_main(["finetune", str(image_source.run_dir), "--data", target, "--out", str(out), "--epochs", "4",
                     "--unfreeze", "3", "--finetune-lr", "1e-4", "--set", "train.verbose=0"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    # 10 steps an epoch: the head gets 100 steps at most half the epochs (2); 10 x lr
    assert metrics["fine_tuning"] == {"head_epochs": 2, "finetune_epochs": 2, "head_lr": 0.02, "finetune_lr": 0.0001,
                                      "unfreeze": "3", "trainable_layers": 2}  # the top 3 less a batch norm
    history = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in history] == [0, 1, 2, 3]
    assert metrics["test_accuracy"] > 0.5  # 5 classes: chance is 0.2
    cfg = api.config_from_run(__import__("yaml").safe_load((out / "config.yaml").read_text()))
    assert cfg.model.from_run == str(image_source.run_dir.resolve())
    assert cfg.preprocess.image_size == [8, 8] and cfg.model.backbone == "resnet20"
    # a finished two-phase run resumed trains no further epoch
    again = api.train(None, resume=str(out))
    assert again.metrics["epochs_run_this_call"] == 0


def test_unfreeze_counts_layers_from_the_top_and_keeps_batch_norm_frozen(image_source):
    model = keras.models.clone_model(image_source.model)
    transfer.freeze_body(model)
    assert [l.name for l in model.layers if l.trainable] == ["head"]
    body = transfer.body_layers(model)
    assert transfer.unfreeze(model, "none") == 0
    n_all = transfer.unfreeze(model, "all")
    assert n_all == sum(not isinstance(l, keras.layers.BatchNormalization) for l in body)
    assert not any(l.trainable for l in body if isinstance(l, keras.layers.BatchNormalization))
    transfer.unfreeze(model, 4)
    assert [l.trainable for l in body[:-4]] == [False] * (len(body) - 4)
    with pytest.raises(CnnkitError, match="train.unfreeze"):
        transfer.unfreeze(model, "top")


def test_text_run_extends_the_source_vocabulary(tmp_path):
    source = cnnkit.train("text-cls", out=str(tmp_path / "src"), epochs=1, limit=600, **QUIET)
    base = source.model.get_layer("vectorize").get_vocabulary()
    rows = [("the zyxwv service was quick", "fast"), ("slow qwerty answers all day", "slow")] * 40
    (tmp_path / "new").mkdir()
    with open(tmp_path / "new" / "train.csv", "w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *rows])
    result = cnnkit.finetune(source.run_dir, str(tmp_path / "new"), out=str(tmp_path / "ft"), epochs=1,
                             freeze_epochs=1, **QUIET)
    vocab = result.model.get_layer("vectorize").get_vocabulary()
    assert vocab[: len(base)] == base and "zyxwv" in vocab[len(base):] and "qwerty" in vocab[len(base):]
    old = keras.ops.convert_to_numpy(source.model.get_layer("embedding").embeddings)
    new = keras.ops.convert_to_numpy(result.model.get_layer("embedding").embeddings)
    np.testing.assert_array_equal(new[: len(base)], old)  # frozen phase: the source's vectors, unchanged
    assert new.shape[0] == len(vocab)
    assert result.model.get_layer("head").num_classes == 2
    # subwords (on by default): the source's n-gram vectors, and an n-gram table for the new words too
    sub_old, sub_new = source.model.get_layer("subwords"), result.model.get_layer("subwords")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(sub_new.vectors), keras.ops.convert_to_numpy(sub_old.vectors))
    g_old, g_new = (keras.ops.convert_to_numpy(layer.grams) for layer in (sub_old, sub_new))
    np.testing.assert_array_equal(g_new[: len(base), : g_old.shape[1]], g_old)
    assert (g_new[vocab.index("zyxwv")] > 0).sum() == 12  # "<zyxwv>": five 3-grams, four 4-grams, three 5-grams


def test_speech_run_fine_tunes_on_other_words(tmp_path):
    root = Path(api.__file__).parent / "_data" / "spoken_digits"
    for name, digits in (("src", "01234"), ("tgt", "56789")):
        for split in ("train", "test"):
            for d in digits:
                (tmp_path / name / split).mkdir(parents=True, exist_ok=True)
                os.symlink(root / split / d, tmp_path / name / split / d)
    source = cnnkit.train("speech-cls", str(tmp_path / "src"), out=str(tmp_path / "src-run"), epochs=2, **QUIET)
    result = cnnkit.finetune(source.run_dir, str(tmp_path / "tgt"), out=str(tmp_path / "ft"), epochs=2, **QUIET)
    assert result.config.preprocess.clip_seconds == source.config.preprocess.clip_seconds
    assert result.metrics["fine_tuning"]["head_epochs"] == 1
    assert json.loads((result.run_dir / "labels.json").read_text()) == list("56789")


@pytest.mark.parametrize("own_classifier", [False, True])
def test_a_run_of_a_network_from_python_fine_tunes_from_its_folder(tmp_path, own_classifier):
    """`cnnkit finetune RUN` of a run trained with `cnnkit.train(..., model=fn)`: the run's trained
    network (its own classifier dropped) under a new head; the old message sent users to
    finetune model.keras, which failed ("Output ... is not connected to inputs")."""
    def mine(input_shape, num_classes):
        inputs = keras.Input(input_shape)
        x = ConvBlock(8, 3, name="pretrained_conv")(inputs)
        if own_classifier:
            x = keras.layers.GlobalAveragePooling2D()(x)
            x = keras.layers.Dense(num_classes, activation="softmax", name="own_classifier")(x)
        return keras.Model(inputs, x)

    source = cnnkit.train("image-cls", digits_npz(tmp_path / "d04.npz", [0, 1, 2, 3, 4]), model=mine,
                          out=str(tmp_path / "src"), epochs=1, **QUIET)
    nested = next(l for l in source.model.layers if isinstance(l, keras.Model))
    kernel = keras.ops.convert_to_numpy(nested.get_layer("pretrained_conv").weights[0]).copy()
    assert cli_main(["finetune", str(source.run_dir), "--data", digits_npz(tmp_path / "d59.npz", [5, 6, 7, 8, 9]),
                     "--out", str(tmp_path / "ft"), "--epochs", "1", "--freeze-epochs", "1",
                     "--set", "train.verbose=0"]) == 0
    model = api.load_run(str(tmp_path / "ft"))[0]  # reloads in safe mode
    assert model.get_layer("head").num_classes == 5
    trained = next(l for l in model._flatten_layers(recursive=True) if l.name == "pretrained_conv")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(trained.weights[0]), kernel)  # body frozen in phase 1
    assert not any(l.name == "own_classifier" for l in model._flatten_layers(recursive=True))
    metrics = json.loads((tmp_path / "ft" / "metrics.json").read_text())
    assert metrics["backbone"] == "custom:mine" and metrics["fine_tuning"]["head_epochs"] == 1


def test_finetune_of_a_keras_model_drops_its_classifier(tmp_path):
    inputs = keras.Input((None, None, 1))
    x = ConvBlock(8, 3, name="pretrained_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="mine")
    kernel = keras.ops.convert_to_numpy(model.get_layer("pretrained_conv").weights[0]).copy()
    result = cnnkit.finetune(model, digits_npz(tmp_path / "d.npz", list(range(10))), task="image-cls",
                             out=str(tmp_path / "ft"), epochs=1, freeze_epochs=1, **QUIET)
    assert result.metrics["backbone"] == "custom:mine_body" and result.model.get_layer("head").num_classes == 10
    assert result.metrics["fine_tuning"]["head_epochs"] == 1
    trained = next(l for l in result.model._flatten_layers(recursive=True) if l.name == "pretrained_conv")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(trained.weights[0]), kernel)
    with pytest.raises(CnnkitError, match="task="):
        cnnkit.finetune(model, "builtin:digits")


@pytest.mark.slow  # about a minute on a 2-core CPU: run with --runslow
def test_weights_file_starts_two_phases(tmp_path):
    """--weights PATH of a keras.applications backbone is a pretrained start."""
    from cnnkit import backbones

    app = backbones.get("mobilenet_v3_small", (32, 32, 3)).layers[-1]
    path = tmp_path / "mine.weights.h5"
    app.save_weights(path)
    result = cnnkit.train("image-cls", out=str(tmp_path / "run"), backbone="mobilenet_v3_small", weights=str(path),
                          image_size=[32, 32], epochs=2, limit=200, **QUIET)
    assert result.metrics["fine_tuning"]["head_epochs"] == 1


def test_wrong_starts_name_the_fix(image_source, tmp_path):
    text_run = cnnkit.train("text-cls", out=str(tmp_path / "text"), epochs=1, limit=300, **QUIET)
    with pytest.raises(CnnkitError, match="text-cls run, but this is image-cls"):
        cnnkit.train("image-cls", from_run=str(text_run.run_dir), epochs=1)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text((image_source.run_dir / "config.yaml").read_text())
    with pytest.raises(CnnkitError, match="no model.keras"):
        cnnkit.finetune(str(unfinished), "builtin:digits")
    with pytest.raises(CnnkitError, match="not a cnnkit run directory"):
        cnnkit.finetune(str(tmp_path / "nowhere"), "builtin:digits")
    with pytest.raises(CnnkitError, match="train.unfreeze"):
        cnnkit.finetune(image_source.run_dir, "builtin:digits", unfreeze="top")


@pytest.mark.slow  # about a minute on a 2-core CPU: run with --runslow
def test_a_run_stopped_after_the_head_phase_resumes_in_the_second(image_source, tmp_path):
    """Stopped between the phases (phase 2's backup, its history rows and the model gone, as a
    kill leaves them): a resume skips the head phase and trains only the remaining epochs."""
    import shutil

    target = digits_npz(tmp_path / "d59.npz", [5, 6, 7, 8, 9])
    out = tmp_path / "ft"
    cnnkit.finetune(image_source.run_dir, target, out=str(out), epochs=4, freeze_epochs=2, **QUIET)
    shutil.rmtree(out / "checkpoints" / "backup")
    lines = (out / "history.csv").read_text().splitlines(keepends=True)
    (out / "history.csv").write_text("".join(lines[:3]))  # header + the two head epochs
    (out / "model.keras").unlink()
    (out / "metrics.json").unlink()
    resumed = api.train(None, resume=str(out))
    assert resumed.metrics["epochs_run_this_call"] == 2
    assert [int(r["epoch"]) for r in csv.DictReader(open(out / "history.csv"))] == [0, 1, 2, 3]
