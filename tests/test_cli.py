"""The command line end to end (train -> evaluate -> predict) and one test per bad input: one line, exit 2."""

import io
import json
import sys

import pandas as pd
import pytest

from bertclf.cli import main
from tests.conftest import make_multilabel_texts, make_tail_texts, make_texts


def run(args, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def tiny_flags(options):
    flags = []
    for name, value in options.items():
        flags += [f"--{name.replace('_', '-')}", value]
    return flags


@pytest.fixture
def trained_run(tmp_path, text_files, tiny_options, capsys):
    output = tmp_path / "run"
    code, out, err = run(["train", "--train", text_files["train"], "--val", text_files["val"], "--test",
                          text_files["test"], "--output", output, *tiny_flags(tiny_options)], capsys)
    assert code == 0, err
    assert "== test" in out and f"model saved to {output}" in out
    return output


def test_train_evaluate_predict_end_to_end(trained_run, text_files, tmp_path, capsys):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    assert {"accuracy", "f1_macro", "f1_micro", "mcc"} <= set(metrics["val"])

    code, out, _ = run(["evaluate", trained_run, "--data", text_files["test"], "--output", tmp_path / "m.json"],
                       capsys)
    assert code == 0 and "accuracy" in out
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    predictions = tmp_path / "predictions.csv"
    code, _, _ = run(["predict", trained_run, "--input", text_files["test"], "--output", predictions], capsys)
    assert code == 0
    result = pd.read_csv(predictions)
    source = pd.read_csv(text_files["test"])
    assert result["text"].tolist() == source["text"].tolist()  # input order kept
    assert {"predicted_label", "proba_food", "proba_sport", "proba_tech"} <= set(result.columns)
    assert (result["predicted_label"] == source["label"]).mean() == pytest.approx(metrics["test"]["accuracy"])


def test_predict_reads_stdin_lines_and_writes_jsonl(trained_run, tmp_path, capsys, monkeypatch):
    output = tmp_path / "p.jsonl"
    code, _, err = run(["predict", trained_run, "--input", "-", "--output", output], capsys,
                       stdin="the goal of the match\n\nsoftware and data\n", monkeypatch=monkeypatch)
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["the goal of the match", "software and data"]
    assert all(abs(sum(v for k, v in row.items() if k.startswith("proba_")) - 1) < 1e-4 for row in rows)


def test_predict_to_stdout(trained_run, capsys, monkeypatch):
    code, out, _ = run(["predict", trained_run, "--input", "-"], capsys, stdin="bread and soup\n",
                       monkeypatch=monkeypatch)
    assert code == 0 and out.splitlines()[0].startswith("text,predicted_label")


def test_config_file_with_flag_overrides(tmp_path, text_files, tiny_options, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("".join(f"{key}: {value}\n" for key, value in tiny_options.items()) + "epochs: 9\n")
    code, _, err = run(["train", "--config", config, "--train", text_files["train"], "--epochs", "1",
                        "--output", tmp_path / "run"], capsys)
    assert code == 0, err
    saved = (tmp_path / "run" / "bertclf.yaml").read_text()
    assert "epochs: 1\n" in saved and "seed: 7\n" in saved


def test_headerless_tsv_with_columns(tmp_path, tiny_options, capsys):
    frame = make_texts(90, seed=5)
    frame.insert(0, "source", "x")
    frame[["source", "label", "text"]].to_csv(tmp_path / "data.tsv", sep="\t", header=False, index=False)
    code, _out, err = run(["train", "--train", tmp_path / "data.tsv", "--columns", "source,label,text",
                          "--output", tmp_path / "run", *tiny_flags({**tiny_options, "epochs": 1})], capsys)
    assert code == 0, err
    assert "data: train 72, val 9 (held out), test 9 (held out)" in err


def test_demo_runs_on_the_bundled_data(tmp_path, tiny_options, capsys):
    code, out, err = run(["demo", "--output", tmp_path / "demo", *tiny_flags({**tiny_options, "epochs": 1})], capsys)
    assert code == 0, err
    assert "predictions on new tickets" in out and "model saved to" in out
    assert "classes (5): account, billing, feature_request, shipping, technical" in err


def assert_one_line_error(code, err, fragment):
    """Exit 2, no traceback, and the error is the last line of stderr (progress lines may come before it)."""
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bertclf: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert fragment in errors[0]


@pytest.fixture
def bad_inputs(tmp_path, text_files):
    """Files that each break one rule."""
    files = {}

    def write(name, content):
        files[name] = tmp_path / name
        files[name].write_text(content)

    write("empty.csv", "")
    write("data.xlsx", "text,label\n")
    write("empty_texts.csv", "text,label\n,a\n  ,b\n")
    write("missing_labels.csv", "text,label\nhello,a\nworld,\n")
    write("single_class.csv", "text,label\n" + "".join(f"text {i},a\n" for i in range(20)))
    unseen = pd.read_csv(text_files["val"])
    unseen.loc[0, "label"] = "weather"
    files["unseen.csv"] = tmp_path / "unseen.csv"
    unseen.to_csv(files["unseen.csv"], index=False)
    return files


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing_file", "file not found"),
        ("extension", "unsupported file extension '.xlsx'"),
        ("empty_file", "file is empty"),
        ("unknown_column", "column 'body' not found in train.csv; available columns: text, label"),
        ("empty_texts", "every text in empty_texts.csv is empty"),
        ("missing_labels", "is empty in 1 rows"),
        ("single_class", "single class"),
        ("unseen_label", "val has labels that training never saw: 'weather'"),
        ("unwritable_output", "is a file, not a folder"),
        ("existing_output", "already exists"),
        ("missing_model", "model directory not found"),
        ("corrupt_model", "has no config.json"),
        ("unknown_model_offline", "cannot load model 'nobody/no-such-model'"),
        ("bad_option", "invalid epochs"),
        ("bad_stride", "--stride 30 must be below the 22 content tokens of a window (--max-length 24)"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(case, fragment, tmp_path, text_files, bad_inputs, tiny_model,
                                                   capsys):
    output = tmp_path / "out"
    args = {"--train": text_files["train"], "--val": text_files["val"], "--model": tiny_model, "--output": output,
            "--epochs": 1}
    if case == "missing_file":
        args["--train"] = tmp_path / "nope.csv"
    elif case == "extension":
        args["--train"] = bad_inputs["data.xlsx"]
    elif case == "empty_file":
        args["--train"] = bad_inputs["empty.csv"]
    elif case == "unknown_column":
        args["--text-column"] = "body"
    elif case in ("empty_texts", "missing_labels", "single_class"):
        args["--train"] = bad_inputs[f"{case}.csv"]
    elif case == "unseen_label":
        args["--val"] = bad_inputs["unseen.csv"]
    elif case == "unwritable_output":
        blocker = tmp_path / "a_file"
        blocker.write_text("")
        args["--output"] = blocker / "run"
    elif case == "existing_output":
        output.mkdir()
        (output / "something").write_text("")
    elif case == "missing_model":
        args["--model"] = tmp_path / "no" / "model"
    elif case == "corrupt_model":
        (tmp_path / "broken").mkdir()
        args["--model"] = tmp_path / "broken"
    elif case == "unknown_model_offline":
        args["--model"] = "nobody/no-such-model"
    elif case == "bad_option":
        args["--epochs"] = "zero"
    elif case == "bad_stride":
        args.update({"--long-text": "chunks", "--stride": 30, "--max-length": 24})
    flags = [str(item) for pair in args.items() for item in pair]
    code, _, err = run(["train", *flags], capsys)
    assert_one_line_error(code, err, fragment)
    if case != "existing_output":
        assert not output.exists()  # no half-written run directory


def test_corrupt_run_directory_is_reported(trained_run, text_files, capsys):
    (trained_run / "model.safetensors").write_bytes(b"garbage")
    code, _, err = run(["predict", trained_run, "--input", text_files["test"]], capsys)
    assert_one_line_error(code, err, "cannot load the model")


def test_not_a_run_directory_and_missing_input(tmp_path, trained_run, capsys):
    code, _, err = run(["predict", tmp_path, "--input", "-"], capsys)
    assert_one_line_error(code, err, "is not a bertclf run directory (missing bertclf.yaml)")
    code, _, err = run(["evaluate", trained_run, "--data", tmp_path / "nope.csv"], capsys)
    assert_one_line_error(code, err, "file not found")


def test_failed_prediction_leaves_no_output_file(trained_run, tmp_path, capsys):
    source = tmp_path / "new.csv"
    source.write_text("body\nsome text\n")
    output = tmp_path / "p.csv"
    code, _, err = run(["predict", trained_run, "--input", source, "--output", output], capsys)
    assert_one_line_error(code, err, "column 'text' not found")
    assert not output.exists()


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as raised:
        main(["train", "--no-such-flag"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "unrecognized arguments" in err


@pytest.fixture
def goemotions_like(tmp_path):
    """Header-less TSV files (text, comma-separated label ids, id) and a label names file, as GoEmotions ships."""
    names = tmp_path / "labels.txt"
    names.write_text("food\nsport\ntech\n")
    ids = {"food": "0", "sport": "1", "tech": "2"}
    paths = {"labels": names}
    for part, count, seed in (("train", 150, 1), ("dev", 45, 2), ("test", 45, 3)):
        frame = make_multilabel_texts(count, seed=seed)
        frame["label"] = [",".join(ids[name] for name in labels.split(",")) for labels in frame["label"]]
        frame["id"] = [f"c{i}" for i in range(count)]
        paths[part] = tmp_path / f"{part}.tsv"
        frame[["text", "label", "id"]].to_csv(paths[part], sep="\t", header=False, index=False)
    return paths


def test_multilabel_train_evaluate_predict(goemotions_like, tmp_path, tiny_options, capsys):
    files = goemotions_like
    output = tmp_path / "run"
    code, out, err = run(["train", "--task", "multilabel", "--train", files["train"], "--val", files["dev"],
                          "--test", files["test"], "--columns", "text,labels,id", "--label-column", "labels",
                          "--label-sep", ",", "--label-names", files["labels"], "--output", output,
                          *tiny_flags({**tiny_options, "pooling": "mean"})], capsys)
    assert code == 0, err
    assert "multilabel, classes (3): food, sport, tech" in err and "at threshold 0.5:" in out
    metrics = json.loads((output / "metrics.json").read_text())
    assert {"f1_micro", "f1_macro", "f1_samples", "subset_accuracy", "hamming_loss", "lrap", "roc_auc_macro",
            "at_0.5", "thresholds", "per_class"} <= set(metrics["test"])
    assert metrics["test"]["f1_micro"] >= 0.9 and 0 < metrics["test"]["at_0.5"]["f1_micro"] <= 1

    code, out, _ = run(["evaluate", output, "--data", files["test"], "--threshold", "0.5"], capsys)
    assert code == 0 and f"f1_micro {metrics['test']['at_0.5']['f1_micro']:.4f}" in out

    predictions = tmp_path / "predictions.csv"
    code, _, err = run(["predict", output, "--input", files["test"], "--output", predictions], capsys)
    assert code == 0, err
    result = pd.read_csv(predictions, keep_default_na=False)
    assert {"predicted_labels", "proba_food", "proba_sport", "proba_tech"} <= set(result.columns)
    assert all(set(cell.split(",")) <= {"food", "sport", "tech", ""} for cell in result["predicted_labels"])
    jsonl = tmp_path / "predictions.jsonl"
    code, _, _ = run(["predict", output, "--input", files["test"], "--output", jsonl, "--min-labels", "1"], capsys)
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert code == 0 and all(isinstance(row["predicted_labels"], list) and row["predicted_labels"] for row in rows)


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("unknown_label_name", "label 'weather' in row 1 of train.tsv is neither a name in"),
        ("label_id_out_of_range", "label 7 in row 1 of train.tsv is neither a name in"),
        ("empty_labels", "rows of train.tsv carry no label"),
        ("indicator_not_binary", "label column 'tech' of train.csv holds 2 in row 2; label columns must hold 0 or 1"),
        ("indicator_missing", "column 'food' not found in train.csv"),
        ("metric_for_other_task", "--metric mcc does not apply to multilabel data"),
    ],
)
def test_bad_multilabel_input_is_one_line_and_exit_2(case, fragment, goemotions_like, tmp_path, tiny_model, capsys):
    files = goemotions_like
    output = tmp_path / "out"
    args = ["--task", "multilabel", "--train", files["train"], "--val", files["dev"], "--columns", "text,labels,id",
            "--label-column", "labels", "--label-names", files["labels"], "--model", tiny_model, "--epochs", "1",
            "--output", output]
    lines = files["train"].read_text().splitlines()
    if case in ("unknown_label_name", "label_id_out_of_range", "empty_labels"):
        text, _, row_id = lines[0].split("\t")
        replacement = {"unknown_label_name": "1,weather", "label_id_out_of_range": "7", "empty_labels": ""}[case]
        files["train"].write_text("\n".join([f"{text}\t{replacement}\t{row_id}", *lines[1:]]) + "\n")
    elif case.startswith("indicator"):
        frame = pd.DataFrame({"text": ["a", "b", "c"], "sport": [1, 0, 1], "tech": [0, 2, 1]})
        if case == "indicator_not_binary":
            frame["food"] = [0, 1, 0]
        frame.to_csv(tmp_path / "train.csv", index=False)
        args = ["--train", tmp_path / "train.csv", "--label-columns", "sport,tech,food", "--model", tiny_model,
                "--output", output]
    else:
        args += ["--metric", "mcc"]
    code, _, err = run(["train", *args], capsys)
    assert_one_line_error(code, err, fragment)
    assert not output.exists()


def test_chunked_long_texts_train_and_predict(tmp_path, tiny_options, capsys):
    for part, count, seed in (("train", 120, 1), ("val", 30, 2)):
        make_tail_texts(count, seed=seed).to_csv(tmp_path / f"{part}.csv", index=False)
    output = tmp_path / "run"
    code, _, err = run(["train", "--train", tmp_path / "train.csv", "--val", tmp_path / "val.csv", "--output", output,
                        "--long-text", "chunks", "--max-length", "16", "--max-chunks", "8", "--stride", "2",
                        "--chunk-pooling", "attention", *tiny_flags({**tiny_options, "epochs": 2})], capsys)
    assert code == 0, err
    assert "chunks:" in err and "windows of 16 tokens per training text on average (at most 8)" in err
    assert "transformers.pipeline` does not reproduce" not in (output / "README.md").read_text()  # not native
    code, out, err = run(["predict", output, "--input", tmp_path / "val.csv"], capsys)
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 30
