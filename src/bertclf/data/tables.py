"""Tables in and out: CSV/TSV/JSONL/JSON/Parquet files read whole or part by part, folders of one text per file,
and outputs written by extension, appearing only once complete."""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bertclf.errors import BertclfError, first_line
from bertclf.rundir import atomic_file

log = logging.getLogger("bertclf")

_DELIMITED = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
DELIMITED_SUFFIXES = tuple(_DELIMITED)
_JSON_LINES = {".jsonl", ".ndjson"}
_PARQUET = {".parquet", ".pq"}
SUPPORTED_EXTENSIONS = (*_DELIMITED, *_JSON_LINES, ".json", *_PARQUET)


def demo_dataset_path() -> Path:
    """The support-ticket dataset shipped inside the package for ``bertclf demo``."""
    return Path(str(resources.files("bertclf") / "resources" / "support_tickets.csv"))


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
        raise BertclfError(f"cannot read {path}: {first_line(error)}") from None
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
