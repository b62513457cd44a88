"""Outputs by extension: each valid in its format and read back by bertclf's own readers with every text unchanged;
Parquet under one schema whatever later parts hold; streams written in place."""

import json
import math
import os
import threading
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from bertclf.data import TableWriter, check_output_extension, read_table, write_table
from bertclf.errors import BertclfError
from tests.helpers import NASTY_TEXTS, TSV_TEXTS


def nasty_frame(texts):
    return pd.DataFrame({"id": range(len(texts)), "text": texts, "code": [f"{i:03d}" for i in range(len(texts))],
                         "proba_x": [i / 7 for i in range(len(texts))]})


def written_in_parts(frame, path, size=5):
    with TableWriter(path) as writer:
        for start in range(0, len(frame), size):
            writer.write(frame.iloc[start:start + size])


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_output_reads_back_with_its_texts_unchanged(tmp_path, suffix):
    texts = TSV_TEXTS if suffix == ".tsv" else NASTY_TEXTS
    frame = nasty_frame(texts)
    path = tmp_path / f"out{suffix}"
    written_in_parts(frame, path)
    back = read_table(path)
    assert list(back.columns) == ["id", "text", "code", "proba_x"]
    read = back["text"].tolist()
    if suffix in (".csv", ".tsv"):  # an empty field is a missing value in CSV and TSV, and a missing text is empty
        read = ["" if isinstance(value, float) and math.isnan(value) else value for value in read]
    assert read == texts
    assert back["code"].tolist() == frame["code"].tolist()  # all-digit texts stay texts: "007"
    assert [int(value) for value in back["id"]] == list(range(len(texts)))
    assert [float(value) for value in back["proba_x"]] == pytest.approx(frame["proba_x"].tolist(), rel=1e-14)


def test_a_json_output_is_one_json_list_and_json_lines_one_object_a_line(tmp_path):
    frame = nasty_frame(NASTY_TEXTS)
    written_in_parts(frame, tmp_path / "out.json")
    document = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    assert isinstance(document, list) and [row["text"] for row in document] == NASTY_TEXTS
    written_in_parts(frame, tmp_path / "out.jsonl")
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["text"] for line in lines] == NASTY_TEXTS
    write_table(frame.iloc[:0], tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text()) == []


@pytest.mark.parametrize("suffix", [".tsv", ".tab"])
def test_a_tab_or_line_break_in_a_tsv_field_is_refused_naming_its_column_and_row(tmp_path, suffix):
    frame = nasty_frame(["plain", "also plain", "a\ttab"])
    frame.index = range(100, 103)  # the rows of a later part of the file
    with pytest.raises(BertclfError, match=r"column 'text' holds a tab or a line break in row 103.*write \.csv"):
        write_table(frame, tmp_path / f"out{suffix}")
    assert os.listdir(tmp_path) == []  # nothing written, no staging file


def test_parquet_keeps_one_schema_whatever_later_parts_hold(tmp_path):
    rows = 12
    frame = pd.DataFrame({
        "mixed": [1, "two", 3, None] * 3,  # ints and texts in one part: texts
        "late": [None] * 8 + ["filled", "later", None, "too"],  # missing in the first parts, texts later
        "ints_then_texts": [*range(8), "x", "y", "z", "w"],  # a type that changes between parts
        "late_ints": [None] * 8 + [1, 2, 3, 4],
        "labels": [[]] * 8 + [["a"], ["a", "b"], [], ["c"]],  # multilabel lists, empty in the first parts
        "text": [f"text {i}" for i in range(rows)],
    })
    path = tmp_path / "out.parquet"
    written_in_parts(frame, path, size=4)
    assert pq.ParquetFile(path).metadata.num_rows == rows
    back = read_table(path)

    def values(name):
        return [None if not isinstance(value, (str, list)) and pd.isna(value) else value for value in back[name]]

    assert values("mixed") == ["1", "two", "3", None] * 3
    assert values("late") == [None] * 8 + ["filled", "later", None, "too"]
    assert values("ints_then_texts") == [str(i) for i in range(8)] + ["x", "y", "z", "w"]
    assert values("late_ints") == [None] * 8 + [1, 2, 3, 4]
    assert [list(value) for value in back["labels"]] == frame["labels"].tolist()
    assert back["text"].tolist() == frame["text"].tolist()
    assert sorted(os.listdir(tmp_path)) == ["out.parquet"]  # the rewrite left nothing beside it


def test_streams_are_written_in_place_as_csv_unless_named_otherwise(tmp_path):
    assert check_output_extension(tmp_path / "out.jsonl") == ".jsonl"
    write_table(nasty_frame(NASTY_TEXTS), Path("/dev/null"))  # no staging file in /dev, /dev/null stays a device
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert check_output_extension(fifo) == ".csv"
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text(encoding="utf-8")))
    reader.start()
    write_table(nasty_frame(["a", "b,c"]), fifo)
    reader.join(timeout=30)
    assert received == ['id,text,code,proba_x\n0,a,000,0.0\n1,"b,c",001,0.14285714285714285\n']
    assert sorted(os.listdir(tmp_path)) == ["pipe"] and Path("/dev/null").is_char_device()
    os.mkfifo(tmp_path / "pipe.parquet")
    with pytest.raises(BertclfError, match=r"cannot write Parquet to .*not a regular file"):
        check_output_extension(tmp_path / "pipe.parquet")
