import numpy as np

from bertclf.thresholds import MIN_POSITIVES_TO_TUNE, decide, tune_thresholds


def separable_case(cut: float, count: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One label whose positives score in (cut, cut + 0.1] and negatives in [cut - 0.1, cut): only thresholds
    in (cut - 0.01, cut] separate them perfectly."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(count) < 0.3).astype(np.float32)
    scores = np.where(labels == 1, cut + 0.005 + rng.random(count) * 0.09, cut - 0.005 - rng.random(count) * 0.09)
    return labels[:, None], scores[:, None]


def test_per_label_tuning_finds_each_labels_known_threshold():
    first, second = separable_case(0.2, seed=1), separable_case(0.7, seed=2)
    labels = np.hstack([first[0], second[0]])
    probabilities = np.hstack([first[1], second[1]])
    thresholds = tune_thresholds(labels, probabilities, "per-label")
    np.testing.assert_allclose(thresholds, [0.2, 0.7])
    assert (decide(probabilities, thresholds) == labels.astype(bool)).all()


def test_global_tuning_maximises_micro_f1_with_one_threshold():
    labels, probabilities = separable_case(0.3)
    thresholds = tune_thresholds(np.hstack([labels, labels]), np.hstack([probabilities, probabilities]), "global")
    np.testing.assert_allclose(thresholds, [0.3, 0.3])


def test_rare_labels_fall_back_to_the_global_threshold():
    common_labels, common_scores = separable_case(0.3, count=300)
    rare_labels = np.zeros((300, 1), dtype=np.float32)
    rare_labels[: MIN_POSITIVES_TO_TUNE - 1] = 1  # one positive too few to tune on
    rare_scores = np.where(rare_labels == 1, 0.9, 0.05)  # on its own it would pick a high threshold
    thresholds = tune_thresholds(np.hstack([common_labels, rare_labels]), np.hstack([common_scores, rare_scores]),
                                 "per-label")
    global_best = tune_thresholds(np.hstack([common_labels, rare_labels]), np.hstack([common_scores, rare_scores]),
                                  "global")[0]
    assert thresholds[0] == 0.3
    assert thresholds[1] == global_best
    enough = rare_labels.copy()
    enough[: MIN_POSITIVES_TO_TUNE] = 1
    tuned_alone = tune_thresholds(np.hstack([common_labels, enough]),
                                  np.hstack([common_scores, np.where(enough == 1, 0.9, 0.05)]), "per-label")
    assert tuned_alone[1] != global_best  # with enough positives the label gets its own


def test_fixed_strategy_uses_the_given_threshold():
    labels, probabilities = separable_case(0.3)
    assert tune_thresholds(labels, probabilities, "fixed").tolist() == [0.5]
    assert tune_thresholds(labels, probabilities, "fixed", fixed=0.25).tolist() == [0.25]


def test_min_labels_adds_the_most_probable_labels():
    probabilities = np.array([[0.1, 0.3, 0.2], [0.9, 0.8, 0.1]])
    assert decide(probabilities, 0.5).tolist() == [[False, False, False], [True, True, False]]
    assert decide(probabilities, 0.5, min_labels=1).tolist() == [[False, True, False], [True, True, False]]
    assert decide(probabilities, 0.5, min_labels=2).tolist() == [[False, True, True], [True, True, False]]


def test_a_wide_gap_gives_a_threshold_in_its_middle():
    labels = np.array([[1], [1], [0], [0]], dtype=np.float32)
    probabilities = np.array([[0.9], [0.8], [0.2], [0.1]])
    # every threshold in (0.2, 0.8] separates the texts; the middle of that range is kept
    assert 0.49 <= tune_thresholds(labels, probabilities, "global")[0] <= 0.51
