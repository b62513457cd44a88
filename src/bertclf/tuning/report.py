"""What a search leaves to read: ``trials.csv`` (one row per trial) and ``tune_report.html``, an offline page of the
trials table and Optuna's own figures (its matplotlib backend, embedded as PNG)."""

from __future__ import annotations

import html
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from bertclf import rundir
from bertclf.reporting import figure_png

log = logging.getLogger("bertclf")

TRIALS_CSV, TUNE_REPORT = "trials.csv", "tune_report.html"


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """Number, state, validation score, seconds, the options drawn and any error, per trial."""
    frame = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    if frame.empty:
        return frame
    frame["seconds"] = frame.pop("duration").dt.total_seconds().round(1)
    frame = frame.rename(columns=lambda name: name.removeprefix("params_"))
    errors = frame["user_attrs_error"] if "user_attrs_error" in frame else pd.Series("", index=frame.index)
    frame = frame.drop(columns=[name for name in frame if name.startswith("user_attrs_")])
    frame["error"] = errors.fillna("")
    return frame


def write_trials_csv(study: optuna.Study, study_dir: Path) -> Path:
    path = study_dir / TRIALS_CSV
    with rundir.atomic_file(path) as staging:
        trials_table(study).to_csv(staging, index=False)
    return path


def _figures(study: optuna.Study) -> list[tuple[str, str | None, str]]:
    """(title, PNG or None, why not drawn) for each of Optuna's figures."""
    from optuna.visualization import matplotlib as plots

    drawers: list[tuple[str, Callable[[optuna.Study], Any]]] = [
        ("Optimisation history", plots.plot_optimization_history),
        ("Validation score per epoch (pruned trials stop early)", plots.plot_intermediate_values),
        ("Parameter importances (fANOVA)", plots.plot_param_importances),
        ("Parallel coordinates", plots.plot_parallel_coordinate),
    ]
    figures = []
    for title, draw in drawers:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib figures experimental
                axes = draw(study)
            figure = axes.flat[0].figure if hasattr(axes, "flat") else axes.figure
            figures.append((title, figure_png(figure), ""))
        except (ValueError, RuntimeError, ZeroDivisionError, IndexError) as error:  # too few trials to draw it
            figures.append((title, None, str(error) or type(error).__name__))
    return figures


def write_tune_report(study: optuna.Study, study_dir: Path, metric: str) -> Path:
    """The page: the best trial, the figures and the trials table."""
    table = trials_table(study)
    try:
        best = study.best_trial
        drawn = ", ".join(f"{name}={value}" for name, value in best.params.items())
        headline = html.escape(f"best: trial {best.number}, validation {metric} {best.value:.4f} with {drawn}")
    except ValueError:
        headline = "no trial completed yet"
    sections = []
    for title, png, why in _figures(study):
        body = f'<img alt="{html.escape(title)}" src="data:image/png;base64,{png}">' if png else \
            f"<p>not drawn: {html.escape(why)}</p>"
        sections.append(f"<h2>{html.escape(title)}</h2>\n{body}")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bertclf tune: {html.escape(study.study_name)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:75em}}img{{max-width:100%}}
table{{border-collapse:collapse;font-size:.85em}}td,th{{border:1px solid #ccc;padding:.2em .5em;text-align:right}}
</style></head><body>
<h1>bertclf tune: study {html.escape(study.study_name)}</h1>
<p>{len(table)} trials; {headline}</p>
{chr(10).join(sections)}
<h2>Trials</h2>
{table.to_html(index=False, na_rep="", float_format=lambda value: f"{value:.4g}")}
</body></html>
"""
    path = study_dir / TUNE_REPORT
    with rundir.atomic_file(path) as staging:
        staging.write_text(page, encoding="utf-8")
    return path
