"""Checkpoints of a run in training, so that a killed or interrupted run continues where it stopped.

A checkpoint is accelerate's saved state (weights, optimizer, scheduler, grad scaler, every process's random
states) plus the loop's :class:`~bertclf.training.loop.TrainState` as JSON. It is written under a temporary name and
renamed once whole, so a kill in the middle of a write leaves the previous checkpoint as the latest. The run's
staging directory (file names in :mod:`bertclf.rundir`) keeps the last ``save_total_limit`` checkpoints, the
best weights so far and the options the run started with.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import MODEL_NAME, OPTIMIZER_NAME, RNG_STATE_NAME, SAFE_WEIGHTS_NAME, SCALER_NAME, SCHEDULER_NAME
from accelerate.utils import load as accelerate_load  # torch.load as accelerate reads its files
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

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
        if accelerator.is_main_process:
            with rundir.atomic_directory(self.folder / rundir.BEST_DIR) as writing:
                save_file({name: tensor.contiguous() for name, tensor in weights.items()},
                          writing / rundir.BEST_WEIGHTS)

    def restore(self, accelerator: Accelerator, read_state: Callable[[dict[str, Any]], Any]
                ) -> tuple[Any, dict[str, torch.Tensor] | None]:
        """Load the latest checkpoint into the prepared objects; returns the loop's state (made by ``read_state``
        from its saved fields) and the best weights."""
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
        _load_state(accelerator, latest)
        best_path = self.folder / rundir.BEST_DIR / rundir.BEST_WEIGHTS
        try:
            best = load_file(best_path) if best_path.is_file() else None
        except (OSError, SafetensorError) as error:
            raise _damaged(best_path, error) from None
        return state, best


# What a damaged file makes loading it raise: unpickling and format errors (torch.load, safetensors), and errors of
# load_state_dict on a file that unpickles to something else.
LOAD_ERRORS = (OSError, EOFError, pickle.UnpicklingError, RuntimeError, ValueError, KeyError, TypeError,
               AttributeError, IndexError, SafetensorError)


def _load_state(accelerator: Accelerator, folder: Path) -> None:
    """accelerate's ``load_state`` of checkpoint ``folder``, with a damaged file named in one error. accelerate names
    no file when one fails to load, and reads random states it cannot use as none at all (a resume would then go on
    with other random numbers than the interrupted run, and train other weights): they are read again here."""
    try:
        accelerator.load_state(str(folder))
    except LOAD_ERRORS as error:
        path = _first_unreadable(accelerator, folder)
        raise _damaged(path, error) if path else BertclfError(
            f"cannot load the checkpoint {folder}: {first_line(error)}") from None
    path = folder / f"{RNG_STATE_NAME}_{accelerator.process_index}.pkl"
    try:
        states = accelerate_load(path)
        random.setstate(states["random_state"])  # the ones accelerate has set, unless it could not
        np.random.set_state(states["numpy_random_seed"])
        torch.set_rng_state(states["torch_manual_seed"])
    except LOAD_ERRORS as error:
        raise _damaged(path, error) from None


def _first_unreadable(accelerator: Accelerator, folder: Path) -> Path | None:
    """The first file of checkpoint ``folder``, in the order accelerate reads them, that is missing or does not load."""
    legacy = f"{MODEL_NAME}.bin"  # the weights as accelerate writes them without safetensors, as bertclf never does
    model = legacy if (folder / legacy).exists() and not (folder / SAFE_WEIGHTS_NAME).exists() else SAFE_WEIGHTS_NAME
    names = [model, f"{OPTIMIZER_NAME}.bin", f"{SCHEDULER_NAME}.bin"]
    if accelerator.scaler is not None:
        names.append(SCALER_NAME)
    for path in (folder / name for name in names):
        try:
            if path.suffix == ".safetensors":
                load_file(path)
            else:
                accelerate_load(path, map_location="cpu")
        except LOAD_ERRORS:
            return path
    return None


def _damaged(path: Path, error: BaseException) -> BertclfError:
    if isinstance(error, FileNotFoundError) or not path.exists():
        return BertclfError(f"cannot resume: the checkpoint file {path} is missing")
    detail = first_line(error).split(". ")[0]  # torch goes on for sentences, with advice that does not apply here
    return BertclfError(f"cannot resume: the checkpoint file {path} is damaged ({detail})")
