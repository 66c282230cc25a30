"""text-cls benchmarks against Kim (2014) and a TF-IDF + logistic regression baseline.

For each data set, in one command: the cnnkit recipe (MR: 10-fold cross-validation; SST-2,
SST-5, TREC: train -> test, dev as validation where there is one) and scikit-learn's TF-IDF
word 1-2-grams + LogisticRegression on the same splits. Appends JSON lines to
bench/results/text.jsonl.

    python bench/text_bench.py                 # all four
    python bench/text_bench.py trec sst2       # some
    python bench/text_bench.py --keep-runs mr  # keep the models (by default a run keeps its text files)
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from machine import describe  # bench/machine.py

ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "text"
SETS = {"mr": TEXT / "mr" / "all.csv", "sst2": TEXT / "sst2", "sst5": TEXT / "sst5", "trec": TEXT / "trec"}
KIM = {"mr": (76.1, 81.5), "sst2": (82.7, 88.1), "sst5": (45.0, 48.0), "trec": (91.2, 93.6)}  # CNN-rand, best


def tfidf_pipeline():
    """The linear baseline, unfitted: TF-IDF word 1-2-grams (sublinear tf) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), LogisticRegression(max_iter=2000))


def tfidf_baseline(name: str, seed: int = 0) -> dict:
    """TF-IDF word 1-2-grams + logistic regression on the same splits cnnkit uses."""
    from sklearn.model_selection import StratifiedKFold

    from cnnkit.datasets import load_source

    data = load_source(str(SETS[name]))
    make = tfidf_pipeline
    if "test" in data.splits:
        tr, te = data.splits["train"], data.splits["test"]
        model = make().fit(tr.x, tr.y)
        return {"accuracy": float((model.predict(te.x) == te.y).mean())}
    split = data.splits["train"]
    x, y = np.asarray(split.x, dtype=object), split.y
    accs = []
    for tr_idx, te_idx in StratifiedKFold(10, shuffle=True, random_state=seed).split(x, y):  # the same folds as cnnkit
        model = make().fit(x[tr_idx], y[tr_idx])
        accs.append(float((model.predict(x[te_idx]) == y[te_idx]).mean()))
    return {"accuracy": float(np.mean(accs)), "std": float(np.std(accs))}


def prune_run(run_dir: Path) -> None:
    """Removes a finished run's weights, models and exports (.h5, .keras, .tflite, .onnx files),
    checkpoints and TensorBoard logs, keeping its text files (metrics, config, history,
    evaluation): an MR run with five members per fold held about 2 GB, and kept runs filled the
    disk over sessions."""
    for path in sorted(run_dir.rglob("*"), reverse=True):  # files before their folders
        if path.is_dir() and path.name in ("logs", "checkpoints"):
            shutil.rmtree(path, ignore_errors=True)
        elif path.is_file() and path.suffix in (".h5", ".keras", ".bkp", ".tflite", ".onnx"):
            path.unlink()


def members_mean(run_dir: Path) -> float | None:
    """The mean test accuracy of an ensemble's members alone (`member_test_accuracy` in
    metrics.json; for --cv, of every fold's members), or None for a run of one network: what
    the average added is the run's accuracy minus this."""
    files = sorted(run_dir.glob("fold-*/metrics.json")) or [run_dir / "metrics.json"]
    accs = [a for f in files for a in json.loads(f.read_text()).get("member_test_accuracy", [])]
    return float(np.mean(accs)) if accs else None


def cnnkit_row(name: str, extra: list[str], keep: bool = False) -> dict:
    out = ROOT / "bench" / "runs" / f"text-{name}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    cmd = [sys.executable, "-m", "cnnkit.cli", "train", str(ROOT / "recipes" / f"{name}.yaml"), "--data", str(SETS[name]),
           "--out", str(out), "--set", "train.verbose=0", *extra]
    print("$", " ".join(cmd), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    m = json.loads((out / "metrics.json").read_text())
    acc = m.get("cv_accuracy_mean", m.get("test_accuracy"))
    runs = [json.loads(f.read_text()) for f in sorted(out.glob("fold-*/metrics.json"))] or [m]
    # a run's training: its networks' epochs and the fit of an ensemble's naive-Bayes member
    per_run = round(max(r["train_seconds"] + r.get("nb_member_fit_seconds", 0.0) for r in runs), 2)
    nb = [r["nb_member_test_accuracy"] for r in runs if "nb_member_test_accuracy" in r]
    members = members_mean(out)
    if not keep:
        prune_run(out)
    return {"accuracy": acc, "std": m.get("cv_accuracy_std"), "members_mean": members, "wall_seconds": round(wall, 1),
            "max_train_seconds_per_run": per_run, "nb_member": float(np.mean(nb)) if nb else None, "run_dir": str(out)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sets", nargs="*", default=list(SETS))
    parser.add_argument("--keep-runs", action="store_true",
                        help="keep each run's models and checkpoints (by default only its text files stay)")
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="flags for cnnkit train")
    args = parser.parse_args()
    results = ROOT / "bench" / "results" / "text.jsonl"
    results.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sets:
        ours = cnnkit_row(name, args.extra, keep=args.keep_runs)
        t0 = time.perf_counter()
        base = tfidf_baseline(name)
        row = {"set": name, "split": "10-fold CV" if name == "mr" else "train -> test",
               "cnnkit_accuracy": round(100 * ours["accuracy"], 2),
               "cnnkit_std": None if ours["std"] is None else round(100 * ours["std"], 2),
               "members_mean_accuracy": None if ours["members_mean"] is None else round(100 * ours["members_mean"], 2),
               "nb_member_accuracy": None if ours["nb_member"] is None else round(100 * ours["nb_member"], 2),
               "tfidf_lr_accuracy": round(100 * base["accuracy"], 2), "tfidf_seconds": round(time.perf_counter() - t0, 1),
               "kim_cnn_rand": KIM[name][0], "kim_best": KIM[name][1],
               "wall_seconds": ours["wall_seconds"], "max_train_seconds_per_run": ours["max_train_seconds_per_run"],
               "command": f"cnnkit train recipes/{name}.yaml --data {str(SETS[name]).replace(str(ROOT.parent), '..')} "
                          + " ".join(args.extra),
               "date": dt.date.today().isoformat(),
               "machine": describe(), "run_dir": ours["run_dir"]}
        print(json.dumps(row), flush=True)
        with open(results, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
