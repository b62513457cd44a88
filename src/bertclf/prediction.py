"""Prediction of files of any size: read a part, predict it, write it, so memory does not grow with the file.

The input columns come back unchanged, in input order, followed by the predicted label(s) and one probability
column per class; an input that already has a column of those names is refused (never replaced). Every part is
read and checked once before any is predicted, so bad input fails before anything is predicted or written. Progress
shows as a bar on a terminal and as a log line every minute elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertclf.config import ClassifierConfig
from bertclf.data import iter_table, join_texts
from bertclf.errors import BertclfError
from bertclf.progress import Progress

PART_ROWS = 8192  # texts read, predicted and written at a time: large enough to batch by length, small in memory


@dataclass(frozen=True)
class PredictionColumns:
    """What prediction adds to each row: the predicted label (multilabel: ``predicted_labels``), then one
    ``proba_<class>`` column per class. Multilabel labels are joined by ``label_sep`` for delimited text files
    (``joined_labels``) and kept as lists for JSON lines, Parquet and Arrow."""

    classes: list[Any]
    multilabel: bool
    label_sep: str
    joined_labels: bool

    @property
    def names(self) -> list[str]:
        """The names of the columns that prediction adds, in order."""
        return ["predicted_labels" if self.multilabel else "predicted_label",
                *(f"proba_{label}" for label in self.classes)]


def check_columns(names: Iterable[Any], columns: PredictionColumns, source: str = "the input") -> None:
    """Fail if ``source`` already has a column that prediction adds: it would be replaced (or a text column lost)."""
    present = {str(name) for name in names}
    taken = [name for name in columns.names if name in present]
    if taken:
        raise BertclfError(f"{source} already has a column '{taken[0]}', which predict adds (the predicted label and "
                           "one proba_<class> column per class): rename or drop that column")


def read_parts(source: str | Path, config: ClassifierConfig,
               part_rows: int) -> Iterator[tuple[pd.DataFrame, list[str]]]:
    """The rows of ``source``, ``part_rows`` at a time, each part with its texts (``config``'s text columns). The
    file is checked at once (it exists and can be read); its parts are read as they are taken."""
    name = Path(source).name
    frames = iter_table(source, config.columns, config.quoting, rows=part_rows, encoding=config.encoding)
    return ((frame, join_texts(frame, config, name)) for frame in frames)


def prediction_frame(frame: pd.DataFrame, probabilities: np.ndarray, labels: list[Any],
                     columns: PredictionColumns) -> pd.DataFrame:
    """``frame`` with the predicted ``labels`` and the ``probabilities`` of its rows added."""
    check_columns(frame.columns, columns)
    result = frame.copy()
    if columns.multilabel:
        result["predicted_labels"] = [columns.label_sep.join(map(str, row)) if columns.joined_labels else list(row)
                                      for row in labels]
    else:
        result["predicted_label"] = labels
    for position, label in enumerate(columns.classes):
        result[f"proba_{label}"] = probabilities[:, position]
    return result


def check_parts(parts: Iterable[tuple[pd.DataFrame, list[str]]], columns: PredictionColumns,
                check_part: Callable[[pd.DataFrame], Any], source: str) -> int:
    """Read every (frame, texts) part once before anything is predicted, checking its texts (as ``read_parts`` does),
    its columns against those prediction adds, and ``check_part`` (what the output format can hold); returns the
    number of rows, so that a bad row in the last part fails before the first is predicted or written."""
    rows = 0
    for frame, _texts in parts:
        if rows == 0:
            check_columns(frame.columns, columns, source)
        check_part(frame)
        rows += len(frame)
    return rows


def predict_parts(probabilities_of: Callable[[list[str]], np.ndarray], labels_of: Callable[[np.ndarray], list[Any]],
                  parts: Iterable[tuple[pd.DataFrame, list[str]]], write: Callable[[pd.DataFrame], Any],
                  columns: PredictionColumns, total: int | None = None) -> int:
    """Predict each (frame, texts) part (``probabilities_of`` the texts, then ``labels_of`` those) and hand the
    frame with its predictions to ``write``; returns the number of texts."""
    progress = Progress("predicting", total)
    try:
        for part, (frame, texts) in enumerate(parts, 1):
            probabilities = probabilities_of(texts)
            write(prediction_frame(frame, probabilities, labels_of(probabilities), columns))
            progress.update(len(texts))
            if progress.due(part):
                progress.show()
    finally:
        progress.close()
    return progress.done
