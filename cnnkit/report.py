"""The report of a run: RUN_DIR/report.html with its PNGs, viewable offline (no scripts, no
network): summary, loss and accuracy curves, confusion matrix, per-class table, fine-tuning
phases, timings, model summary and the resolved config.

Written at the end of every `cnnkit train`; `cnnkit report RUN_DIR` writes it again.
"""
from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import yaml

from cnnkit import runs
from cnnkit.errors import CnnkitError

CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:0.8em;
overflow-x:auto;font-size:12px}img{max-width:100%}h2{border-bottom:1px solid #ddd;margin-top:1.6em}
.bad{color:#a00}"""


def read_history(run_dir: Path) -> dict[str, list[float]]:
    """history.csv as {column: [value per epoch]} (empty when the run has none)."""
    path = run_dir / "history.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row.items():
            if v not in (None, ""):
                out.setdefault(k, []).append(float(v))
    return out


def plot_curves(history: dict, path: Path, phase_start: int | None = None) -> bool:
    """Loss and accuracy per epoch (training and validation) as one PNG; False without history.

    `phase_start`: the epoch where a fine-tuning run unfroze its body (a dashed line)."""
    if not history.get("epoch"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(e) + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, style in ((metric, "-"), (f"val_{metric}", "--")):
            if key in history:
                ax.plot(epochs, history[key], style, marker="o", markersize=3, label=key)
        if phase_start:
            ax.axvline(phase_start + 0.5, color="grey", linestyle=":", label="body unfrozen")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def table(rows: list[list], header: list[str]) -> str:
    """An HTML table of `rows` (values escaped; floats with 4 decimals)."""
    cell = lambda v: f"{v:.4f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def model_summary(model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda s, **kw: lines.append(s), expand_nested=False, line_length=110)
    return "\n".join(lines)


def write_report(run_dir: str | Path, model=None) -> Path:
    """Writes RUN_DIR/report.html (and report-curves.png) from what the run directory holds.

    Args:
        model: the run's end-to-end model for the summary (default: loaded from model.keras;
            left out when the run has none, e.g. a cross-validation folder).
    Returns:
        The path of report.html.
    """
    run_dir, cfg, class_names = runs.read_run(run_dir)
    metrics_path = run_dir / "metrics.json"
    if not metrics_path.exists():
        raise CnnkitError(f"{run_dir} has no metrics.json: the run did not finish. Resume it with "
                          f"`cnnkit train --resume {run_dir}`, then write its report.")
    metrics = json.loads(metrics_path.read_text())
    parts = [f"<h1>{html.escape(cfg.get('task', 'run'))}: {html.escape(run_dir.name)}</h1>"]

    summary = [[k, v] for k, v in metrics.items() if not isinstance(v, (list, dict))]
    parts.append("<h2>Summary</h2>" + table(summary, ["metric", "value"]))

    if "folds" in metrics:
        grouped = any("test_groups" in f for f in metrics["folds"])  # folds of whole groups (data.group_column)
        rows = [[f["fold"]] + ([", ".join(f.get("test_groups", []))] if grouped else [])
                + [f["test_accuracy"], f["macro_f1"], f["train_seconds"]] for f in metrics["folds"]]
        header = ["fold"] + (["test groups"] if grouped else []) + ["test accuracy", "macro-F1", "train s"]
        groups = (f" Each fold tests on whole groups ({html.escape(metrics['cv_groups'])})."
                  if metrics.get("cv_groups") else "")
        parts.append("<h2>Cross-validation folds</h2>" + table(rows, header)
                     + f"<p>Each fold is a run directory with its own report.html.{groups}</p>")

    tuning = metrics.get("fine_tuning")
    if tuning:
        parts.append("<h2>Fine-tuning</h2>" + table([[k, v] for k, v in tuning.items()], ["setting", "value"])
                     + f"<p>Started from <code>{html.escape(str(cfg['model'].get('from_run') or cfg['model'].get('weights')))}</code>.</p>")

    if plot_curves(read_history(run_dir), run_dir / "report-curves.png", tuning["head_epochs"] if tuning else None):
        parts.append('<h2>Training curves</h2><img src="report-curves.png" alt="loss and accuracy per epoch">')

    evaluation = run_dir / "evaluation"
    if (evaluation / "metrics.json").exists():
        ev = json.loads((evaluation / "metrics.json").read_text())
        per_class = ev.get("per_class", {})
        rows = [[name, per_class[name]["precision"], per_class[name]["recall"], per_class[name]["f1-score"],
                 int(per_class[name]["support"])] for name in (class_names or []) if name in per_class]
        if metrics.get("evaluated_on") == "val":  # the data had no test split
            heading = ("<h2>Validation set, per class</h2><p>The data had no test split: these figures are on the "
                       "validation split that chose the kept epoch, so they are optimistic for new data.</p>")
        else:
            heading = "<h2>Test set, per class</h2>"
        parts.append(heading + table(rows, ["class", "precision", "recall", "F1", "support"]))
        if (evaluation / "confusion.png").exists():
            parts.append('<h2>Confusion matrix</h2><img src="evaluation/confusion.png" alt="confusion matrix">'
                         '<p>CSV: <a href="evaluation/confusion.csv">evaluation/confusion.csv</a>; misclassified inputs: '
                         '<a href="evaluation/misclassified.csv">evaluation/misclassified.csv</a>.</p>')

    timings = [[k, metrics[k]] for k in ("prepare_seconds", "train_seconds", "train_seconds_total", "train_samples_per_second",
                                         "prepare_samples_per_second") if k in metrics]
    if metrics.get("epoch_train_seconds"):
        timings.append(["seconds per epoch (training part)", ", ".join(f"{s:.2f}" for s in metrics["epoch_train_seconds"])])
    if timings:
        parts.append("<h2>Timings</h2>" + table(timings, ["what", "value"]))

    if model is None and (run_dir / "model.keras").exists():
        model = runs.load_model(run_dir)
    if model is not None:
        parts.append(f"<h2>Model</h2><pre>{html.escape(model_summary(model))}</pre>")
    parts.append(f"<h2>Config</h2><pre>{html.escape(yaml.safe_dump(cfg, sort_keys=False))}</pre>")

    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(run_dir.name)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    path = run_dir / "report.html"
    runs.atomic_write(path, page)
    return path
