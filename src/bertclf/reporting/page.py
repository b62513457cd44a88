"""``report.html``: one self-contained page per run (figures embedded as PNG, no network) that shows the run, the
data, the learning curves, the test scores and where the model goes wrong, beside a TF-IDF baseline.

A run directory keeps what the page is drawn from (the data check, the test part's predictions, the baseline's
scores, the training log in ``metrics.json``), so ``bertclf report RUN`` redraws it, and ``bertclf report RUN
--data FILE`` draws it again for a new labelled file.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from bertclf import __version__, rundir
from bertclf.config import ClassifierConfig
from bertclf.data import encode_labels, make_splits
from bertclf.errors import BertclfError
from bertclf.metrics import HEADLINE, MULTILABEL_HEADLINE
from bertclf.reporting.baseline import tfidf_baseline
from bertclf.reporting.evaluation import Evaluation
from bertclf.reporting.figures import (
    calibration,
    confusion_figure,
    curves_figure,
    label_distribution_figure,
    learning_curve_figure,
    mistakes,
    reliability_figure,
    threshold_figure,
    threshold_sweep,
    token_length_figure,
)
from bertclf.reporting.inspection import DataInspection

log = logging.getLogger("bertclf")


@dataclass
class ReportInputs:
    """Everything the page shows: the run's options, classes and scores, how its model decides, and what the run
    directory keeps for the page (the data check, a labelled part's predictions, the baseline's scores)."""

    run_name: str
    options: dict[str, Any]
    classes: list[Any]
    multilabel: bool
    metrics: dict[str, Any]  # metrics.json: val, test, training (history, log, environment)
    thresholds: np.ndarray | None
    min_labels: int
    decisions: Callable[[np.ndarray], np.ndarray]  # the model's decision rule: probabilities to the labels it gives
    inspection: DataInspection | None
    evaluation: Evaluation | None
    baseline: dict[str, Any] | None


# --- reading and writing ------------------------------------------------------------------------------

def save_inputs(directory: Path, inspection: DataInspection | None, evaluation: Evaluation | None,
                baseline: dict[str, Any] | None) -> None:
    """The report's own files in a run directory being written (its staging folder)."""
    if inspection is not None:
        rundir.write_json_into(directory / rundir.INSPECTION_FILE, inspection.to_dict())
    if evaluation is not None:
        evaluation.save(directory / rundir.TEST_PREDICTIONS_FILE)
    if baseline is not None:
        rundir.write_json_into(directory / rundir.BASELINE_FILE, baseline)


def load_inputs(directory: Path) -> tuple[DataInspection | None, Evaluation | None, dict[str, Any] | None]:
    """The report's own files in a run directory, as :func:`save_inputs` wrote them (None for each one missing)."""
    inspection = None
    if (directory / rundir.INSPECTION_FILE).is_file():
        try:
            inspection = DataInspection.from_dict(rundir.read_json(directory / rundir.INSPECTION_FILE))
        except (TypeError, KeyError):
            raise BertclfError(f"{directory / rundir.INSPECTION_FILE} is corrupt") from None
    predictions = directory / rundir.TEST_PREDICTIONS_FILE
    evaluation = Evaluation.load(predictions) if predictions.is_file() else None
    baseline = rundir.read_json(directory / rundir.BASELINE_FILE) if (directory / rundir.BASELINE_FILE).is_file() \
        else None
    return inspection, evaluation, baseline


def write_report(path: Path, inputs: ReportInputs) -> None:
    """The page, into ``path`` (a file inside a staging directory, or written atomically beside an existing run)."""
    path.write_text(render(inputs), encoding="utf-8")


def with_report_writing_time(metrics: dict[str, Any], seconds: float) -> dict[str, Any]:
    """``metrics`` (metrics.json) with the seconds that writing the page and its files took, beside the report's
    other costs in ``training.report_seconds``."""
    training = metrics.get("training", {})
    report_seconds = {**training.get("report_seconds", {}), "write_report": round(seconds, 3)}
    return {**metrics, "training": {**training, "report_seconds": report_seconds}}


# --- the page ----------------------------------------------------------------------------------------

def _headline(multilabel: bool) -> tuple[str, ...]:
    return MULTILABEL_HEADLINE if multilabel else HEADLINE


def _options_rows(options: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """Each option, its value, and whether it differs from the default."""
    defaults = ClassifierConfig().to_dict()
    return [(name, "" if value is None else str(value), value != defaults.get(name))
            for name, value in options.items()]


def render(inputs: ReportInputs) -> str:
    """The whole page as one HTML string."""
    template = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        (resources.files("bertclf") / "resources" / "report.html.j2").read_text(encoding="utf-8"))
    training = inputs.metrics.get("training", {})
    options = inputs.options
    sections: dict[str, Any] = {"run": {
        "options": _options_rows(options),
        "environment": training.get("environment", {}),
        "training": {name: training.get(name) for name in ("train_seconds", "train_samples",
                                                           "train_samples_per_second", "best_step",
                                                           "stopped_early", "max_length")},
    }}
    if inputs.inspection is not None:
        chunked = options.get("long_text") == "chunks"
        sections["data"] = {"inspection": inputs.inspection, "warning": inputs.inspection.vocabulary_warning(),
                            "labels_figure": label_distribution_figure(inputs.inspection),
                            "lengths_figure": token_length_figure(inputs.inspection, chunked),
                            "chunked": chunked}
    if training.get("history") or training.get("log"):
        sections["curves_over_training"] = learning_curve_figure(training, options.get("metric", "loss"))
    evaluation = inputs.evaluation
    if evaluation is not None:
        metrics = inputs.metrics.get("evaluation") or inputs.metrics.get("test", {})
        decisions = inputs.decisions(evaluation.probabilities)
        sections["test"] = {"name": evaluation.name, "metrics": metrics,
                            "headline": [name for name in _headline(inputs.multilabel) if name in metrics],
                            "per_class": metrics.get("per_class", {}),
                            "seeds": None if "evaluation" in inputs.metrics else inputs.metrics.get("seeds")}
        sections["confusion"] = confusion_figure(evaluation, inputs.classes, decisions, inputs.multilabel)
        sections["curves"] = curves_figure(evaluation, inputs.classes)
        figures = calibration(evaluation, inputs.multilabel)
        sections["calibration"] = {"ece": figures["ece"], "figure": reliability_figure(figures, inputs.multilabel)}
        if inputs.multilabel:
            sections["thresholds"] = threshold_figure(threshold_sweep(evaluation, inputs.min_labels),
                                                      inputs.thresholds)
        sections["mistakes"] = mistakes(evaluation, inputs.classes, decisions, inputs.multilabel)
        if inputs.baseline is not None:
            sections["baseline"] = {"name": inputs.baseline["name"], "seconds": inputs.baseline["train_seconds"],
                                    "rows": [(name, metrics.get(name), inputs.baseline["metrics"].get(name))
                                             for name in _headline(inputs.multilabel) if name in metrics],
                                    "model_seconds": training.get("train_seconds")}
    return template.render(title=f"bertclf report: {inputs.run_name}", run_name=inputs.run_name,
                           task="multilabel" if inputs.multilabel else "multiclass", classes=inputs.classes,
                           model=options.get("model"), sections=sections, version=__version__,
                           created=time.strftime("%Y-%m-%d %H:%M"))


def rebuild(run: Path, inputs: ReportInputs, new: tuple[Evaluation, dict[str, Any]] | None = None) -> Path:
    """``bertclf report``: redraw a run's page from ``inputs`` (its saved files and its model's values), or draw
    it for ``new``, a labelled file's predictions and scores by the run's model, beside the baseline retrained on
    the run's training part when its files are still there."""
    if new is not None:
        evaluation, metrics = new
        inputs = dataclasses.replace(inputs, evaluation=evaluation,
                                     baseline=_baseline_for(run, inputs.classes, evaluation),
                                     metrics={**inputs.metrics, "evaluation": metrics})
    elif inputs.evaluation is None:  # lost, or a run without a test part: a page without its core, said aloud
        log.warning("warning: %s has no %s: the report has no test sections (scores, confusion matrix, curves, "
                    "mistakes); pass --data FILE to draw them for a labelled file", run, rundir.TEST_PREDICTIONS_FILE)
    target = run / rundir.REPORT_FILE
    with rundir.atomic_file(target) as staging:
        write_report(staging, inputs)
    return target


def _baseline_for(run: Path, classes: list[Any], evaluation: Evaluation) -> dict[str, Any] | None:
    config = ClassifierConfig.from_file(run / rundir.CONFIG_FILE)  # the training file's columns, not the new file's
    if not config.train or not Path(config.train).is_file():
        log.warning("warning: the run's training file %s is not there: the report has no baseline", config.train)
        return None
    splits = make_splits(config, config.train, config.val, config.test)
    return tfidf_baseline(splits.train.texts, encode_labels(splits.train, classes), splits.val.texts,
                          encode_labels(splits.val, classes), evaluation.texts, evaluation.labels, classes,
                          config.threshold_strategy)
