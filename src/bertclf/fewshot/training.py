"""One seed of the low-label mode: contrastive tuning, the regression head on the tuned vectors, and its
validation scores (on the validation texts, or out of fold on the training texts when none were given)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertclf.batching import EncodedTexts
from bertclf.config import ClassifierConfig
from bertclf.device import resolve_precision
from bertclf.fewshot.contrastive import tune_encoder
from bertclf.fewshot.head import fit_head, out_of_fold_probabilities, probabilities, set_head
from bertclf.fewshot.pairs import label_matrix, tuning_steps
from bertclf.inference import Predictor, TorchRuntime, score_probabilities
from bertclf.modeling import EncoderFeatures, PooledClassifier
from bertclf.training import TrainState


@dataclass
class Task:
    """What the mode reads of the tokenizer, and the run's classes."""

    classes: Sequence[Any]
    multilabel: bool
    pad_token_id: int
    padding_side: str


def train_low_label(model: PooledClassifier, train_set: EncodedTexts, val_set: EncodedTexts | None, task: Task,
                    config: ClassifierConfig, weights: np.ndarray | None, seed: int) -> TrainState:
    """Tune ``model`` in place and give it its head; the state records the steps, the log and the validation scores
    (``val_set`` None: out of fold on the training texts), as the fine-tune's loop records its best evaluation."""
    started = time.perf_counter()
    classes = len(task.classes)
    # tune the encoder on pairs (a frozen encoder is not tuned: the head alone is fitted on its vectors)
    steps = 0 if config.freeze_encoder else tuning_steps(len(train_set), config.contrastive_steps)
    history, tuned_texts = [], 0
    if steps:
        history, tuned_texts = tune_encoder(model, train_set.token_ids, label_matrix(train_set.labels, classes),
                                            config, steps, task.pad_token_id, task.padding_side, seed)
    # fit the head to convergence on the tuned vectors
    vectors = _vectors(model, train_set, task, config)
    weight, bias = fit_head(vectors, train_set.labels, classes, weights)
    set_head(model, weight, bias)
    seconds = time.perf_counter() - started
    # score it: on the validation texts, or out of fold on the training texts
    if val_set is None:
        scored = out_of_fold_probabilities(vectors, train_set.labels, classes, weights, seed)
    else:
        scored = probabilities(_vectors(model, val_set, task, config), weight, bias, task.multilabel)
    scored_set = train_set if val_set is None else val_set
    metrics = score_probabilities(scored_set.labels, scored, task.classes, config, task.multilabel, None, tune=True)
    scalars = {name: value for name, value in metrics.items() if isinstance(value, (int, float))}
    return TrainState(step=steps, best_step=steps, best_score=metrics[config.metric], best_metrics=metrics,
                      history=[{"step": steps, **scalars}], log=history, train_seconds=seconds,
                      train_samples=tuned_texts + len(train_set))


def _vectors(model: PooledClassifier, dataset: EncodedTexts, task: Task, config: ClassifierConfig) -> np.ndarray:
    """The unit-length vectors the head reads, one per text."""
    runtime = TorchRuntime(EncoderFeatures(model), resolve_precision(config.mixed_precision))
    predictor = Predictor(runtime, task.pad_token_id, config.eval_batch_size, padding_side=task.padding_side)
    return predictor.logits(dataset.token_ids).astype(np.float64)
