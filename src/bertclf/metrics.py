"""Scores of a single-label classifier (scikit-learn does the arithmetic) and their printed report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
)

HEADLINE = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc")


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
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": names,
            "matrix": confusion_matrix(labels, predictions, labels=every_class).tolist(),
        },
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
    """The headline scores, the per-class table and the confusion matrix as plain text."""
    parts = [
        f"== {title} ({metrics['n']} texts)",
        "  ".join(f"{name} {metrics[name]:.4f}" for name in HEADLINE),
        "",
        format_table(
            ["class", "precision", "recall", "f1", "support"],
            [[name, s["precision"], s["recall"], s["f1"], s["support"]] for name, s in metrics["per_class"].items()],
        ),
        "",
        "confusion matrix (rows: true class, columns: predicted class)",
    ]
    names = metrics["confusion_matrix"]["labels"]
    matrix = metrics["confusion_matrix"]["matrix"]
    parts.append(format_table(["", *names], [[name, *row] for name, row in zip(names, matrix, strict=True)]))
    return "\n".join(parts)
