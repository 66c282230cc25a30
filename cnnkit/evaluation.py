"""Classification metrics, reports and plots (scikit-learn and matplotlib), for every task."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str], top_k: int = 5) -> dict:
    """Accuracy, macro-F1, top-k accuracy, the per-class report and the confusion matrix.

    Args:
        y_true: (N,) int class indices. probs: (N, num_classes) probabilities.

    Returns:
        {"accuracy", "macro_f1", "top_k_accuracy", "k", "report" (sklearn dict, every class),
         "confusion" (num_classes x num_classes list, rows = true class)}. The macro-F1 averages
        the classes that are in `y_true` or predicted: a class absent from both (a small
        validation split) has no F1 to count, rather than a 0 that would halve a perfect score.
    """
    from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix, f1_score,
                                 top_k_accuracy_score)

    if np.ndim(y_true) == 2:
        return multilabel_metrics(y_true, probs, class_names)
    labels = list(range(len(class_names)))
    y_pred = probs.argmax(axis=1)
    k = min(top_k, len(class_names) - 1) if len(class_names) > 2 else 1
    out = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=np.union1d(y_true, y_pred), average="macro",
                                   zero_division=0)),
        "k": k,
        "top_k_accuracy": float(top_k_accuracy_score(y_true, probs, k=k, labels=labels)) if k > 1
        else float(accuracy_score(y_true, y_pred)),
        "report": classification_report(y_true, y_pred, labels=labels, target_names=class_names,
                                        output_dict=True, zero_division=0),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }
    return out


def multilabel_metrics(y_true: np.ndarray, probs: np.ndarray, class_names: list[str], threshold: float = 0.5) -> dict:
    """Multi-label metrics: a label is predicted when its probability >= `threshold`.

    Args:
        y_true: (N, num_classes) multi-hot. probs: (N, num_classes) sigmoid outputs.

    Returns:
        {"accuracy" (exact match of the label set), "macro_f1", "micro_f1", "hamming_loss",
         "report" (sklearn dict, one row per label)}. The macro-F1 averages the labels that are
        true or predicted somewhere (all labels when none is).
    """
    from sklearn.metrics import accuracy_score, classification_report, f1_score, hamming_loss

    truth, pred = np.asarray(y_true) >= 0.5, np.asarray(probs) >= threshold
    seen = np.flatnonzero(truth.any(axis=0) | pred.any(axis=0))
    return {
        "accuracy": float(accuracy_score(truth, pred)),
        "macro_f1": float(f1_score(truth, pred, labels=seen if seen.size else None, average="macro",
                                   zero_division=0)),
        "micro_f1": float(f1_score(truth, pred, average="micro", zero_division=0)),
        "hamming_loss": float(hamming_loss(truth, pred)),
        "report": classification_report(truth, pred, target_names=class_names, output_dict=True, zero_division=0),
    }


def format_report(metrics: dict, class_names: list[str]) -> str:
    """A plain-text table: the summary line and one row per class."""
    if "micro_f1" in metrics:
        head = (f"exact-match accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
                f"micro-F1 {metrics['micro_f1']:.4f}   Hamming loss {metrics['hamming_loss']:.4f}")
    else:
        head = (f"accuracy {metrics['accuracy']:.4f}   macro-F1 {metrics['macro_f1']:.4f}   "
                f"top-{metrics['k']} accuracy {metrics['top_k_accuracy']:.4f}")
    lines = [head, ""]
    width = max(8, *(len(c) for c in class_names))
    lines.append(f"{'class':<{width}}  precision  recall  f1-score  support")
    for name in class_names:
        r = metrics["report"][name]
        lines.append(f"{name:<{width}}  {r['precision']:9.4f}  {r['recall']:6.4f}  {r['f1-score']:8.4f}  {int(r['support']):7d}")
    return "\n".join(lines)


def write_confusion_csv(confusion, class_names, path: Path) -> None:
    """The confusion matrix as CSV: rows are true classes, columns predicted ones."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["true\\predicted", *class_names])
        for name, row in zip(class_names, confusion):
            w.writerow([name, *row])


def plot_confusion(confusion, class_names, path: Path, title: str = "Confusion matrix") -> None:
    """The confusion matrix as a PNG heat map with counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion)
    n = len(class_names)
    size = min(16, 2 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=90 if n > 10 else 0)
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        threshold = cm.max() / 2 if cm.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > threshold else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
