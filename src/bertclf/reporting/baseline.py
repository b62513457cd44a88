"""The classical baseline every run is compared with: TF-IDF features and logistic regression, trained in seconds
on the same training part, its multilabel thresholds tuned on the same validation part, scored on the same test
part. What the fine-tuned model scores above it is what fine-tuning bought."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline

from bertclf.metrics import classification_metrics, multilabel_metrics
from bertclf.thresholds import tune_thresholds

MAX_FEATURES = 100_000


def _pipeline(multilabel: bool) -> Any:
    # Word unigrams and bigrams with sublinear term frequency: the usual strong setting for topic and sentiment.
    features = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=MAX_FEATURES)
    if multilabel:  # one binary problem per label, which liblinear solves an order of magnitude faster than lbfgs
        return make_pipeline(features, OneVsRestClassifier(LogisticRegression(C=10.0, solver="liblinear")))
    return make_pipeline(features, LogisticRegression(C=10.0, max_iter=1000, class_weight="balanced"))


def tfidf_baseline(train_texts: Sequence[str], train_labels: np.ndarray, val_texts: Sequence[str],
                   val_labels: np.ndarray, test_texts: Sequence[str], test_labels: np.ndarray,
                   classes: Sequence[Any], threshold_strategy: str = "global") -> dict[str, Any]:
    """The baseline's test metrics (the same scores as the model's) and its training time in seconds."""
    multilabel = train_labels.ndim == 2
    started = time.perf_counter()
    pipeline = _pipeline(multilabel)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pipeline.fit(list(train_texts), train_labels)
    seconds = time.perf_counter() - started
    if multilabel:
        thresholds = tune_thresholds(val_labels, pipeline.predict_proba(list(val_texts)), threshold_strategy)
        metrics = multilabel_metrics(test_labels, pipeline.predict_proba(list(test_texts)), classes, thresholds)
    else:
        probabilities = np.zeros((len(test_texts), len(classes)))
        probabilities[:, pipeline.classes_] = pipeline.predict_proba(list(test_texts))  # a class absent in training
        metrics = classification_metrics(test_labels, probabilities, classes)
    return {"name": "TF-IDF + logistic regression", "train_seconds": round(seconds, 2), "metrics": metrics}
