"""examples/: each custom-model script runs end to end (one short epoch) and its export serves."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script,raw", [
    ("custom_image_cnn.py", np.zeros((1, 8, 8, 1), "float32")),
    ("custom_text_cnn.py", np.array(["a fine film"])),
    ("custom_spectrogram_cnn.py", np.zeros((1, 5000), "float32")),
])
def test_example_trains_evaluates_and_exports(script, raw, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--epochs", "1", "--out", str(out)],
                          env=dict(os.environ, CUDA_VISIBLE_DEVICES=""), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "test accuracy" in proc.stdout and "evaluate: accuracy" in proc.stdout and "exported" in proc.stdout
    import tensorflow as tf

    served = tf.saved_model.load(str(out / "savedmodel"))
    probs = served.serve(tf.constant(raw)).numpy()
    assert probs.shape[0] == 1 and abs(float(probs.sum()) - 1.0) < 1e-4
