"""The test scores every side is judged by, computed the same way for all of them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef


def single_label_scores(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Class indices against class indices."""
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "f1_macro": float(f1_score(labels, predictions, average="macro")),
        "mcc": float(matthews_corrcoef(labels, predictions)),
    }


def multilabel_scores(labels: np.ndarray, decisions: np.ndarray) -> dict[str, float]:
    """0/1 matrices (texts x labels) against each other."""
    return {
        "f1_micro": float(f1_score(labels, decisions, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(labels, decisions, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(labels, decisions)),
    }
