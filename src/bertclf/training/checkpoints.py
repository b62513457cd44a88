"""Checkpoints of a run in training, so that a killed or interrupted run continues where it stopped.

A checkpoint is accelerate's saved state (weights, optimizer, scheduler, grad scaler, every process's random
states) plus the loop's :class:`~bertclf.training.loop.TrainState` as JSON. It is written under a temporary name and
renamed once whole, so a kill in the middle of a write leaves the previous checkpoint as the latest. The run's
staging directory (file names in :mod:`bertclf.rundir`) keeps the last ``save_total_limit`` checkpoints, the
best weights so far and the options the run started with.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator

from bertclf import rundir
from bertclf.batching import EncodedTexts
from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError, first_line


def fingerprint(train_set: EncodedTexts) -> str:
    """A digest of the training texts' token ids and labels: resuming on other data would be another run."""
    digest = hashlib.sha256()
    for ids in train_set.token_ids:
        windows = ids if train_set.chunked else [ids]
        for window in windows:
            digest.update(np.asarray(window, dtype=np.int64).tobytes())
            digest.update(b"|")
    if train_set.labels is not None:
        digest.update(np.ascontiguousarray(train_set.labels).tobytes())
    return digest.hexdigest()


class Checkpoints:
    """The checkpoints of one run in ``folder`` (its staging directory)."""

    def __init__(self, folder: Path, config: ClassifierConfig, data_fingerprint: str):
        self.folder, self.config, self.data_fingerprint = Path(folder), config, data_fingerprint

    def due(self, step: int) -> bool:
        """Whether optimizer step ``step`` ends with a checkpoint (epoch ends are the trainer's to decide)."""
        return self.config.save_steps is not None and step % self.config.save_steps == 0

    def latest(self) -> Path | None:
        found = rundir.checkpoints_in(self.folder)
        return found[-1] if found else None

    def save(self, accelerator: Accelerator, state: dict[str, Any]) -> Path:
        """Write a checkpoint of step ``state['step']`` (every process takes part); older ones beyond the limit go."""
        target = rundir.checkpoint_directory(self.folder, state["step"])
        writing = rundir.writing_name(target)
        with rundir.written_as(target, writing):
            if accelerator.is_main_process:
                shutil.rmtree(writing, ignore_errors=True)  # the remains of a write that was killed
                writing.mkdir(parents=True)
                if not (self.folder / rundir.CONFIG_FILE).exists():
                    self.config.save(self.folder / rundir.CONFIG_FILE)
            accelerator.wait_for_everyone()
            accelerator.save_state(str(writing))
            accelerator.wait_for_everyone()  # every process's files are in before the folder is renamed
            if accelerator.is_main_process:
                rundir.write_json_into(writing / rundir.TRAIN_STATE_FILE,
                                       {"data_fingerprint": self.data_fingerprint, "state": state})
                rundir.replace_directory(writing, target)
                for old in rundir.checkpoints_in(self.folder)[: -self.config.save_total_limit]:
                    shutil.rmtree(old, ignore_errors=True)
            accelerator.wait_for_everyone()
        return target

    def save_best(self, accelerator: Accelerator, weights: dict[str, torch.Tensor]) -> None:
        """Keep the best weights so far beside the checkpoints: they may be older than every kept checkpoint."""
        from safetensors.torch import save_file

        if accelerator.is_main_process:
            with rundir.atomic_directory(self.folder / rundir.BEST_DIR) as writing:
                save_file({name: tensor.contiguous() for name, tensor in weights.items()},
                          writing / rundir.BEST_WEIGHTS)

    def restore(self, accelerator: Accelerator, read_state: Callable[[dict[str, Any]], Any]
                ) -> tuple[Any, dict[str, torch.Tensor] | None]:
        """Load the latest checkpoint into the prepared objects; returns the loop's state (made by ``read_state``
        from its saved fields) and the best weights."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        latest = self.latest()
        saved = rundir.read_json(latest / rundir.TRAIN_STATE_FILE)
        try:
            state = read_state(saved["state"])
        except (TypeError, KeyError):  # not a mapping, or fields this version does not know or lacks
            raise BertclfError(f"{latest / rundir.TRAIN_STATE_FILE} is corrupt (no training state this bertclf "
                               "reads)") from None
        if saved.get("data_fingerprint") != self.data_fingerprint:
            raise BertclfError(f"the training data differ from those of the interrupted run in {self.folder}; "
                               "resuming needs the same data")
        try:
            accelerator.load_state(str(latest))
        except (OSError, RuntimeError, ValueError, KeyError, SafetensorError) as error:
            raise BertclfError(f"cannot load the checkpoint {latest}: {first_line(error)}") from None
        best_path = self.folder / rundir.BEST_DIR / rundir.BEST_WEIGHTS
        best = load_file(best_path) if best_path.is_file() else None
        return state, best
