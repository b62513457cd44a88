"""The check an export passes before it is written: the same texts through PyTorch and through the export, their
labels and probabilities compared (and, on labelled texts, their scores)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bertclf.batching import EncodedTexts
from bertclf.config import ClassifierConfig
from bertclf.data import DataSource, as_frame, encode_labels, load_examples, make_splits
from bertclf.errors import BertclfError
from bertclf.inference import Predictor, predict_and_score

MIN_FP32_AGREEMENT = 0.99  # an fp32 export that changes more labels than this is broken, not rounded


def examples_for_export_check(config: ClassifierConfig, classes: list[Any],
                              check_data: DataSource | None) -> tuple[list[str], np.ndarray | None]:
    """Texts (and labels where there are any) to compare the export with PyTorch on: ``check_data``, or the run's
    validation texts, rebuilt from its data files and seed (``config``, the run's options) as training split them."""
    if check_data is None:
        if config.train is None or not Path(config.train).exists():
            raise BertclfError(f"the run's training data ({config.train}) is not here to rebuild its validation texts; "
                               "pass --check-data FILE")
        examples = make_splits(config, config.train, config.val, config.test).val
    else:
        frame, name = as_frame(check_data, config)
        label_columns = config.label_columns or [config.label_column]
        labelled = all(column in frame.columns for column in label_columns)
        examples = load_examples(frame, config, labelled=labelled)
        examples.name = name
    labels = encode_labels(examples, classes) if examples.labels is not None else None
    return examples.texts, labels


def compare_with_export(reference: Predictor, exported: Predictor, token_ids: list, labels: np.ndarray | None,
                        classes: list[Any], config: ClassifierConfig) -> dict[str, Any]:
    """How the export's predictions (``exported``) differ from PyTorch's (``reference``) on the same texts, and on
    labelled texts their scores by ``config.metric``."""
    torch_probabilities = reference.predict_proba(token_ids)
    export_probabilities = exported.predict_proba(token_ids)
    torch_labels, export_labels = exported.decisions(torch_probabilities), exported.decisions(export_probabilities)
    same = (torch_labels == export_labels).all(axis=1) if torch_labels.ndim == 2 else torch_labels == export_labels
    result = {"texts": len(token_ids), "agreement": float(same.mean()),
              "max_probability_difference": float(np.abs(torch_probabilities - export_probabilities).max())}
    if labels is not None:
        result["metric"] = config.metric
        dataset = EncodedTexts(token_ids, labels)
        for name, predictor in (("torch", reference), ("export", exported)):
            result[name] = float(predict_and_score(predictor, dataset, classes, config)[1][config.metric])
    return result
