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
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8, min_steps=0)
    model = build_model(config, [0, 1])
    Checkpoints(tmp_path, config, "before").save(Accelerator(), TrainState(step=1).to_dict())
    with pytest.raises(BertclfError, match="training data differ"):
        train(model, toy_set(16), config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
              evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
              checkpoints=Checkpoints(tmp_path, config, "after"))


def test_a_corrupt_training_state_is_one_error(tiny_model, tmp_path):
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8, min_steps=0)
    train_set = toy_set(16)
    Checkpoints(tmp_path, config, fingerprint(train_set)).save(Accelerator(), {"step": 1, "unknown": 2})
    with pytest.raises(BertclfError, match="is corrupt"):
        train(build_model(config, [0, 1]), train_set, config, pad_token_id=0, loss_fn=torch.nn.functional.cross_entropy,
              evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
              checkpoints=Checkpoints(tmp_path, config, fingerprint(train_set)))


def _finished_run(tiny_model, folder):
    """Train 4 steps with a checkpoint after each; returns how to train again on the same data, resuming."""
    config = ClassifierConfig(model=tiny_model, epochs=1, batch_size=8, save_steps=1, seed=3, min_steps=0)
    train_set = toy_set(32)

    def again():
        torch.manual_seed(3)
        return train(build_model(config, [0, 1]), train_set, config, pad_token_id=0,
                     loss_fn=torch.nn.functional.cross_entropy,
                     evaluate=lambda candidate: {"f1_macro": 0.5, "loss": 0.0},
                     checkpoints=Checkpoints(folder, config, fingerprint(train_set)))

    again()
    return again


CHECKPOINT_FILES = ["model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"]


@pytest.mark.parametrize(("file", "fault"), [*((file, fault) for file in CHECKPOINT_FILES
                                               for fault in ("garbage", "truncated", "missing")),
                                             ("random_states_0.pkl", "other_content")])
def test_a_damaged_checkpoint_file_is_one_error_naming_it(tiny_model, tmp_path, file, fault):
    again = _finished_run(tiny_model, tmp_path)
    path = Checkpoints(tmp_path, ClassifierConfig(), "").latest() / file
    if fault == "garbage":
        path.write_bytes(b"\xff" * path.stat().st_size)
    elif fault == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif fault == "missing":
        path.unlink()
    else:  # a pickle, but not of random states: accelerate skips it without a word
        torch.save({"random_state": "not a state", "numpy_random_seed": 1, "torch_manual_seed": 2}, path)
    with pytest.raises(BertclfError) as error:
        again()
    message = str(error.value)
    assert len(message.splitlines()) == 1 and str(path) in message
    assert ("is missing" if fault == "missing" else "is damaged") in message


def test_an_intact_checkpoint_resumes(tiny_model, tmp_path):
    again = _finished_run(tiny_model, tmp_path)
    _, state = again()  # the last checkpoint is the end of training: nothing left to train, and no error
    assert state.step == 4
