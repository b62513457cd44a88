import numpy as np

from bertclf.config import ClassifierConfig
from bertclf.data import encode_labels, load_examples
from bertclf.reporting.baseline import tfidf_baseline
from tests.helpers import make_multilabel_texts, make_texts


def test_the_baseline_learns_topic_words_and_scores_like_the_model():
    config = ClassifierConfig()
    parts = [load_examples(make_texts(count, seed=seed), config) for count, seed in ((150, 1), (30, 2), (60, 3))]
    classes = ["food", "sport", "tech"]
    labels = [encode_labels(part, classes) for part in parts]
    result = tfidf_baseline(parts[0].texts, labels[0], parts[1].texts, labels[1], parts[2].texts, labels[2], classes)
    assert result["name"] == "TF-IDF + logistic regression" and result["train_seconds"] < 10
    assert result["metrics"]["accuracy"] >= 0.9 and result["metrics"]["n"] == 60
    assert set(result["metrics"]["per_class"]) == set(classes)


def test_the_multilabel_baseline_tunes_its_thresholds_on_validation():
    config = ClassifierConfig(task="multilabel")
    parts = [load_examples(make_multilabel_texts(count, seed=seed), config)
             for count, seed in ((150, 1), (40, 2), (40, 3))]
    classes = ["food", "sport", "tech"]
    labels = [encode_labels(part, classes) for part in parts]
    metrics = tfidf_baseline(parts[0].texts, labels[0], parts[1].texts, labels[1], parts[2].texts, labels[2],
                             classes)["metrics"]
    assert metrics["f1_micro"] >= 0.8
    assert len(set(metrics["thresholds"].values())) == 1 and np.isfinite(metrics["roc_auc_macro"])
