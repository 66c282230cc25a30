"""Run directories: atomic writes, an unwritable folder fails early, reading a run back."""
import os
import re
from pathlib import Path

import pytest
import yaml

from cnnkit import runs
from cnnkit.errors import CnnkitError


def test_atomic_write_leaves_no_temporary(tmp_path):
    runs.write_json(tmp_path / "m.json", {"a": 1})
    runs.write_yaml(tmp_path / "c.yaml", {"b": [1, 2]})
    assert sorted(os.listdir(tmp_path)) == ["c.yaml", "m.json"]
    assert (tmp_path / "m.json").read_text().strip().startswith("{")


def test_save_weights_goes_through_a_temporary_and_reads_back(tmp_path):
    import keras
    import numpy as np

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    runs.save_weights(model, tmp_path / "network.weights.h5")
    assert os.listdir(tmp_path) == ["network.weights.h5"]
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    other.load_weights(tmp_path / "network.weights.h5")
    np.testing.assert_array_equal(other.get_weights()[0], model.get_weights()[0])


def test_save_weights_can_leave_the_optimizer_state_out(tmp_path):
    import h5py
    import keras
    import numpy as np

    def network():
        inputs = keras.Input((4,))
        return keras.Model(inputs, keras.layers.Dense(2, name="out")(keras.layers.Dense(3, name="hidden")(inputs)))

    model = network()
    model.compile("adam", "mse")
    model.fit(np.ones((8, 4)), np.ones((8, 2)), verbose=0)
    runs.save_weights(model, tmp_path / "with.weights.h5")
    runs.save_weights(model, tmp_path / "without.weights.h5", optimizer=False)
    names = lambda f: {n for n in h5py.File(f).keys()}  # noqa: E731
    assert "optimizer" in names(tmp_path / "with.weights.h5") and "optimizer" not in names(tmp_path / "without.weights.h5")
    again = network()
    again.load_weights(tmp_path / "without.weights.h5")
    np.testing.assert_allclose(again.predict(np.ones((2, 4)), verbose=0), model.predict(np.ones((2, 4)), verbose=0))
    assert model.optimizer is not None  # the saved model itself is left compiled


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_unwritable_run_dir_fails_at_start(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(CnnkitError, match="Cannot write to the run directory"):
        runs.new_run_dir("image-cls", str(ro / "run"))


def test_run_dir_under_a_file_fails_at_start(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CnnkitError, match="Cannot write to the run directory .*--out"):
        runs.new_run_dir("image-cls", str(tmp_path / "file" / "run"))


def test_default_name_and_reading_a_non_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = runs.new_run_dir("image-cls", None)
    assert path.parent.name == "runs" and path.name.startswith("image-cls-")
    with pytest.raises(CnnkitError, match="not a cnnkit run directory"):
        runs.read_run(path)
    (path / "config.yaml").write_text("task: image-cls\n")
    with pytest.raises(CnnkitError, match="no model.keras.*--resume"):
        runs.load_model(path)


def test_a_folder_holding_a_run_is_refused_unless_resumed(tmp_path):
    """A folder with any file a run writes is refused (naming it and --resume); an empty or
    unrelated folder is used; a resumed run's folds and worker folders are let through."""
    for name in runs.RUN_FILES:
        path = tmp_path / name.replace(".", "-")
        path.mkdir()
        (path / name).mkdir() if name == "checkpoints" else (path / name).write_text("x")
        where = re.escape(str(path))
        with pytest.raises(CnnkitError, match=f"{where} already holds a run \\({name}\\).*another --out.*--resume {where}"):
            runs.new_run_dir("text-cls", str(path))
        assert runs.new_run_dir("text-cls", str(path), resume=True) == path
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    assert runs.new_run_dir("text-cls", str(tmp_path / "empty")) == tmp_path / "empty"
    assert runs.new_run_dir("text-cls", str(tmp_path / "other")) == tmp_path / "other"


def test_default_run_dirs_started_in_the_same_second_differ(tmp_path, monkeypatch):
    class FrozenClock:
        class datetime:
            @staticmethod
            def now():
                import datetime
                return datetime.datetime(2026, 12, 5, 22, 30, 0)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runs, "dt", FrozenClock)
    made = [runs.new_run_dir("text-cls", None) for _ in range(3)]
    assert [p.name for p in made] == ["text-cls-20261205-223000", "text-cls-20261205-223000-2",
                                      "text-cls-20261205-223000-3"]
    assert all(p.is_dir() for p in made)
    # Another process makes the folder between a look and a mkdir: the name is taken by mkdir
    # itself, so a run never shares the other's folder.
    monkeypatch.setattr(Path, "exists", lambda self: False)
    assert runs.new_run_dir("text-cls", None).name == "text-cls-20261205-223000-4"


@pytest.mark.parametrize("code,words", [(28, "No space left on device"), (13, "Permission denied")])
def test_full_disk_or_denied_write_fails_at_start(tmp_path, monkeypatch, code, words):
    """The start-up probe writes a megabyte; a full disk (ENOSPC) or a refused write (EACCES,
    which the chmod test above cannot show as root) stops before any training."""
    real_fdopen = os.fdopen

    class FailingFile:
        def __init__(self, fd):
            self.f = real_fdopen(fd, "wb")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(code, os.strerror(code))

    monkeypatch.setattr(runs.os, "fdopen", lambda fd, mode="r", *a, **k: FailingFile(fd))
    with pytest.raises(CnnkitError, match=f"Cannot write to the run directory .*{words}.*--out"):
        runs.new_run_dir("image-cls", str(tmp_path / "run"))


def test_workers_checking_one_folder_at_once_do_not_collide(tmp_path):
    """The workers of `--strategy multiworker` check the run folder at the same moment; with one
    shared probe file, one removed it under the other ("Cannot write to the run directory run:
    No such file or directory") and the other worker waited for the failed one forever."""
    import threading

    errors = []

    def check():
        for _ in range(30):
            try:
                runs.new_run_dir("image-cls", str(tmp_path / "run"), resume=True)
            except CnnkitError as e:
                errors.append(str(e))

    threads = [threading.Thread(target=check) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and os.listdir(tmp_path / "run") == []


def test_a_folder_without_a_model_says_why(tmp_path):
    """`load_model` (predict, evaluate, export, explain, --from) of a folder without model.keras:
    a finished cross-validation names a fold to give instead (it was told to resume, which
    retrains nothing), an unfinished one and an unfinished run are told to resume."""
    for name in ("cv", "cv-unfinished", "run"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text("task: text-cls\n")
    for fold in ("fold-01", "fold-02"):
        (tmp_path / "cv" / fold).mkdir()
    (tmp_path / "cv" / "metrics.json").write_text("{}")
    (tmp_path / "cv-unfinished" / "fold-01").mkdir()
    with pytest.raises(CnnkitError, match=re.escape(f"is a cross-validation run: each of its 2 folds has a model of "
                                                    f"its own. Give one of them ({tmp_path / 'cv' / 'fold-01'})")):
        runs.load_model(tmp_path / "cv")
    with pytest.raises(CnnkitError, match="cross-validation run that did not finish. Resume it with"):
        runs.load_model(tmp_path / "cv-unfinished")
    with pytest.raises(CnnkitError, match="has no model.keras: its training did not finish. Resume it"):
        runs.load_model(tmp_path / "run")


def test_a_run_without_the_group_column_setting_reads_as_ungrouped(tmp_path):
    """Runs of any task written before data.group_column existed mixed a table's `fold` column
    into their splits: a config.yaml without the key reads back as none (a resume holds out what
    the run held out), one with the key as written, and a new run gets auto."""
    from cnnkit import api

    for task in ("image-cls", "speech-cls", "text-cls"):
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": task, "data": {"val_split": 0.1}}))
        assert api.config_from_run(runs.read_run(tmp_path)[1]).data.group_column in (None, "none")  # none: no groups
        assert api.resolve_config(task, None, None, None).data.group_column == "auto"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"task": "speech-cls", "data": {"group_column": "fold"}}))
    assert runs.read_run(tmp_path)[1]["data"]["group_column"] == "fold"


def test_a_text_model_saved_with_a_token_keras_cannot_read_back_still_loads(tmp_path):
    """Runs saved before `features.text.reads_back` may hold a token with "\\x85" (MR's texts):
    Keras alone fails on it ("repeated term"); a run's model is read with its vocabulary as it was
    written, ids unchanged."""
    import keras
    import tensorflow as tf

    vocab = ["", "[UNK]", "fine", "film\x85", "dull\u2028plot", "a"]
    vec = keras.layers.TextVectorization(output_mode="int", output_sequence_length=4, name="vectorize")
    vec.set_vocabulary(vocab)
    inputs = keras.Input((), dtype="string")
    keras.Model(inputs, vec(inputs)).save(tmp_path / "model.keras")
    model = runs.load_model(tmp_path)
    assert model.get_layer("vectorize").get_vocabulary() == vocab
    assert model(tf.constant(["a fine film\x85"])).numpy().tolist() == [[5, 2, 3, 0]]
    from keras.src.layers.preprocessing.index_lookup import IndexLookup

    assert IndexLookup.load_assets.__module__.startswith("keras")  # Keras' own method is back


def test_two_threads_reading_vocabularies_as_written_put_keras_own_method_back():
    """Two swaps overlapping (the first ends while the second is on) each put back what they found:
    without one swap at a time, the second would put the first one's stand-in back in place of
    Keras' method, for good."""
    import threading

    from keras.src.layers.preprocessing.index_lookup import IndexLookup

    keras_own = IndexLookup.load_assets
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with runs.vocabulary_read_as_written():
            first_in.set()
            second_in.wait(timeout=0.5)  # a second swap that may start meanwhile has started
        first_out.set()

    def second():
        first_in.wait(timeout=5)
        with runs.vocabulary_read_as_written():
            second_in.set()
            first_out.wait(timeout=0.5)  # the first swap ends before this one

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert IndexLookup.load_assets is keras_own
    finally:
        IndexLookup.load_assets = keras_own
