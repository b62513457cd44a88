"""The low-label mode's head: scikit-learn's logistic regression fitted to convergence on the tuned encoder's
unit-length vectors (one regression per label for multilabel data), copied into the network's linear layer so that
the saved network computes the regression's own probabilities; and the out-of-fold probabilities that score it
when no validation texts are given."""

from __future__ import annotations

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold, StratifiedKFold

from bertclf.modeling import PooledClassifier

MAX_ITERATIONS = 5000
FOLDS = 5
# The logit of a label that every training text carries (or none does): the head gives it a constant probability.
CONSTANT_LOGIT = 12.0


def fit_head(vectors: np.ndarray, labels: np.ndarray, num_classes: int,
             weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The weight (classes x hidden) and bias of a linear layer whose softmax (multiclass) or sigmoid (multilabel:
    ``labels`` a 0/1 matrix) gives the fitted regressions' probabilities. ``weights`` are the loss weights of
    ``--class-weights`` (per class, or per label for its positive texts)."""
    if labels.ndim == 2:
        rows = [_binary_layer(vectors, labels[:, column], None if weights is None else weights[column])
                for column in range(labels.shape[1])]
        return np.stack([weight for weight, _ in rows]), np.array([bias for _, bias in rows])
    present = np.unique(labels)
    weight = np.zeros((num_classes, vectors.shape[1]))
    bias = np.full(num_classes, -CONSTANT_LOGIT)  # a class without training texts: never predicted
    if len(present) == 1:  # a fold of one class: that class, whatever the text
        bias[present[0]] = 0.0
        return weight, bias
    regression = _regression(None if weights is None else {int(c): float(weights[c]) for c in present})
    regression.fit(vectors, labels)
    if len(present) == 2:  # one coefficient vector: p(second) = sigmoid(w.x + b), the softmax of (0, w.x + b)
        weight[present[1]], bias[present[0]], bias[present[1]] = regression.coef_[0], 0.0, regression.intercept_[0]
    else:
        weight[present], bias[present] = regression.coef_, regression.intercept_
    return weight, bias


def _regression(class_weight: dict[int, float] | None) -> LogisticRegression:
    return LogisticRegression(max_iter=MAX_ITERATIONS, class_weight=class_weight)


def _binary_layer(vectors: np.ndarray, positive: np.ndarray, weight: float | None) -> tuple[np.ndarray, float]:
    """One label's row: its regression, or a constant where its training texts are all positive or all negative."""
    if positive.min() == positive.max():
        return np.zeros(vectors.shape[1]), CONSTANT_LOGIT if positive[0] else -CONSTANT_LOGIT
    regression = _regression(None if weight is None else {0: 1.0, 1: float(weight)}).fit(vectors, positive)
    return regression.coef_[0], float(regression.intercept_[0])


def probabilities(vectors: np.ndarray, weight: np.ndarray, bias: np.ndarray, multilabel: bool) -> np.ndarray:
    """What the linear layer's logits give: each label's sigmoid (multilabel), or the softmax over the classes."""
    logits = vectors @ weight.T + bias
    return expit(logits) if multilabel else softmax(logits, axis=1)


def out_of_fold_probabilities(vectors: np.ndarray, labels: np.ndarray, num_classes: int,
                              weights: np.ndarray | None, seed: int) -> np.ndarray:
    """Each text's probabilities from a head fitted on the other folds (stratified by class where every class has
    texts enough for that, else plain folds)."""
    multilabel = labels.ndim == 2
    counts = np.bincount(labels, minlength=num_classes) if not multilabel else None
    folds = min(FOLDS, len(labels))
    stratified = counts is not None and counts[counts > 0].min() >= folds
    splitter = (StratifiedKFold if stratified else KFold)(n_splits=folds, shuffle=True, random_state=seed)
    result = np.zeros((len(labels), num_classes))
    for fitted_on, scored in splitter.split(vectors, labels if stratified else None):
        weight, bias = fit_head(vectors[fitted_on], labels[fitted_on], num_classes, weights)
        result[scored] = probabilities(vectors[scored], weight, bias, multilabel)
    return result


def set_head(model: PooledClassifier, weight: np.ndarray, bias: np.ndarray) -> None:
    """Copy a fitted head into the network's linear layer."""
    layer = model.head.layers[-1]
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
