"""Validation and test parts held out of the training data, stratified by label, and texts repeated across parts."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.model_selection import train_test_split

from bertclf.config import ClassifierConfig
from bertclf.data.labels import DataSource, Examples, encode_labels, load_examples, sorted_classes
from bertclf.errors import BertclfError

log = logging.getLogger("bertclf")



def iterative_split(label_matrix: np.ndarray, size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Kept and held-out row indices such that every label's share of held-out rows is close to ``size``.

    Iterative stratification (Sechidis, Tsoumakas and Vlahavas, 2011): take the label with the fewest rows
    still to place, and give each of its rows to the part that most lacks that label; ties go to the part
    that most lacks rows. Rare labels are placed first, so each part receives its share of them.
    """
    rng = np.random.default_rng(seed)
    matrix = label_matrix.astype(bool)
    rows_wanted = np.array([1 - size, size]) * len(matrix)
    labels_wanted = np.outer([1 - size, size], matrix.sum(axis=0))
    part = np.full(len(matrix), -1)
    unplaced = np.ones(len(matrix), dtype=bool)
    while unplaced.any():
        remaining = matrix[unplaced].sum(axis=0)
        if remaining.any():
            label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
            rows = np.flatnonzero(unplaced & matrix[:, label])
        else:  # rows without labels: by size alone
            label, rows = None, np.flatnonzero(unplaced)
        for row in rng.permutation(rows):
            need = labels_wanted[:, label] if label is not None else rows_wanted
            candidates = np.flatnonzero(need == need.max())
            if len(candidates) > 1:
                candidates = candidates[rows_wanted[candidates] == rows_wanted[candidates].max()]
            chosen = int(rng.choice(candidates))
            part[row], unplaced[row] = chosen, False
            rows_wanted[chosen] -= 1
            labels_wanted[chosen] -= matrix[row]
    return np.flatnonzero(part == 0), np.flatnonzero(part == 1)


def split_examples(examples: Examples, size: float, seed: int, name: str) -> tuple[Examples, Examples]:
    """Hold out ``size`` of the examples, stratified by label (iteratively for multilabel data); training keeps at
    least one example of every label, so a held-out part never holds a label that training did not see."""
    if examples.multilabel:
        kept, held = iterative_split(encode_labels(examples, sorted_classes(examples.label_values())), size, seed)
    else:
        indices = np.arange(len(examples))
        keys = [str(label) for label in examples.labels]
        try:
            kept, held = train_test_split(indices, test_size=size, random_state=seed, stratify=keys)
        except ValueError:
            log.warning("warning: some classes are too rare for a stratified %s split; splitting at random", name)
            kept, held = train_test_split(indices, test_size=size, random_state=seed)
    kept, held = _keep_every_label(examples, list(kept), list(held), name)
    return examples.subset(sorted(kept), examples.name), examples.subset(sorted(held), name)


def _keep_every_label(examples: Examples, kept: list[int], held: list[int], name: str) -> tuple[list[int], list[int]]:
    """Move held-out rows back into training until training holds every label at least once."""
    def labels_of(row: int) -> tuple[Any, ...]:
        return tuple(examples.labels[row]) if examples.multilabel else (examples.labels[row],)

    seen = {str(label) for row in kept for label in labels_of(row)}
    returned = []
    for row in held:
        unseen = [label for label in labels_of(row) if str(label) not in seen]
        if unseen:
            returned.append(row)
            seen.update(map(str, unseen))
    if returned:
        labels = sorted({str(label) for row in returned for label in labels_of(row)})
        log.warning("warning: %d labels have too few examples to appear in both training and %s (%s); their examples "
                    "stay in training", len(labels), name, ", ".join(labels[:5]) + (" ..." if len(labels) > 5 else ""))
    moved = set(returned)
    return kept + returned, [row for row in held if row not in moved]


def find_leaks(parts: Sequence[Examples]) -> list[dict[str, Any]]:
    """For each part, how many of its texts appear in an earlier one (e.g. test texts seen in training)."""
    leaks = []
    for position, part in enumerate(parts):
        for earlier in parts[:position]:
            seen = set(earlier.texts)
            repeated = sum(text in seen for text in part.texts)
            if repeated:
                leaks.append({"part": part.name, "other": earlier.name, "texts": repeated, "of": len(part)})
    return leaks


def warn_about_leakage(train: Examples, others: Sequence[Examples]) -> None:
    """Texts present in training and also in validation or test inflate the reported scores."""
    for leak in find_leaks([train, *others]):
        if leak["other"] == train.name:
            log.warning("warning: %d of %d %s texts also appear in the training data (leakage inflates %s scores)",
                        leak["texts"], leak["of"], leak["part"], leak["part"])


@dataclass
class Splits:
    train: Examples
    val: Examples  # in the low-label mode without validation data: the training texts, scored out of fold
    test: Examples | None

    @property
    def val_is_train(self) -> bool:
        return self.val is self.train


def make_splits(config: ClassifierConfig, train: DataSource | Examples, val: DataSource | None,
                test: DataSource | None) -> Splits:
    """Load the given parts (the training texts may come loaded) and hold out the missing validation/test parts from
    training; in the low-label mode nothing is held out (see ``low_label``)."""
    train_examples = train if isinstance(train, Examples) else load_examples(train, config)
    train_examples.name = "train"
    # Validation and test data are read as the training data turned out to be: one label or a list per text.
    config = dataclasses.replace(config, task="multilabel" if train_examples.multilabel else "multiclass")
    given = {}
    for name, source in (("val", val), ("test", test)):
        if source is not None:
            given[name] = load_examples(source, config)
            given[name].name = name
    held_out = {}
    fractions = {"val": config.val_size, "test": config.test_size}
    missing = [name for name in ("val", "test") if name not in given and fractions[name] > 0]
    if "val" not in given and config.val_size == 0 and config.low_label != "on":
        raise BertclfError("no validation data: pass --val or a positive --val-size")
    remaining = 1.0
    for name in missing:
        # Fractions are of the original training file, so rescale after each hold-out.
        train_examples, held_out[name] = split_examples(train_examples, fractions[name] / remaining,
                                                        config.seed, name)
        remaining -= fractions[name]
    val_part = given.get("val") or held_out.get("val") or train_examples
    splits = Splits(train_examples, val_part, given.get("test") or held_out.get("test"))
    def size(name: str, part: Examples) -> str:
        if name == "val" and splits.val_is_train:
            return "val: the training texts, out of fold"
        return f"{name} {len(part)}{' (held out)' if name in held_out else ''}"

    log.info("data: %s", ", ".join(size(name, part) for name, part in
                                   (("train", splits.train), ("val", splits.val), ("test", splits.test))
                                   if part is not None))
    warn_about_leakage(splits.train, [part for part in (splits.val, splits.test)
                                      if part is not None and part is not splits.train])
    return splits
