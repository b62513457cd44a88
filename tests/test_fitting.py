"""The steps of fit as functions of values (the whole recipe runs in test_classifier)."""

from pathlib import Path

import numpy as np
import pytest

from bertclf import BertclfError, ClassifierConfig, fitting
from bertclf.training import TrainState
from tests.helpers import make_texts


def seed_run(seed: int, score: float) -> fitting.SeedRun:
    return fitting.SeedRun(seed, None, TrainState(best_score=score), None)


@pytest.mark.parametrize(("metric", "kept"), [("accuracy", 2), ("loss", 1)])
def test_the_best_seed_is_the_first_of_the_best_scores(metric, kept):
    runs = [seed_run(1, 0.5), seed_run(2, 0.9), seed_run(3, 0.9)]
    assert fitting.pick_best(runs, metric).seed == kept


def test_texts_and_labels_given_apart_make_a_pair_and_the_options_fill_in_the_rest():
    config = ClassifierConfig(train="train.csv", val="val.csv")
    assert fitting.data_sources(config, ["a", "b"], [0, 1], None, None) == ((["a", "b"], [0, 1]), "val.csv", None)
    assert fitting.data_sources(config, None, None, None, "test.csv") == ("train.csv", "val.csv", "test.csv")
    with pytest.raises(BertclfError, match="no training data"):
        fitting.data_sources(ClassifierConfig(), None, None, None, None)


def test_resolved_options_record_files_and_a_concrete_pooling(tiny_model):
    given = ClassifierConfig(model=tiny_model, train="ignored.csv")
    resolved = fitting.resolve_options(given, Path("train.csv"), make_texts(9), None)
    assert (resolved.train, resolved.val, resolved.test, resolved.pooling) == ("train.csv", None, None, "cls")
    assert (given.train, given.pooling) == ("ignored.csv", "auto")


def test_a_fixed_threshold_overrides_the_tuned_ones():
    tuned = np.array([0.3, 0.7])
    assert fitting.thresholds_in_force(ClassifierConfig(), tuned, 2) is tuned
    np.testing.assert_array_equal(fitting.thresholds_in_force(ClassifierConfig(threshold=0.4), tuned, 2), [0.4, 0.4])


def test_tracker_files_belong_in_the_run_only_without_a_tracking_dir(tmp_path):
    assert fitting.tracking_folder(ClassifierConfig(), tmp_path) == (tmp_path / "tracking", True)
    assert fitting.tracking_folder(ClassifierConfig(tracking_dir=str(tmp_path / "t")), tmp_path) == (
        tmp_path / "t", False)
    assert fitting.tracking_folder(ClassifierConfig(), None) == (Path("tracking"), False)


def test_the_token_budget_is_chosen_or_capped_at_the_model_limit():
    counts = [10] * 970 + [100] * 30  # 95% of the texts fit in 10 tokens
    assert fitting.choose_token_budget("auto", counts, 512) == 16
    assert fitting.choose_token_budget("auto", counts[::10], 512) == 128  # 100 texts: all of them, at least 128
    assert fitting.choose_token_budget(1024, counts, 512) == 512
    assert fitting.choose_token_budget(64, counts, 512) == 64


def test_resuming_needs_a_checkpoint_folder_and_one_seed(tmp_path):
    with pytest.raises(BertclfError, match="needs the checkpoint_dir"):
        fitting.check_checkpoint_dir(ClassifierConfig(), None, resume=True)
    with pytest.raises(BertclfError, match="several --seeds cannot be resumed"):
        fitting.check_checkpoint_dir(ClassifierConfig(seeds="3"), tmp_path, resume=True)
    fitting.check_checkpoint_dir(ClassifierConfig(), tmp_path, resume=False)  # an empty folder: a fresh run
