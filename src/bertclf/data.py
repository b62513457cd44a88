"""Reading labelled text from files or frames, label encoding, stratified splits and leakage checks.

Everything that can be wrong with a user's data is detected here and reported as a one-line
:class:`BertclfError`, before any model is loaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError

log = logging.getLogger("bertclf")

DataSource = str | Path | pd.DataFrame | tuple[Sequence[str], Sequence[Any]]
"""A file path, a DataFrame, or a ``(texts, labels)`` pair."""

_DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_JSON_LINES = {".jsonl", ".ndjson"}
_PARQUET = {".parquet", ".pq"}
SUPPORTED_EXTENSIONS = (*_DELIMITED, *_JSON_LINES, ".json", *_PARQUET)


def demo_dataset_path() -> Path:
    """The support-ticket dataset shipped inside the package for ``bertclf demo``."""
    return Path(str(resources.files("bertclf") / "resources" / "support_tickets.csv"))


@dataclass
class Examples:
    """Texts and their labels (original values, or ``None`` for unlabelled data), row order kept."""

    texts: list[str]
    labels: list[Any] | None
    name: str

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Sequence[int], name: str) -> Examples:
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return Examples([self.texts[i] for i in indices], labels, name)


def read_table(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON/Parquet file chosen by extension; ``columns`` names a header-less file's columns."""
    path = Path(path)
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
    try:
        if suffix in _DELIMITED:
            frame = _read_delimited(path, _DELIMITED[suffix], columns)
        elif suffix in _PARQUET:
            frame = pd.read_parquet(path)
        else:
            frame = _read_json(path, lines=suffix in _JSON_LINES)
    except BertclfError:
        raise
    except UnicodeDecodeError:
        raise BertclfError(f"{path} is not UTF-8 text") from None
    except Exception as error:  # pandas/pyarrow raise many types for malformed files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BertclfError(f"cannot read {path}: {reason}") from None
    if len(frame) == 0:
        raise BertclfError(f"file has no data rows: {path}")
    frame.columns = [str(name) for name in frame.columns]
    return frame


def _read_delimited(path: Path, separator: str, columns: Sequence[str] | None) -> pd.DataFrame:
    # Only an empty field is missing: texts such as "NA" or "null" stay texts.
    options = {"sep": separator, "keep_default_na": False, "na_values": [""], "index_col": False}
    if not columns:
        return pd.read_csv(path, **options)
    frame = pd.read_csv(path, header=None, **options)
    if frame.shape[1] != len(columns):
        raise BertclfError(
            f"{path} has {frame.shape[1]} columns but --columns names {len(columns)} ({','.join(columns)})"
        )
    frame.columns = list(columns)
    return frame


def _read_json(path: Path, lines: bool) -> pd.DataFrame:
    if lines:
        return pd.read_json(path, lines=True, dtype=False)
    try:
        return pd.read_json(path, dtype=False)
    except ValueError:  # a .json file may still hold one object per line
        return pd.read_json(path, lines=True, dtype=False)


def as_frame(source: DataSource, config: ClassifierConfig) -> tuple[pd.DataFrame, str]:
    """Any accepted data source as a DataFrame, with a name to use in messages."""
    if isinstance(source, (str, Path)):
        return read_table(source, config.columns), Path(source).name
    if isinstance(source, pd.DataFrame):
        if len(source) == 0:
            raise BertclfError("the DataFrame has no rows")
        return source, "DataFrame"
    if isinstance(source, tuple) and len(source) == 2:
        texts, labels = source
        if len(texts) != len(labels):
            raise BertclfError(f"got {len(texts)} texts but {len(labels)} labels")
        if len(texts) == 0:
            raise BertclfError("no texts given")
        return pd.DataFrame({config.text_column[0]: list(texts), config.label_column: list(labels)}), "data"
    raise BertclfError(f"expected a file path, a DataFrame or a (texts, labels) pair, got {type(source).__name__}")


def require_columns(frame: pd.DataFrame, names: Sequence[str], source: str) -> None:
    missing = [name for name in names if name not in frame.columns]
    if missing:
        available = ", ".join(map(str, frame.columns))
        raise BertclfError(f"column '{missing[0]}' not found in {source}; available columns: {available}")


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def join_texts(frame: pd.DataFrame, config: ClassifierConfig, source: str) -> list[str]:
    """One string per row: the text columns, stripped and joined; missing parts are left out."""
    require_columns(frame, config.text_column, source)
    columns = [frame[name].tolist() for name in config.text_column]
    texts = []
    for row, parts in enumerate(zip(*columns, strict=True)):
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
    """numpy scalars -> Python values, whole floats -> int, so labels survive JSON round trips."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return value.strip()
    return value


def load_examples(source: DataSource, config: ClassifierConfig, *, labelled: bool = True) -> Examples:
    """Texts (and labels if ``labelled``) from a source; rows with empty text are skipped with a warning."""
    frame, name = as_frame(source, config)
    texts = join_texts(frame, config, name)
    labels = None
    if labelled:
        require_columns(frame, [config.label_column], name)
        labels = [_plain_label(value) for value in frame[config.label_column].tolist()]
        missing = [row for row, label in enumerate(labels) if _is_missing(label) or label == ""]
        if missing:
            raise BertclfError(
                f"label column '{config.label_column}' of {name} is empty in {len(missing)} rows "
                f"(first: row {missing[0] + 1})"
            )
    keep = [row for row, text in enumerate(texts) if text]
    if not keep:
        raise BertclfError(f"every text in {name} is empty (columns: {', '.join(config.text_column)})")
    examples = Examples(texts, labels, name)
    if len(keep) < len(texts):
        log.warning("warning: skipped %d rows of %s whose text is empty", len(texts) - len(keep), name)
        examples = examples.subset(keep, name)
    return examples


def sorted_classes(labels: Sequence[Any]) -> list[Any]:
    """The distinct labels, numbers in numeric order, anything else in string order."""
    distinct = {str(label): label for label in labels}
    values = list(distinct.values())
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return sorted(values)
    return sorted(values, key=str)


def check_classes(classes: Sequence[Any], source: str) -> None:
    if len(classes) < 2:
        only = classes[0] if classes else None
        raise BertclfError(f"{source} holds a single class ({only!r}); a classifier needs at least two")


def encode_labels(examples: Examples, classes: Sequence[Any]) -> np.ndarray:
    """Class indices; a label never seen in training is an error that names it."""
    index = {str(label): position for position, label in enumerate(classes)}
    unknown = sorted({str(label) for label in examples.labels if str(label) not in index})
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise BertclfError(f"{examples.name} has labels that training never saw: {shown}")
    return np.array([index[str(label)] for label in examples.labels], dtype=np.int64)


def split_examples(examples: Examples, size: float, seed: int, name: str) -> tuple[Examples, Examples]:
    """Hold out ``size`` of the examples, stratified by label where every class allows it."""
    indices = np.arange(len(examples))
    keys = [str(label) for label in examples.labels]
    try:
        kept, held = train_test_split(indices, test_size=size, random_state=seed, stratify=keys)
    except ValueError:
        log.warning("warning: some classes are too rare for a stratified %s split; splitting at random", name)
        kept, held = train_test_split(indices, test_size=size, random_state=seed)
    return examples.subset(sorted(kept), examples.name), examples.subset(sorted(held), name)


def warn_about_leakage(train: Examples, others: Sequence[Examples]) -> None:
    """Texts present in training and also in validation or test inflate the reported scores."""
    seen = set(train.texts)
    for part in others:
        repeated = sum(text in seen for text in part.texts)
        if repeated:
            log.warning(
                "warning: %d of %d %s texts also appear in the training data (leakage inflates %s scores)",
                repeated, len(part), part.name, part.name,
            )


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


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a hidden sibling file, then rename it over ``path``: no half-written output."""
    staging = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(staging)
        staging.replace(path)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise BertclfError(f"cannot write {path}: {error.strerror or error}") from None


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV/TSV/JSONL/Parquet by extension."""
    suffix = path.suffix.lower()
    if suffix in _DELIMITED:
        atomic_write(path, lambda target: frame.to_csv(target, sep=_DELIMITED[suffix], index=False))
    elif suffix in _JSON_LINES or suffix == ".json":
        atomic_write(path, lambda target: frame.to_json(target, orient="records", lines=True, force_ascii=False))
    elif suffix in _PARQUET:
        atomic_write(path, lambda target: frame.to_parquet(target, index=False))
    else:
        raise BertclfError(f"unsupported output extension '{suffix or '(none)'}' for {path}; "
                           f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
