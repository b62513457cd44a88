"""Where a search lives: an Optuna study in relational storage (SQLite in the study directory, or any URL Optuna
takes), that several processes or machines share and a restarted command continues, with the trials of dead or
interrupted processes given again."""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from bertclf.errors import BertclfError, first_line

log = logging.getLogger("bertclf")

STUDY_FILE = "study.db"
# A running trial writes a heartbeat this often; one silent for the grace period belongs to a dead process (on
# another machine: a dead process on this one is known at once by its process id).
HEARTBEAT_SECONDS, GRACE_SECONDS = 30, 120
MAX_RETRIES = 3  # times a trial lost to a dead or interrupted process is given again
IDENTITY = "bertclf"  # the study's user attribute naming what it searches
PRUNERS = ("median", "halving", "none")
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def storage_url(study_dir: Path, storage: str | None) -> str:
    """``storage``, or the SQLite file of the study directory."""
    return storage or f"sqlite:///{(study_dir / STUDY_FILE).resolve()}"


def make_pruner(name: str, startup_trials: int) -> optuna.pruners.BasePruner:
    """'median': a trial stops at an evaluation where its best score is worse than the median of the earlier trials'
    at the same epoch (after ``startup_trials`` trials, from the first epoch on); 'halving': successive halving over
    the epochs; 'none'."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise BertclfError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


def open_study(url: str, name: str, direction: str, pruner: optuna.pruners.BasePruner,
               identity: Mapping[str, Any]) -> optuna.Study:
    """The study ``name`` at ``url``, created or continued: one started on other data or options is refused; the
    trials that dead or interrupted processes left are failed and queued again."""
    with warnings.catch_warnings():  # heartbeats and retries are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
        try:
            storage = RDBStorage(url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                                 heartbeat_stale_trial_callback=retry)
        except (ImportError, ValueError, optuna.exceptions.StorageInternalError, SQLAlchemyError) as error:
            raise BertclfError(f"cannot open the study storage {url}: {first_line(error)}") from None
        study = optuna.create_study(storage=storage, study_name=name, direction=direction, pruner=pruner,
                                    load_if_exists=True)
        _check_identity(study, dict(identity))
        _give_again(study, retry)
    return study


def _check_identity(study: optuna.Study, identity: dict[str, Any]) -> None:
    """A new study records what it searches; a study continued must search the same."""
    recorded = study.user_attrs.get(IDENTITY)
    if recorded is None:
        study.set_user_attr(IDENTITY, identity)
        return
    changed = sorted(key for key in {*identity, *recorded} if identity.get(key) != recorded.get(key))
    if changed:
        raise BertclfError(f"study {study.study_name!r} was started with other {', '.join(changed)}: continue it "
                           "with the same data and options, or start another (--study-dir, --study-name)")


def mark_trial(trial: optuna.Trial) -> None:
    """Where a trial runs, so that a restarted process knows the trials of a dead one on this machine."""
    trial.set_user_attr("host", socket.gethostname())
    trial.set_user_attr("pid", os.getpid())
    trial.set_user_attr("interrupted", False)  # a trial queued again carries its first run's attributes


def _give_again(study: optuna.Study, retry: RetryHeartbeatStaleTrialCallback) -> None:
    """Queue again the trials lost to a process that died (by heartbeat, or at once on this machine) or was
    interrupted (Ctrl-C), each once."""
    optuna.storages.fail_stale_trials(study)
    storage = study._storage  # the storage the study was opened on (Study keeps no public handle to it)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _dead_here(trial):
            try:
                storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:  # another process got there first
                continue
            log.info("trial %d: its process (%s) is gone; queued again", trial.number, trial.user_attrs.get("pid"))
            retry(study, storage.get_trial(trial._trial_id))
    trials = study.get_trials(deepcopy=False)
    given_again = {number for trial in trials for number in retry.retry_history(trial)}
    for trial in trials:
        if trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted") and trial.number not in given_again:
            log.info("trial %d was interrupted; queued again", trial.number)
            retry(study, trial)


def _dead_here(trial: FrozenTrial) -> bool:
    """A running trial of a process of this machine that no longer exists."""
    pid = trial.user_attrs.get("pid")
    if trial.user_attrs.get("host") != socket.gethostname() or not isinstance(pid, int) or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def finished_trials(study: optuna.Study) -> int:
    """Trials that ran to their end or were pruned."""
    return len(study.get_trials(deepcopy=False, states=FINISHED))
