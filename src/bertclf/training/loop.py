"""The training loop.

Read :func:`train` top to bottom: build the optimizer and schedule, hand everything to ``accelerate`` (devices,
mixed precision, several processes), restore the latest checkpoint when resuming, then run :func:`train_step`
over length-bucketed batches, evaluating on the validation set every epoch (or every ``eval_steps``), keeping
the best weights, stopping early when the validation metric stalls and writing checkpoints (see
:mod:`bertclf.training.checkpoints`). Everything the loop carries from step to step is one :class:`TrainState`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from torch import nn
from transformers import get_scheduler

from bertclf.batching import EncodedTexts, split_batch, train_loader
from bertclf.config import ClassifierConfig
from bertclf.device import keep_freed_memory, resolve_precision
from bertclf.errors import BertclfError, Interrupted
from bertclf.processes import world_size
from bertclf.progress import Progress
from bertclf.signals import StopSignalHandler
from bertclf.training.checkpoints import Checkpoints
from bertclf.training.objectives import LossFn, is_better, parameter_groups, set_encoder_frozen
from bertclf.training.tracking import Tracking

log = logging.getLogger("bertclf")

MAX_ROUNDS = 10  # evaluations of a run whose epochs grew to reach --min-steps, at most (or --epochs, if more)
LOG_POINTS = 100  # entries of the training log over a run: a learning curve's resolution, without a sync per step
EvaluateFn = Callable[[nn.Module], dict[str, Any]]
# Told the epoch (a fraction where evaluations come between epochs) and the validation score of each evaluation; it
# may stop the run by raising (a search prunes a trial so).
EvaluationHook = Callable[[float, float], None]


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

    def add_batch(self, loss: Any, texts: int, processes: int) -> None:
        """Count a batch this process trained on: its loss (a 0-d tensor, left on the device) and its texts."""
        self.epoch_loss, self.interval_loss = self.epoch_loss + loss, self.interval_loss + loss
        self.epoch_batches += 1
        self.interval_batches += 1
        self.train_samples += texts * processes

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainState:
        return cls(**values)


class StopRequest(StopSignalHandler):
    """SIGINT or SIGTERM during training is noted rather than raised, so that the step in progress finishes and a
    checkpoint is written; a second signal meets the handler that was there before (the command line's stops at
    once)."""

    def __init__(self, enabled: bool):
        super().__init__(self._note, enabled)
        self.signal_number: int | None = None

    def _note(self, signal_number: int, _frame: Any) -> None:
        self.signal_number = signal_number
        self.restore()

    def requested(self, accelerator: Accelerator) -> int | None:
        """The signal that asks to stop, agreed by every process, so that they all stop after the same step."""
        if accelerator.num_processes == 1:
            return self.signal_number
        noted = torch.tensor(self.signal_number or 0, device=accelerator.device)
        return int(accelerator.reduce(noted, reduction="max")) or None


@dataclass
class Loop:
    """What the loop runs with: the parts that ``accelerate`` prepared, the step counts (set up once by
    :func:`_setup`), where checkpoints and tracking go, the best weights so far and the training clock."""

    config: ClassifierConfig
    accelerator: Accelerator
    model: nn.Module  # as prepared: wrapped when several processes train together
    loader: Any
    sampler: Any  # the loader's batch sampler: accelerate wraps the loader, the sampler stays ours to arrange
    optimizer: Any
    scheduler: Any
    steps_per_epoch: int  # optimizer steps of each process
    epochs: int  # --epochs, or more where that many epochs of small data fall short of --min-steps
    total_steps: int
    eval_every: int
    checkpoint_epochs: int  # without --save-steps, a checkpoint after every this many epochs
    log_every: int
    checkpoints: Checkpoints | None = None
    tracking: Tracking | None = None
    on_evaluation: EvaluationHook | None = None
    best_weights: dict[str, torch.Tensor] | None = None  # a copy on the CPU
    seconds_before: float = 0.0  # training time of the runs this one resumes
    started: float = 0.0  # perf_counter() when this run's training began

    def seconds(self) -> float:
        """Training time so far, the resumed runs' included."""
        return self.seconds_before + time.perf_counter() - self.started


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
          tracking: Tracking | None = None, padding_side: str = "right",
          on_evaluation: EvaluationHook | None = None) -> tuple[nn.Module, TrainState]:
    """Fine-tune ``model`` in place and return it holding the weights of its best validation score. With
    ``checkpoints``, continue from the latest one there is and write new ones as the run goes; with ``tracking``,
    report the training log and every evaluation to experiment trackers; ``on_evaluation`` hears every validation
    score."""
    # set up: accelerator, loader, optimizer and schedule; the latest checkpoint when resuming
    loop = _setup(model, train_set, config, pad_token_id, checkpoints, tracking, padding_side)
    loop.on_evaluation = on_evaluation
    state = _resume(loop)
    processes = loop.accelerator.num_processes
    progress = Progress("training", math.ceil(loop.epochs * len(train_set) / processes),  # this process's texts
                        enabled=loop.accelerator.is_local_main_process)
    progress.update(state.train_samples // processes)
    loop.seconds_before, loop.started = state.train_seconds, time.perf_counter()

    with StopRequest(enabled=checkpoints is not None) as stop:
        for batch in _batches(loop, state):
            # forward, backward and, when gradients are due, an optimizer step
            texts = len(batch["labels"])
            loss = train_step(loop.model, batch, loop.optimizer, loop.scheduler, loop.accelerator, loss_fn, config)
            state.add_batch(loss, texts, processes)
            progress.update(texts)
            if not loop.accelerator.sync_gradients:
                continue
            state.step += 1
            # log, evaluate, checkpoint; stop early or on request
            if _after_step(loop, state, evaluate, progress, stop):
                break
    return _finish(loop, state, progress)


def _setup(model: nn.Module, train_set: EncodedTexts, config: ClassifierConfig, pad_token_id: int,
           checkpoints: Checkpoints | None, tracking: Tracking | None, padding_side: str = "right") -> Loop:
    """The accelerator, the loader, the optimizer and its schedule, prepared by ``accelerate``, and the step
    counts."""
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
    loader = train_loader(train_set, config.batch_size, config.seed, pad_token_id, padding_side)
    sampler = loader.batch_sampler  # accelerate wraps the loader; the sampler stays ours to arrange each epoch
    # Each process takes every n-th batch (the last round evened out with repeats); accelerate's prepared schedule
    # moves n steps per optimizer step, so it is laid out as if one process took every batch.
    steps_per_epoch = math.ceil(math.ceil(len(loader) / accelerator.num_processes) / config.gradient_accumulation_steps)
    epochs, epochs_per_round = planned_epochs(config, steps_per_epoch)
    total_steps = steps_per_epoch * epochs
    schedule_steps = math.ceil(len(loader) / config.gradient_accumulation_steps) * epochs
    # The fused kernel updates all parameters in one pass: on short texts, one small update per parameter tensor
    # otherwise takes a large share of the step time on a CPU.
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.learning_rate,
                                  fused=accelerator.device.type in ("cpu", "cuda"))
    scheduler = get_scheduler(
        "constant_with_warmup" if config.scheduler == "constant" else config.scheduler, optimizer,
        num_warmup_steps=round(config.warmup_ratio * schedule_steps), num_training_steps=schedule_steps,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    return Loop(config, accelerator, model, loader, sampler, optimizer, scheduler, steps_per_epoch, epochs,
                total_steps, eval_every=config.eval_steps or steps_per_epoch * epochs_per_round,
                log_every=max(1, total_steps // LOG_POINTS), checkpoint_epochs=epochs_per_round,
                checkpoints=checkpoints, tracking=tracking)


def planned_epochs(config: ClassifierConfig, steps_per_epoch: int) -> tuple[int, int]:
    """The epochs to run, and after how many of them to evaluate (and checkpoint, without ``save_steps``). Where
    ``--epochs`` passes over small data make fewer optimizer steps than ``--min-steps``, the epochs grow to reach it
    (steps, not epochs, set the budget there), and evaluations come every few epochs, at most ``MAX_ROUNDS`` (or
    ``--epochs``, if more) of them."""
    if config.epochs * steps_per_epoch >= config.min_steps:
        return config.epochs, 1
    epochs = math.ceil(config.min_steps / steps_per_epoch)
    log.info("%d optimizer step%s per epoch: %d epochs instead of %d, to reach --min-steps %d", steps_per_epoch,
             "" if steps_per_epoch == 1 else "s", epochs, config.epochs, config.min_steps)
    return epochs, math.ceil(epochs / max(config.epochs, MAX_ROUNDS))


def _several_cpu_processes() -> bool:
    """Launched as several processes (torchrun sets WORLD_SIZE) on a machine without a GPU: accelerate joins them
    (gloo) only when told that they run on the CPU."""
    return world_size() > 1 and not torch.cuda.is_available()


def _resume(loop: Loop) -> TrainState:
    """The state of the latest checkpoint (its best weights go into ``loop``), or a fresh one."""
    if loop.checkpoints is None or loop.checkpoints.latest() is None:
        return TrainState()
    configured = [group["initial_lr"] for group in loop.optimizer.param_groups]  # this run's peak rates
    state, loop.best_weights = loop.checkpoints.restore(loop.accelerator, TrainState.from_dict)
    _set_peak_rates(loop.scheduler.scheduler, configured)
    log.info("resuming at step %d of %d (epoch %d, after %d of its batches)", state.step, loop.total_steps,
             state.epoch + 1, state.epoch_batches)
    return state


def _set_peak_rates(scheduler: torch.optim.lr_scheduler.LambdaLR, peaks: list[float]) -> None:
    """Give a restored schedule this run's peak rates where they differ from the checkpoint's (a resume at a new
    --learning-rate), at the position in the schedule it had reached. Unchanged rates leave it untouched, so an
    exact resume stays exact."""
    if peaks == list(scheduler.base_lrs):
        return
    log.warning("resuming at other peak rates than the checkpoint's: the run goes on from its weights and optimizer "
                "state, no longer as the exact continuation of the interrupted run")
    scheduler.base_lrs = list(peaks)
    for group, peak, factor in zip(scheduler.optimizer.param_groups, peaks, scheduler.lr_lambdas, strict=True):
        group["initial_lr"], group["lr"] = peak, peak * factor(scheduler.last_epoch)


def _batches(loop: Loop, state: TrainState) -> Iterator[dict[str, torch.Tensor]]:
    """The batches from where ``state`` stands to the end of training (or an early stop). At each epoch's start
    the sampler is arranged (a resumed epoch skips the batches it has had), the encoder frozen or not and the model
    put in training mode; at its end the epoch is counted and, without ``save_steps``, checkpointed."""
    config, processes = loop.config, loop.accelerator.num_processes
    while state.epoch < loop.epochs and not state.stopped_early:
        loop.sampler.arrange(state.epoch, skip=state.epoch_batches * processes)
        if config.freeze_epochs or config.freeze_encoder:  # the head alone first (or throughout), then all
            set_encoder_frozen(loop.accelerator.unwrap_model(loop.model),
                               config.freeze_encoder or state.epoch < config.freeze_epochs)
        loop.model.train()
        yield from loop.loader
        state.epoch, state.epoch_batches, state.epoch_loss = state.epoch + 1, 0, 0.0
        if loop.checkpoints is not None and config.save_steps is None and state.epoch < loop.epochs \
                and state.epoch % loop.checkpoint_epochs == 0:
            _save_checkpoint(loop, state)


def _after_step(loop: Loop, state: TrainState, evaluate: EvaluateFn, progress: Progress, stop: StopRequest) -> bool:
    """Everything due after an optimizer step; True when training stops early. Raises :class:`Interrupted` once
    the checkpoint a stop request asks for is written."""
    last = state.step == loop.total_steps
    # show progress (reading the loss waits for the device, so not every step)
    if progress.due(state.step):
        progress.show(loss=f"{state.mean_epoch_loss:.4f}", lr=f"{loop.scheduler.get_last_lr()[0]:.2e}")
    # the training log; a diverged loss stops the run there (its reading waits for the device anyway)
    if state.step % loop.log_every == 0 or last:
        _check_loss(loop, state)
        _log_step(loop, state)
    # evaluate, keep the best weights (never those of a diverged loss)
    if state.step % loop.eval_every == 0 or last:
        _check_loss(loop, state)
        if _evaluate_and_track_best(loop, state, evaluate, progress):
            _keep_best_weights(loop)
        loop.model.train()
    # checkpoint and stop requests
    if loop.checkpoints is None:
        return state.stopped_early
    signal_number = stop.requested(loop.accelerator)
    if signal_number or loop.checkpoints.due(state.step):
        _save_checkpoint(loop, state)
    if signal_number:
        progress.close()
        raise Interrupted(signal_number, checkpoint=str(loop.checkpoints.folder))
    return state.stopped_early


def _finish(loop: Loop, state: TrainState, progress: Progress) -> tuple[nn.Module, TrainState]:
    """The model, unwrapped, with its best weights back, and the run's summary in the log."""
    config = loop.config
    if state.stopped_early:
        log.info("early stopping: no gain in validation %s for %d evaluations", config.metric, config.patience)
    progress.close()
    state.train_seconds = loop.seconds()
    model = loop.accelerator.unwrap_model(loop.model)
    if loop.best_weights is not None:
        model.load_state_dict(loop.best_weights)
    model.eval()  # trained: it predicts from here on (a runtime never flips the mode of a model it shares)
    log.info("best validation %s %.4f at step %d of %d; %.1f s, %.1f texts/s", config.metric,
             state.best_score, state.best_step, state.step, state.train_seconds, state.train_samples_per_second)
    return model, state


def _save_checkpoint(loop: Loop, state: TrainState) -> None:
    _check_loss(loop, state)  # no checkpoint of diverged weights: the last one stays the latest
    state.train_seconds = loop.seconds()
    loop.checkpoints.save(loop.accelerator, state.to_dict())


def _check_loss(loop: Loop, state: TrainState) -> None:
    """Stop with an error when the loss of the batches since the last log entry is not a finite number: the weights
    have diverged, and every step from here on trains on nan. Called where the loop waits for the device anyway (log
    entries, evaluations, checkpoints), so it adds no wait per step; every process comes to the same answer."""
    loss = float(state.interval_loss)
    if loop.accelerator.num_processes > 1:
        loss = float(loop.accelerator.reduce(torch.tensor(loss, device=loop.accelerator.device), reduction="sum"))
    if math.isfinite(loss):
        return
    kept = ""
    lower = loop.config.learning_rate / 10
    if loop.checkpoints is not None and loop.checkpoints.latest() is not None:
        kept = (f"; the last checkpoint before it is kept in {loop.checkpoints.folder}: go on from it at a lower rate "
                f"with  bertclf train --resume {loop.checkpoints.folder} --learning-rate {lower:g}")
    raise BertclfError(f"the training loss diverged ({loss}) by step {state.step}: train with a lower "
                       f"--learning-rate (this run's: {loop.config.learning_rate:g}){kept}")


def _keep_best_weights(loop: Loop) -> None:
    """A CPU copy of the model's weights, the best so far, and in the checkpoints when there are any."""
    model = loop.accelerator.unwrap_model(loop.model)
    loop.best_weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}
    if loop.checkpoints is not None:
        loop.checkpoints.save_best(loop.accelerator, loop.best_weights)


def _log_step(loop: Loop, state: TrainState) -> None:
    """An entry of the training log: the mean loss of the batches since the last one, and the learning rate."""
    entry = {"step": state.step, "epoch": round(state.step / loop.steps_per_epoch, 3),
             "loss": float(state.interval_loss) / max(state.interval_batches, 1),
             "learning_rate": loop.scheduler.get_last_lr()[0]}
    state.log.append(entry)
    state.interval_loss, state.interval_batches = 0.0, 0
    if loop.tracking is not None:
        loop.tracking.log({f"train/{name}": value for name, value in entry.items() if name != "step"}, state.step)


def _evaluate_and_track_best(loop: Loop, state: TrainState, evaluate: EvaluateFn, progress: Progress) -> bool:
    """Score the validation set and record it in ``state`` (and the trackers): the history, the best score and
    early stopping. Returns whether the weights are the best so far."""
    seconds, config = loop.seconds(), loop.config
    metrics = evaluate(loop.accelerator.unwrap_model(loop.model))
    score = metrics[config.metric]
    # a tie on the metric goes to the lower validation loss: a few validation texts scored perfectly early on must
    # not keep an almost untrained model
    improved = is_better(score, state.best_score, config.metric) or (
        score == state.best_score and metrics["loss"] < state.best_metrics["loss"])
    steps_per_epoch = loop.steps_per_epoch
    state.history.append({"step": state.step, "epoch": round(state.step / steps_per_epoch, 2),
                          "train_loss": state.mean_epoch_loss, **_scalars(metrics)})
    if loop.tracking is not None:
        loop.tracking.log({f"val/{name}": value for name, value in _scalars(metrics).items()}, state.step)
    progress.write(
        f"epoch {state.step / steps_per_epoch:.2f} step {state.step}: train loss {state.mean_epoch_loss:.4f}, "
        f"val loss {metrics['loss']:.4f}, val {config.metric} {score:.4f}{' (best)' if improved else ''}, "
        f"{seconds:.0f} s"
    )
    if loop.on_evaluation is not None:
        loop.on_evaluation(state.step / steps_per_epoch, score)
    if not improved:
        state.evaluations_without_gain += 1
        state.stopped_early = config.patience is not None and state.evaluations_without_gain >= config.patience
        return False
    state.best_score, state.best_step, state.best_metrics = score, state.step, metrics
    state.evaluations_without_gain = 0
    return True


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: value for name, value in metrics.items() if isinstance(value, (int, float))}
