"""image-cls preparation: the training split's order and the image streams of `--cache disk|none`."""
from pathlib import Path

import numpy as np
import pytest

from cnnkit import api, tasks
from cnnkit.datasets.image import read_image_files


@pytest.mark.parametrize("cache", ["disk", "none"])
def test_train_split_is_mixed_and_each_image_keeps_its_label(image_folder, tmp_path, monkeypatch, cache):
    """A folder is listed class by class; a disk cache is read back in the order it was written
    and shuffled only within a buffer, so the training split must be written in a random order
    (once, a 10x CIFAR-10 folder trained to 60 % instead of 80 % with the classes in runs)."""
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cache"))
    cfg = api.resolve_config("image-cls", str(image_folder), cache=cache)
    task = tasks.get("image-cls")
    prepared = api.prepare(cfg, task, api.load_data(cfg, task))
    x, y = prepared.splits["train"]
    assert len(set(y[: len(y) // 3].tolist())) > 1, "the first third of the split holds one class"
    size = tuple(cfg.preprocess.image_size)
    streamed = list(x.with_labels(y).as_numpy_iterator())
    assert len(streamed) == len(y) == len(prepared.ids["train"])
    for (image, label), path in zip(streamed, prepared.ids["train"]):
        assert prepared.class_names[label] == Path(path).parent.name
        np.testing.assert_array_equal(image, read_image_files([path], cfg.preprocess.channels, size, verbose=False)[0][0])
