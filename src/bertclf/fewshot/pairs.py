"""Which training texts are alike, and the batches that contrastive tuning draws: a few texts from each of several
classes, the classes in shuffled turns, so that a rare class comes as often as a common one and every batch holds
alike and unlike pairs."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

# Texts drawn from a class per batch, at least: fewer would give a batch few alike pairs.
MIN_PER_CLASS = 4
STEPS_PER_TEXT, MIN_STEPS, MAX_STEPS = 2, 20, 1000


def label_matrix(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """A 0/1 matrix (texts x classes) from class indices; a multilabel matrix stays as it is."""
    if labels.ndim == 2:
        return labels.astype(np.int8)
    matrix = np.zeros((len(labels), num_classes), dtype=np.int8)
    matrix[np.arange(len(labels)), labels] = 1
    return matrix


def pair_targets(matrix: np.ndarray) -> np.ndarray:
    """1 for a pair of texts of the same class (multilabel: sharing a label), else 0; texts x texts."""
    return (matrix.astype(np.int32) @ matrix.T.astype(np.int32) > 0).astype(np.float32)


def tuning_steps(texts: int, requested: int | None) -> int:
    """The steps of contrastive tuning: as many as asked, else a few per training text within a floor and a cap (a
    handful of texts still needs tens of steps; thousands of texts are past the mode's reach)."""
    if requested is not None:
        return requested
    return int(np.clip(STEPS_PER_TEXT * texts, MIN_STEPS, MAX_STEPS))


def balanced_batches(matrix: np.ndarray, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless batches of row numbers. Each takes the next few classes of a shuffled round of all classes and about
    ``batch_size / classes`` texts from each (a class's texts in shuffled order, round after round); a multilabel
    text drawn for two of its labels is in the batch once."""
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(matrix[:, column]) for column in range(matrix.shape[1]) if matrix[:, column].any()]
    per_batch = min(len(members), max(2, batch_size // MIN_PER_CLASS))
    per_class = max(MIN_PER_CLASS, batch_size // per_batch)
    queues: list[list[int]] = [[] for _ in members]
    turns: list[int] = []
    while True:
        rows: list[int] = []
        chosen: list[int] = []
        for _ in range(per_batch):
            if not turns:  # a new round, whose first turns go to classes this batch does not have yet
                order = rng.permutation(len(members)).tolist()
                turns = sorted(order, key=lambda klass: klass not in chosen)  # pop() takes from the end
            chosen.append(turns.pop())
            rows += _take(queues, members, chosen[-1], per_class, rng)
        yield np.array(list(dict.fromkeys(rows)))


def _take(queues: list[list[int]], members: list[np.ndarray], klass: int, count: int,
          rng: np.random.Generator) -> list[int]:
    """``count`` texts of class ``klass`` (no more than it has), from its queue, refilled in a new order when empty."""
    count = min(count, len(members[klass]))
    taken: list[int] = []
    while len(taken) < count:
        if not queues[klass]:
            queues[klass] = [row for row in rng.permutation(members[klass]).tolist() if row not in taken]
        taken.append(queues[klass].pop())
    return taken
