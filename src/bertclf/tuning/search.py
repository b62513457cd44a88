"""A search: trials, each a normal training run under options drawn from the space and scored on the validation
metric, pruned from their evaluations, until the study holds the trials asked for."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url

from bertclf import fitting, rundir
from bertclf.config import ClassifierConfig
from bertclf.data import DataSource, Examples
from bertclf.errors import BertclfError
from bertclf.modeling import load_tokenizer
from bertclf.tokenization import token_lengths, tokenize
from bertclf.training import EvaluationHook
from bertclf.tuning.report import write_trials_csv, write_tune_report
from bertclf.tuning.space import Space, build_space, default_space, described, parse_space, suggest
from bertclf.tuning.study import finished_trials, make_pruner, mark_trial, open_study, storage_url

log = logging.getLogger("bertclf")

TRIALS_DIR, TRIAL_FILE = "trials", "trial.json"
FAILURES_IN_A_ROW = 3  # trials failing one after another with an error end the search
# Options that say where a run goes, not what it learns: a trial has none of its own, and a study continued may
# change them.
NOT_SEARCHED = ("train", "val", "test", "output", "overwrite", "report_to", "tracking_dir", "save_steps",
                "save_total_limit")


@dataclass
class SearchSettings:
    """How a search runs; what each trial trains is the classifier's own options with the trial's drawn over them."""

    trials: int = 20  # trials the study holds at the end (finished or pruned), whichever process ran them
    timeout: float | None = None  # seconds this process starts trials for
    study_dir: str | Path = "tune-study"  # the SQLite study, trials/, trials.csv and tune_report.html
    storage: str | None = None  # an Optuna storage URL (postgresql://..., a shared sqlite:///...) instead
    study_name: str = "bertclf"
    pruner: str = "median"  # see study.make_pruner
    pruner_startup_trials: int = 3  # trials run to their end before the median pruner stops any
    models: tuple[str, ...] = ()  # encoders to choose among (two or more make the encoder a searched option)
    search_space: Mapping[str, Any] | None = None  # a config file's search_space section


@dataclass
class Found:
    """The best trial's options, and what metrics.json records of the search."""

    options: dict[str, Any]
    summary: dict[str, Any]


def search(config: ClassifierConfig, train: DataSource, val: DataSource | None, test: DataSource | None,
           settings: SearchSettings) -> Found:
    """Run the study's missing trials on ``train`` (scored on ``val``, or on the part a run holds out) and return
    the best options. ``test`` is never read: with one given, trials hold out no test part, as its final run."""
    _check(settings)
    pruner = make_pruner(settings.pruner, settings.pruner_startup_trials)
    study_dir = Path(settings.study_dir)
    study_dir.mkdir(parents=True, exist_ok=True)
    base = dataclasses.replace(config, report_to=None, output=None, test_size=0.0 if test is not None
                               else config.test_size)
    space, examples = _space(base, train, val, settings)
    url = storage_url(study_dir, settings.storage)
    study = open_study(url, settings.study_name, "minimize" if config.metric == "loss" else "maximize",
                       pruner, _identity(base, examples, space))
    missing = settings.trials - finished_trials(study)
    if missing > 0:
        log.info("study %r: %d of %d trials to run, %d options searched: %s", settings.study_name, missing,
                 settings.trials, len(space), ", ".join(space))
        study.optimize(_objective(base, space, train, val, study_dir / TRIALS_DIR), n_trials=missing,
                       timeout=settings.timeout, catch=(BertclfError,),
                       callbacks=[optuna.study.MaxTrialsCallback(settings.trials, states=(TrialState.COMPLETE,
                                                                                          TrialState.PRUNED)),
                                  _progress_line(settings.trials, config.metric), _stop_after_failures])
    write_trials_csv(study, study_dir)
    write_tune_report(study, study_dir, config.metric)
    return _found(study, url, study_dir, settings, space, config.metric)


def _check(settings: SearchSettings) -> None:
    if settings.trials < 1:
        raise BertclfError(f"--trials {settings.trials}: at least 1 trial")
    if settings.timeout is not None and settings.timeout <= 0:
        raise BertclfError(f"--timeout {settings.timeout}: must be positive seconds")
    if settings.pruner_startup_trials < 0:
        raise BertclfError(f"--pruner-startup-trials {settings.pruner_startup_trials}: must not be negative")


def _space(base: ClassifierConfig, train: DataSource, val: DataSource | None,
           settings: SearchSettings) -> tuple[Space, Examples]:
    """The space for these data (the training texts read once here): the low-label mode's where the rule turns it
    on, a fine-tune's otherwise, the long-text options for long texts; the config file's entries over it."""
    settled, examples = fitting.settle_low_label(base, train, val, None)
    low_label = settled.low_label == "on"
    counts = []
    if not low_label:  # a fine-tune's texts may be long
        tokenizer = load_tokenizer(base.model)
        counts = token_lengths(tokenizer, tokenize(tokenizer, examples.texts))
    overrides = parse_space(settings.search_space or {}, "the config file")
    models = tuple(dict.fromkeys(settings.models))
    return build_space(default_space(low_label, examples.multilabel, counts), overrides, models), examples


def _identity(base: ClassifierConfig, examples: Examples, space: Space) -> dict[str, Any]:
    """What a continued study must share with the one started: the training data, the options not searched, the
    space."""
    digest = hashlib.sha256(json.dumps([examples.texts, [str(label) for label in examples.labels]]).encode())
    options = {name: value for name, value in base.to_dict().items() if name not in (*NOT_SEARCHED, *space)}
    return {"training data": digest.hexdigest(), "options": options, "search space": described(space)}


def _objective(base: ClassifierConfig, space: Space, train: DataSource, val: DataSource | None,
               trials_dir: Path) -> Callable[[optuna.Trial], float]:
    """One trial: its options drawn, a training run under them, its record in its own folder."""
    def run_trial(trial: optuna.Trial) -> float:
        mark_trial(trial)
        options = suggest(trial, space)
        reports: list[dict[str, float]] = []
        record = {"number": trial.number, "options": options, "evaluations": reports}
        try:
            config = dataclasses.replace(base, **options)
            fitted = fitting.fit(config, train, val, None, on_evaluation=_reporter(trial, reports))
        except optuna.TrialPruned:
            _write_record(trials_dir, {**record, "state": "pruned"})
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            raise
        except BertclfError as error:
            trial.set_user_attr("error", str(error))
            _write_record(trials_dir, {**record, "state": "failed", "error": str(error)})
            raise
        score = validation_score(fitted.metrics, base.metric)
        _write_record(trials_dir, {**record, "state": "complete", "value": score, "val": fitted.metrics["val"],
                                   "training": {key: fitted.metrics["training"][key]
                                                for key in ("steps", "epochs", "train_seconds", "history")}})
        return score

    return run_trial


def _reporter(trial: optuna.Trial, reports: list[dict[str, float]]) -> EvaluationHook:
    """Each evaluation told to the pruner, at its epoch (the step that trials share whatever their batch size)."""
    reported: set[int] = set()

    def report(epoch: float, score: float) -> None:
        reports.append({"epoch": round(epoch, 2), "score": score})
        step = max(1, round(epoch))
        if step in reported:  # evaluations between epochs: the first of each epoch is reported
            return
        reported.add(step)
        trial.report(score, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch:.2f} ({score:.4f})")

    return report


def validation_score(metrics: Mapping[str, Any], metric: str) -> float:
    """A run's validation score: the mean over its seeds where there are several."""
    if "seeds" in metrics:
        return float(metrics["seeds"]["val"][metric]["mean"])
    return float(metrics["val"][metric])


def _write_record(trials_dir: Path, record: dict[str, Any]) -> None:
    """The trial's own folder: what it drew and how it went (trials never share one)."""
    folder = trials_dir / f"{record['number']:04d}"
    folder.mkdir(parents=True, exist_ok=True)
    rundir.write_json_into(folder / TRIAL_FILE, record)


def _progress_line(trials: int, metric: str) -> Callable[[optuna.Study, FrozenTrial], None]:
    def progress(study: optuna.Study, trial: FrozenTrial) -> None:
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        if trial.state == TrialState.COMPLETE:
            outcome = f"{metric} {trial.value:.4f}"
        elif trial.state == TrialState.PRUNED:
            last = max(trial.intermediate_values, default=None)
            outcome = f"pruned at epoch {last}" if last is not None else "pruned"
        else:
            outcome = f"failed: {trial.user_attrs.get('error', 'interrupted')}"
        best = _best_or_none(study)
        best_text = f"; best {best.value:.4f} (trial {best.number})" if best else ""
        drawn = ", ".join(f"{name}={_short(value)}" for name, value in trial.params.items())
        log.info("trial %d (%d of %d finished): %s in %.0f s%s | %s", trial.number, finished_trials(study), trials,
                 outcome, seconds, best_text, drawn)

    return progress


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _stop_after_failures(study: optuna.Study, _trial: FrozenTrial) -> None:
    """Stop when the latest trials all failed with an error (options that cannot train: fix the space)."""
    ended = [trial for trial in study.get_trials(deepcopy=False) if trial.state.is_finished()]
    latest = ended[-FAILURES_IN_A_ROW:]
    if len(latest) == FAILURES_IN_A_ROW and all(trial.user_attrs.get("error") for trial in latest):
        study.stop()


def _best_or_none(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:  # no trial completed yet
        return None


def _found(study: optuna.Study, url: str, study_dir: Path, settings: SearchSettings, space: Space,
           metric: str) -> Found:
    best = _best_or_none(study)
    if best is None:
        errors = [trial.user_attrs["error"] for trial in study.trials if trial.user_attrs.get("error")]
        raise BertclfError("no trial completed" + (f"; the last failed: {errors[-1]}" if errors else ""))
    states = [trial.state.name.lower() for trial in study.trials]
    summary = {"study": settings.study_name, "storage": make_url(url).render_as_string(hide_password=True),
               "study_dir": str(study_dir), "trials": {state: states.count(state) for state in sorted(set(states))},
               "metric": metric, "best_trial": best.number, "best_value": best.value, "best_options": best.params,
               "pruner": settings.pruner, "search_space": described(space),
               "finished_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    return Found(dict(best.params), summary)
