import json
import logging

import numpy as np
import pandas as pd
import pytest

from bertclf.config import ClassifierConfig
from bertclf.data import (
    check_classes,
    encode_labels,
    join_texts,
    load_examples,
    make_splits,
    read_table,
    sorted_classes,
    write_table,
)
from bertclf.errors import BertclfError

FRAME = pd.DataFrame({"title": ["Goal!", "New chip", "Soup"], "body": ["late winner", "faster", "hot"],
                      "label": ["sport", "tech", "food"]})


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_format_reads_the_same_frame(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_table(FRAME, path)
    pd.testing.assert_frame_equal(read_table(path), FRAME)


def test_json_array_files_are_read_too(tmp_path):
    path = tmp_path / "data.json"
    path.write_text(json.dumps(FRAME.to_dict(orient="records")))
    pd.testing.assert_frame_equal(read_table(path), FRAME)


def test_headerless_file_with_named_columns(tmp_path):
    path = tmp_path / "cola.tsv"
    path.write_text("gj04\t1\t\tThe sailors rode the breeze clear of the rocks.\ngj04\t0\t*\tThe more books.\n")
    frame = read_table(path, ["source", "label", "mark", "sentence"])
    assert frame["sentence"].tolist()[1] == "The more books."
    assert frame["label"].tolist() == [1, 0]
    with pytest.raises(BertclfError, match="has 4 columns but --columns names 3"):
        read_table(path, ["source", "label", "sentence"])


def test_na_like_texts_stay_texts(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\nNA,a\nnull,b\n")
    assert read_table(path)["text"].tolist() == ["NA", "null"]


@pytest.mark.parametrize(
    ("content", "name", "fragment"),
    [
        (None, "missing.csv", "file not found"),
        ("", "empty.csv", "file is empty"),
        ("text,label\n", "header_only.csv", "no data rows"),
        ("a,b", "data.xlsx", "unsupported file extension '.xlsx'"),
        ("{not json", "data.jsonl", "cannot read"),
    ],
)
def test_unreadable_files_give_one_line_errors(tmp_path, content, name, fragment):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(BertclfError, match=fragment) as raised:
        read_table(path)
    assert "\n" not in str(raised.value)


def test_text_columns_are_joined_with_the_separator():
    config = ClassifierConfig(text_column=["title", "body"], text_separator=" | ")
    assert join_texts(FRAME, config, "f")[0] == "Goal! | late winner"


def test_unknown_column_lists_the_available_ones():
    with pytest.raises(BertclfError, match="column 'text' not found in f; available columns: title, body, label"):
        join_texts(FRAME, ClassifierConfig(), "f")


def test_non_text_values_are_rejected():
    frame = pd.DataFrame({"text": ["fine", 42], "label": ["a", "b"]})
    with pytest.raises(BertclfError, match="non-text value in row 2: 42"):
        load_examples(frame, ClassifierConfig())


def test_empty_texts_are_skipped_with_a_warning(caplog):
    frame = pd.DataFrame({"text": ["one", "  ", None, "two"], "label": ["a", "b", "a", "b"]})
    with caplog.at_level(logging.WARNING, logger="bertclf"):
        examples = load_examples(frame, ClassifierConfig())
    assert examples.texts == ["one", "two"] and examples.labels == ["a", "b"]
    assert "skipped 2 rows" in caplog.text


def test_all_empty_texts_and_missing_labels_are_errors():
    with pytest.raises(BertclfError, match="every text"):
        load_examples(pd.DataFrame({"text": ["", " "], "label": ["a", "b"]}), ClassifierConfig())
    with pytest.raises(BertclfError, match="empty in 1 rows"):
        load_examples(pd.DataFrame({"text": ["x", "y"], "label": ["a", None]}), ClassifierConfig())


def test_integer_labels_keep_their_type_and_numeric_order():
    examples = load_examples(pd.DataFrame({"text": list("abcd"), "label": np.array([10, 2, 2, 10])}),
                             ClassifierConfig())
    classes = sorted_classes(examples.labels)
    assert classes == [2, 10] and all(type(label) is int for label in classes)
    assert encode_labels(examples, classes).tolist() == [1, 0, 0, 1]


def test_single_class_and_unseen_labels_are_errors():
    with pytest.raises(BertclfError, match="single class"):
        check_classes(["only"], "the training data")
    examples = load_examples(pd.DataFrame({"text": ["x", "y"], "label": ["a", "zzz"]}), ClassifierConfig())
    examples.name = "val"
    with pytest.raises(BertclfError, match="val has labels that training never saw: 'zzz'"):
        encode_labels(examples, ["a", "b"])


def test_split_is_stratified_seeded_and_sized():
    labels = ["a"] * 80 + ["b"] * 20
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(100)], "label": labels})
    config = ClassifierConfig(seed=5)
    splits = make_splits(config, frame, None, None)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (80, 10, 10)
    assert splits.val.labels.count("b") == 2 and splits.test.labels.count("b") == 2
    again = make_splits(config, frame, None, None)
    assert again.val.texts == splits.val.texts
    assert not set(splits.train.texts) & (set(splits.val.texts) | set(splits.test.texts))


def test_given_parts_are_not_split_and_test_size_zero_means_no_test():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(40)], "label": ["a", "b"] * 20})
    splits = make_splits(ClassifierConfig(test_size=0), frame, frame.head(6), None)
    assert len(splits.train) == 40 and len(splits.val) == 6 and splits.test is None


def test_leakage_between_parts_is_reported(caplog):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": ["a", "b"] * 10})
    with caplog.at_level(logging.WARNING, logger="bertclf"):
        make_splits(ClassifierConfig(), frame, frame.head(4), frame.tail(3))
    assert "4 of 4 val texts also appear in the training data" in caplog.text
    assert "3 of 3 test texts" in caplog.text


def test_rare_classes_fall_back_to_a_random_split(caplog):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "label": ["a"] * 29 + ["b"]})
    with caplog.at_level(logging.WARNING, logger="bertclf"):
        splits = make_splits(ClassifierConfig(), frame, None, None)
    assert "too rare for a stratified" in caplog.text
    assert len(splits.train) + len(splits.val) + len(splits.test) == 30


def test_write_table_is_atomic_and_rejects_unknown_extensions(tmp_path):
    with pytest.raises(BertclfError, match="unsupported output extension"):
        write_table(FRAME, tmp_path / "out.xlsx")
    write_table(FRAME, tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]
