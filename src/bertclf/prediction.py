"""Prediction of files of any size: read a part, predict it, write it, so memory does not grow with the file.

The input columns come back unchanged, in input order, followed by the predicted label(s) and one probability
column per class. Progress shows as a bar on a terminal and as a log line every minute elsewhere.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from bertclf.classifier import TextClassifier

log = logging.getLogger("bertclf")

PART_ROWS = 8192  # texts read, predicted and written at a time: large enough to batch by length, small in memory


def prediction_frame(classifier: TextClassifier, frame: pd.DataFrame, texts: list[str],
                     joined_labels: bool) -> pd.DataFrame:
    """``frame`` with the predictions of ``texts`` (one per row) added. Multilabel labels are joined by the
    label separator for delimited text files (``joined_labels``) and kept as lists for JSON lines and Parquet."""
    probabilities = classifier.predict_proba(texts)
    predicted = classifier.labels_from_probabilities(probabilities)
    result = frame.copy()
    if classifier.task_ == "multilabel":
        separator = classifier.config.label_sep
        result["predicted_labels"] = [separator.join(map(str, labels)) if joined_labels else list(labels)
                                      for labels in predicted]
    else:
        result["predicted_label"] = predicted
    for position, label in enumerate(classifier.classes_):
        result[f"proba_{label}"] = probabilities[:, position]
    return result


class PredictionProgress:
    """A tqdm bar (texts, texts/s, ETA) on a terminal; elsewhere a log line every ``LOG_EVERY_SECONDS``."""

    LOG_EVERY_SECONDS = 60.0

    def __init__(self, total: int | None):
        self.bar = tqdm(total=total, desc="predicting", unit="text", dynamic_ncols=True, disable=None)
        self.total, self.done = total, 0
        self.started = self.last_line = time.perf_counter()

    def update(self, texts: int) -> None:
        self.bar.update(texts)
        self.done += texts
        now = time.perf_counter()
        if self.bar.disable and now - self.last_line >= self.LOG_EVERY_SECONDS:
            self.last_line = now
            speed = self.done / (now - self.started)
            remaining = (self.total or 0) - self.done
            left = f", about {remaining / speed:.0f} s left" if remaining > 0 else ""
            log.info("predicting: %d texts, %.1f texts/s%s", self.done, speed, left)

    def close(self) -> None:
        self.bar.close()


def predict_parts(classifier: TextClassifier, parts: Iterable[tuple[pd.DataFrame, list[str]]],
                  write: Callable[[pd.DataFrame], Any], joined_labels: bool, total: int | None = None) -> int:
    """Predict each (frame, texts) part and hand the result to ``write``; returns the number of texts."""
    progress = PredictionProgress(total)
    try:
        for frame, texts in parts:
            write(prediction_frame(classifier, frame, texts, joined_labels))
            progress.update(len(texts))
    finally:
        progress.close()
    return progress.done
