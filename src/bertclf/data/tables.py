"""Tables in: CSV/TSV/JSONL/JSON/Parquet files read whole or part by part, and folders of one text per file (outputs
are written by :mod:`bertclf.data.writing`)."""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import re
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from bertclf.errors import BertclfError, first_line

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
                rows.append((file.read_text(encoding=_decoding(encoding)), folder.name))
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
    except pd.errors.ParserError as error:
        raise BertclfError(_parser_message(path, columns, error)) from None
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
    repeated = [name for position, name in enumerate(columns or ()) if name in columns[:position]]
    if repeated:
        raise BertclfError(f"--columns names '{repeated[0]}' twice; each column of {path.name} needs its own name")
    if path.stat().st_size == 0:
        raise BertclfError(f"file is empty: {path}")
    return suffix


def _quoted(quoting: str, suffix: str) -> bool:
    return quoting == "csv" or (quoting == "auto" and _DELIMITED[suffix] == ",")


def _frames(path: Path, suffix: str, columns: Sequence[str] | None, quoting: str,
            rows: int | None, encoding: str) -> Iterator[pd.DataFrame]:
    if suffix in _DELIMITED:
        yield from _delimited_frames(path, suffix, columns, quoting, rows, encoding)
    elif suffix in _PARQUET:
        # Integer columns with gaps stay integers (object), not floats: an id 7 must not come back as 7.0.
        if rows is None:
            yield pq.read_table(path).to_pandas(integer_object_nulls=True)
        else:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
                yield batch.to_pandas(integer_object_nulls=True)
    elif suffix in _JSON_LINES:
        yield from _json_lines(path, rows, encoding)
    else:
        yield _read_json(path, encoding)


def _delimited_frames(path: Path, suffix: str, columns: Sequence[str] | None, quoting: str,
                      rows: int | None, encoding: str) -> Iterator[pd.DataFrame]:
    """Every field as the text it is: ``007`` stays ``007`` and ``1.0`` stays ``1.0`` (the label reader decides
    which label columns are integers). Only an empty field is missing: texts such as "NA" or "null" stay texts."""
    _check_separator(path, suffix, columns, encoding)
    options = {"sep": _DELIMITED[suffix], "keep_default_na": False, "na_values": [""], "dtype": str,
               "encoding": _decoding(encoding),
               "quoting": csv.QUOTE_MINIMAL if _quoted(quoting, suffix) else csv.QUOTE_NONE,
               "header": None if columns else "infer"}
    with (pd.read_csv(path, chunksize=rows, **options) if rows else
          contextlib.nullcontext([pd.read_csv(path, **options)])) as frames:
        for frame in frames:
            if not isinstance(frame.index, pd.RangeIndex):
                # pandas takes the first fields of rows longer than the header as an index: refuse, lose nothing
                raise BertclfError(f"the rows of {path} have more fields than its header names ({frame.columns.size})"
                                   f"{_separator_hint(suffix, quoting)}")
            yield frame


def _separator_hint(suffix: str, quoting: str) -> str:
    if suffix in (".tsv", ".tab"):
        return "; does a text hold a tab?"
    if _quoted(quoting, suffix):
        return "; a text that holds a comma must be in double quotes"
    return "; with --quoting none a text cannot hold a comma"


def _parser_message(path: Path, columns: Sequence[str] | None, error: Exception) -> str:
    """pandas' tokenizer errors in the user's words, with the line they concern."""
    text = first_line(error)
    fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", text)
    if fields:
        expected, line, seen = fields.groups()
        named = "--columns names" if columns else "the header names"
        suffix = path.suffix.lower()
        return (f"line {line} of {path} has {seen} fields but {named} {expected}"
                f"{_separator_hint(suffix, 'csv' if suffix == '.csv' else 'none')}")
    quoted = re.search(r"EOF inside string starting at row (\d+)", text)
    if quoted:
        return (f"{path} ends inside a quoted text that starts on line {int(quoted.group(1)) + 1}: a stray double "
                "quote? pass --quoting none if texts are not quoted")
    return f"cannot read {path}: {text.removeprefix('Error tokenizing data. C error: ')}"


def _check_separator(path: Path, suffix: str, columns: Sequence[str] | None, encoding: str) -> None:
    """A CSV whose first line has no comma but semicolons is semicolon-separated, as Excel writes CSV where the
    decimal mark is a comma: it would be read as one column (or cut at the texts' commas)."""
    if _DELIMITED[suffix] != "," or (columns is not None and len(columns) < 2):
        return
    with path.open(encoding=_decoding(encoding), newline="") as handle:
        first = handle.readline()
    by_comma, by_semicolon = (next(csv.reader([first], delimiter=mark), []) for mark in ",;")
    if len(by_comma) == 1 and len(by_semicolon) > 1:
        raise BertclfError(f"{path} is separated by semicolons, not commas (as Excel writes CSV in some languages); "
                           "save it as \"CSV UTF-8 (Comma delimited)\", or with tabs as .tsv")


def _decoding(encoding: str) -> str:
    """UTF-8 files may start with a byte order mark (Excel, Notepad, PowerShell write one): read it as no text."""
    try:
        return "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    except LookupError:
        return encoding  # the reader names the unknown encoding


def _json_lines(path: Path, rows: int | None, encoding: str) -> Iterator[pd.DataFrame]:
    """One JSON object per line, ``rows`` objects at a time (all when None); blank lines are skipped."""
    with path.open(encoding=_decoding(encoding)) as handle:
        records: list[dict[str, Any]] = []
        for number, line in enumerate(handle, 1):
            if line.strip():
                records.append(_json_record(line, number, path))
            if rows is not None and len(records) == rows:
                yield _records_frame(records)
                records = []
        if records:
            yield _records_frame(records)


def _json_record(line: str, number: int, path: Path) -> dict[str, Any]:
    try:
        record = json.loads(line.rstrip("\r\n"), strict=False)
    except ValueError as error:  # JSONDecodeError, or a number too long to convert
        where = f" (column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        raise BertclfError(f"line {number} of {path} is not valid JSON: "
                           f"{getattr(error, 'msg', first_line(error))}{where}") from None
    if not isinstance(record, dict):
        raise BertclfError(f"line {number} of {path} holds a JSON {_json_kind(record)}, not an object (one object "
                           "per line, its fields the columns)")
    return record


def _json_kind(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Records as columns, each value as JSON gave it; a column of integers with gaps stays integers (object),
    where pandas would make them floats (7 -> 7.0)."""
    frame = pd.DataFrame(records, dtype=object)
    for name in frame.columns:
        inferred = frame[name].infer_objects()
        if inferred.dtype.kind != "f" or not any(isinstance(value, int) for value in frame[name]):
            frame[name] = inferred
    return frame


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


def _read_json(path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    """A JSON file: a list of objects, an object of columns, one object, or JSON lines after all."""
    text = path.read_text(encoding=_decoding(encoding))
    try:
        document = json.loads(text, strict=False)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":  # a first value and more after it: one object per line
            return _records_frame([_json_record(line, number, path)
                                   for number, line in enumerate(text.splitlines(), 1) if line.strip()])
        raise BertclfError(f"{path} is not valid JSON: {error.msg} (line {error.lineno} column {error.colno})") \
            from None
    if isinstance(document, list):
        kinds = [_json_kind(item) for item in document if not isinstance(item, dict)]
        if kinds:
            raise BertclfError(f"{path} is a JSON list holding a {kinds[0]}; expected one object per row")
        return _records_frame(document)
    if isinstance(document, dict) and document and all(isinstance(value, (dict, list))
                                                       for value in document.values()):
        return pd.read_json(io.StringIO(text), dtype=False, convert_dates=False)  # column -> values
    if isinstance(document, dict):
        return _records_frame([document])
    raise BertclfError(f"{path} holds a JSON {_json_kind(document)}; expected objects, one per row")
