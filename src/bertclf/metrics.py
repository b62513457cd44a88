"""Scores of multiclass and multilabel classifiers (scikit-learn does the arithmetic) and their printed reports."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    hamming_loss,
    label_ranking_average_precision_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from bertclf.thresholds import decide

CONFUSION_NUMBERS = 12  # classes up to which the confusion matrix is printed and its cells labelled in report.html
HEADLINE = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc")
MULTILABEL_HEADLINE = ("f1_micro", "f1_macro", "f1_weighted", "f1_samples", "subset_accuracy", "hamming_loss")


def cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, F1 (macro/micro/weighted), MCC, loss, per-class scores and the confusion matrix."""
    predictions = probabilities.argmax(axis=1)
    every_class = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=every_class, zero_division=0
    )
    names = [str(label) for label in classes]
    return {
        "n": len(labels),
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1_macro": float(f1_score(labels, predictions, labels=every_class, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(labels, predictions, labels=every_class, average="micro", zero_division=0)),
        "f1_weighted": float(f1_score(labels, predictions, labels=every_class, average="weighted",
                                      zero_division=0)),
        "mcc": float(matthews_corrcoef(labels, predictions)),
        "loss": cross_entropy(labels, probabilities),
        "per_class": _per_class(names, precision, recall, f1, support),
        "confusion_matrix": {
            "labels": names,
            "matrix": confusion_matrix(labels, predictions, labels=every_class).tolist(),
        },
    }


def _per_class(names: Sequence[str], precision, recall, f1, support) -> dict[str, dict[str, float]]:
    return {name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)}


def _multilabel_decision_scores(labels: np.ndarray, decisions: np.ndarray) -> dict[str, float]:
    """The scores that depend on the thresholds."""
    # A text with no true and no predicted label is right: for "samples" 0/0 counts as 1.
    scores = {f"f1_{average}": float(f1_score(labels, decisions, average=average,
                                              zero_division=1 if average == "samples" else 0))
              for average in ("micro", "macro", "weighted", "samples")}
    precision, recall, _, _ = precision_recall_fscore_support(labels, decisions, average="micro", zero_division=0)
    scores.update(precision_micro=float(precision), recall_micro=float(recall),
                  subset_accuracy=float(accuracy_score(labels, decisions)),
                  hamming_loss=float(hamming_loss(labels, decisions)),
                  labels_per_text=float(decisions.sum(axis=1).mean()))
    return scores


def multilabel_metrics(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[Any],
                       thresholds: np.ndarray, min_labels: int = 0) -> dict[str, Any]:
    """Scores at the given per-label thresholds, the same scores at 0.5 under ``at_0.5`` (so the gain from tuning
    shows), and the threshold-free ones: label-ranking average precision, macro ROC-AUC and the BCE loss."""
    labels = labels.astype(int)
    decisions = decide(probabilities, thresholds, min_labels).astype(int)
    names = [str(label) for label in classes]
    precision, recall, f1, support = precision_recall_fscore_support(labels, decisions, zero_division=0)
    # ROC-AUC is undefined for a label that is always or never present: average over the others.
    scorable = (labels.min(axis=0) == 0) & (labels.max(axis=0) == 1)
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return {
        "n": len(labels),
        **_multilabel_decision_scores(labels, decisions),
        "lrap": float(label_ranking_average_precision_score(labels, probabilities)),
        "roc_auc_macro": float(roc_auc_score(labels[:, scorable], probabilities[:, scorable], average="macro"))
        if scorable.any() else float("nan"),
        "loss": float(-(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)).mean()),
        "at_0.5": _multilabel_decision_scores(labels, decide(probabilities, 0.5, min_labels).astype(int)),
        "thresholds": {name: float(value) for name, value in zip(names, thresholds, strict=True)},
        "per_class": _per_class(names, precision, recall, f1, support),
    }


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned first column, right-aligned others; floats with 4 decimals."""
    cells = [[f"{value:.4f}" if isinstance(value, float) else str(value) for value in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]

    def line(values: Sequence[str]) -> str:
        first, *rest = values
        return "  ".join([first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    return "\n".join([line([str(h) for h in header]), *(line(row) for row in cells)])


def format_report(metrics: dict[str, Any], title: str) -> str:
    """The headline scores, the per-class table and, for multiclass, the confusion matrix as plain text (up to
    :data:`CONFUSION_NUMBERS` classes: beyond, its rows would flood the terminal; metrics.json has it)."""
    multilabel = "at_0.5" in metrics
    headline = MULTILABEL_HEADLINE if multilabel else HEADLINE
    parts = [f"== {title} ({metrics['n']} texts)", "  ".join(f"{name} {metrics[name]:.4f}" for name in headline)]
    if multilabel:
        at_half = metrics["at_0.5"]
        parts += [
            "at threshold 0.5: " + "  ".join(f"{name} {at_half[name]:.4f}" for name in headline),
            f"lrap {metrics['lrap']:.4f}  roc_auc_macro {metrics['roc_auc_macro']:.4f}  "
            f"labels per text {metrics['labels_per_text']:.2f} (at 0.5: {at_half['labels_per_text']:.2f})",
        ]
    rows = [[name, s["precision"], s["recall"], s["f1"], s["support"]] for name, s in metrics["per_class"].items()]
    header = ["class", "precision", "recall", "f1", "support"]
    if multilabel:
        header.append("threshold")
        rows = [[*row, metrics["thresholds"][row[0]]] for row in rows]
    parts += ["", format_table(header, rows)]
    if not multilabel and len(metrics["confusion_matrix"]["labels"]) > CONFUSION_NUMBERS:
        parts += ["", f"confusion matrix: {len(metrics['confusion_matrix']['labels'])} classes, too many to print "
                      f"(up to {CONFUSION_NUMBERS}); metrics.json holds it (evaluate: --output FILE)"]
    elif not multilabel:
        names = metrics["confusion_matrix"]["labels"]
        matrix = metrics["confusion_matrix"]["matrix"]
        parts += ["", "confusion matrix (rows: true class, columns: predicted class)",
                  format_table(["", *names], [[name, *row] for name, row in zip(names, matrix, strict=True)])]
    return "\n".join(parts)


def format_seed_summary(summary: dict[str, Any], multilabel: bool) -> str:
    """Each headline score as mean ± standard deviation over the seeds, on validation and test."""
    parts = [name for name in ("val", "test") if name in summary]
    rows = [[name, *(f"{summary[part][name]['mean']:.4f} ± {summary[part][name]['std']:.4f}" for part in parts)]
            for name in (MULTILABEL_HEADLINE if multilabel else HEADLINE)]
    seeds = ", ".join(map(str, summary["seeds"]))
    return "\n".join([f"== {len(summary['seeds'])} seeds ({seeds}; the model of seed {summary['kept']} is kept, the "
                      "best on validation)", format_table(["score", *parts], rows)])
