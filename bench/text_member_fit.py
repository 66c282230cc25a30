"""How the naive-Bayes member (`model.nb_member`) is fitted, tried on finished text-cls runs
(twenty-seventh session; BENCHMARKS.md, text-cls, "The member's solver, its C and its
temperature from cross-fitting").

For each run folder (`cnnkit train recipes/SET.yaml --data ../shared/data/text/SET --seed S --out
RUN`, or a one-network `cnnkit train text-cls ... --out RUN`): the test accuracy (%) of the saved
model's average of its networks and its member (the package's member as trained), and of the same
average with the member refitted here on the same texts (its networks' probabilities unchanged):
- `ncg`: scikit-learn's newton-cg solver at C = 1 (the package since this session), and its fit time;
- `lbfgs`: its default solver at C = 1 (the package until this session);
- `cvC`: C chosen from 0.1, 0.3, 1, 3, 10 by the log-loss of 5-fold out-of-fold probabilities on
  the member's training texts (nothing of validation or test seen);
- `T`: C = 1, the member's probabilities at the temperature (0.25-4) of least out-of-fold log-loss;
- `cvC_T`: both; `test_by_C`: the average at each C (what a choice could at best give).

    python bench/text_member_fit.py RUN [RUN ...]     # one JSON line per run
    python bench/text_member_fit.py --no-cv RUN ...    # the solvers only (no cross-fitting)
    python bench/text_member_fit.py --solvers trec,sst2,sst5,mr   # lbfgs against newton-cg alone

`--solvers`: the member alone on the package's tokens (as bench/text_nb_member_alone.py builds
them; MR: its first of 10 stratified folds), fitted with the package's former solver (lbfgs) and
its new one (newton-cg): fit seconds and test accuracy (%) of each.

The member's training texts are the run's: its train split, with its validation split pooled in
when the run is an ensemble that cut its members' validation slices from train (no dev/val file).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from text_member_share import scaled, split_of  # bench/text_member_share.py

GRID = [0.1, 0.3, 1.0, 3.0, 10.0]
TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 41))


def fit(x, y: np.ndarray, classes: int, C: float, solver: str = "newton-cg") -> tuple[np.ndarray, np.ndarray]:
    """`blocks.NaiveBayesLR.fit` written on a count matrix x (N, n-grams): (weights (n-grams,
    classes), bias (classes,)); `solver` "lbfgs" as the package had it until this session."""
    from sklearn.linear_model import LogisticRegression

    weights, bias = np.zeros((x.shape[1], classes)), np.full(classes, -30.0)
    for c in range(classes):
        mine = y == c
        p, q = 1 + np.asarray(x[mine].sum(0)).ravel(), 1 + np.asarray(x[~mine].sum(0)).ravel()
        r = np.log(p / p.sum()) - np.log(q / q.sum())
        how = {"solver": "newton-cg", "max_iter": 200} if solver == "newton-cg" else {"max_iter": 2000}
        model = LogisticRegression(C=C, **how).fit(x.multiply(r).tocsr(), mine.astype(int))
        weights[:, c], bias[c] = model.coef_[0] * r, model.intercept_[0]
    weights[0] = 0.0
    return weights, bias


def probs(x, fitted) -> np.ndarray:
    """The member's probabilities (N, classes) for count rows x: the classes' sigmoids normalised."""
    s = 1 / (1 + np.exp(-(x @ fitted[0] + fitted[1])))
    return s / s.sum(1, keepdims=True)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.maximum(p[np.arange(len(y)), y], 1e-9))))


def out_of_fold(x, y: np.ndarray, classes: int, C: float) -> np.ndarray:
    """Each training text's probabilities from a member fitted on the other 4 of 5 folds."""
    from sklearn.model_selection import StratifiedKFold

    out = np.zeros((len(y), classes))
    for a, b in StratifiedKFold(5, shuffle=True, random_state=0).split(np.zeros(len(y)), y):
        out[b] = probs(x[b], fit(x[a], y[a], classes, C))
    return out


def run_parts(run: str):
    """What a finished run's member is scored with: (cfg, task, model, test texts (N,), test class
    indices (N,), the member's training texts (M,) and class indices (M,), the networks' mean test
    probabilities (N, classes), the number of networks)."""
    import keras

    from cnnkit import api, runs, tasks
    from cnnkit.datasets import ensure_splits

    task = tasks.get("text-cls")
    path, cfg_dict, _ = runs.read_run(run)
    cfg = api.config_from_run(cfg_dict)
    model = runs.load_model(path)
    loaded = ensure_splits(api.load_data(cfg, task), cfg.data.val_split, cfg.data.test_split, cfg.train.seed)
    tx, ty = split_of(cfg, task, loaded, "test")
    fx, fy = split_of(cfg, task, loaded, "train")
    members = task.members_of(model)
    if members:
        pn = np.mean([m.predict(tx, verbose=0, batch_size=512) for m in members], 0)
        source = Path(cfg.data.source)
        if cfg.model.members_val == "rotate" and not any((source / f).exists() for f in ("dev.csv", "val.csv")):
            vx, vy = split_of(cfg, task, loaded, "val")
            fx, fy = np.concatenate([fx, vx]), np.concatenate([fy, vy])
    else:
        pn = keras.Model(model.input, model.get_layer("head").output).predict(tx, verbose=0, batch_size=512)
    return cfg, task, model, tx, ty, fx, fy, pn, max(len(members), 1)


def scored(run: str, cv: bool = True) -> dict:
    from cnnkit.blocks.ngrams import ngram_counts
    from cnnkit.tasks.text_cls import ngram_buckets

    cfg, task, model, tx, ty, fx, fy, pn, n = run_parts(run)
    classes = pn.shape[1]
    vectorize = model.get_layer("vectorize")
    size = len(vectorize.get_vocabulary())
    x, e = (ngram_counts(np.asarray(vectorize(t)), size, ngram_buckets(cfg.preprocess)) for t in (fx, tx))
    acc = lambda p: round(100 * float(np.mean(p.argmax(1) == ty)), 2)  # noqa: E731
    avg = lambda member: acc((n * pn + member) / (n + 1))  # noqa: E731
    row = {"run": run, "networks": n, "networks_only": acc(pn)}
    own = task.nb_member_of(model)
    if own is not None:
        pm = own.predict(tx, verbose=0, batch_size=512)
        row.update(package=avg(pm), package_alone=acc(pm))
    began = time.time()
    at = {1.0: probs(e, fit(x, fy, classes, 1.0))}
    row.update(ncg_fit_seconds=round(time.time() - began, 2), ncg=avg(at[1.0]), ncg_alone=acc(at[1.0]))
    former = probs(e, fit(x, fy, classes, 1.0, "lbfgs"))
    row.update(lbfgs=avg(former), lbfgs_alone=acc(former))
    if not cv:
        return row
    oof = {C: out_of_fold(x, fy, classes, C) for C in GRID}
    losses = {C: log_loss(oof[C], fy) for C in GRID}
    chosen = min(losses, key=losses.get)
    for C in GRID:
        if C not in at:
            at[C] = probs(e, fit(x, fy, classes, C))
    t_one = float(TEMPERATURES[np.argmin([log_loss(scaled(oof[1.0], t), fy) for t in TEMPERATURES])])
    t_chosen = float(TEMPERATURES[np.argmin([log_loss(scaled(oof[chosen], t), fy) for t in TEMPERATURES])])
    row.update(oof_log_loss={str(C): round(v, 4) for C, v in losses.items()}, C=chosen,
               cvC=avg(at[chosen]), cvC_alone=acc(at[chosen]), T=round(t_one, 3), T_at_C=round(t_chosen, 3),
               cvC_T=avg(scaled(at[chosen], t_chosen)), T_only=avg(scaled(at[1.0], t_one)),
               test_by_C={str(C): avg(at[C]) for C in GRID})
    return row


def solvers(sets: list[str]) -> None:
    """Prints, per set and solver, the member's fit seconds and test accuracy (%)."""
    from sklearn.model_selection import StratifiedKFold

    from cnnkit.blocks.ngrams import ngram_counts
    from cnnkit.features import text as text_features
    from text_nbsvm_tokens import TEXT, read  # bench/text_nbsvm_tokens.py

    for name in sets:
        if name == "mr":
            x, y = read(TEXT / "mr" / "all.csv")
            a, b = next(StratifiedKFold(10, shuffle=True, random_state=0).split(x, y))
            (tx, ty), (ex, ey) = (x[a], y[a]), (x[b], y[b])
        else:
            (tx, ty), (ex, ey) = read(TEXT / name / "train.csv"), read(TEXT / name / "test.csv")
        standardize = "lower_and_strip_punctuation"
        length = text_features.auto_sequence_length(text_features.token_lengths(list(tx), "whitespace", standardize),
                                                    boundaries=True)
        vectorize = text_features.make_vectorizer(list(tx), 30000, length, standardize, "whitespace", boundaries=True)
        size, labels = len(vectorize.get_vocabulary()), np.unique(ty)
        x, e = (ngram_counts(vectorize(np.asarray(t, object)).numpy(), size, 100_000) for t in (tx, ex))
        for solver in ("lbfgs", "newton-cg"):
            began = time.time()
            fitted = fit(x, np.searchsorted(labels, ty), len(labels), 1.0, solver)
            seconds = time.time() - began
            accuracy = 100 * float(np.mean(labels[probs(e, fitted).argmax(1)] == ey))
            print(json.dumps({"set": name, "solver": solver, "fit_seconds": round(seconds, 2),
                              "test_accuracy": round(accuracy, 2)}), flush=True)


if __name__ == "__main__":
    import cnnkit  # noqa: F401  (registers the layers of saved models)

    if sys.argv[1] == "--solvers":
        solvers(sys.argv[2].split(","))
        sys.exit()
    cv = sys.argv[1] != "--no-cv"
    for run in sys.argv[1 if cv else 2:]:
        print(json.dumps(scored(run, cv)), flush=True)
