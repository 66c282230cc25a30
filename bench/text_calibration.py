"""Post-hoc corrections of a finished text-cls ensemble, tried on its saved model (thirty-fifth
session; BENCHMARKS.md, text-cls, "Class offsets fitted on the validation split").

For each run folder of a data set with a validation split of its own (`cnnkit train
recipes/SET.yaml --data ../shared/data/text/SET --seed S --out RUN`, SET sst2 or sst5: every
member validated on the dev split), the test accuracy (%) of
- `saved`: the saved model (the members' mean probabilities);
- `bias`: log(p) + b, b (one offset a class) of least log-loss on the validation split;
- `temp_bias`: log(p) * t + b, t and b of least validation log-loss (Guo et al. 2017's vector
  scaling with one shared scale);
- `mc8`: each network's probabilities averaged over 8 dropout samples (Gal & Ghahramani 2016)
  before the ensemble's mean;
and the validation accuracy before and after `bias` (`val_saved`, `val_bias`).

    python bench/text_calibration.py RUN [RUN ...]    # from the repo root; a JSON line per run,
                                                      # appended to bench/results/text_calibration.jsonl
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp

from text_member_fit import run_parts  # bench/text_member_fit.py
from text_member_share import split_of  # bench/text_member_share.py

RESULTS = Path(__file__).resolve().parent / "results" / "text_calibration.jsonl"


def fit_offsets(probs: np.ndarray, y: np.ndarray, scale: bool) -> tuple[float, np.ndarray]:
    """(t, b) of least mean log-loss of softmax(log(probs) * t + b) on labels y; probs (N, C),
    y (N,) class indices; t stays 1 unless `scale`. Returns t and b (C,)."""
    logp = np.log(np.maximum(probs, 1e-12))
    rows = np.arange(len(y))

    def loss(w):
        t = np.exp(w[0]) if scale else 1.0
        z = logp * t + w[1:]
        return -(z[rows, y] - logsumexp(z, axis=1)).mean()

    w = minimize(loss, np.zeros(probs.shape[1] + 1), method="L-BFGS-B").x
    return (float(np.exp(w[0])) if scale else 1.0), w[1:]


def dropout_probs(network, texts: np.ndarray, samples: int) -> np.ndarray:
    """A network's probabilities (N, C) on `texts` (N,) averaged over `samples` passes with its
    dropout on (`training=True`)."""
    import tensorflow as tf

    t = tf.constant(np.asarray(texts, dtype=object).astype(str))
    passes = [np.concatenate([network(t[i:i + 512], training=True).numpy() for i in range(0, len(t), 512)])
              for _ in range(samples)]
    return np.mean(passes, axis=0)


def scored(run: str) -> dict:
    """The row of one run: test accuracy (%) of each correction, and validation accuracy (%)."""
    from cnnkit import api
    from cnnkit.datasets import ensure_splits

    import keras

    keras.utils.set_random_seed(0)  # the dropout samples of `mc8`
    cfg, task, model, tx, ty, _, _, _, _ = run_parts(run)
    loaded = ensure_splits(api.load_data(cfg, task), cfg.data.val_split, cfg.data.test_split, cfg.train.seed)
    vx, vy = split_of(cfg, task, loaded, "val")
    pv, pt = (model.predict(x, verbose=0, batch_size=512) for x in (vx, tx))
    acc = lambda p, y: round(100 * float(np.mean(p.argmax(1) == y)), 2)  # noqa: E731
    logv, logt = np.log(np.maximum(pv, 1e-12)), np.log(np.maximum(pt, 1e-12))
    _, b = fit_offsets(pv, vy, scale=False)
    t, tb = fit_offsets(pv, vy, scale=True)
    nb = task.nb_member_of(model)
    parts = [dropout_probs(m, tx, 8) for m in task.members_of(model)]
    parts += [nb.predict(tx, verbose=0, batch_size=512)] if nb is not None else []
    return {"run": run, "saved": acc(pt, ty), "bias": acc(logt + b, ty), "temp_bias": acc(logt * t + tb, ty),
            "mc8": acc(np.mean(parts, axis=0), ty), "val_saved": acc(pv, vy), "val_bias": acc(logv + b, vy),
            "offsets": [round(float(v), 3) for v in b - b.mean()], "temperature": round(t, 3)}


if __name__ == "__main__":
    for run in sys.argv[1:]:
        row = scored(run)
        print(json.dumps(row), flush=True)
        with RESULTS.open("a") as f:
            f.write(json.dumps(row) + "\n")
