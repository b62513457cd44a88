import copy
import json
import shutil
import signal

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors import SafetensorError
from transformers import pipeline

from bertclf import BertclfError, ClassifierConfig, TextClassifier
from bertclf import classifier as classifier_module
from bertclf.errors import Interrupted
from tests.helpers import make_multilabel_texts, make_tail_texts, make_texts, sentence_transformers_layout


@pytest.fixture(scope="module")
def fitted(tiny_options, shared_text_files):
    """One classifier fitted for the module: tests save it or predict with it, and change settings only on a copy."""
    files = shared_text_files
    return TextClassifier(**tiny_options).fit(files["train"], val=files["val"], test=files["test"])


def test_fit_learns_generated_topics_and_records_metrics(fitted):
    assert fitted.classes_ == ["food", "sport", "tech"]
    assert fitted.metrics_["test"]["accuracy"] >= 0.9
    for name in ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc", "per_class", "confusion_matrix"):
        assert name in fitted.metrics_["val"]
    assert fitted.metrics_["training"]["train_samples"] == 8 * 150


def test_predict_and_predict_proba_agree_and_keep_input_order(fitted):
    texts = ["the team scored a goal in the league match", "a new computer chip with software and data on the network",
             "bread soup"]
    probabilities = fitted.predict_proba(texts)
    assert probabilities.shape == (3, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert fitted.predict(texts) == [fitted.classes_[i] for i in probabilities.argmax(axis=1)]
    assert fitted.predict(texts) == ["sport", "tech", "food"]
    np.testing.assert_allclose(fitted.predict_proba(texts[::-1]), probabilities[::-1], atol=1e-5)


def test_evaluate_accepts_files_frames_and_pairs(fitted, text_files):
    from_file = fitted.evaluate(text_files["test"])
    frame = pd.read_csv(text_files["test"])
    assert fitted.evaluate(frame)["accuracy"] == from_file["accuracy"]
    assert fitted.evaluate((frame["text"].tolist(), frame["label"].tolist()))["accuracy"] == from_file["accuracy"]
    assert from_file["accuracy"] == pytest.approx(fitted.metrics_["test"]["accuracy"])


def test_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "run")
    names = {path.name for path in (tmp_path / "run").iterdir()}
    assert {"bertclf.yaml", "labels.json", "metrics.json", "config.json", "model.safetensors", "README.md"} <= names
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left behind
    loaded = TextClassifier.load(tmp_path / "run")
    texts = make_texts(20, seed=9)["text"].tolist()
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-5)
    assert loaded.config.max_length == fitted.max_length_
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"] == loaded.metrics_[
        "test"]["accuracy"]


def test_saving_over_an_existing_run_needs_overwrite(fitted, tmp_path):
    fitted.save(tmp_path / "run")
    with pytest.raises(BertclfError, match="already exists"):
        fitted.save(tmp_path / "run")
    fitted.save(tmp_path / "run", overwrite=True)


def test_same_seed_gives_the_same_model(tiny_options, text_files):
    runs = [TextClassifier(**tiny_options).fit(text_files["train"], val=text_files["val"]) for _ in range(2)]
    assert runs[0].metrics_["val"] == runs[1].metrics_["val"]
    texts = make_texts(10, seed=11)["text"].tolist()
    np.testing.assert_array_equal(runs[0].predict_proba(texts), runs[1].predict_proba(texts))


def test_integer_labels_come_back_as_integers(tiny_options):
    frame = make_texts(90, seed=4)
    frame["label"] = frame["label"].map({"sport": 0, "tech": 1, "food": 2})
    classifier = TextClassifier(**tiny_options, test_size=0).fit(frame)
    assert classifier.classes_ == [0, 1, 2]
    assert all(type(label) is int for label in classifier.predict(["goal"]))


def test_saved_directory_serves_the_same_labels_through_a_pipeline(fitted, tmp_path):
    fitted.save(tmp_path / "run")
    texts = [*make_texts(40, seed=12)["text"].tolist(), "match " * 300]  # the last one needs truncation
    classify = pipeline("text-classification", model=str(tmp_path / "run"), device="cpu")
    served = [result["label"] for result in classify(texts, truncation=True)]
    assert served == [str(label) for label in fitted.predict(texts)]


def test_mean_pooling_and_mlp_head_round_trip(tiny_options, text_files, tmp_path):
    classifier = TextClassifier(**tiny_options, pooling="mean", head="mlp").fit(text_files["train"],
                                                                                val=text_files["val"])
    classifier.save(tmp_path / "run")
    texts = make_texts(10, seed=13)["text"].tolist()
    np.testing.assert_allclose(TextClassifier.load(tmp_path / "run").predict_proba(texts),
                               classifier.predict_proba(texts), atol=1e-5)


def test_unfitted_use_and_bad_prediction_input_are_clear_errors(fitted):
    with pytest.raises(BertclfError, match="not fitted"):
        TextClassifier().predict(["x"])
    with pytest.raises(BertclfError, match="single string"):
        fitted.predict("just one text")
    with pytest.raises(BertclfError, match="not a string"):
        fitted.predict(["fine", 3])


def test_an_empty_list_has_an_empty_answer_and_none_is_an_error(fitted, caplog):
    assert fitted.predict([]) == []
    assert fitted.predict_proba([]).shape == (0, 3)
    with pytest.raises(BertclfError, match="expected a list of texts, got NoneType"):
        fitted.predict(None)
    with pytest.raises(BertclfError, match="expected a list of texts, got int"):
        fitted.predict(3)
    with caplog.at_level("WARNING", logger="bertclf"):
        assert len(fitted.predict(["", "bread and soup"])) == 2
    assert "1 of 2 texts are empty" in caplog.text


@pytest.mark.parametrize("failure", [SafetensorError("Error while serializing: I/O error: No space left on device"),
                                     Interrupted(signal.SIGTERM)])
def test_a_save_that_fails_midway_leaves_nothing(fitted, tmp_path, monkeypatch, failure):
    """A full disk (safetensors raises its own error type, not OSError) or a signal during the save."""

    def write_then_fail(model, tokenizer, directory, max_length):
        (directory / "model.safetensors").write_bytes(b"partial")
        raise failure

    monkeypatch.setattr(classifier_module, "save_model", write_then_fail)
    expected = Interrupted if isinstance(failure, Interrupted) else BertclfError
    with pytest.raises(expected, match="No space left on device" if expected is BertclfError else None):
        fitted.save(tmp_path / "out" / "r1")
    assert not (tmp_path / "out").exists()


def test_save_from_python_names_the_keyword(fitted, tmp_path):
    fitted.save(tmp_path / "run")
    with pytest.raises(BertclfError, match=r"overwrite=True"):
        fitted.save(tmp_path / "run")


def test_constructor_takes_a_config_and_keyword_overrides():
    classifier = TextClassifier(ClassifierConfig(epochs=7), batch_size=4)
    assert classifier.config.epochs == 7 and classifier.config.batch_size == 4
    with pytest.raises(TypeError):
        TextClassifier(no_such_option=1)


@pytest.fixture(scope="module")
def multilabel_fitted(tiny_options):
    # Mean pooling: the tiny random encoder's [CLS] vector learns multilabel data unreliably. Validation F1
    # reaches 1.0 by epoch 2, too early to read mixed texts; the validation loss keeps falling to the end.
    train, val = make_multilabel_texts(240, seed=1), make_multilabel_texts(60, seed=2)
    return TextClassifier(**tiny_options, task="multilabel", pooling="mean", threshold_strategy="per-label",
                          metric="loss").fit(train, val=val, test=make_multilabel_texts(60, 3))


def test_multilabel_fit_tunes_thresholds_and_predicts_label_tuples(multilabel_fitted):
    classifier = multilabel_fitted
    assert classifier.task_ == "multilabel" and classifier.classes_ == ["food", "sport", "tech"]
    test = classifier.metrics_["test"]
    assert test["f1_micro"] >= 0.9
    assert set(test["thresholds"]) == {"food", "sport", "tech"}
    texts = ["a goal in the match with the team", "the team ate bread and soup after the match"]
    probabilities = classifier.predict_proba(texts)
    assert probabilities.shape == (2, 3) and not np.allclose(probabilities.sum(axis=1), 1.0)
    predicted = classifier.predict(texts)
    assert predicted[0] == ("sport",) and set(predicted[1]) == {"sport", "food"}


def test_a_global_threshold_never_scores_below_half_on_the_data_it_was_tuned_on(tiny_options):
    # 0.5 is one of the candidates, so the threshold maximising validation micro-F1 does at least as well there.
    classifier = TextClassifier(**{**tiny_options, "epochs": 2}, task="multilabel", threshold_strategy="global").fit(
        make_multilabel_texts(90, seed=1), val=make_multilabel_texts(45, seed=2))
    val = classifier.metrics_["val"]
    assert len(set(val["thresholds"].values())) == 1
    assert val["f1_micro"] >= val["at_0.5"]["f1_micro"]


def test_multilabel_threshold_override_and_min_labels(multilabel_fitted):
    texts = make_multilabel_texts(30, seed=8)["text"].tolist()
    classifier = copy.copy(multilabel_fitted).set_params(threshold=0.99)
    probabilities = classifier.predict_proba(texts)
    assert [len(labels) for labels in classifier.predict(texts)] == (probabilities >= 0.99).sum(axis=1).tolist()
    classifier.set_params(min_labels=1)
    assert all(len(labels) >= 1 for labels in classifier.predict(texts))
    assert multilabel_fitted.config.threshold is None and multilabel_fitted.config.min_labels == 0  # the original


def test_multilabel_save_load_round_trip(multilabel_fitted, tmp_path):
    multilabel_fitted.save(tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "thresholds.json").read_text())
    assert saved["strategy"] == "per-label"
    assert saved["thresholds"] == multilabel_fitted.metrics_["val"]["thresholds"]
    loaded = TextClassifier.load(tmp_path / "run")
    texts = make_multilabel_texts(20, seed=5)["text"].tolist()
    np.testing.assert_allclose(loaded.predict_proba(texts), multilabel_fitted.predict_proba(texts), atol=1e-5)
    assert loaded.predict(texts) == multilabel_fitted.predict(texts)


def test_multilabel_checkpoint_serves_the_same_scores_through_a_pipeline(tiny_options, tmp_path):
    classifier = TextClassifier(**{**tiny_options, "epochs": 1}, task="multilabel").fit(
        make_multilabel_texts(60, seed=1), val=make_multilabel_texts(30, seed=2))
    classifier.save(tmp_path / "run")
    texts = make_multilabel_texts(20, seed=5)["text"].tolist()
    # problem_type multi_label_classification makes transformers apply a sigmoid: the same per-label scores
    classify = pipeline("text-classification", model=str(tmp_path / "run"), device="cpu")
    served = classify(texts, truncation=True, top_k=None)
    for row, scores in zip(classifier.predict_proba(texts), served, strict=True):
        by_label = {score["label"]: score["score"] for score in scores}
        np.testing.assert_allclose([by_label[label] for label in classifier.classes_], row, atol=1e-5)


def test_metrics_that_do_not_fit_the_task_are_rejected(tiny_options):
    with pytest.raises(BertclfError, match="--metric mcc does not apply to multilabel data"):
        TextClassifier(**tiny_options, task="multilabel", metric="mcc").fit(make_multilabel_texts(60))


@pytest.mark.parametrize("weighting", ["balanced", "sqrt"])
def test_class_weights_train_both_tasks(tiny_options, weighting):
    frame = make_texts(60, seed=4)
    frame.loc[frame["label"] == "food", "label"] = "sport"  # imbalanced: 40 sport, 20 tech
    single = TextClassifier(**{**tiny_options, "epochs": 1}, class_weights=weighting, test_size=0).fit(frame)
    assert single.classes_ == ["sport", "tech"]
    multi = TextClassifier(**{**tiny_options, "epochs": 1}, class_weights=weighting, test_size=0,
                           task="multilabel").fit(make_multilabel_texts(60))
    assert multi.thresholds_ is not None


@pytest.fixture(scope="module")
def tail_texts():
    return {"train": make_tail_texts(150, seed=1), "val": make_tail_texts(45, seed=2),
            "test": make_tail_texts(45, seed=3)}


@pytest.mark.parametrize(("long_text", "options"), [("head", {}), ("tail", {}), ("head-tail", {}),
                                                    ("chunks", {"chunk_pooling": "max"}),
                                                    ("chunks", {"chunk_pooling": "attention"})])
def test_long_text_strategies_read_what_they_promise(tiny_options, tail_texts, long_text, options):
    """The topic sits at the end of 45-75 words: 16 tokens of head see none of it; the others do."""
    classifier = TextClassifier(**tiny_options, pooling="mean", max_length=16, long_text=long_text,
                                max_chunks=8, **options)
    classifier.fit(tail_texts["train"], val=tail_texts["val"], test=tail_texts["test"])
    accuracy = classifier.metrics_["test"]["accuracy"]
    if long_text == "head":
        assert accuracy < 0.6
    else:
        assert accuracy >= 0.9


def test_chunked_model_saves_its_strategy_and_predicts_with_it(tiny_options, tail_texts, tmp_path):
    classifier = TextClassifier(**{**tiny_options, "epochs": 2}, max_length=16, long_text="chunks", max_chunks=3,
                                stride=4, chunk_pooling="attention")
    classifier.fit(tail_texts["train"], val=tail_texts["val"])
    classifier.save(tmp_path / "run")
    assert "long_text: chunks\n" in (tmp_path / "run" / "bertclf.yaml").read_text()
    assert "stride: 4\n" in (tmp_path / "run" / "bertclf.yaml").read_text()
    loaded = TextClassifier.load(tmp_path / "run")
    texts = tail_texts["test"]["text"].tolist()
    np.testing.assert_allclose(loaded.predict_proba(texts), classifier.predict_proba(texts), atol=1e-5)
    assert loaded.token_encoder_.chunked and loaded.token_encoder_.max_chunks == 3


@pytest.mark.parametrize("pooling", ["cls", "mean"])  # the architecture's own head, and bertclf's
def test_a_frozen_encoder_trains_its_head_on_cached_features_and_keeps_the_encoder(tiny_options, text_files,
                                                                                  tmp_path, pooling):
    from bertclf.modeling import build_model
    from bertclf.training import head_parameter_names

    torch.manual_seed(0)
    fresh = build_model(ClassifierConfig(**tiny_options, pooling=pooling), ["food", "sport", "tech"])
    encoder = {name: value for name, value in fresh.state_dict().items()
               if name not in head_parameter_names(fresh) and "position_ids" not in name}
    classifier = TextClassifier(**tiny_options, freeze_encoder=True, pooling=pooling).fit(
        text_files["train"], val=text_files["val"], test=text_files["test"])
    after = classifier.model_.state_dict()
    assert all(torch.equal(after[name], value) for name, value in encoder.items())
    log = classifier.metrics_["training"]["log"]
    assert log[-1]["loss"] < log[0]["loss"]  # the head learns from the cached vectors
    # the head trained on the cached features is the model's own: the saved model scores what was reported
    loaded = TextClassifier.load(classifier.save(tmp_path / "run"))
    assert loaded.evaluate(text_files["test"])["accuracy"] == classifier.metrics_["test"]["accuracy"]


def test_a_frozen_sentence_encoder_is_read_with_its_own_pooling_and_saved_so(tiny_options, text_files, tmp_path):
    model = sentence_transformers_layout(shutil.copytree(tiny_options["model"], tmp_path / "model"), mean_tokens=True)
    classifier = TextClassifier(**{**tiny_options, "model": model, "epochs": 2}, freeze_encoder=True).fit(
        text_files["train"], val=text_files["val"])
    assert classifier.config_.pooling == "mean"
    loaded = TextClassifier.load(classifier.save(tmp_path / "run"))
    assert loaded.config.pooling == "mean"
    texts = pd.read_csv(text_files["val"])["text"].tolist()
    np.testing.assert_allclose(loaded.predict_proba(texts), classifier.predict_proba(texts), atol=1e-5)


def test_several_seeds_report_mean_and_spread_and_keep_the_best_on_validation(tiny_options, text_files, tmp_path):
    classifier = TextClassifier(**{**tiny_options, "epochs": 2}, seeds="2").fit(
        text_files["train"], val=text_files["val"], test=text_files["test"])
    summary = classifier.metrics_["seeds"]
    assert summary["seeds"] == [11, 12] and summary["kept"] in (11, 12)
    for part in ("val", "test"):
        assert set(summary[part]["accuracy"]) == {"mean", "std"} and 0 <= summary[part]["accuracy"]["std"] <= 0.5
    assert classifier.metrics_["val"]["f1_macro"] >= summary["val"]["f1_macro"]["mean"] - 1e-12  # the best is kept
    saved = classifier.save(tmp_path / "run")
    assert json.loads((saved / "metrics.json").read_text())["seeds"] == summary
    assert "over all of them" in (saved / "report.html").read_text()
    with pytest.raises(BertclfError, match="expected a count or comma-separated whole numbers"):
        TextClassifier(seeds="a,b")


def test_a_folder_per_class_trains_and_its_files_are_read_in_their_encoding(tiny_options, tmp_path):
    folder = tmp_path / "news"
    for label, frame in make_texts(60, seed=1).groupby("label"):
        (folder / label).mkdir(parents=True)
        for position, text in enumerate(frame["text"]):
            (folder / label / str(position)).write_bytes(f"{text} caf\xe9".encode("latin-1"))
    (folder / ".hidden").mkdir()
    with pytest.raises(BertclfError, match=r"is not utf-8 text \(pass --encoding, e\.g\. latin-1\)"):
        TextClassifier(**tiny_options).fit(str(folder))
    classifier = TextClassifier(**{**tiny_options, "epochs": 1}, encoding="latin-1").fit(str(folder))
    assert classifier.classes_ == ["food", "sport", "tech"]
    assert classifier.inspection_.parts[0].rows == 48 and "café" in classifier.evaluation_.texts[0]
    (tmp_path / "empty").mkdir()
    with pytest.raises(BertclfError, match="holds no subfolder of text files"):
        TextClassifier(**tiny_options).fit(str(tmp_path / "empty"))


# --- the scikit-learn estimator contract ------------------------------------------------------------------------

def small_options(tiny_options):
    return {**tiny_options, "epochs": 2}


def test_get_params_set_params_and_clone_keep_the_options_as_given():
    from sklearn.base import clone

    classifier = TextClassifier(epochs=2, text_column=["title", "body"], eval_batch_size=512)
    assert classifier.get_params()["epochs"] == 2
    copy = clone(classifier)
    assert copy is not classifier and copy.get_params() == classifier.get_params()
    assert copy.set_params(epochs=3) is copy and copy.config.epochs == 3 and classifier.config.epochs == 2
    with pytest.raises(BertclfError, match="learning_rate"):
        copy.set_params(learning_rate=-1)


def test_fit_leaves_the_options_as_given_and_keeps_the_resolved_ones_apart(tiny_options):
    classifier = TextClassifier(**small_options(tiny_options), test_size=0)
    given = classifier.get_params()
    classifier.fit(make_texts(90, seed=1))
    assert classifier.get_params() == given and classifier.config.pooling == "auto"
    assert classifier.config_.pooling == "cls" and classifier.config_.max_length == classifier.max_length_
    assert classifier.config_.task == "multiclass"


def test_fitting_twice_gives_what_two_fresh_classifiers_give(tiny_options):
    first, second = make_texts(90, seed=1), make_texts(90, seed=5)
    again = TextClassifier(**small_options(tiny_options)).fit(first).fit(second)
    fresh = TextClassifier(**small_options(tiny_options)).fit(second)
    assert again.metrics_["val"] == fresh.metrics_["val"]
    texts = make_texts(12, seed=9)["text"].tolist()
    np.testing.assert_array_equal(again.predict_proba(texts), fresh.predict_proba(texts))


def test_cross_val_score_and_a_pipeline_run_on_texts_and_labels(tiny_options):
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    frame = make_texts(90, seed=1)
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    scores = cross_val_score(TextClassifier(**small_options(tiny_options)), texts, labels, cv=3)
    assert len(scores) == 3 and all(0 <= score <= 1 for score in scores)
    pipeline = make_pipeline(FunctionTransformer(lambda rows: [row.upper() for row in rows]),
                             TextClassifier(**small_options(tiny_options))).fit(texts, labels)
    assert set(pipeline.predict(texts[:5])) <= {"food", "sport", "tech"}


def test_grid_search_tries_each_setting(tiny_options):
    from sklearn.model_selection import GridSearchCV

    frame = make_texts(90, seed=1)
    search = GridSearchCV(TextClassifier(**small_options(tiny_options)), {"epochs": [1, 2]}, cv=2)
    search.fit(frame["text"].tolist(), frame["label"].tolist())
    assert [params["epochs"] for params in search.cv_results_["params"]] == [1, 2]
    assert search.best_estimator_.config.epochs == search.best_params_["epochs"]


def test_a_pickled_classifier_predicts_as_the_original(fitted, tmp_path):
    import pickle

    texts = make_texts(12, seed=9)["text"].tolist()
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict_proba(texts), fitted.predict_proba(texts))
    fitted.save(tmp_path / "run")
    quantized = TextClassifier.load(tmp_path / "run", runtime="torch-int8")
    with pytest.raises(BertclfError, match=r"cannot be pickled: use save\(path\)"):
        pickle.dumps(quantized)


def test_threads_predicting_on_a_freshly_fitted_classifier_get_exactly_its_single_thread_answers(tiny_options):
    from concurrent.futures import ThreadPoolExecutor

    classifier = TextClassifier(**small_options(tiny_options)).fit(make_texts(90, seed=1))
    texts = make_texts(40, seed=9)["text"].tolist()
    alone, labels = classifier.predict_proba(texts), classifier.predict(texts)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: (classifier.predict_proba(texts), classifier.predict(texts)), range(16)))
    for probabilities, predicted in answers:
        np.testing.assert_array_equal(probabilities, alone)
        assert predicted == labels
    assert not classifier.model_.training
