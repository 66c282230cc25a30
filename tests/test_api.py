"""End to end through the Python API: train -> run directory -> reload -> evaluate -> predict -> resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from cnnkit import api
from cnnkit.errors import CnnkitError
from tests.conftest import write_image

FAST = dict(epochs=2, batch_size=32, verbose=0)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    return api.train("image-cls", out=str(out), backbone="simple_cnn", sets=["model.backbone_args={filters: [16, 32]}"],
                     **FAST)


def test_run_directory_contents(digits_run):
    run = digits_run.run_dir
    for name in ("config.yaml", "model.keras", "labels.json", "history.csv", "metrics.json", "checkpoints", "logs"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "macro_f1", "train_seconds", "train_samples_per_second", "epochs"):
        assert key in metrics, key
    assert metrics["epochs"] == 2 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert json.loads((run / "labels.json").read_text()) == [str(i) for i in range(10)]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["preprocess"]["image_size"] == [8, 8] and cfg["preprocess"]["channels"] == 1
    assert cfg["preprocess"]["flip"] == "none"  # auto: no flips for grey images
    assert (run / "evaluation" / "confusion.png").stat().st_size > 1000


def test_saved_model_is_end_to_end_and_reloads_safely(digits_run):
    model = keras.models.load_model(digits_run.run_dir / "model.keras", safe_mode=True)
    assert not [l for l in model.layers if l.name.startswith("aug_")]  # augmentation removed
    x = np.random.default_rng(0).integers(0, 255, (4, 8, 8, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), digits_run.model.predict(x, verbose=0), atol=1e-5)
    # a direct call (training unset) is inference too: batch norm must not use batch statistics
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), model.predict(x, verbose=0), atol=1e-5)
    # any input size: the model resizes
    big = np.repeat(np.repeat(x, 4, axis=1), 4, axis=2)
    assert model.predict(big, verbose=0).shape == (4, 10)


def test_training_into_a_finished_run_is_refused_and_the_run_kept(digits_run):
    """`--out` a folder that holds a run: refused before any training (it used to restore that
    run's backup into the new model and fail in Keras' loader, with the old files overwritten);
    the run's files are left as they were."""
    import re

    run = digits_run.run_dir
    before = {f.name: f.stat().st_mtime_ns for f in run.iterdir() if f.is_file()}
    name = re.escape(str(run))
    with pytest.raises(CnnkitError, match=f"{name} already holds a run \\(config.yaml, model.keras.*--resume {name}"):
        api.train("text-cls", out=str(run), **FAST)
    assert {f.name: f.stat().st_mtime_ns for f in run.iterdir() if f.is_file()} == before


def test_metrics_match_a_fresh_evaluation(digits_run, tmp_path):
    m = api.evaluate(str(digits_run.run_dir), "builtin:digits", out=str(tmp_path / "eval"))
    assert m["accuracy"] == pytest.approx(digits_run.metrics["test_accuracy"], abs=1e-6)
    for name in ("metrics.json", "report.txt", "confusion.csv", "confusion.png", "misclassified.csv"):
        assert (tmp_path / "eval" / name).exists()
    rows = (tmp_path / "eval" / "misclassified.csv").read_text().strip().splitlines()
    assert len(rows) - 1 == round((1 - m["accuracy"]) * m["num_examples"])


def test_predict_files_folders_and_globs(digits_run, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    for i in range(3):
        write_image(tmp_path / "in" / f"{i}.png", (d.images[i] * 16).astype("uint8"))
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    out = api.predict(str(digits_run.run_dir), [str(tmp_path / "in")], top_k=2)
    assert [Path(r["input"]).name for r in out] == ["0.png", "1.png", "2.png"]
    assert all(len(r["predictions"]) == 2 for r in out)
    out = api.predict(str(digits_run.run_dir), [str(tmp_path / "in" / "*.png")], top_k=20)
    assert len(out) == 3 and len(out[0]["predictions"]) == 10
    with pytest.raises(CnnkitError, match="matches no file"):
        api.predict(str(digits_run.run_dir), [str(tmp_path / "nothing-*.png")])
    # a table of file names without labels (Kaggle's test.csv of ids beside in/): a prediction a
    # file it names, a missing one skipped; before, the CSV itself was "an image" that could not be decoded
    # Each is named by its cell, the id a submission needs (before: by its path); a file given
    # beside the table (a path the table names too) by its path, a broken file named by the table skipped.
    (tmp_path / "test.csv").write_text("id\n2\n0\n9\nbroken\n1\n")
    out = api.predict(str(digits_run.run_dir), [str(tmp_path / "test.csv"), str(tmp_path / "in" / "1.png")])
    assert [r["input"] for r in out] == ["2", "0", "1", str(tmp_path / "in" / "1.png")]
    assert out[2]["predictions"] == out[3]["predictions"]
    (tmp_path / "notes.csv").write_text("note\nhello\n")
    with pytest.raises(CnnkitError, match="notes.csv: no column names .*png.* files"):
        api.predict(str(digits_run.run_dir), [str(tmp_path / "notes.csv")])


def test_predict_arrays_in_memory(digits_run, tmp_path, capsys):
    """A NumPy array holds the inputs themselves (before: "The truth value of an array ... is
    ambiguous"): the same predictions as the files of the same images, for one image, a batch,
    a batch without channel axis, floats 0-1 and another size."""
    from sklearn.datasets import load_digits

    images = (load_digits().images[:3] * 16).astype("uint8")  # (3, 8, 8)
    for i, image in enumerate(images):
        write_image(tmp_path / f"{i}.png", image)
    run = str(digits_run.run_dir)
    files = api.predict(run, [str(tmp_path / f"{i}.png") for i in range(3)], top_k=3)
    probs = lambda out: [[p["probability"] for p in r["predictions"]] for r in out]  # noqa: E731
    for x in (images, images[..., None], images / 255.0):
        out = api.predict(run, x, top_k=3)
        assert [r["input"] for r in out] == ["array[0]", "array[1]", "array[2]"]
        assert [[p["label"] for p in r["predictions"]] for r in out] == [[p["label"] for p in r["predictions"]]
                                                                        for r in files]
        np.testing.assert_allclose(probs(out), probs(files), atol=2e-3)
    assert "scaled to 0-255" in capsys.readouterr().err
    assert len(api.predict(run, images[0])) == 1  # one image
    assert len(api.predict(run, np.repeat(np.repeat(images, 3, 1), 3, 2))) == 3  # 24 x 24: resized as files are
    with pytest.raises(CnnkitError, match=r"predicts on images.*Received an array of shape \(3, 8, 8, 8\)"):
        api.predict(run, np.zeros((3, 8, 8, 8)))


def test_image_folder_end_to_end(image_folder, tmp_path):
    result = api.train("image-cls", str(image_folder), out=str(tmp_path / "run"), backbone="resnet8", epochs=3,
                       batch_size=8, verbose=0, test_split=0.25)
    cfg = result.config
    assert cfg.preprocess.image_size == [12, 12] and cfg.preprocess.channels == 3 and cfg.preprocess.flip == "horizontal"
    assert result.metrics["num_train"] == 24 and "test_accuracy" in result.metrics
    preds = api.predict(str(result.run_dir), [str(image_folder / "cat" / "0.png")])
    assert preds[0]["predictions"][0]["label"] in ("cat", "dog", "fox")
    with pytest.raises(CnnkitError, match="never trained on"):
        api.evaluate(str(result.run_dir), "builtin:digits")


@pytest.mark.slow  # about a minute on a 2-core CPU: run with --runslow
def test_cache_modes_train_the_same_model(image_folder, tmp_path):
    """--cache disk|none stream the files instead of holding them decoded; with the same seed
    the shuffles match, so the run is the same as in memory."""
    runs = {}
    for cache in ("memory", "disk", "none"):
        runs[cache] = api.train("image-cls", str(image_folder), out=str(tmp_path / cache), backbone="resnet8", epochs=2,
                                batch_size=8, verbose=0, test_split=0.25, deterministic=True, cache=cache)
    assert runs["disk"].config.data.cache == "disk"
    for cache in ("disk", "none"):
        assert runs[cache].metrics["num_train"] == runs["memory"].metrics["num_train"]
        assert np.allclose(runs[cache].history["loss"], runs["memory"].history["loss"], rtol=1e-5)
        assert runs[cache].metrics["test_accuracy"] == runs["memory"].metrics["test_accuracy"]
    assert not any((tmp_path / "cnnkit-cache" / "decoded").glob("*/images*")), "disk caches are removed after the run"
    with pytest.raises(CnnkitError, match="data.cache 'disk' is not available for text-cls: choose one of memory"):
        api.train("text-cls", out=str(tmp_path / "t"), cache="disk", **FAST)


def test_text_given_to_image_task(tmp_path):
    """The error names the mismatch; the run folder the call made is removed again (it is
    empty), a folder the user made is kept."""
    (tmp_path / "t.csv").write_text("text,label\na,x\nb,y\nc,x\nd,y\n")
    with pytest.raises(CnnkitError, match="holds text, not images"):
        api.train("image-cls", str(tmp_path / "t.csv"), out=str(tmp_path / "r"), **FAST)
    assert not (tmp_path / "r").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(CnnkitError, match="holds text, not images"):
        api.train("image-cls", str(tmp_path / "t.csv"), out=str(tmp_path / "mine"), **FAST)
    assert (tmp_path / "mine").is_dir()


def test_recipe_file_and_unknown_backbone(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("# for my scans: cnnkit train r.yaml --data scans.zip\n"
                      "task: image-cls\nmodel: {backbone: lenet5}\ntrain: {epochs: 1}\npreprocess: {image_size: [28, 28]}\n")
    cfg = api.resolve_config(str(recipe), epochs=None, lr=0.01)
    assert cfg.model.backbone == "lenet5" and cfg.train.epochs == 1 and cfg.train.lr == 0.01
    assert cfg.data.source == "builtin:digits"
    # without --data a recipe's settings meet the embedded sample: the log says so and names its data
    err = capsys.readouterr().err
    assert "r.yaml without --data" in err and "builtin:digits" in err and "cnnkit train r.yaml --data scans.zip" in err
    api.resolve_config(str(recipe), data=str(tmp_path))
    assert "without --data" not in capsys.readouterr().err
    with pytest.raises(CnnkitError, match="Unknown backbone 'nope'"):
        api.train("image-cls", out=str(tmp_path / "x"), backbone="nope")
    assert not (tmp_path / "x").exists()
    with pytest.raises(CnnkitError, match="Unknown task 'image-seg'. Known tasks: image-cls"):
        api.train("image-seg")


def test_shipped_recipes_resolve():
    from cnnkit import tasks

    assert {"mnist", "mnist-lenet5", "cifar10"} <= set(api.recipe_names())
    for name in api.recipe_names():
        assert api.resolve_config(name).task in tasks.names()


def test_text_recipes_share_one_set_of_settings():
    """The sentence benchmarks' recipes differ only in MR's cross-validation: one set of settings
    for every sentence data set (issue 4), an ensemble whose members stop after one epoch without a
    lower validation loss, where one network of the task keeps the task's patience."""
    configs = {name: api.resolve_config(name).to_dict() for name in ("mr", "sst2", "sst5", "trec")}
    assert configs["mr"]["data"].pop("cv") == 10
    for name in ("sst2", "sst5", "trec"):
        assert configs[name]["data"].pop("cv") in (None, 0, 1)
    assert all(c == configs["sst5"] for c in configs.values())
    assert configs["sst5"]["model"]["members"] == 5 and configs["sst5"]["train"]["early_stopping"] == 1
    assert api.resolve_config("text-cls").train.early_stopping == 2


@pytest.mark.parametrize("flags", [dict(precision="mixed_bfloat16"), dict(strategy="mirrored"),
                                   dict(jit_compile=True)])
def test_precision_strategy_and_xla_flags_train(flags, tmp_path):
    result = api.train("image-cls", out=str(tmp_path / "run"), backbone="resnet8", epochs=1, limit=300,
                       verbose=0, **flags)
    assert keras.mixed_precision.dtype_policy().name == "float32"  # the global policy is restored
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    probs = model.predict(np.zeros((2, 8, 8, 1), "float32"), verbose=0)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1.0, atol=1e-3)
    # a mixed-precision run saves a float32 model (TFLite and ONNX refuse the bfloat16 casts)
    assert not [layer.name for layer in model._flatten_layers() if layer.compute_dtype != "float32"]


def test_auto_precision_is_resolved_and_recorded(tmp_path):
    from cnnkit import training

    expected, _ = training.resolve_precision("auto")
    result = api.train("image-cls", out=str(tmp_path / "run"), backbone="resnet8", epochs=1, limit=200,
                       verbose=0, precision="auto")
    assert result.metrics["precision"] == expected
    assert yaml.safe_load((result.run_dir / "config.yaml").read_text())["train"]["precision"] == expected
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_a_given_split_sharing_groups_with_training_or_test_is_warned_about(capsys):
    """FSDD's given test split holds clips of the training speakers: with the speakers as groups,
    the run says its test figure is not one of unseen speakers (and how to get one); a given val
    split holding test groups is named too (its epoch choice sees the test's groups)."""
    from cnnkit.datasets import LoadedData, Split

    def split(speakers):
        return Split([f"{s}.wav" for s in speakers], np.zeros(len(speakers), dtype="int64"), np.asarray(speakers))

    shared = LoadedData("files", {"train": split(["ann", "bob", "cy"]), "test": split(["bob", "cy", "dan"])}, ["a"])
    api.warn_shared_groups(shared)
    assert ("the test split has 2 of its 3 groups in training too (e.g. bob, cy): its figures are not those of unseen "
            "groups; `--cv K`") in capsys.readouterr().err
    apart = LoadedData("files", {"train": split(["ann", "bob"]), "test": split(["cy"]), "val": split(["dan"])}, ["a"])
    api.warn_shared_groups(apart)
    assert "Warning" not in capsys.readouterr().err
    val_on_test = LoadedData("files", {"train": split(["ann"]), "test": split(["cy", "dan"]), "val": split(["dan"])},
                             ["a"])
    api.warn_shared_groups(val_on_test)
    err = capsys.readouterr().err
    assert "the val split has 1 of its 1 groups in the test split too (e.g. dan): the epoch is chosen on" in err
    assert "in training" not in err


def test_a_class_left_without_training_examples_is_named(tmp_path, capsys):
    """Three texts of three classes: the held-out validation text takes one class wholly out of
    training, and the run says which; with every class in training nothing is said."""
    path = tmp_path / "tiny.csv"
    path.write_text("text,label\ngreat movie,good\nawful plot,bad\nfine enough,ok\n")
    api.train("text-cls", str(path), out=str(tmp_path / "run"), epochs=1, verbose=0)
    err = capsys.readouterr().err
    assert "Warning: " in err and "no training example of class(es)" in err and "tiny.csv" in err
    path.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(20)))
    api.train("text-cls", str(path), out=str(tmp_path / "run2"), epochs=1, verbose=0)
    assert "no training example" not in capsys.readouterr().err


def test_many_untrained_classes_are_named_ten_at_most(capsys):
    from cnnkit.datasets.sources import LoadedData, Split

    names = [f"c{i:02d}" for i in range(15)]
    loaded = LoadedData("texts", {"train": Split(["a", "b", "c"], np.array([0, 1, 2]))}, names, [], "many.csv")
    api.warn_untrained_classes(loaded)
    err = capsys.readouterr().err
    assert "class(es) 'c03', 'c04'," in err and "'c12' and 2 more after holding out" in err and "'c13'" not in err


def test_imbalanced_classes_are_noted_with_the_setting_that_weighs_them_alike(capsys):
    from cnnkit.datasets.sources import LoadedData, Split

    def loaded(counts, multi=False):
        y = np.repeat(np.arange(len(counts)), counts)
        y = np.eye(len(counts), dtype="int64")[y] if multi else y
        return LoadedData("texts", {"train": Split(["t"] * len(y), y)}, ["neg", "pos", "odd"][:len(counts)], [], "r.csv")

    api.note_imbalance(loaded([50, 10]), "none")
    assert "Classes are imbalanced: neg has 50 training examples, pos 10" in capsys.readouterr().err
    api.note_imbalance(loaded([50, 11]), "none")  # under 5 to 1
    api.note_imbalance(loaded([50, 10]), "balanced")  # already weighed
    api.note_imbalance(loaded([50, 0, 11]), "none")  # an empty class is warn_untrained_classes' business
    assert "imbalanced" not in capsys.readouterr().err
    with pytest.raises(CnnkitError, match="train.class_weight=balanced weighs each example by its class: r.csv is "
                                          "multi-label"):
        api.note_imbalance(loaded([5, 5], multi=True), "balanced")


def test_ctrl_c_says_how_to_resume_and_the_resume_continues(tmp_path, monkeypatch, capsys):
    """Ctrl-C in training (a KeyboardInterrupt as the third epoch ends, after its backup): the run
    folder is kept, the message names the command that continues it and its epoch, and that
    command trains the epochs left."""
    from cnnkit import training

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    made = training.make_callbacks
    monkeypatch.setattr(training, "make_callbacks", lambda *a, **k: (lambda cbs, nan: (cbs + [CtrlC()], nan))(*made(*a, **k)))
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        api.train("text-cls", out=str(run), epochs=4, batch_size=32, verbose=0, limit=300)
    done = training.completed_epochs(run)
    assert done >= 1
    assert f"`cnnkit train --resume {run}` continues it from epoch {done + 1}" in capsys.readouterr().err
    monkeypatch.setattr(training, "make_callbacks", made)
    result = api.train(None, resume=str(run))
    assert result.metrics["epochs_run_this_call"] == 4 - done


def test_summary_lists_layers():
    text = api.summary("image-cls", backbone="lenet5", image_size=[28, 28])
    assert "c1" in text and "f6" in text and "Total params" in text


def test_resume_after_sigkill_continues_from_last_epoch(tmp_path):
    """A run killed during training continues with --resume and runs every epoch exactly once."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", "image-cls", "--out", str(out), "--epochs", "6",
           "--backbone", "resnet8", "--set", "train.verbose=0"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    meta = out / "checkpoints" / "backup" / "training_metadata.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", -1) >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "metrics.json").exists() and not (out / "model.keras").exists()
    result = api.train(None, resume=str(out))
    epochs = [int(line.split(",")[0]) for line in (out / "history.csv").read_text().splitlines()[1:]]
    assert epochs == list(range(6)), epochs
    assert result.metrics["epochs_run_this_call"] < 6 and (out / "model.keras").exists()
    # the time of the epochs trained before the kill is kept: each of the six epochs counted once
    recorded = json.loads((out / "checkpoints" / "epoch_seconds-backup.json").read_text())
    assert sorted(recorded, key=int) == [str(e) for e in range(6)]
    assert result.metrics["train_seconds_total"] == pytest.approx(sum(recorded.values()), abs=0.01)
    assert result.metrics["train_seconds_total"] > result.metrics["train_seconds"]
    # ... and ends where an uninterrupted run of the same settings ends, within noise
    reference = api.train("image-cls", out=str(tmp_path / "reference"), epochs=6, backbone="resnet8", verbose=0)
    assert abs(result.metrics["test_accuracy"] - reference.metrics["test_accuracy"]) <= 0.03


def test_mixup_training_and_reload(tmp_path):
    result = api.train("image-cls", out=str(tmp_path / "run"), backbone="resnet8", epochs=1, limit=300, verbose=0,
                       mixup=0.2, cutmix=1.0, label_smoothing=0.1)
    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    assert model.predict(np.zeros((1, 8, 8, 1), "float32"), verbose=0).shape == (1, 10)
    assert "test_accuracy" in result.metrics


def test_predict_probs_runs_without_the_autotune_thread():
    """Prediction runs its dataset as training does, without tf.data's autotuning thread, whose
    next tick the iterator's deletion would otherwise wait for (cnnkit.training.without_autotune_thread)."""
    import tensorflow as tf

    from cnnkit import api

    class Task:
        def inference_dataset(self, x, cfg, batch_size=None):
            return tf.data.Dataset.from_tensor_slices(x).batch(batch_size or 2)

    class Model:
        def predict(self, ds, verbose=0):
            self.options, self.batches = ds.options(), [b.shape[0] for b in ds]
            return np.zeros((5, 2))

    model = Model()
    api.predict_probs(model, Task(), np.zeros((5, 3), "float32"), cfg=None, batch_size=2)
    assert model.options.autotune.enabled is False
    assert model.batches == [2, 2, 1]
