"""Checkpoints: written whole or not at all, the last few kept, restored only onto the same data."""

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from bertclf.batching import EncodedTexts
from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.modeling import build_model
from bertclf.training import Checkpoints, TrainState, fingerprint, train
from tests.helpers import toy_set


def test_the_last_checkpoints_are_kept_and_a_killed_write_is_not_one(tmp_path):
    config = ClassifierConfig(save_total_limit=2)
    checkpoints = Checkpoints(tmp_path, config, "data")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".step-00000009.writing").mkdir()  # what a kill in the middle of a write leaves
    assert checkpoints.latest() is None
    for step in (3, 6, 9):
        checkpoints.save(Accelerator(), TrainState(step=step).to_dict())
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step-00000006", "step-00000009"]
    assert checkpoints.latest().name == "step-00000009"
    assert ClassifierConfig.from_file(tmp_path / "bertclf.yaml") == config  # the options the run started with


def test_the_fingerprint_follows_the_texts_and_labels():
    texts = EncodedTexts([[101, 5, 102], [101, 6, 7, 102]], np.array([0, 1]))
    assert fingerprint(texts) == fingerprint(EncodedTexts([[101, 5, 102], [101, 6, 7, 102]], np.array([0, 1])))
    assert fingerprint(texts) != fingerprint(EncodedTexts([[101, 5, 102], [101, 6, 7, 102]], np.array([1, 1])))
    assert fingerprint(texts) != fingerprint(EncodedTexts([[101, 5, 6, 102], [101, 7, 102]], np.array([0, 1])))
    chunked = EncodedTexts([[[101, 5, 102], [101, 6, 102]]], np.array([0]))
    assert fingerprint(chunked) != fingerprint(EncodedTexts([[[101, 5, 102, 101, 6, 102]]], np.array([0])))


def test_a_checkpoint_of_other_data_is_refused(tiny_model, tmp_path):
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8)
    model = build_model(config, [0, 1])
    Checkpoints(tmp_path, config, "before").save(Accelerator(), TrainState(step=1).to_dict())
    with pytest.raises(BertclfError, match="training data differ"):
        train(model, toy_set(16), config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
              evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
              checkpoints=Checkpoints(tmp_path, config, "after"))


def test_a_corrupt_training_state_is_one_error(tiny_model, tmp_path):
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8)
    train_set = toy_set(16)
    Checkpoints(tmp_path, config, fingerprint(train_set)).save(Accelerator(), {"step": 1, "unknown": 2})
    with pytest.raises(BertclfError, match="is corrupt"):
        train(build_model(config, [0, 1]), train_set, config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
              evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
              checkpoints=Checkpoints(tmp_path, config, fingerprint(train_set)))
