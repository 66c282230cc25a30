"""How much of the naive-Bayes member a one-network text-cls run should take (twenty-sixth
session; BENCHMARKS.md, text-cls, "Punctuation as tokens").

For each run folder of `cnnkit train text-cls [--data ...] --out RUN` (a run with its member):
the test accuracy (%) of (1 - w) x the network + w x the member for w in 0, 0.1, ..., 0.7 (the
saved model: 0.5), the w of least validation log-loss with its test accuracy, and the test
accuracy of the half-and-half average after each part is temperature-scaled on validation
(Guo et al. 2017; the temperature of least log-loss); splits as the run cut them. The session's runs were trained with bench/patches/nb_member_seen_ngrams.diff
applied (`git apply` it first: their member's layer reads back only with it).

    python bench/text_member_share.py RUN [RUN ...]     # one JSON line per run
"""
import json
import sys

import numpy as np

SHARES = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]


def split_of(cfg, task, loaded, name):
    """(texts (N,) object, class indices (N,)) of a split, prepared as training prepared it."""
    from cnnkit.datasets import LoadedData

    one = LoadedData(loaded.kind, {"train": loaded.splits[name]}, loaded.class_names, [], loaded.origin,
                     loaded.sample_rate, loaded.multi_label)
    x, y = task.prepare(cfg, one).splits["train"]
    return np.asarray(x, dtype=object), np.asarray(y)


def scored(run: str) -> dict:
    import keras

    from cnnkit import api, runs, tasks
    from cnnkit.datasets import ensure_splits

    path, cfg_dict, names = runs.read_run(run)
    cfg = api.config_from_run(cfg_dict)
    task = tasks.get("text-cls")
    loaded = ensure_splits(api.load_data(cfg, task), cfg.data.val_split, cfg.data.test_split, cfg.train.seed)
    model = runs.load_model(path)
    network, member = keras.Model(model.input, model.get_layer("head").output), task.nb_member_of(model)
    probs = {}
    for name in ("val", "test"):
        x, y = split_of(cfg, task, loaded, name)
        probs[name] = (network.predict(x, verbose=0, batch_size=512), member.predict(x, verbose=0, batch_size=512), y)
    pn, pm, y = probs["val"]
    loss = [float(-np.mean(np.log(np.maximum(((1 - w) * pn + w * pm)[np.arange(len(y)), y], 1e-9)))) for w in SHARES]
    tn, tm, ty = probs["test"]
    acc = lambda p: round(100 * float(np.mean(p.argmax(1) == ty)), 2)  # noqa: E731
    chosen = SHARES[int(np.argmin(loss))]
    t_net, t_nb = temperature(pn, y), temperature(pm, y)
    calibrated = (scaled(tn, t_net) + scaled(tm, t_nb)) / 2
    return {"run": run, "test_by_share": dict(zip(map(str, SHARES), [acc((1 - w) * tn + w * tm) for w in SHARES])),
            "share_by_val_loss": chosen, "test_at_that_share": acc((1 - chosen) * tn + chosen * tm),
            "temperatures": [t_net, t_nb], "test_calibrated_half": acc(calibrated)}


def scaled(probs: np.ndarray, t: float) -> np.ndarray:
    """Probabilities (N, C) at temperature t: softmax(log(probs) / t)."""
    logits = np.log(np.maximum(probs, 1e-9)) / t
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def temperature(probs: np.ndarray, y: np.ndarray) -> float:
    """The temperature (0.25-4, a log grid) of least validation log-loss for probs (N, C)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(4.0), 41))
    loss = [-np.mean(np.log(np.maximum(scaled(probs, t)[np.arange(len(y)), y], 1e-9))) for t in grid]
    return round(float(grid[int(np.argmin(loss))]), 3)


if __name__ == "__main__":
    import cnnkit  # noqa: F401  (registers the layers of saved models)

    for run in sys.argv[1:]:
        print(json.dumps(scored(run)), flush=True)
