"""Contrastive tuning of an encoder on pairs of labelled texts, as SetFit tunes a sentence encoder: the cosine of
the vectors of two texts is pulled towards 1 when they are alike and towards 0 when not. Here every pair within a
batch counts (a batch of n texts holds n(n-1)/2 pairs), not a fixed list of pairs drawn beforehand."""

from __future__ import annotations

import math

import numpy as np
import torch
from accelerate import Accelerator
from transformers import get_scheduler

from bertclf.batching import pad
from bertclf.config import ClassifierConfig
from bertclf.device import resolve_precision
from bertclf.errors import BertclfError
from bertclf.fewshot.pairs import balanced_batches, pair_targets
from bertclf.modeling import PooledClassifier
from bertclf.progress import Progress

WARMUP_SHARE = 0.1
LENGTH_GROUP = 8  # texts per forward pass within a batch
LOG_POINTS = 10


def pair_loss(vectors: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Squared error between each pair's cosine and its target (1 alike, 0 unlike) over every pair of the batch; the
    alike and the unlike pairs weigh half each, whatever their numbers."""
    unit = torch.nn.functional.normalize(vectors.float(), dim=-1)
    errors = (unit @ unit.T - targets) ** 2
    pairs = torch.triu(torch.ones_like(errors, dtype=torch.bool), diagonal=1)
    parts = [errors[pairs & kind].mean() for kind in (targets > 0.5, targets < 0.5) if (pairs & kind).any()]
    return torch.stack(parts).mean()


def batch_vectors(network: PooledClassifier, rows: list[list[int]], pad_token_id: int, padding_side: str,
                  device: torch.device) -> torch.Tensor:
    """The vectors of a batch's texts, in its order, computed a few texts of like length at a time: the texts of a
    contrastive batch are drawn without regard to length, and padding them all to the longest costs more than the
    texts themselves."""
    order = sorted(range(len(rows)), key=lambda row: len(rows[row]))
    parts = []
    for start in range(0, len(order), LENGTH_GROUP):
        group = [rows[row] for row in order[start:start + LENGTH_GROUP]]
        input_ids, attention_mask = (torch.from_numpy(part).to(device) for part in pad(group, pad_token_id,
                                                                                        padding_side))
        parts.append(network.row_vectors(input_ids, attention_mask))
    vectors = torch.cat(parts)
    return vectors[torch.as_tensor(order, device=device).argsort()]


def _finite_loss(losses: list[torch.Tensor], step: int, config: ClassifierConfig) -> float:
    """The mean loss since the last log entry; an error once it is not a number (the encoder's weights diverged)."""
    loss = float(torch.stack(losses).mean())
    if not math.isfinite(loss):
        raise BertclfError(f"the contrastive tuning diverged ({loss}) by step {step}: tune with a lower "
                           f"--contrastive-learning-rate (this run's: {config.contrastive_learning_rate:g})")
    return loss


def tune_encoder(model: PooledClassifier, token_ids: list[list[int]], matrix: np.ndarray, config: ClassifierConfig,
                 steps: int, pad_token_id: int, padding_side: str, seed: int) -> tuple[list[dict[str, float]], int]:
    """Tune ``model``'s encoder in place for ``steps`` batches of :func:`balanced_batches`; returns the training log
    (the mean loss and learning rate at ``LOG_POINTS`` steps) and the texts trained on."""
    accelerator = Accelerator(mixed_precision=resolve_precision(config.mixed_precision))
    # fused: one update for all parameters (per-tensor updates take a large share of a small step on a CPU)
    optimizer = torch.optim.AdamW(model.encoder.parameters(), lr=config.contrastive_learning_rate,
                                  weight_decay=config.weight_decay, fused=accelerator.device.type in ("cpu", "cuda"))
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=round(WARMUP_SHARE * steps),
                              num_training_steps=steps)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    network = accelerator.unwrap_model(model)
    batches = balanced_batches(matrix, config.batch_size, seed)
    progress = Progress("contrastive tuning", None, enabled=accelerator.is_local_main_process)  # texts, as trained
    history, interval, trained = [], [], 0
    network.train()
    for step in range(1, steps + 1):
        rows = next(batches)
        # every pair of the batch's texts against its target, then one optimizer step
        with accelerator.autocast():
            vectors = batch_vectors(network, [token_ids[row] for row in rows], pad_token_id, padding_side,
                                    accelerator.device)
            loss = pair_loss(vectors, torch.from_numpy(pair_targets(matrix[rows])).to(accelerator.device))
        accelerator.backward(loss)
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(network.encoder.parameters(), config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        # count and log (reading the loss waits for the device, so at log points only)
        interval.append(loss.detach())
        progress.update(len(rows))
        trained += len(rows)
        if step % max(1, steps // LOG_POINTS) == 0 or step == steps:
            history.append({"step": step, "loss": _finite_loss(interval, step, config),
                            "learning_rate": scheduler.get_last_lr()[0]})
            interval = []
    progress.close()
    network.eval()
    return history, trained
