"""The low-label mode (bertclf.fewshot): pairs and batches, the loss, the regression head, the rule that switches the
mode on, and whole runs on the tiny model: saved, loaded, exported and predicted as any run."""

import itertools
import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from bertclf import TextClassifier
from bertclf.config import ClassifierConfig
from bertclf.data import Examples
from bertclf.errors import BertclfError
from bertclf.fewshot import settle, texts_per_class, with_label_name_texts
from bertclf.fewshot.contrastive import pair_loss
from bertclf.fewshot.head import fit_head, out_of_fold_probabilities, probabilities, set_head
from bertclf.fewshot.pairs import balanced_batches, label_matrix, pair_targets, tuning_steps
from bertclf.modeling import PooledClassifier
from tests.helpers import assert_one_line_error, make_multilabel_texts, make_texts, run_cli, tiny_flags

# --- pairs and batches -------------------------------------------------------------------------------------------


def test_texts_of_one_class_are_alike_and_others_unlike():
    matrix = label_matrix(np.array([0, 1, 0, 2]), 3)
    assert matrix.tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 1]]
    assert pair_targets(matrix).tolist() == [[1, 0, 1, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]


def test_multilabel_texts_are_alike_when_they_share_a_label():
    matrix = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert label_matrix(matrix, 3) is not matrix and label_matrix(matrix, 3).tolist() == matrix.tolist()
    assert pair_targets(matrix).tolist() == [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]


def test_batches_hold_alike_and_unlike_pairs_and_rare_classes_come_as_often_as_common_ones():
    labels = np.array([0] * 40 + [1] * 8 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4)  # class 0 is ten times class 5
    matrix = label_matrix(labels, 6)
    batches = list(itertools.islice(balanced_batches(matrix, 16, seed=3), 60))
    drawn = np.zeros(6)
    for rows in batches:
        assert len(set(rows.tolist())) == len(rows) <= 16
        targets = pair_targets(matrix[rows])[np.triu_indices(len(rows), 1)]
        assert targets.min() == 0 and targets.max() == 1
        drawn += np.bincount(labels[rows], minlength=6) > 0
    assert drawn.max() - drawn.min() <= 1  # every class had its turn as often, whatever its size


def test_batches_follow_the_seed():
    matrix = label_matrix(np.arange(30) % 3, 3)
    first, again, other = (list(itertools.islice(balanced_batches(matrix, 8, seed), 5)) for seed in (1, 1, 2))
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


def test_a_multilabel_text_drawn_for_two_labels_is_in_the_batch_once():
    matrix = np.array([[1, 1]] * 3 + [[1, 0]] * 2 + [[0, 1]] * 2)
    for rows in itertools.islice(balanced_batches(matrix, 8, seed=0), 10):
        assert len(set(rows.tolist())) == len(rows)


@pytest.mark.parametrize(("texts", "requested", "steps"), [(4, None, 20), (100, None, 200), (5000, None, 1000),
                                                           (16, 7, 7), (16, 0, 0)])
def test_the_steps_grow_with_the_texts_within_a_floor_and_a_cap(texts, requested, steps):
    assert tuning_steps(texts, requested) == steps


def test_the_pair_loss_pulls_alike_pairs_together_and_pushes_unlike_ones_apart():
    targets = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    perfect = torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])  # alike parallel, unlike orthogonal
    assert pair_loss(perfect, targets).item() == pytest.approx(0.0, abs=1e-7)
    wrong = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # the alike pair orthogonal, one unlike parallel
    # alike pairs: (0 - 1)^2 = 1, halved; unlike pairs: (1 - 0)^2 and (0 - 0)^2, their mean 0.5 halved
    assert pair_loss(wrong, targets).item() == pytest.approx(0.5 * 1.0 + 0.5 * 0.5)


# --- the head ----------------------------------------------------------------------------------------------------


def _unit_vectors(count: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    vectors = rng.normal(size=(count, 12)) + 2.0 * np.eye(classes, 12)[labels]
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


class _Encoder(torch.nn.Module):
    """Hands the network the given vectors as its hidden states, one position per text."""

    config = type("Config", (), {"hidden_size": 12, "model_type": "toy"})()

    def __init__(self, vectors):
        super().__init__()
        self.vectors = torch.tensor(vectors, dtype=torch.float32)

    def forward(self, input_ids, attention_mask):
        return type("Output", (), {"last_hidden_state": self.vectors[input_ids[:, 0]][:, None, :]})()


@pytest.mark.parametrize("classes", [2, 3])
def test_the_network_computes_the_regressions_probabilities(classes):
    vectors, labels = _unit_vectors(60, classes)
    weight, bias = fit_head(vectors, labels, classes, None)
    model = PooledClassifier(_Encoder(vectors), classes, "mean", "linear", None, 0.0, unit_length=True).eval()
    set_head(model, weight, bias)
    ids = torch.arange(60)[:, None]
    with torch.no_grad():
        network = torch.softmax(model(ids, torch.ones_like(ids)).logits, dim=-1).numpy()
    expected = LogisticRegression(max_iter=5000).fit(vectors, labels).predict_proba(vectors)
    np.testing.assert_allclose(network, expected, atol=1e-5)
    np.testing.assert_allclose(probabilities(vectors, weight, bias, False), expected, atol=1e-9)


def test_the_multilabel_head_is_a_regression_per_label_and_a_constant_for_a_label_all_or_none_have():
    vectors, labels = _unit_vectors(40, 2)
    matrix = np.stack([labels, 1 - labels, np.ones(40, dtype=int), np.zeros(40, dtype=int)], axis=1)
    weight, bias = fit_head(vectors, matrix, 4, None)
    found = probabilities(vectors, weight, bias, True)
    np.testing.assert_allclose(found[:, 0], LogisticRegression(max_iter=5000).fit(vectors, labels)
                               .predict_proba(vectors)[:, 1], atol=1e-9)
    assert (found[:, 2] > 0.99).all() and (found[:, 3] < 0.01).all()


def test_balanced_class_weights_raise_a_rare_class():
    vectors, labels = _unit_vectors(44, 2)
    labels = np.where(np.arange(44) < 36, 0, 1)
    plain = probabilities(vectors, *fit_head(vectors, labels, 2, None), False)[:, 1]
    weighed = probabilities(vectors, *fit_head(vectors, labels, 2, np.array([44 / 72, 44 / 16])), False)[:, 1]
    assert (weighed > plain).all()


def test_out_of_fold_probabilities_come_from_heads_that_never_saw_the_text():
    vectors, labels = _unit_vectors(30, 3)
    oof = out_of_fold_probabilities(vectors, labels, 3, None, seed=0)
    fitted = probabilities(vectors, *fit_head(vectors, labels, 3, None), False)
    assert oof.shape == (30, 3) and np.allclose(oof.sum(axis=1), 1)
    assert not np.allclose(oof, fitted, atol=1e-3)


# --- when the mode applies ----------------------------------------------------------------------------------------


def _examples(per_class: int, classes: int = 3) -> Examples:
    labels = [f"c{i % classes}" for i in range(per_class * classes)]
    return Examples([f"text {i}" for i in range(len(labels))], labels, "train")


@pytest.mark.parametrize(("per_class", "options", "mode"), [
    (8, {}, "on"), (64, {}, "on"), (500, {}, "off"), (500, {"low_label": "on"}, "on"),
    (8, {"low_label": "off"}, "off"), (8, {"long_text": "chunks"}, "off"), (8, {"head": "mlp"}, "off")])
def test_the_mode_switches_on_and_off_by_the_texts_per_class(per_class, options, mode, caplog):
    with caplog.at_level(logging.INFO, logger="bertclf"):
        settled = settle(ClassifierConfig(**options), _examples(per_class, classes=10), val_given=False,
                         test_given=False)
    assert settled.low_label == mode
    assert ("low-label mode" in caplog.text) == (mode == "on")
    if mode == "on":  # nothing held out of so few texts
        assert settled.val_size == 0 and settled.test_size == 0


@pytest.mark.parametrize(("per_class", "classes", "mode"), [(65, 10, "off"), (166, 3, "on"), (167, 3, "off"),
                                                             (250, 2, "on"), (251, 2, "off")])
def test_past_64_per_class_the_mode_holds_up_to_500_texts_in_all(per_class, classes, mode):
    settled = settle(ClassifierConfig(), _examples(per_class, classes), val_given=False, test_given=False)
    assert settled.low_label == mode


def test_given_validation_and_test_parts_are_kept_in_the_mode():
    settled = settle(ClassifierConfig(), _examples(8), val_given=True, test_given=True)
    assert settled.low_label == "on" and settled.val_size == 0.1 and settled.test_size == 0.1


def test_multilabel_data_count_texts_per_label():
    labels = [("a", "b")] * 40 + [("c",)] * 40  # 80 texts, three labels: 40 texts per label on average
    examples = Examples(["t"] * 80, labels, "train", multilabel=True)
    assert texts_per_class(examples) == pytest.approx(40.0)
    assert settle(ClassifierConfig(), examples, False, False).low_label == "on"


def test_label_name_texts_are_added_per_class():
    added = with_label_name_texts(_examples(2, classes=2), 3)
    assert added.texts[4:] == ["c0", "a text about c0", "this is about c0", "c1", "a text about c1",
                               "this is about c1"]
    assert added.labels[4:] == ["c0"] * 3 + ["c1"] * 3
    multilabel = with_label_name_texts(Examples(["x"], [("a", "b")], "train", multilabel=True), 1)
    assert multilabel.labels == [("a", "b"), ("a",), ("b",)]


@pytest.mark.parametrize(("options", "fragment"), [
    ({"low_label": "on", "long_text": "chunks"}, "does not take --long-text chunks"),
    ({"low_label": "on", "head": "mlp"}, "does not take --head mlp"),
    ({"contrastive_steps": -1}, "contrastive_steps (--contrastive-steps) -1: must not be negative"),
    ({"contrastive_learning_rate": 0}, "must be positive"),
    ({"label_name_texts": -2}, "must not be negative")])
def test_options_the_mode_cannot_take_are_one_line(options, fragment):
    with pytest.raises(BertclfError, match=None) as refused:
        ClassifierConfig(**options)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)


# --- whole runs on the tiny model ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def few(tiny_model):
    options = {"model": tiny_model, "batch_size": 8, "seed": 3, "contrastive_steps": 12,
               "contrastive_learning_rate": 1e-3}
    return TextClassifier(**options).fit(make_texts(24, seed=1))


def test_a_small_training_set_gets_the_low_label_mode_with_nothing_held_out(few):
    assert few.config.low_label == "auto" and few.config_.low_label == "on" and few.config_.pooling == "mean"
    assert few.config_.val_size == 0 and few.config_.test_size == 0 and few.evaluation_ is None
    training = few.metrics_["training"]
    assert training["best_step"] == 12 and len(training["log"]) >= 1 and "accuracy" in few.metrics_["val"]


def test_the_saved_run_predicts_as_the_classifier_in_memory(few, tmp_path):
    texts = make_texts(20, seed=5)["text"].tolist()
    few.save(tmp_path / "run")
    loaded = TextClassifier.load(tmp_path / "run")
    assert loaded.config_.low_label == "on"
    np.testing.assert_allclose(loaded.predict_proba(texts), few.predict_proba(texts), atol=1e-6)
    assert "- training: low-label mode, 12 contrastive steps and a logistic-regression head, batch size" in \
        (tmp_path / "run" / "README.md").read_text()


def test_tuning_moves_the_encoder_and_a_frozen_encoder_is_not_tuned(tiny_model):
    from transformers import AutoModel

    original = AutoModel.from_pretrained(tiny_model).state_dict()
    options = {"model": tiny_model, "batch_size": 8, "seed": 3, "contrastive_steps": 5,
               "contrastive_learning_rate": 1e-3}
    tuned = TextClassifier(**options).fit(make_texts(24, seed=1)).model_.encoder.state_dict()
    frozen = TextClassifier(**options, freeze_encoder=True).fit(make_texts(24, seed=1))
    name = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(tuned[name], original[name])
    assert torch.equal(frozen.model_.encoder.state_dict()[name], original[name])
    assert frozen.metrics_["training"]["best_step"] == 0


def test_given_validation_texts_are_scored_and_seeds_spread(tiny_model):
    classifier = TextClassifier(model=tiny_model, batch_size=8, contrastive_steps=4, seeds="2").fit(
        make_texts(24, seed=1), val=make_texts(12, seed=2), test=make_texts(12, seed=3))
    assert classifier.metrics_["val"]["n"] == 12 and classifier.metrics_["test"]["n"] == 12
    assert set(classifier.metrics_["seeds"]["val"]["accuracy"]) == {"mean", "std"}


def test_multilabel_data_in_the_mode_get_thresholds_out_of_fold(tiny_model):
    classifier = TextClassifier(model=tiny_model, batch_size=8, contrastive_steps=4, task="multilabel").fit(
        make_multilabel_texts(30))
    assert classifier.config_.low_label == "on" and classifier.task_ == "multilabel"
    assert classifier.thresholds_.shape == (3,)
    assert classifier.predict_proba(["goal and match"]).shape == (1, 3)


def test_label_name_texts_outside_the_mode_are_one_line(tiny_model):
    with pytest.raises(BertclfError, match=r"^--label-name-texts applies to the low-label mode"):
        TextClassifier(model=tiny_model, low_label="off", label_name_texts=2, epochs=1).fit(make_texts(24, seed=1))


@pytest.mark.slow
def test_the_command_line_trains_a_low_label_run_that_predict_export_and_report_use(tiny_model, tmp_path):
    make_texts(24, seed=1).to_csv(tmp_path / "train.csv", index=False)
    make_texts(12, seed=2).to_csv(tmp_path / "new.csv", index=False)
    run = tmp_path / "run"
    code, _, err = run_cli(["train", "--train", tmp_path / "train.csv", "--output", run, "--label-name-texts", 2,
                            *tiny_flags({"model": tiny_model, "batch_size": 8, "contrastive_steps": 6})])
    assert code == 0, err
    assert "low-label mode" in err and (run / "report.html").is_file()
    assert "data: train 30, val: the training texts, out of fold" in err  # 24 texts and 2 from each class name
    assert json.loads((run / "metrics.json").read_text())["training"]["best_step"] == 6
    code, _, err = run_cli(["predict", run, "--input", tmp_path / "new.csv", "--output", tmp_path / "p.csv"])
    assert code == 0, err
    code, _, err = run_cli(["export", run, "--quantize", "int8", "--output", tmp_path / "export"])
    assert code == 0, err
    code, _, err = run_cli(["predict", tmp_path / "export", "--input", tmp_path / "new.csv", "--output",
                            tmp_path / "q.csv"])
    assert code == 0, err
    torch_labels = pd.read_csv(tmp_path / "p.csv")["predicted_label"]
    int8_labels = pd.read_csv(tmp_path / "q.csv")["predicted_label"]
    assert (torch_labels == int8_labels).mean() >= 0.9


def test_the_low_label_mode_on_the_command_line_refuses_chunks_in_one_line(tmp_path):
    code, _, err = run_cli(["train", "--train", tmp_path / "none.csv", "--low-label", "on", "--long-text", "chunks"])
    assert_one_line_error(code, err, "does not take --long-text chunks")


@pytest.mark.slow
def test_the_packaged_encoder_learns_topics_from_eight_texts_per_class(packaged_model_path):
    """End to end on the real all-MiniLM-L6-v2: the default on 8 texts per class is the low-label mode, and it
    labels unseen texts of the same topics well."""
    classifier = TextClassifier(model=packaged_model_path, seed=0).fit(make_texts(24, seed=1))
    test = make_texts(60, seed=9)
    assert classifier.config_.low_label == "on"
    assert np.mean(np.array(classifier.predict(test["text"].tolist())) == test["label"].to_numpy()) >= 0.9
