import json
import logging
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bertclf.config import ClassifierConfig
from bertclf.data import (
    encode_labels,
    iter_table,
    iterative_split,
    join_texts,
    load_examples,
    make_splits,
    read_label_names,
    read_table,
    sorted_classes,
    training_classes,
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
    assert frame["label"].tolist() == ["1", "0"]  # fields as written; the label reader makes them integers
    config = ClassifierConfig(columns=["source", "label", "mark", "sentence"], text_column=["sentence"])
    assert load_examples(path, config).labels == [1, 0]
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
        ("{not json", "data.jsonl", "line 1 of .*data.jsonl is not valid JSON: Expecting property name"),
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


def test_numbers_in_a_text_column_are_the_texts_of_their_digits(tmp_path):
    (tmp_path / "codes.jsonl").write_text('{"text": 5, "label": "a"}\n{"text": 4.25, "label": "b"}\n'
                                          '{"text": "007", "label": "a"}\n')
    assert load_examples(tmp_path / "codes.jsonl", ClassifierConfig()).texts == ["5", "4.25", "007"]
    pd.DataFrame({"text": [12, 3], "label": ["a", "b"]}).to_parquet(tmp_path / "codes.parquet")
    assert load_examples(tmp_path / "codes.parquet", ClassifierConfig()).texts == ["12", "3"]


@pytest.mark.parametrize("value", [True, [1, 2], {"a": 1}])
def test_non_text_values_are_rejected(value):
    frame = pd.DataFrame({"text": ["fine", value], "label": ["a", "b"]})
    with pytest.raises(BertclfError, match=rf"non-text value in row 2: {re.escape(repr(value))}"):
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
        training_classes(load_examples(pd.DataFrame({"text": ["x", "y"], "label": ["only", "only"]}),
                                       ClassifierConfig()), ClassifierConfig())
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


def test_a_class_with_one_example_stays_in_training():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(40)], "label": ["a"] * 20 + ["b"] * 19 + ["c"]})
    for seed in range(40):
        splits = make_splits(ClassifierConfig(seed=seed), frame, None, None)
        classes = training_classes(splits.train, ClassifierConfig())
        assert classes == ["a", "b", "c"], f"seed {seed}"
        for part in (splits.val, splits.test):
            encode_labels(part, classes)  # no label that training never saw
        assert len(splits.train) + len(splits.val) + len(splits.test) == 40


def test_a_multilabel_label_with_one_example_stays_in_training():
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(30)],
                          "label": [["a"]] * 15 + [["b"]] * 14 + [["a", "rare"]]})
    for seed in range(10):
        splits = make_splits(ClassifierConfig(seed=seed), frame, None, None)
        assert "rare" in training_classes(splits.train, ClassifierConfig())


def test_tsv_fields_are_not_quoted_so_a_stray_quote_merges_nothing(tmp_path):
    lines = ['"best day ever\t1', 'no quotes here\t0', 'a "quoted" word\t1', 'closing" quote\t0']
    (tmp_path / "tweets.tsv").write_text("\n".join(lines) + "\n")
    frame = read_table(tmp_path / "tweets.tsv", ["text", "label"])
    assert frame["text"].tolist() == ['"best day ever', "no quotes here", 'a "quoted" word', 'closing" quote']
    merged = read_table(tmp_path / "tweets.tsv", ["text", "label"], quoting="csv")
    assert len(merged) < len(lines)  # what default CSV quoting does to such a file


def test_rows_read_across_line_breaks_are_counted_in_a_warning(tmp_path, caplog):
    (tmp_path / "data.csv").write_text('text,label\n"two\nlines",a\n"stray quote,b\nnext,a\nclosing" here,b\n')
    with caplog.at_level(logging.WARNING, logger="bertclf"):
        frame = read_table(tmp_path / "data.csv")
    assert len(frame) == 2
    assert "2 rows of data.csv span several lines (3 line breaks" in caplog.text and "--quoting none" in caplog.text
    assert len(read_table(tmp_path / "data.csv", quoting="none")) == 5  # one row per line


@pytest.mark.parametrize("matrix", [np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]]), [[1, 0, 1], [0, 1, 0], [1, 1, 0]],
                                    [np.array([1, 0, 1]), np.array([0, 1, 0]), np.array([1, 1, 0])]])
def test_a_2d_indicator_matrix_means_multilabel(matrix):
    examples = load_examples((["x", "y", "z"], matrix), ClassifierConfig())
    assert examples.multilabel and examples.labels == [(0, 2), (1,), (0, 1)]


def test_other_python_labels_keep_their_meaning():
    assert load_examples((["x", "y"], np.array([3, 5])), ClassifierConfig()).labels == [3, 5]
    assert load_examples((["x", "y"], np.array([[3], [5]])), ClassifierConfig()).labels == [3, 5]
    names = load_examples((["x", "y"], [["sport", "tech"], ["food"]]), ClassifierConfig())
    assert names.multilabel and names.labels == [("sport", "tech"), ("food",)]
    with pytest.raises(BertclfError, match="0/1 indicator matrix"):
        load_examples((["x", "y"], np.array([[0, 2], [1, 0]])), ClassifierConfig())
    with pytest.raises(BertclfError, match="expected a sequence of labels, got NoneType"):
        load_examples((["x", "y"], None), ClassifierConfig())


def test_write_table_is_atomic_and_rejects_unknown_extensions(tmp_path):
    with pytest.raises(BertclfError, match="unsupported output extension"):
        write_table(FRAME, tmp_path / "out.xlsx")
    write_table(FRAME, tmp_path / "out.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


# --- multilabel -------------------------------------------------------------------------------------------


def multilabel_config(**options):
    return ClassifierConfig(task="multilabel", **options)


@pytest.mark.parametrize(
    ("cells", "options"),
    [
        (["sport,politics", "tech", "politics , sport"], {}),  # a separated list in one column
        (["sport|politics", "tech", "politics|sport"], {"label_sep": "|"}),
        (['["sport", "politics"]', '["tech"]', '["politics", "sport"]'], {}),  # JSON lists
        ([["sport", "politics"], ["tech"], ["politics", "sport"]], {}),  # real lists (JSONL, Parquet, frames)
    ],
)
def test_multilabel_cells_become_label_tuples(cells, options):
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": cells})
    examples = load_examples(frame, multilabel_config(**options))
    assert examples.multilabel
    assert examples.labels == [("sport", "politics"), ("tech",), ("politics", "sport")]


def test_lists_are_detected_without_task_multilabel(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": ["x", "y"]}\n{"text": "b", "label": ["y"]}\n')
    examples = load_examples(path, ClassifierConfig())
    assert examples.multilabel and examples.labels == [("x", "y"), ("y",)]
    with pytest.raises(BertclfError, match="holds a list in row 1; pass --task multilabel"):
        load_examples(path, ClassifierConfig(task="multiclass"))


def test_integer_ids_with_a_label_names_file(tmp_path):
    names = tmp_path / "labels.txt"
    names.write_text("admiration\namusement\nanger\n")
    path = tmp_path / "train.tsv"
    path.write_text("so funny\t1\tc1\nhow dare you, so funny\t2,1\tc2\n")
    config = multilabel_config(columns=["text", "labels", "id"], label_column="labels", label_names=str(names))
    examples = load_examples(path, config)
    assert examples.labels == [("amusement",), ("anger", "amusement")]
    assert training_classes(examples, config) == ["admiration", "amusement", "anger"]
    matrix = encode_labels(examples, training_classes(examples, config))
    assert matrix.tolist() == [[0, 1, 0], [0, 1, 1]] and matrix.dtype == np.float32


def test_label_ids_outside_the_names_file_are_named(tmp_path):
    names = tmp_path / "labels.txt"
    names.write_text("a\nb\n")
    frame = pd.DataFrame({"text": ["x", "y"], "label": ["0", "0,7"]})
    with pytest.raises(BertclfError, match=r"label 7 in row 2 of DataFrame is neither a name in .*labels\.txt "
                                           r"nor a position in it \(0 to 1\)"):
        load_examples(frame, multilabel_config(label_names=str(names)))
    with pytest.raises(BertclfError, match="label 'c' in row 1"):
        load_examples(pd.DataFrame({"text": ["x"], "label": ["c"]}), ClassifierConfig(label_names=str(names)))


def test_indicator_columns(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b", "c"], "sport": [1, 0, 1], "tech": [0, 0, 1], "food": [1.0, 1.0, 0.0]})
    config = ClassifierConfig(label_columns=["sport", "tech", "food"])
    examples = load_examples(frame, config)
    assert examples.multilabel
    assert examples.labels == [("sport", "food"), ("food",), ("sport", "tech")]
    assert training_classes(examples, config) == ["sport", "tech", "food"]


@pytest.mark.parametrize("bad", [2, "yes", None, 0.5])
def test_indicator_columns_must_hold_zero_or_one(bad):
    frame = pd.DataFrame({"text": ["a", "b"], "sport": [1, bad], "tech": [0, 1]})
    with pytest.raises(BertclfError, match=r"label column 'sport' of DataFrame holds .* in row 2; label columns "
                                           r"must hold 0 or 1"):
        load_examples(frame, ClassifierConfig(label_columns=["sport", "tech"]))


def test_texts_without_labels_are_an_error_unless_allowed():
    frame = pd.DataFrame({"text": ["a", "b", "c"], "label": ["x", "", "[]"]})
    with pytest.raises(BertclfError, match="2 rows of DataFrame carry no label \\(first: row 2\\); pass "
                                           "--allow-empty-labels"):
        load_examples(frame, multilabel_config())
    examples = load_examples(frame, multilabel_config(allow_empty_labels=True))
    assert examples.labels == [("x",), (), ()]


def test_malformed_json_list_is_named():
    with pytest.raises(BertclfError, match=r"row 1 of DataFrame: .* is not a valid JSON list"):
        load_examples(pd.DataFrame({"text": ["a"], "label": ['["x", ']}), multilabel_config())


def test_unseen_labels_in_multilabel_validation_data():
    train = load_examples(pd.DataFrame({"text": ["a", "b"], "label": ["x,y", "y"]}), multilabel_config())
    val = load_examples(pd.DataFrame({"text": ["c"], "label": ["x,z"]}), multilabel_config())
    val.name = "val"
    with pytest.raises(BertclfError, match="val has labels that training never saw: 'z'"):
        encode_labels(val, training_classes(train, multilabel_config()))


def test_iterative_split_keeps_rare_labels_in_every_part():
    rng = np.random.default_rng(0)
    matrix = (rng.random((1000, 12)) < np.linspace(0.4, 0.012, 12)).astype(np.float32)
    kept, held = iterative_split(matrix, 0.1, seed=3)
    assert sorted([*kept, *held]) == list(range(1000))
    assert abs(len(held) - 100) <= 5  # labels come first, so the row count is close, not exact
    shares = matrix[held].sum(axis=0) / matrix.sum(axis=0)
    assert (matrix[held].sum(axis=0) >= 1).all()  # even the rarest label (about 12 rows) reaches the held part
    assert np.abs(shares - 0.1).max() < 0.05
    again = iterative_split(matrix, 0.1, seed=3)
    assert (again[1] == held).all()


def test_multilabel_splits_are_stratified_and_validation_is_read_alike():
    labels = ["common"] * 60 + ["common,rare"] * 10 + ["other"] * 30
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(100)], "label": labels})
    splits = make_splits(multilabel_config(), frame, None, None)
    for part in (splits.val, splits.test):
        assert part.multilabel and sum("rare" in labels for labels in part.labels) >= 1
    # a validation file read after a multilabel training file is multilabel too, even without --task
    auto = make_splits(ClassifierConfig(), pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [["x"], ["y"],
                                                          ["x", "y"], ["y"]]}), pd.DataFrame(
        {"text": ["e"], "label": ["x,y"]}), None)
    assert auto.val.labels == [("x", "y")]


def test_a_label_names_file_that_is_not_utf8_is_named(tmp_path):
    (tmp_path / "labels.txt").write_bytes(b"caf\xe9\nsport\n")
    with pytest.raises(BertclfError, match="is not UTF-8 text"):
        read_label_names(tmp_path / "labels.txt")


# --- values as written: label codes, digit texts, JSON files, separators -----------------------------------------


def test_label_codes_in_text_files_stay_the_strings_they_are(tmp_path):
    (tmp_path / "codes.csv").write_text("text,label\na,01\nb,1\nc,1.0\nd,007\ne,1e3\nf,7\n")
    examples = load_examples(tmp_path / "codes.csv", ClassifierConfig())
    assert examples.labels == ["01", "1", "1.0", "007", "1e3", "7"]  # six classes, none merged or renumbered
    assert len(training_classes(examples, ClassifierConfig())) == 6
    (tmp_path / "ints.tsv").write_text("text\tlabel\na\t0\nb\t12\nc\t-3\n")
    labels = load_examples(tmp_path / "ints.tsv", ClassifierConfig()).labels
    assert labels == [0, 12, -3] and all(type(label) is int for label in labels)
    # labels given from Python keep their Python types
    assert load_examples(pd.DataFrame({"text": ["a", "b"], "label": ["0", "1"]}), ClassifierConfig()).labels == \
        ["0", "1"]
    multilabel = load_examples(pd.DataFrame({"text": ["a", "b"], "label": ["1,2", "01,2"]}), multilabel_config())
    assert multilabel.labels == [("1", "2"), ("01", "2")]


@pytest.mark.parametrize("label", ["①", "²", "--1", "٣", "1_000"])
def test_digit_like_labels_are_labels(tmp_path, label):
    (tmp_path / "data.csv").write_text(f"text,label\na,{label}\nb,2\n")
    assert load_examples(tmp_path / "data.csv", ClassifierConfig()).labels == [label, "2"]
    assert load_examples(tmp_path / "data.csv", multilabel_config()).labels == [(label,), ("2",)]
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\n")
    with pytest.raises(BertclfError, match=f"label '{label}' in row 1 of data.csv is neither a name"):
        load_examples(tmp_path / "data.csv", ClassifierConfig(label_names=str(names)))


def test_a_parquet_column_of_structs_is_not_labels(tmp_path):
    pq.write_table(pa.table({"text": ["a", "b"], "label": [[{"k": 1}], [{"k": 2}]]}), tmp_path / "lists.parquet")
    with pytest.raises(BertclfError, match=r"label column 'label' of lists.parquet holds a dict in row 1: "
                                           r"\{'k': 1\}; labels are strings or integers"):
        load_examples(tmp_path / "lists.parquet", ClassifierConfig())
    pq.write_table(pa.table({"text": ["a", "b"], "label": [{"k": 1}, {"k": 2}]}), tmp_path / "structs.parquet")
    with pytest.raises(BertclfError, match="holds a dict in row 1"):
        load_examples(tmp_path / "structs.parquet", ClassifierConfig())


def test_only_a_column_of_json_lists_is_multilabel(tmp_path, caplog):
    (tmp_path / "words.csv").write_text("text,label\na,[urgent]\nb,[later]\n")
    examples = load_examples(tmp_path / "words.csv", ClassifierConfig())
    assert not examples.multilabel and examples.labels == ["[urgent]", "[later]"]
    (tmp_path / "some.csv").write_text("text,label\na,[1]\nb,spam\nc,ham\n")
    with caplog.at_level(logging.WARNING, logger="bertclf"):
        examples = load_examples(tmp_path / "some.csv", ClassifierConfig())
    assert not examples.multilabel and examples.labels == ["[1]", "spam", "ham"]
    assert "1 labels of column 'label' of some.csv look like JSON lists (e.g. [1])" in caplog.text
    (tmp_path / "lists.csv").write_text('text,label\na,[1]\nb,"[1, 2]"\nc,[]\n')
    assert load_examples(tmp_path / "lists.csv", ClassifierConfig(allow_empty_labels=True)).labels == \
        [(1,), (1, 2), ()]
    assert load_examples(tmp_path / "lists.csv", ClassifierConfig(task="multiclass")).labels == ["[1]", "[1, 2]", "[]"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_all_digit_texts_are_texts_in_every_part(tmp_path, suffix):
    frame = pd.DataFrame({"text": ["one", "two", "007", "12", "3"], "label": ["a", "b", "a", "b", "a"]})
    path = tmp_path / f"data{suffix}"
    write_table(frame, path)
    parts = [join_texts(part, ClassifierConfig(), path.name) for part in iter_table(path, rows=2)]
    assert parts == ([["one", "two", "007", "12", "3"]] if suffix == ".json" else [["one", "two"], ["007", "12"],
                                                                                     ["3"]])  # .json: read whole


def test_integer_columns_with_gaps_stay_integers(tmp_path):
    """An id 7 in JSON or Parquet comes back as 7, not 7.0, also when some rows lack it."""
    (tmp_path / "data.jsonl").write_text('{"text": "12", "id": 1}\n{"text": "x"}\n{"text": "3", "id": 3}\n')
    pq.write_table(pa.table({"text": ["12", "x", "3"], "id": [1, None, 3]}), tmp_path / "data.parquet")
    for name in ("data.jsonl", "data.parquet"):
        for frame in (read_table(tmp_path / name), pd.concat(iter_table(tmp_path / name, rows=2))):
            ids = frame["id"].tolist()
            assert ids[0] == 1 and type(ids[0]) is int and pd.isna(ids[1]), name
            assert join_texts(frame, ClassifierConfig(), name) == ["12", "x", "3"]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json"])
def test_a_utf8_byte_order_mark_is_no_text(tmp_path, suffix):
    path = tmp_path / f"data{suffix}"
    write_table(FRAME, path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    pd.testing.assert_frame_equal(read_table(path), FRAME)
    pd.testing.assert_frame_equal(pd.concat(iter_table(path, rows=2)), FRAME)


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("data.jsonl", '{"text": "a"}\n\n{"text": "b", "label": \n', r"line 3 of .*data.jsonl is not valid JSON: "
                                                                    r"Expecting value \(column 24\)"),
        ("data.jsonl", '{"text": "a"}\n["b"]\n', "line 2 of .*data.jsonl holds a JSON list, not an object"),
        ("data.json", '[{"text": "a"},\n {"text": "b" "label": 1}]', r"data.json is not valid JSON: Expecting ',' "
                                                                      r"delimiter \(line 2 column 15\)"),
        ("data.json", '{"text": "a"}\n{"text": "b",}\n', "line 2 of .*data.json is not valid JSON"),
        ("data.json", '["a", "b"]', "data.json is a JSON list holding a string; expected one object per row"),
        ("data.csv", "text;label\nhello, world;a\nfine;b\n", "data.csv is separated by semicolons, not commas"),
        ("data.csv", "text;label\nhello;a\n", "data.csv is separated by semicolons"),
        ("data.csv", "text,label\nhello,a\nhello, world,b\n", "line 3 of .*data.csv has 3 fields but the header "
                                                               "names 2; a text that holds a comma must be in double"),
        ("data.csv", "text,label\nhello, world,b\nhello,a\n", "the rows of .*data.csv have more fields than its "
                                                               r"header names \(2\)"),
        ("data.tsv", "text\tlabel\nhello\ta\tb\n", "does a text hold a tab"),
        ("data.csv", 'text,label\nhello,a\n"oops,b\nmore,c\n', "ends inside a quoted text that starts on line 3"),
    ],
)
def test_malformed_files_name_the_line(tmp_path, name, content, fragment):
    (tmp_path / name).write_text(content)
    for read in (lambda: read_table(tmp_path / name), lambda: list(iter_table(tmp_path / name, rows=1))):
        with pytest.raises(BertclfError, match=fragment) as raised:
            read()
        assert "\n" not in str(raised.value) and "C error" not in str(raised.value)


def test_repeated_column_names_and_semicolons_with_named_columns(tmp_path):
    (tmp_path / "data.csv").write_text("hello;a\nfine;b\n")
    with pytest.raises(BertclfError, match="--columns names 'text' twice"):
        read_table(tmp_path / "data.csv", ["text", "text"])
    with pytest.raises(BertclfError, match="separated by semicolons"):
        read_table(tmp_path / "data.csv", ["text", "label"])
    assert read_table(tmp_path / "data.csv", ["text"])["text"].tolist() == ["hello;a", "fine;b"]
