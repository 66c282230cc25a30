"""The same seed with --deterministic gives identical metrics twice on a CPU (issue: robustness)."""
import csv
import json

import pytest

from cnnkit import api

TIMING = ("seconds", "per_second")


@pytest.fixture(autouse=True)
def _determinism_off_afterwards():
    """Op determinism is process-wide: switch it off again for the other tests."""
    yield
    from tensorflow.python.framework import config  # no public switch-off in tf.config

    config.disable_op_determinism()


def scores(run_dir) -> tuple[dict, list]:
    """metrics.json without timings, and history.csv (losses and accuracies per epoch)."""
    m = json.loads((run_dir / "metrics.json").read_text())
    with open(run_dir / "history.csv") as f:
        history = list(csv.DictReader(f))
    return {k: v for k, v in m.items() if not any(t in k for t in TIMING)}, history


@pytest.mark.parametrize("task,options", [
    # image and speech take about a minute each on a 2-core CPU: run with --runslow
    pytest.param("image-cls", dict(epochs=2, limit=400), marks=pytest.mark.slow),
    ("text-cls", dict(epochs=2, limit=600)),
    pytest.param("speech-cls", dict(epochs=2, batch_size=32), marks=pytest.mark.slow),
])
def test_same_seed_deterministic_gives_identical_metrics(task, options, tmp_path):
    runs = [api.train(task, out=str(tmp_path / f"run{i}"), verbose=0, seed=7, deterministic=True, **options)
            for i in range(2)]
    first, second = (scores(r.run_dir) for r in runs)
    assert first == second
    assert first[0]["val_accuracy"] > 0  # something was measured
