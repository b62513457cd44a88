"""Multilabel decisions: which labels a text gets from its per-label probabilities, and tuning the thresholds.

With many labels each label is rare, so a sigmoid output seldom passes 0.5 and a fixed 0.5 threshold predicts
almost nothing. Thresholds are therefore tuned on validation data after training, per label or globally.
"""

from __future__ import annotations

import numpy as np

CANDIDATES = np.round(np.arange(0.01, 1.0, 0.01), 2)
MIN_POSITIVES_TO_TUNE = 5  # a label with fewer positive validation texts takes the global threshold


def decide(probabilities: np.ndarray, thresholds: np.ndarray | float, min_labels: int = 0) -> np.ndarray:
    """0/1 decisions (texts x labels): labels at or above their threshold, plus the most probable ones up to
    ``min_labels`` per text."""
    decisions = probabilities >= thresholds
    if min_labels > 0:
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, :min_labels]
        np.put_along_axis(decisions, top, True, axis=1)
    return decisions


def _f1_per_threshold(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (thresholds x labels) and micro-F1 (thresholds) at every candidate threshold."""
    truth = labels.astype(bool)
    per_label, micro = [], []
    for threshold in CANDIDATES:
        predicted = probabilities >= threshold
        true_positives = (predicted & truth).sum(axis=0)
        errors = (predicted ^ truth).sum(axis=0)  # false positives + false negatives
        per_label.append(2 * true_positives / np.maximum(2 * true_positives + errors, 1))
        micro.append(2 * true_positives.sum() / max(2 * true_positives.sum() + errors.sum(), 1))
    return np.array(per_label), np.array(micro)


def _middle_of_best(scores: np.ndarray) -> np.ndarray:
    """Per column, the candidate in the middle of those reaching the best score: on small validation sets a
    whole range of thresholds ties, and its middle generalises better than its lowest end."""
    best = scores >= scores.max(axis=0, keepdims=True) - 1e-12
    positions = [np.flatnonzero(column) for column in best.T]
    return CANDIDATES[[tied[len(tied) // 2] for tied in positions]]


def tune_thresholds(labels: np.ndarray, probabilities: np.ndarray, strategy: str,
                    fixed: float | None = None) -> np.ndarray:
    """One threshold per label: ``fixed`` (default 0.5), the ``global`` one that maximises micro-F1, or
    ``per-label`` each label's own F1 maximiser, falling back to the global one for labels with fewer than
    ``MIN_POSITIVES_TO_TUNE`` positive texts."""
    count = labels.shape[1]
    if strategy == "fixed":
        return np.full(count, 0.5 if fixed is None else fixed)
    per_label, micro = _f1_per_threshold(labels, probabilities)
    best_global = _middle_of_best(micro[:, None])[0]
    if strategy == "global":
        return np.full(count, best_global)
    tunable = labels.sum(axis=0) >= MIN_POSITIVES_TO_TUNE
    return np.where(tunable, _middle_of_best(per_label), best_global)
