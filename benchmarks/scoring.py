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


def label_matrix(label_sets: list, classes: list) -> np.ndarray:
    """0/1 matrix (texts x classes) of label lists."""
    matrix = np.zeros((len(label_sets), len(classes)), dtype=int)
    for row, labels in enumerate(label_sets):
        matrix[row, [classes.index(label) for label in labels]] = 1
    return matrix
