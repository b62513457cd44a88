"""Scores on labelled token ids: the predictor under a run's prediction options, and the metrics of its
predictions (multilabel thresholds tuned on the very set during training, as for the model that is kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from bertclf.batching import EncodedTexts
from bertclf.config import ClassifierConfig
from bertclf.inference.predictor import Predictor
from bertclf.inference.runtimes import Runtime
from bertclf.metrics import classification_metrics, multilabel_metrics
from bertclf.thresholds import tune_thresholds


def thresholds_in_force(config: ClassifierConfig, tuned: np.ndarray | None, classes: int) -> np.ndarray | None:
    """Multilabel thresholds that decide: ``config.threshold`` when set, else those tuned on validation data."""
    if config.threshold is not None:
        return np.full(classes, config.threshold)
    return tuned


def make_predictor(runtime: Runtime, pad_token_id: int, config: ClassifierConfig, multilabel: bool,
                   thresholds: np.ndarray | None, across_processes: bool = False,
                   padding_side: str = "right") -> Predictor:
    """The predictor under the prediction options in ``config`` (batch size, minimum labels); ``padding_side`` is
    the tokenizer's."""
    return Predictor(runtime, pad_token_id, config.eval_batch_size, multilabel=multilabel, thresholds=thresholds,
                     min_labels=config.min_labels, across_processes=across_processes, padding_side=padding_side)


def predict_and_score(predictor: Predictor, dataset: EncodedTexts, classes: Sequence[Any], config: ClassifierConfig,
                      tune: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Probabilities and scores on a labelled set; with ``tune`` (validation during training) the multilabel
    thresholds are first tuned on this very set, as they will be for the model that is kept."""
    probabilities = predictor.predict_proba(dataset.token_ids)
    return probabilities, score_probabilities(dataset.labels, probabilities, classes, config, predictor.multilabel,
                                              predictor.thresholds, tune)


def score_probabilities(labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[Any],
                        config: ClassifierConfig, multilabel: bool, thresholds: np.ndarray | None,
                        tune: bool = False) -> dict[str, Any]:
    """The scores of probabilities however they were made (a predictor's, or out of fold); see
    :func:`predict_and_score` for ``tune``."""
    if not multilabel:
        return classification_metrics(labels, probabilities, classes)
    if tune:
        thresholds = tune_thresholds(labels, probabilities, config.threshold_strategy, config.threshold)
    return multilabel_metrics(labels, probabilities, classes, thresholds, config.min_labels)
