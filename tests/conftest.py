"""Shared fixtures. Slow tests are marked `@pytest.mark.slow` and run only with --runslow."""
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Archives extract into, and Keras looks for weights in, a per-test folder."""
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "cnnkit-cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def write_image(path: Path, array: np.ndarray, mode=None, fmt=None):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    img.save(path, format=fmt)
    return path


@pytest.fixture
def image_folder(tmp_path):
    """A folder of 3 class folders x 12 small PNGs with class-dependent brightness patterns."""
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for c, name in enumerate(["cat", "dog", "fox"]):
        for i in range(12):
            img = rng.integers(0, 60, size=(12, 12, 3), dtype=np.uint8)
            img[:, c * 4:(c + 1) * 4] += 180
            write_image(root / name / f"{i}.png", img)
    return root
