"""Run directories: atomic writes, an unwritable folder fails early, reading a run back."""
import os

import pytest

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


@pytest.mark.parametrize("code,words", [(28, "No space left on device"), (13, "Permission denied")])
def test_full_disk_or_denied_write_fails_at_start(tmp_path, monkeypatch, code, words):
    """The start-up probe writes a megabyte; a full disk (ENOSPC) or a refused write (EACCES,
    which the chmod test above cannot show as root) stops before any training."""
    real_open = open

    def failing_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".write-test"):
            raise OSError(code, os.strerror(code))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(runs, "open", failing_open, raising=False)
    with pytest.raises(CnnkitError, match=f"Cannot write to the run directory .*{words}.*--out"):
        runs.new_run_dir("image-cls", str(tmp_path / "run"))
