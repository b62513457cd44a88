"""The training loop and the inference loop.

Read :func:`train` top to bottom: build the optimizer and schedule, hand everything to ``accelerate``
(devices, mixed precision, several GPUs), then loop over length-bucketed batches, evaluating on the
validation set every epoch (or every ``eval_steps``), keeping the best weights in memory and stopping
early when the validation metric stalls.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from bertclf.batching import EncodedTexts, split_batch, train_loader
from bertclf.config import ClassifierConfig
from bertclf.inference import keep_freed_memory, resolve_precision
from bertclf.modeling import head_parameter_names

log = logging.getLogger("bertclf")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EvaluateFn = Callable[[nn.Module], dict[str, Any]]


@dataclass
class TrainResult:
    """What happened during training: the evaluations, the best one, and the cost."""

    history: list[dict[str, Any]] = field(default_factory=list)
    best_step: int = 0
    best_score: float | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_samples: int = 0

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0


class Progress:
    """A tqdm bar (speed, ETA, loss, learning rate) on a terminal; elsewhere, such as a log file or CI, a
    plain progress line every ``LOG_EVERY_SECONDS``, so long runs are never silent."""

    LOG_EVERY_SECONDS = 60.0

    def __init__(self, total_texts: int, enabled: bool):
        self.bar = tqdm(total=total_texts, desc="training", unit="text", dynamic_ncols=True,
                        disable=None if enabled else True)  # None: a bar only when stderr is a terminal
        self.enabled = enabled  # False on all but the first process of a distributed run
        self.logging = enabled and self.bar.disable
        self.total, self.done = total_texts, 0
        self.started = self.last_line = time.perf_counter()

    def update(self, texts: int) -> None:
        self.bar.update(texts)
        self.done += texts

    def wants_readout(self, step: int) -> bool:
        if self.logging:
            return time.perf_counter() - self.last_line >= self.LOG_EVERY_SECONDS
        return not self.bar.disable and step % 10 == 0

    def show(self, loss: float, learning_rate: float) -> None:
        if not self.logging:
            self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{learning_rate:.2e}")
            return
        self.last_line = time.perf_counter()
        speed = self.done / (self.last_line - self.started)
        log.info("training: %d/%d texts (%.0f%%), loss %.4f, lr %.2e, %.1f texts/s, about %.0f s left",
                 self.done, self.total, 100 * self.done / self.total, loss, learning_rate, speed,
                 (self.total - self.done) / speed)

    def write(self, line: str) -> None:
        """A line above the bar, or a log line when there is no bar."""
        if not self.enabled:
            return
        if self.bar.disable:
            log.info(line)
        else:
            self.bar.write(line)

    def close(self) -> None:
        self.bar.close()


def class_weights(labels: np.ndarray, num_classes: int, scheme: str) -> torch.Tensor | None:
    """Loss weights from the training labels' frequencies, or ``None`` for ``scheme='none'``.

    Multiclass (``labels`` are class indices): n / (classes x count), 1 for a class without examples.
    Multilabel (``labels`` is a 0/1 matrix): each label's negatives / positives, BCE's ``pos_weight``; 1 for a
    label that no text or every text carries (0 would make the loss ignore its positives).
    ``sqrt`` takes the square root of either, a milder correction.
    """
    if scheme == "none":
        return None
    if labels.ndim == 1:
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)
    else:
        positives = labels.sum(axis=0).astype(np.float64)
        weights = np.where((positives > 0) & (positives < len(labels)),
                           (len(labels) - positives) / np.maximum(positives, 1), 1.0)
    if scheme == "sqrt":
        weights = np.sqrt(weights)
    return torch.tensor(weights, dtype=torch.float32)


def loss_function(multilabel: bool, weights: torch.Tensor | None = None) -> LossFn:
    """Cross-entropy for class indices, or binary cross-entropy on logits for a multilabel 0/1 matrix, weighted
    by :func:`class_weights` (``pos_weight`` for multilabel)."""

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = None if weights is None else weights.to(logits.device)
        if multilabel:
            return nn.functional.binary_cross_entropy_with_logits(logits, targets.to(logits.dtype), pos_weight=weight)
        return nn.functional.cross_entropy(logits, targets, weight=weight)

    return loss


def parameter_groups(model: nn.Module, config: ClassifierConfig) -> list[dict[str, Any]]:
    """AdamW groups: the new head learns faster; biases and LayerNorm weights (1-D) get no weight decay."""
    head = head_parameter_names(model)
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups.setdefault((name in head, parameter.ndim >= 2), []).append(parameter)
    return [
        {
            "params": parameters,
            "lr": config.effective_head_learning_rate if is_head else config.learning_rate,
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (is_head, decays), parameters in groups.items()
    ]


def is_better(score: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return score < best if metric == "loss" else score > best


def train(model: nn.Module, train_set: EncodedTexts, config: ClassifierConfig, *, pad_token_id: int,
          loss_fn: LossFn, evaluate: EvaluateFn) -> tuple[nn.Module, TrainResult]:
    """Fine-tune ``model`` in place and return it holding the weights of its best validation score."""
    accelerator = Accelerator(mixed_precision=resolve_precision(config.mixed_precision),
                              gradient_accumulation_steps=config.gradient_accumulation_steps)
    if accelerator.device.type == "cpu":
        keep_freed_memory()
    loader = train_loader(train_set, config.batch_size, config.seed, pad_token_id)
    steps_per_epoch = math.ceil(len(loader) / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
    # The fused kernel updates all parameters in one pass: on short texts the optimizer step is otherwise
    # a quarter of the step time on a CPU.
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate,
                                  fused=accelerator.device.type in ("cpu", "cuda"))
    scheduler = get_scheduler(
        "constant_with_warmup" if config.scheduler == "constant" else config.scheduler, optimizer,
        num_warmup_steps=round(config.warmup_ratio * total_steps), num_training_steps=total_steps,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    eval_every = config.eval_steps or steps_per_epoch

    result = TrainResult()
    best_state: dict[str, torch.Tensor] | None = None
    evaluations_without_gain = 0
    step = 0
    started = time.perf_counter()
    progress = Progress(config.epochs * len(train_set), enabled=accelerator.is_local_main_process)
    for _ in range(config.epochs):
        model.train()
        epoch_loss = torch.zeros((), device=accelerator.device)
        epoch_batches = 0
        for batch in loader:
            labels = batch["labels"]
            with accelerator.accumulate(model):
                # Chunked long texts come in parts of at most batch_size windows, so memory stays bounded; the
                # parts' gradients add up to the batch's, as each part's loss is weighted by its share of texts.
                parts = split_batch(batch, config.batch_size)
                loss = torch.zeros((), device=accelerator.device)
                for index, part in enumerate(parts):
                    share = len(part["labels"]) / len(labels)
                    last = index == len(parts) - 1
                    with contextlib.nullcontext() if last else accelerator.no_sync(model):
                        part_labels = part.pop("labels")
                        part_loss = loss_fn(model(**part).logits, part_labels) * share
                        accelerator.backward(part_loss)
                    loss += part_loss.detach()
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
            epoch_loss += loss.detach()
            epoch_batches += 1
            progress.update(len(labels))
            result.train_samples += len(labels)
            if not accelerator.sync_gradients:
                continue
            step += 1
            if progress.wants_readout(step):  # reading the loss waits for the device, so not every step
                progress.show(loss=epoch_loss.item() / epoch_batches, learning_rate=scheduler.get_last_lr()[0])
            if step % eval_every == 0 or step == total_steps:
                metrics = evaluate(accelerator.unwrap_model(model))
                model.train()
                score = metrics[config.metric]
                improved = is_better(score, result.best_score, config.metric)
                result.history.append({"step": step, "epoch": round(step / steps_per_epoch, 2),
                                       "train_loss": epoch_loss.item() / epoch_batches, **_scalars(metrics)})
                if improved:
                    result.best_score, result.best_step, result.best_metrics = score, step, metrics
                    best_state = {name: tensor.detach().to("cpu", copy=True)
                                  for name, tensor in accelerator.unwrap_model(model).state_dict().items()}
                    evaluations_without_gain = 0
                else:
                    evaluations_without_gain += 1
                entry = result.history[-1]
                progress.write(
                    f"epoch {step / steps_per_epoch:.2f} step {step}: train loss {entry['train_loss']:.4f}, "
                    f"val loss {entry['loss']:.4f}, val {config.metric} {score:.4f}{' (best)' if improved else ''}, "
                    f"{time.perf_counter() - started:.0f} s"
                )
                if config.patience is not None and evaluations_without_gain >= config.patience:
                    result.stopped_early = True
                    break
        if result.stopped_early:
            log.info("early stopping: no gain in validation %s for %d evaluations", config.metric,
                     config.patience)
            break
    progress.close()
    result.train_seconds = time.perf_counter() - started
    model = accelerator.unwrap_model(model)
    if best_state is not None:
        model.load_state_dict(best_state)
    log.info("best validation %s %.4f at step %d of %d; %.1f s, %.1f texts/s", config.metric,
             result.best_score, result.best_step, step, result.train_seconds, result.train_samples_per_second)
    return model, result


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if isinstance(value, (int, float))}
