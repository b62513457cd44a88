"""Reading labelled text from files or frames, label encoding, stratified splits and leakage checks.

Everything that can be wrong with a user's data is detected here and reported as a one-line
:class:`BertclfError`, before any model is loaded.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.rundir import atomic_file

log = logging.getLogger("bertclf")

DataSource = str | Path | pd.DataFrame | tuple[Sequence[str], Sequence[Any]]
"""A file path, a DataFrame, or a ``(texts, labels)`` pair."""

_DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
DELIMITED_SUFFIXES = tuple(_DELIMITED)
_JSON_LINES = {".jsonl", ".ndjson"}
_PARQUET = {".parquet", ".pq"}
SUPPORTED_EXTENSIONS = (*_DELIMITED, *_JSON_LINES, ".json", *_PARQUET)


def demo_dataset_path() -> Path:
    """The support-ticket dataset shipped inside the package for ``bertclf demo``."""
    return Path(str(resources.files("bertclf") / "resources" / "support_tickets.csv"))


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


def read_table(path: str | Path, columns: Sequence[str] | None = None, quoting: str = "auto",
               encoding: str = "utf-8") -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON/Parquet file chosen by extension; ``columns`` names a header-less file's columns,
    ``quoting`` says whether CSV/TSV fields may be quoted (see ``ClassifierConfig.quoting``), ``encoding`` how the
    text files' bytes are read."""
    [frame] = iter_table(path, columns, quoting, encoding=encoding)  # one frame, and the generator's checks run
    return frame


def iter_table(path: str | Path, columns: Sequence[str] | None = None, quoting: str = "auto",
               rows: int | None = None, encoding: str = "utf-8") -> Iterator[pd.DataFrame]:
    """The file as frames of at most ``rows`` rows (one frame when ``rows`` is None), so that a file larger than
    memory can be processed part by part; the row index counts from the file's first row. The file is checked at
    once (it exists, has a known format and holds something); its content as the frames are read."""
    path = Path(path)
    return _read_frames(path, _check_readable(path, columns), columns, quoting, rows, encoding)


def read_folder(path: Path, text_column: str, label_column: str, encoding: str = "utf-8") -> pd.DataFrame:
    """A folder with a subfolder per class, one text per file (20 Newsgroups' and aclImdb's layout): the texts,
    labelled with their subfolder's name, in name order. Hidden files and folders are left out."""
    rows = []
    classes = sorted(folder for folder in path.iterdir() if folder.is_dir() and not folder.name.startswith("."))
    for folder in classes:
        for file in sorted(item for item in folder.iterdir() if item.is_file() and not item.name.startswith(".")):
            try:
                rows.append((file.read_text(encoding=encoding), folder.name))
            except UnicodeDecodeError:
                raise BertclfError(f"{file} is not {encoding} text (pass --encoding, e.g. latin-1)") from None
            except OSError as error:
                raise BertclfError(f"cannot read {file}: {error.strerror or error}") from None
    if not rows:
        raise BertclfError(f"{path} is a folder but holds no subfolder of text files (one subfolder per class, one "
                           "text per file)")
    return pd.DataFrame(rows, columns=[text_column, label_column])


def _read_frames(path: Path, suffix: str, columns: Sequence[str] | None, quoting: str,
                 rows: int | None, encoding: str) -> Iterator[pd.DataFrame]:
    read = 0
    spanning = [0, 0]  # rows whose quoted fields span lines, and the line breaks inside them
    try:
        for frame in _frames(path, suffix, columns, quoting, rows, encoding):
            if columns and frame.shape[1] != len(columns):
                raise BertclfError(f"{path} has {frame.shape[1]} columns but --columns names {len(columns)} "
                                   f"({','.join(columns)})")
            frame.columns = list(columns) if columns else [str(name) for name in frame.columns]
            if suffix in _DELIMITED and _quoted(quoting, suffix):
                for position, count in enumerate(_line_breaks(frame)):
                    spanning[position] += count
            if len(frame) == 0:
                continue
            frame.index = pd.RangeIndex(read, read + len(frame))
            read += len(frame)
            yield frame
    except BertclfError:
        raise
    except UnicodeDecodeError:
        raise BertclfError(f"{path} is not {encoding} text (pass --encoding, e.g. latin-1)") from None
    except Exception as error:  # pandas/pyarrow raise many types for malformed files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BertclfError(f"cannot read {path}: {reason}") from None
    if read == 0:
        raise BertclfError(f"file has no data rows: {path}")
    if spanning[0]:
        log.warning("warning: %d rows of %s span several lines (%d line breaks inside quoted fields were read as part "
                    "of a text); if some texts hold a stray double quote, rows were merged: pass --quoting none",
                    spanning[0], path.name, spanning[1])


def _check_readable(path: Path, columns: Sequence[str] | None) -> str:
    """The file's extension, once the file is known to exist, be a supported format and hold something."""
    if not path.exists():
        raise BertclfError(f"file not found: {path}")
    if path.is_dir():
        raise BertclfError(f"expected a data file but got a directory: {path}")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise BertclfError(f"unsupported file extension '{suffix or '(none)'}' for {path}; "
                           f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    if columns and suffix not in _DELIMITED:
        raise BertclfError(f"--columns names the columns of header-less CSV/TSV files, but {path} is {suffix}")
    if path.stat().st_size == 0:
        raise BertclfError(f"file is empty: {path}")
    return suffix


def _quoted(quoting: str, suffix: str) -> bool:
    return quoting == "csv" or (quoting == "auto" and _DELIMITED[suffix] == ",")


def _frames(path: Path, suffix: str, columns: Sequence[str] | None, quoting: str,
            rows: int | None, encoding: str) -> Iterator[pd.DataFrame]:
    if suffix in _DELIMITED:
        # Only an empty field is missing: texts such as "NA" or "null" stay texts.
        options = {"sep": _DELIMITED[suffix], "keep_default_na": False, "na_values": [""], "index_col": False,
                   "encoding": encoding,
                   "quoting": csv.QUOTE_MINIMAL if _quoted(quoting, suffix) else csv.QUOTE_NONE,
                   "header": None if columns else "infer"}
        if rows is None:
            yield pd.read_csv(path, **options)
        else:
            with pd.read_csv(path, chunksize=rows, **options) as reader:
                yield from reader
    elif suffix in _PARQUET:
        if rows is None:
            yield pd.read_parquet(path)
        else:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas()
    elif suffix in _JSON_LINES and rows is not None:
        with pd.read_json(path, lines=True, dtype=False, chunksize=rows, encoding=encoding) as reader:
            yield from reader
    else:
        yield _read_json(path, lines=suffix in _JSON_LINES, encoding=encoding)


def _line_breaks(frame: pd.DataFrame) -> tuple[int, int]:
    """A quoted field may hold line breaks, so several lines make one row; a stray quote makes the same thing happen
    by mistake, merging texts and labels. Counted here (rows, breaks) so the user hears how many rows it concerns."""
    spanning = np.zeros(len(frame), dtype=bool)
    breaks = 0
    for name in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[name]):
            continue
        counts = frame[name].map(lambda value: value.count("\n") if isinstance(value, str) else 0).to_numpy()
        spanning |= counts > 0
        breaks += int(counts.sum())
    return int(spanning.sum()), breaks


def count_rows(path: str | Path) -> int | None:
    """About how many rows a file holds (its line count; exact for Parquet), to show progress; None if unknown."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows
        except Exception:  # a damaged file: reading it will say what is wrong
            return None
    if suffix not in _DELIMITED and suffix not in _JSON_LINES:
        return None
    lines = 0
    with path.open("rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
    return lines


def _read_json(path: Path, lines: bool, encoding: str = "utf-8") -> pd.DataFrame:
    if lines:
        return pd.read_json(path, lines=True, dtype=False, encoding=encoding)
    try:
        return pd.read_json(path, dtype=False, encoding=encoding)
    except ValueError:  # a .json file may still hold one object per line
        return pd.read_json(path, lines=True, dtype=False, encoding=encoding)


def as_frame(source: DataSource, config: ClassifierConfig) -> tuple[pd.DataFrame, str]:
    """Any accepted data source as a DataFrame, with a name to use in messages."""
    if isinstance(source, (str, Path)):
        if Path(source).is_dir():
            return read_folder(Path(source), config.text_column[0], config.label_column, config.encoding), \
                Path(source).name
        return read_table(source, config.columns, config.quoting, config.encoding), Path(source).name
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


def require_columns(frame: pd.DataFrame, names: Sequence[str], source: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise BertclfError(f"column '{missing[0]}' not found in {source}; available columns: {available}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


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


def _is_list(value: Any) -> bool:
    """A list of labels: a real list (JSONL, Parquet, DataFrames) or the text of a JSON list."""
    return isinstance(value, (list, tuple)) or (isinstance(value, str) and value.startswith("[")
                                                 and value.endswith("]"))


def _label_tuple(value: Any, separator: str, source: str, row: int) -> tuple[Any, ...]:
    """The labels of one multilabel cell, duplicates removed, order kept; an empty cell is an empty tuple."""
    if _is_missing(value) or value == "":
        return ()
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except ValueError:
            raise BertclfError(f"row {row + 1} of {source}: {value!r} is not a valid JSON list of labels") from None
    if isinstance(value, (list, tuple)):
        items = [_plain_label(item) for item in value]
    elif isinstance(value, str):
        items = [int(part) if part.lstrip("-").isdigit() else part
                 for part in (piece.strip() for piece in value.split(separator))]
    else:
        items = [value]
    return tuple(dict.fromkeys(item for item in items if not (_is_missing(item) or item == "")))


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
    if isinstance(value, str) and value.isdigit():
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
        values = [_plain_label(value) for value in frame[config.label_column].tolist()]
        multilabel = config.task == "multilabel" or (config.task == "auto" and any(map(_is_list, values)))
        if multilabel:
            labels = [_label_tuple(value, config.label_sep, source, row) for row, value in enumerate(values)]
        else:
            missing = [row for row, label in enumerate(values) if _is_missing(label) or label == ""]
            if missing:
                raise BertclfError(f"label column '{config.label_column}' of {source} is empty in {len(missing)} "
                                   f"rows (first: row {missing[0] + 1})")
            lists = [row for row, label in enumerate(values) if isinstance(label, list)]
            if lists:
                raise BertclfError(f"label column '{config.label_column}' of {source} holds a list in row "
                                   f"{lists[0] + 1}; pass --task multilabel for texts with several labels")
            labels = values
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
    val: Examples
    test: Examples | None


def make_splits(config: ClassifierConfig, train: DataSource, val: DataSource | None,
                test: DataSource | None) -> Splits:
    """Load the given parts and hold out the missing validation/test parts from training."""
    train_examples = load_examples(train, config)
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
    if "val" not in given and config.val_size == 0:
        raise BertclfError("no validation data: pass --val or a positive --val-size")
    remaining = 1.0
    for name in missing:
        # Fractions are of the original training file, so rescale after each hold-out.
        train_examples, held_out[name] = split_examples(train_examples, fractions[name] / remaining,
                                                        config.seed, name)
        remaining -= fractions[name]
    splits = Splits(train_examples, given.get("val") or held_out["val"], given.get("test") or held_out.get("test"))
    sizes = ", ".join(
        f"{name} {len(part)}{' (held out)' if name in held_out else ''}"
        for name, part in (("train", splits.train), ("val", splits.val), ("test", splits.test))
        if part is not None
    )
    log.info("data: %s", sizes)
    warn_about_leakage(splits.train, [part for part in (splits.val, splits.test) if part is not None])
    return splits


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV/TSV/JSONL/Parquet by extension."""
    with TableWriter(path) as writer:
        writer.write(frame)


class TableWriter:
    """Appends frames to a CSV/TSV/JSONL/Parquet file (by extension) that appears under its name only when the
    writer closes without error: an interrupted stream of predictions leaves no partial output."""

    def __init__(self, path: Path):
        check_output_extension(path)
        self.path, self.suffix = path, path.suffix.lower()
        self._staged = atomic_file(path)
        self._handle: Any = None
        self._parquet: Any = None
        self._rows = 0

    def __enter__(self) -> TableWriter:
        staging = self._staged.__enter__()
        if self.suffix not in _PARQUET:
            self._handle = staging.open("w", encoding="utf-8", newline="")
        self._staging = staging
        return self

    def write(self, frame: pd.DataFrame) -> None:
        if self.suffix in _DELIMITED:
            frame.to_csv(self._handle, sep=_DELIMITED[self.suffix], index=False, header=self._rows == 0)
        elif self.suffix in _PARQUET:
            import pyarrow as pa
            import pyarrow.parquet as pq

            # Later parts take the first part's schema, so that a column empty in one part keeps its type.
            table = pa.Table.from_pandas(frame, preserve_index=False,
                                         schema=self._parquet.schema if self._parquet else None)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self._staging, table.schema)
            self._parquet.write_table(table)
        else:
            frame.to_json(self._handle, orient="records", lines=True, force_ascii=False)
        self._rows += len(frame)

    def _close(self) -> None:
        for closing in (self._handle, self._parquet):
            if closing is not None:
                closing.close()

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> bool | None:
        if error is not None:  # already failing: close quietly, the staging file goes anyway
            with contextlib.suppress(Exception):
                self._close()
            return self._staged.__exit__(kind, error, traceback)
        try:
            self._close()  # the last buffered bytes may still not fit on the disk
        except BaseException as closing_error:
            if not self._staged.__exit__(type(closing_error), closing_error, closing_error.__traceback__):
                raise
            return None
        return self._staged.__exit__(None, None, None)


def check_output_extension(path: Path) -> None:
    """Outputs are written in the format their extension names."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise BertclfError(f"unsupported output extension '{suffix or '(none)'}' for {path}; "
                           f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
