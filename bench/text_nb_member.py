"""What the naive-Bayes member (`model.nb_member`) adds to finished text-cls runs.

For each run folder given: the test accuracy of its networks' average alone and of the saved
model's average with the naive-Bayes member (the package's own member when the run has one, else
`blocks.NaiveBayesLR` fitted as the package fits it: on the same training texts, which gives the
same weights), and the member alone. SST-2, SST-5, TREC: runs of `cnnkit train
recipes/SET.yaml --data ../shared/data/text/SET --seed S --out DIR`; MR: of `cnnkit train
recipes/mr.yaml --data ../shared/data/text/mr/all.csv --out DIR` (its ten folds, seed 0's folds).
One network runs (`cnnkit train text-cls [--data ...]`) are scored with the member at 1/2 and 1/3,
fitted on the whole train.csv (which holds the run's validation texts too when it has no val split).

    python bench/text_nb_member.py /tmp/nb/runs/trec-0 /tmp/nb/runs/sst2-0 ... /tmp/nb/runs/mr-0
    python bench/text_nb_member.py --alone    # NBSVM alone with scikit-learn's own tokens, four sets

Rows go to bench/results/text_nb_member.jsonl ("without": the network(s) alone, "with": with the
member, "nb": "package" when the run has its own member, "refit" when fitted here).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text"


def scored(model, texts, y, nb_fit=None) -> dict:
    """Test accuracies (%) of `model`'s networks' average, the same with the naive-Bayes member
    (its own, or one fitted on `nb_fit` = (training texts, labels)) and the member alone."""
    from cnnkit import tasks
    from cnnkit.blocks import NaiveBayesLR

    import keras

    task = tasks.get("text-cls")
    members = task.members_of(model)
    nb = task.nb_member_of(model)
    if members:
        probs = np.mean([m.predict(texts, verbose=0, batch_size=256) for m in members], 0)
    else:  # one network: the saved model, or with its own member the network's head alone
        network = model if nb is None else keras.Model(model.input, model.get_layer("head").output)
        probs = network.predict(texts, verbose=0, batch_size=256)
    if nb is not None:
        nb_probs, how = nb.predict(texts, verbose=0, batch_size=256), "package"
    else:
        vectorize = model.get_layer("vectorize")
        layer = NaiveBayesLR(len(vectorize.get_vocabulary()), probs.shape[1])
        layer.fit(np.asarray(vectorize(nb_fit[0])), nb_fit[1])
        nb_probs, how = np.asarray(layer(np.asarray(vectorize(texts)))), "refit"
    n = max(len(members), 1)
    acc = lambda p: round(100 * float(np.mean(p.argmax(1) == y)), 2)  # noqa: E731
    row = {"networks": n, "nb": how, "without": acc(probs), "with": acc((n * probs + nb_probs) / (n + 1)),
           "nb_alone": acc(nb_probs)}
    if n == 1:
        row["with_one_third"] = acc((2 * probs + nb_probs) / 3)
    return row


def split_run(run: Path) -> list[dict]:
    """A train -> test run of SST-2, SST-5 or TREC (its data set from config.yaml's data.source)."""
    import keras
    import pandas as pd
    import yaml

    source = yaml.safe_load((run / "config.yaml").read_text())["data"]["source"]
    # the embedded sample (`cnnkit train text-cls` without --data) is a folder of the package
    source = ROOT / "cnnkit" / "_data" / "sentences" if source == "builtin:sentences" else Path(source)
    names = json.loads((run / "labels.json").read_text())
    train, test = (pd.read_csv(source / f"{s}.csv") for s in ("train", "test"))
    texts = test.text.astype(str).to_numpy(dtype=object)
    y = np.array([names.index(label) for label in test.label.astype(str)])
    fit = (train.text.astype(str).to_numpy(dtype=object), np.array([names.index(label) for label in train.label.astype(str)]))
    model = keras.models.load_model(run / "model.keras", safe_mode=True)
    return [{"run": str(run), "set": source.name, **scored(model, texts, y, fit)}]


def cv_run(run: Path) -> list[dict]:
    """Each fold of a --cv run of MR (folds as `api.cross_validate` cuts them; refit not needed:
    such runs are scored only when they have their member)."""
    import keras
    import yaml
    from sklearn.model_selection import StratifiedKFold

    from cnnkit import api
    from cnnkit.datasets import load_source

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    data = load_source(cfg["data"]["source"])
    every = api.merge_splits(data)
    x, y = np.asarray(every.x, dtype=object), every.y
    folds = StratifiedKFold(cfg["data"]["cv"], shuffle=True, random_state=cfg["train"]["seed"]).split(np.zeros(len(y)), y)
    rows = []
    for i, (train, test) in enumerate(folds, start=1):
        fold = run / f"fold-{i:02d}"
        model = keras.models.load_model(fold / "model.keras", safe_mode=True)
        metrics = json.loads((fold / "metrics.json").read_text())
        rows.append({"run": str(fold), "set": Path(cfg["data"]["source"]).parent.name, "fold": i,
                     **scored(model, x[test], y[test], (x[train], y[train])),
                     "train_seconds": metrics["train_seconds"], "nb_member_fit_seconds": metrics.get("nb_member_fit_seconds")})
    return rows


def sklearn_nbsvm_alone() -> None:
    """NBSVM's logistic-regression form with scikit-learn (word 1-2-grams, punctuation kept as
    tokens, counts, alpha 1, C 1; one-vs-rest) alone: SST-2, SST-5, TREC train -> test and MR's 10
    stratified folds (seed 0); bench/text_nbsvm_tokens.py's `punct` variant."""
    from text_nbsvm_tokens import main as nbsvm  # bench/text_nbsvm_tokens.py

    sys.argv[1:] = ['{"alone": {}}', "trec,sst2,sst5,mr"]
    nbsvm()


def main() -> None:
    import cnnkit  # noqa: F401  (registers the layers of saved models)

    if sys.argv[1:] == ["--alone"]:
        sklearn_nbsvm_alone()
        return
    import datetime as dt

    from machine import describe  # bench/machine.py

    rows = []
    results = ROOT / "bench" / "results" / "text_nb_member.jsonl"
    for arg in sys.argv[1:]:
        run = Path(arg)
        for row in (cv_run(run) if list(run.glob("fold-*")) else split_run(run)):
            row.update(date=dt.date.today().isoformat(), machine=describe(),
                       command="python bench/text_nb_member.py " + " ".join(sys.argv[1:]))
            print(json.dumps(row), flush=True)
            rows.append(row)
            with open(results, "a") as f:
                f.write(json.dumps(row) + "\n")
    by_set: dict = {}
    for row in rows:
        by_set.setdefault((row["set"], row["networks"]), []).append(row)
    for (name, n), group in by_set.items():
        without = np.array([r["without"] for r in group])
        with_nb = np.array([r["with"] for r in group])
        print(f"{name} ({n} network{'s' if n > 1 else ''}, {len(group)} runs): without {without.mean():.2f}, "
              f"with the member {with_nb.mean():.2f} ({with_nb.mean() - without.mean():+.2f}; {(with_nb > without).sum()} "
              f"better, {(with_nb == without).sum()} equal, {(with_nb < without).sum()} worse), member alone "
              f"{np.mean([r['nb_alone'] for r in group]):.2f}" + (
                  f", at 1/3 {np.mean([r['with_one_third'] for r in group]):.2f}" if n == 1 else ""))


if __name__ == "__main__":
    main()
