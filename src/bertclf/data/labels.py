"""Labelled examples from any source: texts joined from their columns, labels parsed (one per text, lists,
indicator columns or ids of a --label-names file), the class list and the labels encoded against it.

Everything that can be wrong with a user's labels is reported as a one-line :class:`BertclfError`, before any model is
loaded.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bertclf.config import ClassifierConfig
from bertclf.data.tables import DELIMITED_SUFFIXES, read_folder, read_table
from bertclf.errors import BertclfError

log = logging.getLogger("bertclf")

DataSource = str | Path | pd.DataFrame | tuple[Sequence[str], Sequence[Any]]
"""A file path, a DataFrame, or a ``(texts, labels)`` pair."""


@dataclass
class Examples:
    """Texts and their labels, row order kept.

    ``labels`` holds one original value per text, or for multilabel data a tuple of values per text, or is
    ``None`` for unlabelled data.
    """

    texts: list[str]
    labels: list[Any] | None
    name: str
    multilabel: bool = False
    skipped_empty: int = 0  # rows of the source left out because their text was empty

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int], name: str) -> Examples:
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return Examples([self.texts[i] for i in indices], labels, name, self.multilabel)

    def label_values(self) -> list[Any]:
        """Every label occurrence: the labels themselves, or for multilabel data the members of each tuple."""
        return [label for labels in self.labels for label in labels] if self.multilabel else list(self.labels)


def as_frame(source: DataSource, config: ClassifierConfig) -> tuple[pd.DataFrame, str]:
    """Any accepted data source as a DataFrame, with a name to use in messages."""
    if isinstance(source, (str, Path)):
        if Path(source).is_dir():
            return read_folder(Path(source), config.text_column[0], config.label_column, config.encoding), \
                Path(source).name
        frame = read_table(source, config.columns, config.quoting, config.encoding)
        if Path(source).suffix.lower() in DELIMITED_SUFFIXES:  # fields are text: integers where all are ones
            for column in (config.label_columns or [config.label_column]):
                if column in frame.columns:
                    frame[column] = integer_labels(frame[column].tolist())
        return frame, Path(source).name
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise BertclfError("the DataFrame has no rows")
        return source, "DataFrame"
    if isinstance(source, tuple) and len(source) == 2:
        texts, labels = source
        if isinstance(texts, str) or not hasattr(texts, "__len__"):
            raise BertclfError(f"expected a sequence of texts, got {type(texts).__name__}")
        labels = _label_sequence(labels)
        if len(texts) != len(labels):
            raise BertclfError(f"got {len(texts)} texts but {len(labels)} labels")
        if len(texts) == 0:
            raise BertclfError("no texts given")
        return pd.DataFrame({config.text_column[0]: list(texts), config.label_column: labels}), "data"
    raise BertclfError(f"expected a file path, a DataFrame or a (texts, labels) pair, got {type(source).__name__}")


def _label_sequence(labels: Any) -> list[Any]:
    """Labels given in Python: one per text, or, as in scikit-learn, a 2-D 0/1 indicator matrix (texts x labels),
    which means multilabel data whose labels are the column positions."""
    if isinstance(labels, str) or not hasattr(labels, "__len__"):
        raise BertclfError(f"expected a sequence of labels, got {type(labels).__name__}")
    if isinstance(labels, pd.Series):
        labels = labels.tolist()
    rows = [row.tolist() if isinstance(row, np.ndarray) else row for row in labels]
    if not rows or not all(isinstance(row, (list, tuple)) for row in rows) or len({len(row) for row in rows}) != 1:
        return [row.item() if isinstance(row, np.generic) else row for row in rows]
    try:
        matrix = np.asarray(rows, dtype=float)
    except (TypeError, ValueError):
        return rows  # lists of label names: multilabel as they are
    if matrix.shape[1] == 1:
        return [_plain_label(value) for value in matrix[:, 0]]
    if not np.isin(matrix, (0, 1)).all():
        raise BertclfError("a 2-D array of labels must be a 0/1 indicator matrix (one column per label); "
                           f"it holds {matrix[~np.isin(matrix, (0, 1))][0]:g}")
    return [tuple(int(position) for position in np.flatnonzero(row)) for row in matrix]


_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")  # ASCII digits only: no '①', '²', '007', '1.0', '1e3' or '--1'


def is_integer_text(value: Any) -> bool:
    """Whether ``value`` is an integer written the one way ``str(int)`` writes it."""
    return isinstance(value, str) and _INTEGER.fullmatch(value) is not None


def integer_labels(values: list[Any]) -> list[Any]:
    """Labels read as text (CSV/TSV fields, separated multilabel cells): integers when every present one is written
    as an integer is (``0``, ``12``, ``-3``), else the strings as they are, so ``01``, ``1`` and ``1.0`` stay three
    classes and a file of integer labels still gives integer classes."""
    present = [value for value in values if not (_is_missing(value) or value == "")]
    if not present or not all(is_integer_text(value.strip()) if isinstance(value, str) else False
                              for value in present):
        return values
    return [value if _is_missing(value) or value == "" else int(value) for value in values]


def require_columns(frame: pd.DataFrame, names: Sequence[str], source: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise BertclfError(f"column '{missing[0]}' not found in {source}; available columns: {available}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _first_row(frame: pd.DataFrame) -> int:
    """Row numbers in messages count from the file's first row, also in a later part of a streamed file."""
    index = frame.index
    return int(index[0]) if isinstance(index, pd.RangeIndex) and len(index) else 0


def join_texts(frame: pd.DataFrame, config: ClassifierConfig, source: str) -> list[str]:
    """One string per row: the text columns, stripped and joined; missing parts are left out."""
    require_columns(frame, config.text_column, source)
    columns = [frame[name].tolist() for name in config.text_column]
    texts = []
    for row, parts in enumerate(zip(*columns, strict=True), start=_first_row(frame)):
        pieces = []
        for name, value in zip(config.text_column, parts, strict=True):
            if _is_missing(value):
                continue
            if _is_number(value):  # a JSON or Parquet number is the text of its digits, as a CSV's digits are
                value = str(value.item() if isinstance(value, np.generic) else value)
            if not isinstance(value, str):
                raise BertclfError(
                    f"column '{name}' of {source} holds a non-text value in row {row + 1}: {value!r}"
                )
            if value.strip():
                pieces.append(value.strip())
        texts.append(config.text_separator.join(pieces))
    return texts


def _plain_label(value: Any) -> Any:
    """numpy scalars -> Python values, whole floats -> int, arrays -> lists, so labels survive JSON round trips."""
    if isinstance(value, np.ndarray):
        return [_plain_label(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


_SCALARS = (str, int, float)  # bool is an int


def _json_list(value: Any) -> list[Any] | None:
    """The labels of a cell that is the text of a JSON list of scalars (``["sport", "tech"]``, ``[1, 2]``), else None:
    ``[urgent]`` is not JSON, so it is a label, not a list."""
    if not (isinstance(value, str) and value.startswith("[") and value.endswith("]")):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, list) and all(isinstance(item, _SCALARS) for item in parsed) else None


def _detect_multilabel(values: list[Any], column: str, source: str) -> bool:
    """``--task auto``: a column is multilabel when it holds real lists (JSON lines, Parquet, frames), or when every
    label in it is the text of a JSON list. Some JSON-list texts among single labels are classes, with a warning."""
    if any(isinstance(value, (list, tuple)) for value in values):
        return True
    present = [value for value in values if not (_is_missing(value) or value == "")]
    lists = [value for value in present if _json_list(value) is not None]
    if lists and len(lists) == len(present):
        return True
    if lists:
        log.warning("warning: %d labels of column '%s' of %s look like JSON lists (e.g. %s) but the others are single "
                    "labels: read as class names; pass --task multilabel if they are lists",
                    len(lists), column, source, lists[0])
    return False


def _check_scalar(value: Any, column: str, source: str, row: int) -> Any:
    if not isinstance(value, _SCALARS) and not _is_missing(value):
        raise BertclfError(f"label column '{column}' of {source} holds a {type(value).__name__} in row {row + 1}: "
                           f"{str(value)[:60]}; labels are strings or integers")
    return value


def _label_items(value: Any, separator: str, column: str, source: str, row: int) -> tuple[list[Any], bool]:
    """The labels of one multilabel cell as given, and whether they were cut out of a text (so strings that may
    spell integers); an empty cell has none."""
    if _is_missing(value) or value == "":
        return [], False
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise BertclfError(f"row {row + 1} of {source}: {value!r} is not a valid JSON list of labels") from None
    if isinstance(value, (list, tuple)):
        return [_check_scalar(_plain_label(item), column, source, row) for item in value], False
    if isinstance(value, str):
        return [piece.strip() for piece in value.split(separator)], True
    return [_check_scalar(value, column, source, row)], False


def _label_tuples(values: list[Any], separator: str, column: str, source: str) -> list[tuple[Any, ...]]:
    """The labels of every multilabel cell, duplicates removed, order kept. Labels cut out of texts (``1,2``) are
    integers when every one of them in the column spells an integer, as single labels read from text are."""
    cells = [_label_items(value, separator, column, source, row) for row, value in enumerate(values)]
    cut = [item for items, from_text in cells if from_text for item in items]
    numbers = dict(zip(cut, integer_labels(cut), strict=True))
    return [tuple(dict.fromkeys(numbers[item] if from_text else item for item in items
                                if not (_is_missing(item) or item == "")))
            for items, from_text in cells]


def _indicator_labels(frame: pd.DataFrame, columns: Sequence[str], source: str) -> list[tuple[str, ...]]:
    """Labels from one 0/1 column per label: each row carries the names of its columns holding 1."""
    require_columns(frame, columns, source)
    truth = {0: False, 1: True, "0": False, "1": True}
    flags = []
    for name in columns:
        column = []
        for row, value in enumerate(frame[name].tolist()):
            value = _plain_label(value)  # 1.0 -> 1; True == 1 already
            if value not in truth:
                raise BertclfError(f"label column '{name}' of {source} holds {value!r} in row {row + 1}; "
                                   "label columns must hold 0 or 1")
            column.append(truth[value])
        flags.append(column)
    return [tuple(name for name, on in zip(columns, row, strict=True) if on) for row in zip(*flags, strict=True)]


def read_label_names(path: str | Path) -> list[str]:
    """The names of a --label-names file, one per line; a label id is a position in this list."""
    path = Path(path)
    if not path.is_file():
        raise BertclfError(f"label names file not found: {path}")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise BertclfError(f"label names file {path} is not UTF-8 text") from None
    names = [line.strip() for line in content.splitlines() if line.strip()]
    if not names:
        raise BertclfError(f"label names file is empty: {path}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise BertclfError(f"label names file {path} repeats {', '.join(map(repr, repeated))}")
    return names


def _name_label(value: Any, names: Sequence[str], path: str, source: str, row: int) -> str:
    """An integer id (or a name already) as a name of the --label-names file."""
    if isinstance(value, str) and value in names:
        return value
    if is_integer_text(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return names[value]
    raise BertclfError(f"label {value!r} in row {row + 1} of {source} is neither a name in {path} nor a position "
                       f"in it (0 to {len(names) - 1})")


def read_labels(frame: pd.DataFrame, config: ClassifierConfig, source: str) -> tuple[list[Any], bool]:
    """The labels of every row and whether they are multilabel (tuples) or one value per row."""
    if config.label_columns:
        labels, multilabel = _indicator_labels(frame, config.label_columns, source), True
    else:
        require_columns(frame, [config.label_column], source)
        column = config.label_column
        values = [_plain_label(value) for value in frame[column].tolist()]
        multilabel = config.task == "multilabel" or (config.task == "auto" and
                                                      _detect_multilabel(values, column, source))
        if multilabel:
            labels = _label_tuples(values, config.label_sep, column, source)
        else:
            missing = [row for row, label in enumerate(values) if _is_missing(label) or label == ""]
            if missing:
                raise BertclfError(f"label column '{config.label_column}' of {source} is empty in {len(missing)} "
                                   f"rows (first: row {missing[0] + 1})")
            lists = [row for row, label in enumerate(values) if isinstance(label, list)]
            if lists:
                raise BertclfError(f"label column '{config.label_column}' of {source} holds a list in row "
                                   f"{lists[0] + 1}; pass --task multilabel for texts with several labels")
            labels = [_check_scalar(value, column, source, row) for row, value in enumerate(values)]
    if config.label_names:
        names = read_label_names(config.label_names)
        if multilabel:
            labels = [tuple(_name_label(value, names, config.label_names, source, row) for value in row_labels)
                      for row, row_labels in enumerate(labels)]
        else:
            labels = [_name_label(value, names, config.label_names, source, row) for row, value in enumerate(labels)]
    if multilabel and not config.allow_empty_labels:
        empty = [row for row, row_labels in enumerate(labels) if not row_labels]
        if empty:
            raise BertclfError(f"{len(empty)} rows of {source} carry no label (first: row {empty[0] + 1}); pass "
                               "--allow-empty-labels if texts may have none")
    return labels, multilabel


def load_examples(source: DataSource, config: ClassifierConfig, *, labelled: bool = True) -> Examples:
    """Texts (and labels if ``labelled``) from a source; rows with empty text are skipped with a warning."""
    frame, name = as_frame(source, config)
    texts = join_texts(frame, config, name)
    labels, multilabel = read_labels(frame, config, name) if labelled else (None, False)
    keep = [row for row, text in enumerate(texts) if text]
    if not keep:
        raise BertclfError(f"every text in {name} is empty (columns: {', '.join(config.text_column)})")
    examples = Examples(texts, labels, name, multilabel)
    if len(keep) < len(texts):
        log.warning("warning: skipped %d rows of %s whose text is empty", len(texts) - len(keep), name)
        examples = examples.subset(keep, name)
        examples.skipped_empty = len(texts) - len(keep)
    return examples


def sorted_classes(labels: Sequence[Any]) -> list[Any]:
    """The distinct labels, numbers in numeric order, anything else in string order."""
    distinct = {str(label): label for label in labels}
    values = list(distinct.values())
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return sorted(values)
    return sorted(values, key=str)


def training_classes(examples: Examples, config: ClassifierConfig) -> list[Any]:
    """The label set in output order: the --label-names file, the --label-columns, or the sorted training labels."""
    if config.label_names:
        classes = read_label_names(config.label_names)
    elif config.label_columns:
        classes = list(config.label_columns)
    else:
        classes = sorted_classes(examples.label_values())
    if len(classes) < 2:
        only = classes[0] if classes else None
        raise BertclfError(f"the training data holds a single class ({only!r}); a classifier needs at least two")
    return classes


def encode_labels(examples: Examples, classes: Sequence[Any]) -> np.ndarray:
    """Class indices, or for multilabel data a 0/1 matrix (texts x classes); an unseen label is an error."""
    index = {str(label): position for position, label in enumerate(classes)}
    unknown = sorted({str(label) for label in examples.label_values() if str(label) not in index})
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise BertclfError(f"{examples.name} has labels that training never saw: {shown}")
    if not examples.multilabel:
        return np.array([index[str(label)] for label in examples.labels], dtype=np.int64)
    matrix = np.zeros((len(examples), len(classes)), dtype=np.float32)
    for row, labels in enumerate(examples.labels):
        matrix[row, [index[str(label)] for label in labels]] = 1.0
    return matrix
