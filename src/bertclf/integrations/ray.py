"""Batch prediction on Ray Data: a predictor that Ray ships to its workers, for ``Dataset.map_batches``.

Each worker builds one :class:`BatchPredictor`, which loads the model once (on any runtime of
:mod:`bertclf.inference`), and calls it on batches of rows; the rows come back with the columns that
``bertclf predict`` adds::

    import ray
    from bertclf.integrations.ray import BatchPredictor

    texts = ray.data.read_csv("s3://bucket/texts/")
    labelled = texts.map_batches(BatchPredictor, fn_constructor_kwargs={"model": "runs/r1", "runtime": "onnx"},
                                 batch_format="pandas", batch_size=1024, concurrency=8, num_cpus=2)
    labelled.write_parquet("s3://bucket/labelled/")
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from bertclf.classifier import TextClassifier
from bertclf.data import join_texts
from bertclf.prediction import PredictionColumns, prediction_frame


class BatchPredictor:
    """A callable class for ``map_batches(..., batch_format="pandas")``: rows in, the same rows with predicted
    label(s) and one probability column per class out. ``text_column`` overrides the run's text column(s)."""

    def __init__(self, model: str, runtime: str = "auto", threads: int | None = None,
                 text_column: str | list[str] | None = None):
        self.classifier = classifier = TextClassifier.load(model, runtime=runtime, threads=threads)
        if text_column is not None:
            text_columns = [text_column] if isinstance(text_column, str) else list(text_column)
            classifier.config = dataclasses.replace(classifier.config, text_column=text_columns)
        # Labels of a multilabel text stay a list: Ray's blocks are Arrow tables, which hold lists.
        self.prediction_columns = PredictionColumns(classifier.classes_, classifier.task_ == "multilabel",
                                                    classifier.config.label_sep, joined_labels=False)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = join_texts(batch, self.classifier.config, "a batch of rows")
        probabilities = self.classifier.predict_proba(texts)
        return prediction_frame(batch, probabilities, self.classifier.labels_from_probabilities(probabilities),
                                self.prediction_columns)
