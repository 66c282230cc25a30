"""Classification metrics and reports (cnnkit.evaluation)."""
import numpy as np
import pytest

from cnnkit import evaluation


def one_hot(indices, n):
    return np.eye(n)[indices]


def test_single_label_metrics_match_their_definitions():
    """Accuracy, macro-F1, top-k and the confusion matrix of six examples of three classes."""
    y = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[.8, .1, .1], [.2, .7, .1], [.1, .8, .1], [.1, .6, .3], [.3, .3, .4], [.5, .1, .4]])
    m = evaluation.classification_metrics(y, probs, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    # predicted a, b, b, b, c, a: a precision 1/2 recall 1/2; b 2/3 and 1; c 1 and 1/2
    f1 = {"a": 0.5, "b": 0.8, "c": 2 / 3}
    assert m["macro_f1"] == pytest.approx(np.mean(list(f1.values())))
    assert m["k"] == 2 and m["top_k_accuracy"] == pytest.approx(1.0)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert "accuracy 0.6667" in evaluation.format_report(m, ["a", "b", "c"])


def test_macro_f1_counts_only_classes_that_are_there():
    """One validation example of three classes, predicted right: macro-F1 1, not 1/3 (classes
    absent from the truth and the predictions have no F1); a class predicted but absent from the
    truth still counts as 0; the report keeps every class."""
    right = evaluation.classification_metrics(np.array([1]), one_hot([1], 3), ["a", "b", "c"])
    assert right["macro_f1"] == pytest.approx(1.0)
    assert set(right["report"]) >= {"a", "b", "c"}
    wrong = evaluation.classification_metrics(np.array([1, 1]), one_hot([1, 2], 3), ["a", "b", "c"])
    assert wrong["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_multilabel_macro_f1_counts_only_labels_that_are_there():
    truth = np.array([[1, 0, 0], [1, 1, 0]])
    m = evaluation.multilabel_metrics(truth, truth.astype(float), ["a", "b", "c"])
    assert m["macro_f1"] == pytest.approx(1.0) and m["accuracy"] == 1.0 and m["hamming_loss"] == 0.0
    half = evaluation.multilabel_metrics(truth, np.array([[1, 0, 1], [1, 0, 0]], dtype=float), ["a", "b", "c"])
    assert half["macro_f1"] == pytest.approx((1 + 0 + 0) / 3)
    assert half["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    nothing = evaluation.multilabel_metrics(np.zeros((2, 3)), np.zeros((2, 3)), ["a", "b", "c"])
    assert nothing["accuracy"] == 1.0


def test_confusion_csv_and_plot(tmp_path):
    evaluation.write_confusion_csv([[2, 1], [0, 3]], ["cat", "dog"], tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text().splitlines() == ["true\\predicted,cat,dog", "cat,2,1", "dog,0,3"]
    evaluation.plot_confusion([[2, 1], [0, 3]], ["cat", "dog"], tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
