"""The training loop.

Read :func:`train` top to bottom: build the optimizer and schedule, hand everything to ``accelerate`` (devices,
mixed precision, several processes), restore the latest checkpoint when resuming, then run :func:`train_step`
over length-bucketed batches, evaluating on the validation set every epoch (or every ``eval_steps``), keeping
the best weights, stopping early when the validation metric stalls and writing checkpoints (see
:mod:`bertclf.checkpoints`). Everything the loop carries from step to step is one :class:`TrainState`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from torch import nn
from tqdm.auto import tqdm
from transformers import get_scheduler

from bertclf.batching import EncodedTexts, split_batch, train_loader
from bertclf.config import ClassifierConfig
from bertclf.device import keep_freed_memory, resolve_precision
from bertclf.errors import Interrupted
from bertclf.modeling import encoder_depths, head_parameter_names
from bertclf.processes import world_size
from bertclf.training.checkpoints import Checkpoints
from bertclf.training.tracking import Tracking

log = logging.getLogger("bertclf")

LOG_POINTS = 100  # entries of the training log over a run: a learning curve's resolution, without a sync per step
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
EvaluateFn = Callable[[nn.Module], dict[str, Any]]


@dataclass
class TrainState:
    """Everything the loop carries from step to step, and what happened: a checkpoint saves it, and a resumed
    run continues from it."""

    epoch: int = 0  # the epoch in progress, from 0
    epoch_batches: int = 0  # batches of that epoch trained on (by each process)
    epoch_loss: Any = 0.0  # their summed loss: a float, or a 0-d tensor on the device (read only when needed)
    step: int = 0  # optimizer steps taken
    history: list[dict[str, Any]] = field(default_factory=list)  # one entry per evaluation
    log: list[dict[str, Any]] = field(default_factory=list)  # the training loss and learning rate, LOG_POINTS times
    interval_loss: Any = 0.0  # summed loss of the batches since the last log entry (as epoch_loss)
    interval_batches: int = 0
    best_step: int = 0
    best_score: float | None = None
    best_metrics: dict[str, Any] = field(default_factory=dict)
    evaluations_without_gain: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_samples: int = 0  # texts trained on, by all processes together

    @property
    def train_samples_per_second(self) -> float:
        return self.train_samples / self.train_seconds if self.train_seconds else 0.0

    @property
    def mean_epoch_loss(self) -> float:
        return float(self.epoch_loss) / max(self.epoch_batches, 1)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "epoch_loss": float(self.epoch_loss),
                "interval_loss": float(self.interval_loss)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        return cls(**values)


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


def loss_function(multilabel: bool, weights: torch.Tensor | None = None, kind: str = "cross-entropy",
                  gamma: float = 2.0, label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy for class indices (``label_smoothing`` spreads that share of each target over the other
    classes), or binary cross-entropy on logits for a multilabel 0/1 matrix, weighted by :func:`class_weights`
    (``pos_weight`` for multilabel). ``kind='focal'`` multiplies each term by (1 - p)^gamma, p the probability
    given to the true outcome, so that examples the model already gets right count less (Lin et al., 2017)."""

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = None if weights is None else weights.to(logits.device)
        if multilabel:
            targets = targets.to(logits.dtype)
            terms = nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight,
                                                                   reduction="none")
            if kind == "focal":
                right = torch.sigmoid(torch.where(targets > 0.5, logits, -logits))  # probability of the truth
                terms = terms * (1 - right) ** gamma
            return terms.mean()
        if kind != "focal":
            return nn.functional.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
        log_right = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1)
        terms = -(1 - log_right.exp()) ** gamma * log_right
        if weight is None:
            return terms.mean()
        # Weighted as cross_entropy weighs: by each target's class weight, normalised by their sum.
        return (weight[targets] * terms).sum() / weight[targets].sum()

    return loss


def parameter_groups(model: nn.Module, config: ClassifierConfig) -> list[dict[str, Any]]:
    """AdamW groups: the new head learns faster; biases and LayerNorm weights (1-D) get no weight decay; with
    ``layer_decay`` each encoder layer learns at that factor times the rate of the layer above it."""
    head = head_parameter_names(model)
    depths = encoder_depths(model) if config.layer_decay is not None else {}
    top = max(depths.values(), default=0)
    groups: dict[tuple[bool, bool, int], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            depth = top if name in head else depths.get(name, top)
            groups.setdefault((name in head, parameter.ndim >= 2, depth), []).append(parameter)
    return [
        {
            "params": parameters,
            "lr": config.effective_head_learning_rate if is_head
            else config.learning_rate * (config.layer_decay or 1.0) ** (top - depth),
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (is_head, decays, depth), parameters in groups.items()
    ]


def set_encoder_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze or unfreeze every parameter outside the head (see ``head_parameter_names``); a frozen parameter has no
    gradient, so backpropagation stops at the head and the optimizer leaves it as it is."""
    head = head_parameter_names(model)
    for name, parameter in model.named_parameters():
        if name not in head:
            parameter.requires_grad_(not frozen)


def is_better(score: float, best: float | None, metric: str) -> bool:
    if best is None:
        return True
    return score < best if metric == "loss" else score > best


class StopRequest:
    """SIGINT or SIGTERM during training is noted rather than raised, so that the step in progress finishes and a
    checkpoint is written; a second signal meets the handler that was there before (the command line's stops at
    once). Handlers can only be set in the main thread: elsewhere nothing changes."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled: bool):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signal_number: int | None = None
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        if self.enabled:
            self.previous = {number: signal.signal(number, self._note) for number in self.SIGNALS}
        return self

    def _note(self, signal_number: int, _frame: Any) -> None:
        self.signal_number = signal_number
        self._restore()

    def _restore(self) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def __exit__(self, *_exc: Any) -> None:
        self._restore()

    def requested(self, accelerator: Accelerator) -> int | None:
        """The signal that asks to stop, agreed by every process, so that they all stop after the same step."""
        if accelerator.num_processes == 1:
            return self.signal_number
        noted = torch.tensor(self.signal_number or 0, device=accelerator.device)
        return int(accelerator.reduce(noted, reduction="max")) or None


def _several_cpu_processes() -> bool:
    """Launched as several processes (torchrun sets WORLD_SIZE) on a machine without a GPU: accelerate joins them
    (gloo) only when told that they run on the CPU."""
    return world_size() > 1 and not torch.cuda.is_available()


def train_step(model: nn.Module, batch: dict[str, torch.Tensor], optimizer: Any, scheduler: Any,
               accelerator: Accelerator, loss_fn: LossFn, config: ClassifierConfig) -> torch.Tensor:
    """One batch: forward and backward, then (when gradients are due, see ``gradient_accumulation_steps``)
    clipping and one optimizer and schedule step. Returns the batch's loss, detached."""
    labels = batch["labels"]
    with accelerator.accumulate(model):
        # Chunked long texts come in parts of at most batch_size windows, so memory stays bounded; the parts'
        # gradients add up to the batch's, as each part's loss is weighted by its share of texts.
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
    return loss


def train(model: nn.Module, train_set: EncodedTexts, config: ClassifierConfig, *, pad_token_id: int,
          loss_fn: LossFn, evaluate: EvaluateFn, checkpoints: Checkpoints | None = None,
          tracking: Tracking | None = None) -> tuple[nn.Module, TrainState]:
    """Fine-tune ``model`` in place and return it holding the weights of its best validation score. With
    ``checkpoints``, continue from the latest one there is and write new ones as the run goes; with ``tracking``,
    report the training log and every evaluation to experiment trackers."""
    # A frozen encoder's parameters get no gradient: several processes (DDP) must not wait for them.
    freezing = [DistributedDataParallelKwargs(find_unused_parameters=True)] \
        if config.freeze_epochs or config.freeze_encoder else []
    accelerator = Accelerator(mixed_precision=resolve_precision(config.mixed_precision),
                              gradient_accumulation_steps=config.gradient_accumulation_steps,
                              cpu=_several_cpu_processes(), kwargs_handlers=freezing,
                              **(tracking.accelerator_options() if tracking else {}))
    if tracking is not None:
        tracking.start(accelerator)
    if accelerator.device.type == "cpu":
        keep_freed_memory()
    loader = train_loader(train_set, config.batch_size, config.seed, pad_token_id)
    sampler = loader.batch_sampler  # accelerate wraps the loader; the sampler stays ours to arrange each epoch
    # Each process takes every n-th batch (the last round evened out with repeats); accelerate's prepared schedule
    # moves n steps per optimizer step, so it is laid out as if one process took every batch.
    steps_per_epoch = math.ceil(math.ceil(len(loader) / accelerator.num_processes) / config.gradient_accumulation_steps)
    total_steps = steps_per_epoch * config.epochs
    schedule_steps = math.ceil(len(loader) / config.gradient_accumulation_steps) * config.epochs
    # The fused kernel updates all parameters in one pass: on short texts the optimizer step is otherwise
    # a quarter of the step time on a CPU.
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate,
                                  fused=accelerator.device.type in ("cpu", "cuda"))
    scheduler = get_scheduler(
        "constant_with_warmup" if config.scheduler == "constant" else config.scheduler, optimizer,
        num_warmup_steps=round(config.warmup_ratio * schedule_steps), num_training_steps=schedule_steps,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    eval_every = config.eval_steps or steps_per_epoch
    log_every = max(1, total_steps // LOG_POINTS)

    state, best_weights = TrainState(), None
    if checkpoints is not None and checkpoints.latest() is not None:
        state, best_weights = checkpoints.restore(accelerator, TrainState.from_dict)
        log.info("resuming at step %d of %d (epoch %d, after %d of its batches)", state.step, total_steps,
                 state.epoch + 1, state.epoch_batches)
    progress = Progress(math.ceil(config.epochs * len(train_set) / accelerator.num_processes),  # this process's
                        enabled=accelerator.is_local_main_process)
    progress.update(state.train_samples // accelerator.num_processes)
    seconds_before, started = state.train_seconds, time.perf_counter()

    def save_checkpoint() -> None:
        state.train_seconds = seconds_before + time.perf_counter() - started
        checkpoints.save(accelerator, state.to_dict())

    with StopRequest(enabled=checkpoints is not None) as stop:
        while state.epoch < config.epochs and not state.stopped_early:
            sampler.arrange(state.epoch, skip=state.epoch_batches * accelerator.num_processes)
            if config.freeze_epochs or config.freeze_encoder:  # the head alone first (or throughout), then all
                set_encoder_frozen(accelerator.unwrap_model(model),
                                   config.freeze_encoder or state.epoch < config.freeze_epochs)
            model.train()
            for batch in loader:
                texts = len(batch["labels"])
                loss = train_step(model, batch, optimizer, scheduler, accelerator, loss_fn, config)
                state.epoch_loss, state.interval_loss = state.epoch_loss + loss, state.interval_loss + loss
                state.epoch_batches += 1
                state.interval_batches += 1
                state.train_samples += texts * accelerator.num_processes
                progress.update(texts)
                if not accelerator.sync_gradients:
                    continue
                state.step += 1
                if progress.wants_readout(state.step):  # reading the loss waits for the device, so not every step
                    progress.show(loss=state.mean_epoch_loss, learning_rate=scheduler.get_last_lr()[0])
                if state.step % log_every == 0 or state.step == total_steps:
                    _log_step(state, scheduler.get_last_lr()[0], steps_per_epoch, tracking)
                if state.step % eval_every == 0 or state.step == total_steps:
                    improved = _evaluate(accelerator.unwrap_model(model), state, config, evaluate, steps_per_epoch,
                                         progress, time.perf_counter() - started + seconds_before, tracking)
                    if improved is not None:
                        best_weights = improved
                        if checkpoints is not None:
                            checkpoints.save_best(accelerator, best_weights)
                    model.train()
                signal_number = stop.requested(accelerator) if checkpoints is not None else None
                if checkpoints is not None and (signal_number or checkpoints.due(state.step)):
                    save_checkpoint()
                if signal_number:
                    progress.close()
                    raise Interrupted(signal_number, checkpoint=str(checkpoints.folder))
                if state.stopped_early:
                    break
            if not state.stopped_early:
                state.epoch, state.epoch_batches, state.epoch_loss = state.epoch + 1, 0, 0.0
                if checkpoints is not None and config.save_steps is None and state.epoch < config.epochs:
                    save_checkpoint()
    if state.stopped_early:
        log.info("early stopping: no gain in validation %s for %d evaluations", config.metric, config.patience)
    progress.close()
    state.train_seconds = seconds_before + time.perf_counter() - started
    model = accelerator.unwrap_model(model)
    if best_weights is not None:
        model.load_state_dict(best_weights)
    log.info("best validation %s %.4f at step %d of %d; %.1f s, %.1f texts/s", config.metric,
             state.best_score, state.best_step, state.step, state.train_seconds, state.train_samples_per_second)
    return model, state


def _log_step(state: TrainState, learning_rate: float, steps_per_epoch: int, tracking: Tracking | None) -> None:
    """An entry of the training log: the mean loss of the batches since the last one, and the learning rate."""
    entry = {"step": state.step, "epoch": round(state.step / steps_per_epoch, 3),
             "loss": float(state.interval_loss) / max(state.interval_batches, 1), "learning_rate": learning_rate}
    state.log.append(entry)
    state.interval_loss, state.interval_batches = 0.0, 0
    if tracking is not None:
        tracking.log({f"train/{name}": value for name, value in entry.items() if name != "step"}, state.step)


def _evaluate(model: nn.Module, state: TrainState, config: ClassifierConfig, evaluate: EvaluateFn,
              steps_per_epoch: int, progress: Progress, seconds: float,
              tracking: Tracking | None = None) -> dict[str, torch.Tensor] | None:
    """Score the validation set and record it in ``state`` (and the trackers); returns a copy of the weights if
    they are the best so far."""
    metrics = evaluate(model)
    score = metrics[config.metric]
    improved = is_better(score, state.best_score, config.metric)
    state.history.append({"step": state.step, "epoch": round(state.step / steps_per_epoch, 2),
                          "train_loss": state.mean_epoch_loss, **_scalars(metrics)})
    if tracking is not None:
        tracking.log({f"val/{name}": value for name, value in _scalars(metrics).items()}, state.step)
    progress.write(
        f"epoch {state.step / steps_per_epoch:.2f} step {state.step}: train loss {state.mean_epoch_loss:.4f}, "
        f"val loss {metrics['loss']:.4f}, val {config.metric} {score:.4f}{' (best)' if improved else ''}, "
        f"{seconds:.0f} s"
    )
    if not improved:
        state.evaluations_without_gain += 1
        state.stopped_early = config.patience is not None and state.evaluations_without_gain >= config.patience
        return None
    state.best_score, state.best_step, state.best_metrics = score, state.step, metrics
    state.evaluations_without_gain = 0
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if isinstance(value, (int, float))}
