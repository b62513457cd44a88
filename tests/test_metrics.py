import numpy as np
import pytest

from bertclf.metrics import CONFUSION_NUMBERS, classification_metrics, format_report, multilabel_metrics


def test_metrics_match_a_hand_computed_case():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 1, 2, 0]] * 0.9 + 0.1 / 3
    metrics = classification_metrics(labels, probabilities, ["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["f1_micro"] == pytest.approx(4 / 6)
    # per class: a p=1/2 r=1/2, b p=2/3 r=1, c p=1 r=1/2
    assert metrics["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert metrics["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert metrics["f1_macro"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics["confusion_matrix"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics["loss"] == pytest.approx(-np.log(probabilities[np.arange(6), labels]).mean())
    assert -1 <= metrics["mcc"] <= 1


def test_report_shows_headline_scores_classes_and_matrix():
    labels = np.array([0, 1, 1])
    metrics = classification_metrics(labels, np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]), [0, 1])
    report = format_report(metrics, "test")
    assert report.startswith("== test (3 texts)")
    for fragment in ("accuracy 0.6667", "mcc", "precision", "confusion matrix"):
        assert fragment in report


def test_the_printed_confusion_matrix_stops_at_confusion_numbers_classes_and_says_where_it_is():
    many = CONFUSION_NUMBERS + 1
    labels = np.arange(many).repeat(2)
    metrics = classification_metrics(labels, np.eye(many)[labels], list(range(many)))
    report = format_report(metrics, "test")
    assert len(report.splitlines()) < 2 * many  # the per-class table, without the matrix
    assert report.splitlines()[-1] == (f"confusion matrix: {many} classes, too many to print (up to "
                                       f"{CONFUSION_NUMBERS}); metrics.json holds it (evaluate: --output FILE)")
    few = classification_metrics(labels[:4], np.eye(2)[labels[:4]], [0, 1])
    assert "confusion matrix (rows: true class" in format_report(few, "test")


def test_multilabel_metrics_at_tuned_and_half_thresholds():
    labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
    probabilities = np.array([[0.4, 0.1], [0.45, 0.8], [0.2, 0.7], [0.1, 0.2]])
    metrics = multilabel_metrics(labels, probabilities, ["a", "b"], np.array([0.3, 0.5]))
    # at (0.3, 0.5) every decision is right; at 0.5 label a is never predicted
    assert metrics["f1_micro"] == 1.0 and metrics["subset_accuracy"] == 1.0 and metrics["hamming_loss"] == 0.0
    assert metrics["f1_samples"] == 1.0  # the text without labels, predicted without labels, counts as right
    assert metrics["at_0.5"]["f1_micro"] == pytest.approx(2 * 2 / (2 * 2 + 2))
    assert metrics["at_0.5"]["subset_accuracy"] == pytest.approx(2 / 4)
    assert metrics["per_class"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert metrics["thresholds"] == {"a": 0.3, "b": 0.5}
    assert metrics["lrap"] == pytest.approx(1.0) and metrics["roc_auc_macro"] == pytest.approx(1.0)
    report = format_report(metrics, "val")
    assert "at threshold 0.5: f1_micro 0.6667" in report and "threshold" in report.splitlines()[5]
    assert "confusion matrix" not in report


def test_min_labels_counts_in_the_scores():
    labels = np.array([[1, 0], [0, 1]])
    probabilities = np.array([[0.4, 0.1], [0.2, 0.3]])
    assert multilabel_metrics(labels, probabilities, ["a", "b"], np.full(2, 0.5))["f1_micro"] == 0.0
    assert multilabel_metrics(labels, probabilities, ["a", "b"], np.full(2, 0.5), min_labels=1)["f1_micro"] == 1.0
