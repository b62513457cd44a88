"""Prediction of files in parts: every column and the input order kept across parts, a bad row named by its row in
the file, nothing written when a stream is interrupted."""

import itertools
import json
import signal

import pandas as pd
import pytest

from bertclf import ClassifierConfig, TextClassifier
from bertclf.data import DELIMITED_SUFFIXES, TableWriter, read_table
from bertclf.errors import BertclfError, Interrupted
from bertclf.prediction import PredictionColumns, predict_parts, prediction_frame, read_parts
from tests.helpers import assert_one_line_error, make_texts, run_cli


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_streaming_keeps_order_and_every_column_across_parts(shared_run, tmp_path, suffix):
    frame = make_texts(50, seed=4)
    frame.insert(0, "id", range(50))
    frame["note"] = [f"n{i}" for i in range(50)]
    source = tmp_path / f"new{suffix}"
    {".csv": lambda: frame.to_csv(source, index=False), ".tsv": lambda: frame.to_csv(source, sep="\t", index=False),
     ".jsonl": lambda: frame.to_json(source, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(source)}[suffix]()
    whole = tmp_path / f"whole{suffix}"
    assert run_cli(["predict", shared_run, "--input", source, "--output", whole])[0] == 0  # one part
    classifier = TextClassifier.load(shared_run)
    columns = PredictionColumns(classifier.classes_, classifier.task_ == "multilabel", classifier.config.label_sep,
                                joined_labels=suffix in DELIMITED_SUFFIXES)
    parts, sizes = tmp_path / f"parts{suffix}", []
    with TableWriter(parts) as writer:
        def write(part):
            sizes.append(len(part))
            writer.write(part)

        written = predict_parts(classifier.predict_proba, classifier.labels_from_probabilities,
                                read_parts(source, classifier.config, part_rows=7), write, columns)
    assert written == 50 and sizes == [7] * 7 + [1]  # 8 parts, the last one short
    read = {".csv": pd.read_csv, ".tsv": lambda path: pd.read_csv(path, sep="\t"),
            ".jsonl": lambda path: pd.read_json(path, lines=True), ".parquet": pd.read_parquet}[suffix]
    result = read(parts)
    assert list(result.columns[:4]) == ["id", "text", "label", "note"] and result["id"].tolist() == list(range(50))
    pd.testing.assert_frame_equal(result, read(whole))


def test_an_interrupted_stream_leaves_no_output(shared_run, tmp_path):
    make_texts(50, seed=4).to_csv(tmp_path / "new.csv", index=False)
    classifier = TextClassifier.load(shared_run)
    columns = PredictionColumns(classifier.classes_, classifier.task_ == "multilabel", classifier.config.label_sep,
                                joined_labels=False)
    parts_seen = []

    def interrupted_at_the_third_part(texts):
        parts_seen.append(len(texts))
        if len(parts_seen) == 3:  # a SIGTERM while the third part is predicted: two parts are written by then
            raise Interrupted(signal.SIGTERM)
        return classifier.predict_proba(texts)

    with pytest.raises(Interrupted), TableWriter(tmp_path / "out.jsonl") as writer:
        predict_parts(interrupted_at_the_third_part, classifier.labels_from_probabilities,
                      read_parts(tmp_path / "new.csv", classifier.config, part_rows=10), writer.write, columns)
    assert parts_seen == [10, 10, 10]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.csv"]  # no output, no staging file


def test_a_bad_row_in_a_later_part_is_named_by_its_row_in_the_file(shared_run, tmp_path):
    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": f"text {i}" if i != 23 else True}) + "\n"
                                                for i in range(30)))
    parts = read_parts(tmp_path / "new.jsonl", ClassifierConfig(), part_rows=10)
    assert [len(frame) for frame, _ in itertools.islice(parts, 2)] == [10, 10]
    with pytest.raises(BertclfError, match="non-text value in row 24: True"):
        next(parts)  # the third part, rows 21 to 30
    code, _, err = run_cli(["predict", shared_run, "--input", tmp_path / "new.jsonl", "--output", tmp_path / "o.csv"])
    assert_one_line_error(code, err, "non-text value in row 24: True")
    assert not (tmp_path / "o.csv").exists()



@pytest.mark.parametrize("column", ["predicted_label", "proba_sport"])
def test_an_input_column_that_prediction_adds_is_refused_never_replaced(shared_run, tmp_path, column):
    frame = make_texts(12, seed=4)
    frame[column] = "mine"
    frame.to_csv(tmp_path / "new.csv", index=False)
    output = tmp_path / "out.csv"
    code, _, err = run_cli(["predict", shared_run, "--input", tmp_path / "new.csv", "--output", output])
    assert_one_line_error(code, err, f"new.csv already has a column '{column}', which predict adds")
    assert not output.exists()
    classifier = TextClassifier.load(shared_run)
    columns = PredictionColumns(classifier.classes_, False, "|", joined_labels=True)
    with pytest.raises(BertclfError, match=f"already has a column '{column}'"):  # the API and Ray Data alike
        prediction_frame(frame, classifier.predict_proba(frame["text"].tolist()), ["x"] * 12, columns)


def test_a_text_column_named_like_a_prediction_is_refused_not_dropped(shared_run, tmp_path):
    make_texts(12, seed=4).rename(columns={"text": "predicted_label"}).to_csv(tmp_path / "new.csv", index=False)
    code, out, err = run_cli(["predict", shared_run, "--input", tmp_path / "new.csv",
                              "--text-column", "predicted_label"])
    assert_one_line_error(code, err, "already has a column 'predicted_label'")
    assert out == ""


def test_input_the_output_cannot_hold_in_the_last_part_fails_before_anything_is_predicted(shared_run, tmp_path,
                                                                                        monkeypatch):
    frame = make_texts(20, seed=4)
    frame.loc[17, "text"] = "a text\twith a tab"  # quoted in the CSV, in the fourth part of 5 rows
    frame.to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.setattr("bertclf.prediction.PART_ROWS", 5)
    predicted = []
    original = TextClassifier.predict_proba
    monkeypatch.setattr(TextClassifier, "predict_proba", lambda self, texts: predicted.append(texts) or
                        original(self, texts))
    code, _, err = run_cli(["predict", shared_run, "--input", tmp_path / "new.csv", "--output", tmp_path / "o.tsv"])
    assert_one_line_error(code, err, "column 'text' holds a tab or a line break in row 18")
    assert predicted == [] and sorted(path.name for path in tmp_path.iterdir()) == ["new.csv"]
    code, _, err = run_cli(["predict", shared_run, "--input", tmp_path / "new.csv", "--output", tmp_path / "o.csv"])
    assert code == 0, err
    assert len(predicted) == 4 and read_table(tmp_path / "o.csv")["text"].tolist() == frame["text"].tolist()
