"""The check before an export is written: the texts it compares on, and how far two predictors agree on them."""

import numpy as np
import pytest

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.export_check import compare_with_export, examples_for_export_check
from bertclf.inference import Predictor
from tests.helpers import make_texts

CLASSES = ["food", "sport", "tech"]
TOKEN_IDS = [[101, token, 102] for token in range(9)]  # the token after [CLS] names the class: token % 3
LABELS = np.array([token % 3 for token in range(9)])


class TokenRuntime:
    """A runtime whose logits pick the class named by each text's second token, or (``flipped``) the classes in
    reverse order: the first and the last class trade places, the middle one stays."""

    name, chunked = "fake", False

    def __init__(self, flipped: bool = False):
        self.flipped = flipped

    def rows(self, input_ids, attention_mask):
        logits = 4 * np.eye(len(CLASSES), dtype=np.float32)[input_ids[:, 1] % len(CLASSES)]
        return logits[:, ::-1].copy() if self.flipped else logits

    def documents(self, windows, mask):
        raise AssertionError("not a chunked runtime")


def predictor(flipped=False):
    return Predictor(TokenRuntime(flipped), pad_token_id=0, batch_size=4)


def test_identical_runtimes_agree_on_every_text():
    result = compare_with_export(predictor(), predictor(), TOKEN_IDS, None, CLASSES, ClassifierConfig())
    assert result == {"texts": 9, "agreement": 1.0, "max_probability_difference": 0.0}


def test_an_export_that_flips_labels_agrees_less_and_scores_lower():
    config = ClassifierConfig()
    result = compare_with_export(predictor(), predictor(flipped=True), TOKEN_IDS, LABELS, CLASSES, config)
    assert result["agreement"] == pytest.approx(3 / 9)  # only the middle class keeps its texts
    assert result["max_probability_difference"] > 0.5
    assert result["metric"] == config.metric and result["torch"] == 1.0 and result["export"] < 1.0


def test_without_check_data_the_missing_training_file_is_named(tmp_path):
    gone = tmp_path / "gone.csv"
    with pytest.raises(BertclfError, match=f"training data \\({gone}\\) is not here.*--check-data"):
        examples_for_export_check(ClassifierConfig(train=str(gone)), CLASSES, None)


def test_the_validation_texts_are_rebuilt_from_the_training_file_and_check_data_is_read_as_given(tmp_path):
    train = tmp_path / "train.csv"
    frame = make_texts(50, seed=1)
    frame.to_csv(train, index=False)
    texts, labels = examples_for_export_check(ClassifierConfig(train=str(train), val_size=0.2), CLASSES, None)
    assert len(texts) == 10 and set(texts) <= set(frame["text"]) and set(labels) <= {0, 1, 2}
    given = make_texts(6, seed=2)
    texts, labels = examples_for_export_check(ClassifierConfig(), CLASSES, given)
    assert texts == given["text"].tolist() and [CLASSES[label] for label in labels] == given["label"].tolist()
    texts, labels = examples_for_export_check(ClassifierConfig(), CLASSES, given[["text"]])
    assert texts == given["text"].tolist() and labels is None
