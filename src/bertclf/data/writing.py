"""Outputs written by extension, part by part, appearing under their name only once complete, each one valid in its
format and read back by bertclf's own readers with every text unchanged:

- CSV quotes what needs quoting (every text of a part that holds a lone carriage return, which Python's csv module
  would leave bare and readers take for the end of a row);
- TSV fields are never quoted, as bertclf reads TSV: a field holding a tab or a line break cannot be written as TSV,
  and is refused naming its column and row (CSV, JSON lines and Parquet hold anything);
- ``.jsonl``/``.ndjson`` hold one object per line, ``.json`` one JSON list of objects;
- Parquet holds one schema for the whole file: a column missing in every row so far takes the type of the first
  part that fills it, and a column whose type differs between parts (numbers here, texts there) becomes text, the
  parts already written being rewritten to match, so no later part can break the file.

An output that is a stream rather than a file (``/dev/stdout``, a pipe, see :func:`bertclf.rundir.is_stream`) is
written in place, as CSV unless its name ends in a known extension; Parquet cannot go to a stream.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bertclf.data.tables import _DELIMITED, _PARQUET, SUPPORTED_EXTENSIONS
from bertclf.errors import BertclfError, first_line
from bertclf.rundir import atomic_file, is_stream

_TSV_BREAKERS = re.compile("[\t\n\r]")  # what an unquoted TSV field cannot hold
_LONE_RETURN = re.compile("\r")


def check_output_extension(path: Path) -> str:
    """The format an output is written in (its extension, ``.csv`` for a stream without one); an error if there is
    none."""
    suffix = path.suffix.lower()
    stream = is_stream(path)
    if suffix not in SUPPORTED_EXTENSIONS:
        if stream:
            return ".csv"
        raise BertclfError(f"unsupported output extension '{suffix or '(none)'}' for {path}; "
                           f"use one of {', '.join(SUPPORTED_EXTENSIONS)}")
    if stream and suffix in _PARQUET:
        raise BertclfError(f"cannot write Parquet to {path}: it is not a regular file; name a file")
    return suffix


def check_writable(frame: pd.DataFrame, suffix: str) -> None:
    """Fail, naming the column and row, if ``frame`` holds what a ``suffix`` file cannot hold: a tab or a line break
    in a TSV field (bertclf reads TSV unquoted, so no quoting could keep it)."""
    if _DELIMITED.get(suffix) != "\t":
        return
    advice = "which a TSV file cannot hold (its fields are not quoted): write .csv, .jsonl or .parquet instead"
    for name in frame.columns:
        if _TSV_BREAKERS.search(str(name)):
            raise BertclfError(f"the column name {str(name)!r} holds a tab or a line break, {advice}")
    found = _first_text_matching(frame, _TSV_BREAKERS)
    if found is not None:
        raise BertclfError(f"column '{found[0]}' holds a tab or a line break in row {found[1]}, {advice}")


def delimited_text(frame: pd.DataFrame, suffix: str, header: bool) -> str:
    """``frame`` as CSV or TSV text (``suffix``), with a header line when ``header``."""
    options: dict[str, Any] = {"sep": _DELIMITED[suffix], "index": False, "header": header, "lineterminator": "\n"}
    if options["sep"] == "\t":
        check_writable(frame, suffix)
        return frame.to_csv(quoting=csv.QUOTE_NONE, **options)
    returns = _first_text_matching(frame, _LONE_RETURN) or any("\r" in str(name) for name in frame.columns)
    return frame.to_csv(quoting=csv.QUOTE_NONNUMERIC if returns else csv.QUOTE_MINIMAL, **options)


def _first_text_matching(frame: pd.DataFrame, pattern: re.Pattern[str]) -> tuple[str, int] | None:
    """The column and row (counted from 1, as in the file) of the first text matching ``pattern``, or None."""
    for name in frame.columns:
        column = frame[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        hits = column.map(lambda value: isinstance(value, str) and pattern.search(value) is not None).to_numpy(bool)
        if hits.any():
            position = int(hits.argmax())
            row = frame.index[position]
            return str(name), (int(row) if isinstance(row, (int, np.integer)) else position) + 1
    return None


def _json_lines(frame: pd.DataFrame) -> list[str]:
    """One JSON object per row (missing values and infinities as null, dates as ISO 8601)."""
    text = frame.to_json(orient="records", lines=True, force_ascii=False, double_precision=15, date_format="iso")
    # JSON escapes line breaks inside strings, but not the separators that Python's splitlines also breaks at.
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")
    return [line for line in text.split("\n") if line]


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write CSV/TSV/JSONL/JSON/Parquet by extension."""
    with TableWriter(path) as writer:
        writer.write(frame)


class TableWriter:
    """Appends frames to a CSV/TSV/JSONL/JSON/Parquet file (by extension) that appears under its name only when the
    writer closes without error: an interrupted stream of predictions leaves no partial output."""

    def __init__(self, path: Path):
        self.path = path
        self.suffix = check_output_extension(path)
        self._staged = atomic_file(path)
        self._handle: Any = None
        self._parquet: _ParquetParts | None = None
        self._parts = self._records = 0

    def __enter__(self) -> TableWriter:
        staging = self._staged.__enter__()
        if self.suffix in _PARQUET:
            self._parquet = _ParquetParts(staging)
        else:
            self._handle = staging.open("w", encoding="utf-8", newline="")
        return self

    def write(self, frame: pd.DataFrame) -> None:
        try:
            self._write(frame)
        except (BertclfError, OSError):
            raise
        except Exception as error:  # pandas, pyarrow and the codecs raise many types for values they cannot write
            raise BertclfError(f"cannot write {self.path}: {first_line(error)}") from None
        self._parts += 1

    def _write(self, frame: pd.DataFrame) -> None:
        if self.suffix in _DELIMITED:
            self._handle.write(delimited_text(frame, self.suffix, header=self._parts == 0))
        elif self._parquet is not None:
            self._parquet.write(frame)
        elif self.suffix == ".json":  # one list: "[" before the first object, "]" at the close
            lines = _json_lines(frame)
            if lines:
                self._handle.write(("[\n" if self._records == 0 else ",\n") + ",\n".join(lines))
                self._records += len(lines)
        else:
            self._handle.write("".join(line + "\n" for line in _json_lines(frame)))

    def _close(self) -> None:
        if self.suffix == ".json" and self._handle is not None:
            self._handle.write("\n]\n" if self._records else "[]\n")
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


class _ParquetParts:
    """A Parquet file written part by part under one schema, rewritten when a later part widens a column's type."""

    def __init__(self, path: Path):
        self.path = path
        self.schema: pa.Schema | None = None
        self.writer: pq.ParquetWriter | None = None

    def write(self, frame: pd.DataFrame) -> None:
        table = _arrow_table(frame)
        schema = table.schema if self.schema is None else _unified(self.schema, table.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(str(self.path), schema)
        elif not schema.equals(self.schema):
            self._rewrite(schema)
        self.schema = schema
        self.writer.write_table(_conformed(table, schema))

    def _rewrite(self, schema: pa.Schema) -> None:
        """The parts written so far again, under the wider ``schema`` (a sibling file, removed at once)."""
        self.writer.close()
        previous = self.path.with_name(self.path.name + ".previous")
        os.replace(self.path, previous)
        try:
            self.writer = pq.ParquetWriter(str(self.path), schema)
            with pq.ParquetFile(previous) as written:
                for batch in written.iter_batches():
                    self.writer.write_table(_conformed(pa.Table.from_batches([batch]), schema))
        finally:
            previous.unlink(missing_ok=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        else:
            pq.write_table(pa.table({}), str(self.path))


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table without pandas metadata; a column of mixed types (ints and texts) as texts."""
    arrays = []
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        try:
            arrays.append(pa.array(column, from_pandas=True))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            arrays.append(_strings(column.tolist()))
    return pa.Table.from_arrays(arrays, names=[str(name) for name in frame.columns])


def _unified(old: pa.Schema, new: pa.Schema) -> pa.Schema:
    """One schema for two parts: a column empty in one takes the other's type; differing types become text."""
    if old.names != new.names:
        raise BertclfError(f"a part has the columns {', '.join(new.names)}, the parts before {', '.join(old.names)}")
    fields = []
    for before, after in zip(old, new, strict=True):
        try:  # the default promotion merges only a null type (missing everywhere so far) with another
            kind = pa.unify_schemas([pa.schema([before]), pa.schema([after])]).field(0).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            kind = pa.string()
        fields.append(pa.field(before.name, kind))
    return pa.schema(fields)


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    arrays = []
    for column, field in zip(table.columns, schema, strict=True):
        if column.type == field.type:
            arrays.append(column)
        elif pa.types.is_string(field.type):
            arrays.append(_strings(column.to_pylist()))
        else:
            arrays.append(column.cast(field.type))  # from a null type: always possible
    return pa.Table.from_arrays(arrays, schema=schema)


def _strings(values: list[Any]) -> pa.Array:
    return pa.array([None if _missing(value) else _text(value) for value in values], pa.string())


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    """A value of a column of mixed types as text: texts as they are, lists and objects as JSON, others as printed."""
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value.item() if isinstance(value, np.generic) else value)
