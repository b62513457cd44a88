"""The command line end to end (train -> evaluate -> predict) and one test per bad input: one line, exit 2."""

import io
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from bertclf.cli import main
from bertclf.errors import Interrupted
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
    assert "epochs: 1\n" in saved and "seed: 11\n" in saved


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
    assert "- training: 1 epoch, batch size" in (tmp_path / "demo" / "README.md").read_text()


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


# --- the bad-input matrix: every input path of evaluate/predict, and the run directory they read ------------------


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, tiny_model):
    """One trained run for the matrix; each case works on its own copy."""
    folder = tmp_path_factory.mktemp("shared")
    make_texts(90, seed=1).to_csv(folder / "train.csv", index=False)
    options = {"model": tiny_model, "epochs": 1, "batch_size": 8, "seed": 7, "output": folder / "run"}
    assert main(["-q", "train", "--train", str(folder / "train.csv"), *map(str, tiny_flags(options))]) == 0
    return folder / "run"


RUN_FILES = ["bertclf.yaml", "labels.json", "config.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json", "metrics.json"]


def break_run(run, fault, file):
    if fault == "missing":
        (run / file).unlink()
    elif fault == "truncated":
        content = (run / file).read_bytes()
        (run / file).write_bytes(content[: len(content) // 2])
    else:  # garbage of the same size
        (run / file).write_bytes(b"\xff" * (run / file).stat().st_size)


def no_hidden_leftovers(folder):
    return not [path for path in folder.rglob(".*") if path.name not in (".", "..")]


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("fault", ["missing", "truncated", "garbage"])
@pytest.mark.parametrize("file", RUN_FILES)
def test_a_broken_run_directory_is_one_line(shared_run, tmp_path, capsys, command, fault, file):
    run_dir = tmp_path / "run"
    shutil.copytree(shared_run, run_dir)
    break_run(run_dir, fault, file)
    data = tmp_path / "data.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    args = ["predict", run_dir, "--input", data] if command == "predict" else ["evaluate", run_dir, "--data", data]
    code, _, err = run([*args, "--output", tmp_path / "out.json" if command == "evaluate" else tmp_path / "out.csv"],
                       capsys)
    # A run saved without scores is still a model; tokenizer.json alone defines the tokenizer completely.
    optional = fault == "missing" and file in ("metrics.json", "tokenizer_config.json")
    if optional:
        assert code == 0, err
        if command == "predict":
            intact = tmp_path / "intact.csv"
            assert run(["predict", shared_run, "--input", data, "--output", intact], capsys)[0] == 0
            assert (tmp_path / "out.csv").read_text() == intact.read_text()
    else:
        assert_one_line_error(code, err, file if file in ("bertclf.yaml", "labels.json", "metrics.json") else "")
        assert not (tmp_path / "out.json").exists() and not (tmp_path / "out.csv").exists()
    assert no_hidden_leftovers(tmp_path)


def prediction_case(case, tmp_path, run_dir):
    """Arguments of `bertclf predict` that break one rule, and the fragment its error names."""
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    base = ["predict", run_dir, "--input", data]
    existing = tmp_path / "existing.csv"
    existing.write_text("keep me\n")
    (tmp_path / "a_file").write_text("")
    files = {"empty.csv": "", "header_only.csv": "text,label\n", "numbers.csv": "text\n1\n2\n",
             "latin1.csv": "text\ncaf\xe9\n", "bad.parquet": "not parquet", "dir_in_the_way": None}
    for name, content in files.items():
        if content is None:
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_bytes(content.encode("latin-1"))
    return {
        "missing_input": ([*base[:3], tmp_path / "nope.csv"], "file not found"),
        "input_is_a_folder": ([*base[:3], tmp_path], "got a directory"),
        "input_extension": ([*base[:3], tmp_path / "a_file"], "unsupported file extension"),
        "empty_input": ([*base[:3], tmp_path / "empty.csv"], "file is empty"),
        "header_only": ([*base[:3], tmp_path / "header_only.csv"], "no data rows"),
        "non_text": ([*base[:3], tmp_path / "numbers.csv"], "non-text value"),
        "not_utf8": ([*base[:3], tmp_path / "latin1.csv"], "is not utf-8 text (pass --encoding, e.g. latin-1)"),
        "corrupt_parquet": ([*base[:3], tmp_path / "bad.parquet"], "cannot read"),
        "missing_column": ([*base, "--text-column", "body"], "column 'body' not found"),
        "existing_output": ([*base, "--output", existing], "already exists; pass --overwrite"),
        "output_under_a_file": ([*base, "--output", tmp_path / "a_file" / "out.csv"], "is a file, not a folder"),
        "output_extension": ([*base, "--output", tmp_path / "out.xlsx"], "unsupported output extension"),
        "output_is_a_folder": ([*base, "--output", tmp_path / "dir_in_the_way", "--overwrite"], "is a directory"),
        "missing_run": (["predict", tmp_path / "no_run", "--input", data], "model directory not found"),
        "run_is_a_file": (["predict", data, "--input", data], "is a file, not a model directory"),
        "not_a_run": (["predict", tmp_path / "dir_in_the_way", "--input", data], "not a bertclf run directory"),
        "batch_size_zero": ([*base, "--batch-size", "0"], "argument --batch-size: expected a whole number of at least"),
        "threshold_out_of_range": ([*base, "--threshold", "2"], "argument --threshold"),
        "min_labels_negative": ([*base, "--min-labels", "-1"], "argument --min-labels"),
        "bad_quoting": ([*base, "--quoting", "maybe"], "argument --quoting"),
    }[case]


PREDICTION_CASES = ["missing_input", "input_is_a_folder", "input_extension", "empty_input", "header_only", "non_text",
                    "not_utf8", "corrupt_parquet", "missing_column", "existing_output", "output_under_a_file",
                    "output_extension", "output_is_a_folder", "missing_run", "run_is_a_file", "not_a_run",
                    "batch_size_zero", "threshold_out_of_range", "min_labels_negative", "bad_quoting"]


@pytest.mark.parametrize("case", PREDICTION_CASES)
def test_bad_prediction_input_is_one_line(shared_run, tmp_path, capsys, case):
    args, fragment = prediction_case(case, tmp_path, shared_run)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    try:
        code, _, err = run(args, capsys)
    except SystemExit as usage_error:  # argparse's own errors exit from inside parse_args
        code, err = usage_error.code, capsys.readouterr().err
        err = err.replace(f"bertclf {args[0]}: error:", "bertclf: error:")
    assert_one_line_error(code, err, fragment)
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before  # nothing written, nothing overwritten, no staging file left


def test_predict_and_evaluate_overwrite_only_when_asked(shared_run, tmp_path, capsys):
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    output = tmp_path / "out.csv"
    output.write_text("old\n")
    code, _, err = run(["predict", shared_run, "--input", data, "--output", output, "--overwrite"], capsys)
    assert code == 0, err and "predicted_label" in output.read_text()
    metrics = tmp_path / "m.json"
    metrics.write_text("{}")
    code, _, err = run(["evaluate", shared_run, "--data", data, "--output", metrics], capsys)
    assert_one_line_error(code, err, "already exists")
    code, _, _ = run(["evaluate", shared_run, "--data", data, "--output", metrics, "--overwrite"], capsys)
    assert code == 0 and "accuracy" in json.loads(metrics.read_text())


def test_quiet_goes_before_or_after_the_command(shared_run, tmp_path, capsys):
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    for args in (["-q", "predict", shared_run, "--input", data], ["predict", shared_run, "--input", data, "-q"]):
        code, out, err = run(args, capsys)
        assert code == 0 and err == "" and out.startswith("text,label,predicted_label")


def test_help_does_not_import_the_heavy_modules():
    script = "import sys, bertclf.cli; print(sorted({'torch', 'transformers', 'pandas', 'sklearn'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- faults from outside: signals, closed pipes, bytes on stdin, a full disk (real processes) -------------------


def bertclf_command(args):
    return [sys.executable, "-c", "import sys; from bertclf.cli import main; sys.exit(main())", *map(str, args)]


def bertclf_process(args, **options):
    return subprocess.Popen(bertclf_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)


def wait_for_line(stream, fragment, timeout=60.0):
    """Read stderr until a line holding ``fragment`` (the process is then past that point)."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline().decode()
        seen.append(line)
        if fragment in line or not line:
            return "".join(seen)
    raise AssertionError(f"no line with {fragment!r} in {seen}")


def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def latest_checkpoint(staging):
    found = sorted((staging / "checkpoints").glob("step-*"))
    return found[-1] if found else None


@pytest.mark.parametrize(("signal_number", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_training_checkpoints_and_names_the_resume_command(tiny_model, tmp_path, signal_number, code):
    make_texts(600, seed=1).to_csv(tmp_path / "train.csv", index=False)
    process = bertclf_process(["train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs", 500,
                               "--save-steps", 7, "--output", tmp_path / "runs" / "r1"], cwd=tmp_path)
    staging = tmp_path / "runs" / ".r1.partial"
    wait_until(lambda: latest_checkpoint(staging), "the first checkpoint")  # training is under way
    process.send_signal(signal_number)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code
    assert err.decode().strip().splitlines()[-1] == (
        f"bertclf: interrupted ({signal.Signals(signal_number).name}); a checkpoint is saved: resume with  "
        f"bertclf train --resume {staging}")
    # the step in progress finished and was saved, whichever step it was; nothing is under the final name
    state = json.loads((latest_checkpoint(staging) / "train_state.json").read_text())["state"]
    assert state["step"] >= 7 and not (tmp_path / "runs" / "r1").exists()
    assert not list(staging.glob("checkpoints/.*"))  # no half-written checkpoint either


def test_a_run_killed_mid_epoch_resumes_to_the_weights_and_metrics_of_an_unbroken_run(tiny_model, tmp_path):
    from safetensors.torch import load_file

    make_texts(480, seed=1).to_csv(tmp_path / "train.csv", index=False)
    options = ["--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs", 2, "--batch-size", 8,
               "--save-steps", 4, "--eval-steps", 10, "--seed", 3]
    process = bertclf_process(["-q", "train", *options, "--output", tmp_path / "killed"], cwd=tmp_path)
    staging = tmp_path / ".killed.partial"
    wait_until(lambda: latest_checkpoint(staging), "the first checkpoint")
    process.kill()  # SIGKILL: no handler, no clean-up
    process.wait(timeout=60)
    assert not (tmp_path / "killed").exists(), "the run ended before it could be killed"
    killed_at = json.loads((latest_checkpoint(staging) / "train_state.json").read_text())["state"]
    assert killed_at["epoch"] == 0 and killed_at["epoch_batches"] > 0  # mid-epoch

    assert main(["-q", "train", "--resume", str(staging)]) == 0
    assert main(["-q", "train", *map(str, options), "--output", str(tmp_path / "unbroken")]) == 0
    assert not staging.exists() and not (tmp_path / ".unbroken.partial").exists()

    def metrics(run):
        values = json.loads((tmp_path / run / "metrics.json").read_text())
        for timing in ("train_seconds", "train_samples_per_second", "environment"):  # the clock and the machine
            del values["training"][timing]
        return values

    assert metrics("killed") == metrics("unbroken")
    resumed, unbroken = load_file(tmp_path / "killed" / "model.safetensors"), load_file(
        tmp_path / "unbroken" / "model.safetensors")
    assert resumed.keys() == unbroken.keys()
    assert all(torch.equal(resumed[name], unbroken[name]) for name in resumed)


def test_resuming_with_an_option_that_changes_the_result_is_one_line(tiny_model, tmp_path, capsys):
    make_texts(240, seed=1).to_csv(tmp_path / "train.csv", index=False)
    process = bertclf_process(["-q", "train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs",
                               50, "--save-steps", 3, "--output", tmp_path / "r1"], cwd=tmp_path)
    staging = tmp_path / ".r1.partial"
    wait_until(lambda: latest_checkpoint(staging), "the first checkpoint")
    process.kill()
    process.wait(timeout=60)
    code, _, err = run(["train", "--resume", staging, "--learning-rate", "0.5", "--save-steps", "9"], capsys)
    assert code == 2 and err.strip() == (
        "bertclf: error: resuming needs the interrupted run's options, but --learning-rate is 0.5 (was 0.0001)")
    code, _, err = run(["train", "--resume", tmp_path], capsys)
    assert code == 2 and err.strip() == (
        f"bertclf: error: {tmp_path} is not the staging directory of an interrupted run (no checkpoint in it)")
    code, _, err = run(["train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--output",
                        tmp_path / "r1"], capsys)
    assert code == 2 and err.strip() == (f"bertclf: error: {staging} holds the checkpoints of an interrupted run: "
                                         f"resume it (bertclf train --resume {staging}) or delete it")


def test_a_signal_while_starting_up_is_one_line(tmp_path):
    process = bertclf_process(["train", "--train", tmp_path / "x.csv"], cwd=tmp_path)
    time.sleep(0.3)  # inside the imports of torch and transformers
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode in (130, 2)  # 2: the imports finished first and the missing file was reported
    assert "Traceback" not in err.decode() and len(err.decode().strip().splitlines()) == 1


def test_stdin_bytes_that_are_not_utf8_are_one_line(shared_run):
    process = bertclf_process(["predict", shared_run, "--input", "-"], stdin=subprocess.PIPE)
    _, err = process.communicate(b"caf\xe9\n", timeout=60)
    assert process.returncode == 2
    assert err.decode().strip() == "bertclf: error: standard input is not UTF-8 text (line 1)"


def test_a_closed_pipe_ends_quietly(shared_run, tmp_path):
    make_texts(6000, seed=4).to_csv(tmp_path / "big.csv", index=False)
    process = bertclf_process(["-q", "predict", shared_run, "--input", tmp_path / "big.csv"])
    assert process.stdout.readline().startswith(b"text,label")
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and err == ""


def test_a_full_disk_at_the_save_is_one_line_and_leaves_nothing(tiny_model, tmp_path):
    make_texts(60, seed=1).to_csv(tmp_path / "train.csv", index=False)

    def small_files():  # any write past 1 MB fails with EFBIG, as on a full disk; the weights are 4 MB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))

    process = bertclf_process(["-q", "train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs", 1,
                               "--output", tmp_path / "runs" / "r1"], cwd=tmp_path, preexec_fn=small_files)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bertclf: error: cannot write") and "File too large" in lines[0]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["train.csv"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_standard_output_is_one_line(shared_run, tmp_path):
    make_texts(12, seed=4).to_csv(tmp_path / "new.csv", index=False)
    with open("/dev/full", "w") as full:
        process = subprocess.run(bertclf_command(["-q", "predict", shared_run, "--input", tmp_path / "new.csv"]),
                                 stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert process.returncode == 2
    assert process.stderr.decode().strip() == "bertclf: error: cannot write to standard output: No space left on device"


# --- streaming prediction, runtimes and exports from the command line ----------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_streaming_keeps_order_and_every_column_across_parts(shared_run, tmp_path, capsys, monkeypatch, suffix):
    from bertclf import prediction as streaming

    frame = make_texts(50, seed=4)
    frame.insert(0, "id", range(50))
    frame["note"] = [f"n{i}" for i in range(50)]
    source = tmp_path / f"new{suffix}"
    {".csv": lambda: frame.to_csv(source, index=False), ".tsv": lambda: frame.to_csv(source, sep="\t", index=False),
     ".jsonl": lambda: frame.to_json(source, orient="records", lines=True),
     ".parquet": lambda: frame.to_parquet(source)}[suffix]()
    whole = tmp_path / f"whole{suffix}"
    assert run(["predict", shared_run, "--input", source, "--output", whole], capsys)[0] == 0
    monkeypatch.setattr(streaming, "PART_ROWS", 7)  # 8 parts, the last one short
    parts = tmp_path / f"parts{suffix}"
    code, _, err = run(["predict", shared_run, "--input", source, "--output", parts], capsys)
    assert code == 0, err
    read = {".csv": pd.read_csv, ".tsv": lambda path: pd.read_csv(path, sep="\t"),
            ".jsonl": lambda path: pd.read_json(path, lines=True), ".parquet": pd.read_parquet}[suffix]
    result = read(parts)
    assert list(result.columns[:4]) == ["id", "text", "label", "note"] and result["id"].tolist() == list(range(50))
    pd.testing.assert_frame_equal(result, read(whole))


def test_an_interrupted_stream_leaves_no_output(shared_run, tmp_path, capsys, monkeypatch):
    from bertclf import prediction as streaming

    make_texts(50, seed=4).to_csv(tmp_path / "new.csv", index=False)
    monkeypatch.setattr(streaming, "PART_ROWS", 10)
    real = streaming.prediction_frame
    calls = []

    def interrupted_at_the_third_part(*args):
        calls.append(1)
        if len(calls) == 3:
            raise Interrupted(signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(streaming, "prediction_frame", interrupted_at_the_third_part)
    code, _, err = run(["predict", shared_run, "--input", tmp_path / "new.csv", "--output", tmp_path / "out.jsonl"],
                       capsys)
    assert code == 143 and err.strip().splitlines()[-1] == "bertclf: interrupted (SIGTERM)"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["new.csv"]


def test_a_bad_row_in_a_later_part_is_named_by_its_row_in_the_file(shared_run, tmp_path, capsys, monkeypatch):
    from bertclf import prediction as streaming

    (tmp_path / "new.jsonl").write_text("".join(json.dumps({"text": f"text {i}" if i != 23 else 5}) + "\n"
                                                for i in range(30)))
    monkeypatch.setattr(streaming, "PART_ROWS", 10)
    code, _, err = run(["predict", shared_run, "--input", tmp_path / "new.jsonl", "--output", tmp_path / "o.csv"],
                       capsys)
    assert_one_line_error(code, err, "non-text value in row 24: 5")
    assert not (tmp_path / "o.csv").exists()


def test_export_then_predict_and_evaluate_on_the_export(shared_run, tmp_path, capsys):
    data = tmp_path / "new.csv"
    make_texts(20, seed=4).to_csv(data, index=False)
    code, out, err = run(["export", shared_run, "--output", tmp_path / "onnx", "--check-data", data], capsys)
    assert code == 0, err
    assert "labels agree 100.00%" in out and "fused" in out and "f1_macro: torch" in out
    torch_out, onnx_out = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    assert run(["predict", shared_run, "--input", data, "--output", torch_out], capsys)[0] == 0
    assert run(["predict", tmp_path / "onnx", "--input", data, "--output", onnx_out, "--threads", 1], capsys)[0] == 0
    assert pd.read_csv(onnx_out)["predicted_label"].tolist() == pd.read_csv(torch_out)["predicted_label"].tolist()
    code, out, _ = run(["evaluate", tmp_path / "onnx", "--data", data], capsys)
    assert code == 0 and "accuracy" in out
    code, _, err = run(["export", shared_run, "--output", tmp_path / "onnx"], capsys)
    assert_one_line_error(code, err, "already exists")
    code, _, err = run(["predict", tmp_path / "onnx", "--input", data, "--runtime", "torch-int8"], capsys)
    assert_one_line_error(code, err, "cannot run as torch-int8")


@pytest.mark.parametrize("runtime", ["torch-int8", "onnx", "onnx-int8"])
def test_predict_runs_on_every_runtime(shared_run, tmp_path, capsys, runtime):
    data = tmp_path / "new.csv"
    make_texts(20, seed=4).to_csv(data, index=False)
    code, out, err = run(["predict", shared_run, "--input", data, "--runtime", runtime], capsys)
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 20


# --- several processes ---------------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_train_one_run_that_matches_one_process(tmp_path, text_files, tiny_options, capsys):
    """torchrun with 2 CPU processes (gloo) and batch 8 each against 1 process with batch 16: the same global batch.
    The two see the same texts in other groupings (each takes every other length-sorted batch), so their runs
    differ a little; on these easy texts both must learn them, within 0.1 of each other's test scores."""
    options = {**tiny_options, "pooling": "mean"}  # learns the topics whatever the grouping of texts
    common = ["--train", text_files["train"], "--val", text_files["val"], "--test", text_files["test"],
              *tiny_flags({name: value for name, value in options.items() if name != "batch_size"})]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", free_port(), "-m", "bertclf", "train", *common, "--batch-size", 8,
               "--output", tmp_path / "two"]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=600, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("model saved to") == 1 and result.stdout.count("test report") <= 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["test.csv", "train.csv", "two", "val.csv"]  # no staging
    code, _, _ = run(["-q", "train", *common, "--batch-size", 16, "--output", tmp_path / "one"], capsys)
    assert code == 0

    two, one = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("two", "one"))
    for part in ("val", "test"):  # every text predicted once: gathered without the repeats that even batches add
        assert two[part]["n"] == one[part]["n"] == 30
        assert sum(map(sum, two[part]["confusion_matrix"]["matrix"])) == 30
        assert abs(two[part]["accuracy"] - one[part]["accuracy"]) <= 0.1 and two[part]["accuracy"] >= 0.8
    # throughput counts both processes: about the texts of 8 epochs (even batches repeat a few)
    assert 8 * 150 <= two["training"]["train_samples"] <= 8 * 150 * 1.15


def test_several_processes_need_an_output_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = run(["train", "--train", tmp_path / "train.csv"], capsys)
    assert code == 2 and err.strip() == (
        "bertclf: error: several processes need --output: each would name its own default run directory")


def test_train_writes_the_report_and_report_redraws_it_for_a_new_file(trained_run, text_files, tmp_path, capsys):
    report = trained_run / "report.html"
    assert '<section id="baseline">' in report.read_text()
    report.unlink()
    code, out, err = run(["report", trained_run], capsys)
    assert code == 0, err
    assert out.strip() == f"report written to {report}" and report.is_file()
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(text_files["test"]).rename(columns={"text": "body"}).to_csv(renamed, index=False)
    code, _, err = run(["report", trained_run, "--data", renamed, "--text-column", "body"], capsys)
    assert code == 0, err
    assert "Test metrics (renamed.csv, 30 texts)" in report.read_text()
    code, _, err = run(["report", trained_run, "--data", tmp_path / "missing.csv"], capsys)
    assert code == 2 and err.strip() == f"bertclf: error: file not found: {tmp_path / 'missing.csv'}"


def test_inspect_reports_leaks_and_warns_when_the_vocabulary_shatters_the_language(text_files, tmp_path, capsys):
    code, out, err = run(["inspect", text_files["train"], text_files["val"], text_files["train"]], capsys)
    assert code == 0, err
    assert "train.csv: 150 texts" in out and "classes (3): " in out
    assert "leak: 150 texts of train.csv also appear in train.csv" in out
    assert "warning" not in out + err
    russian = tmp_path / "ru.csv"
    texts = ["сегодня был отличный день и мы гуляли в парке", "ужасное обслуживание больше не приду"]
    pd.DataFrame({"text": texts * 10, "label": ["pos", "neg"] * 10}).to_csv(russian, index=False)
    code, out, err = run(["inspect", russian], capsys)
    assert code == 0, err
    [warning] = [line for line in out.splitlines() if line.startswith("warning")]
    assert "Cyrillic" in warning and "tokens on average" in warning and "multilingual" in warning
    code, _, err = run(["inspect", russian, "--text-column", "body"], capsys)
    assert code == 2 and err.startswith("bertclf: error: column 'body' not found in ru.csv")


def test_train_warns_in_one_line_when_the_vocabulary_shatters_the_language(tmp_path, tiny_options, capsys):
    russian = tmp_path / "ru.csv"
    words = ["отличный", "день", "гуляли", "парке", "ужасное", "обслуживание", "никогда", "приду"]
    pd.DataFrame({"text": [" ".join(words[i % 8:] + words[: i % 8]) for i in range(60)],
                  "label": ["a", "b"] * 30}).to_csv(russian, index=False)
    code, _, err = run(["train", "--train", russian, "--output", tmp_path / "r", *tiny_flags(
        {**tiny_options, "epochs": 1})], capsys)
    assert code == 0, err
    [warning] = [line for line in err.splitlines() if "reads this Cyrillic text poorly" in line]
    assert "words into single letters" in warning


def test_several_seeds_print_the_mean_and_spread(text_files, tmp_path, tiny_options, capsys):
    code, out, err = run(["train", "--train", text_files["train"], "--val", text_files["val"], "--test",
                          text_files["test"], "--output", tmp_path / "r", "--seeds", "2",
                          *tiny_flags({**tiny_options, "epochs": 1})], capsys)
    assert code == 0, err
    assert "== 2 seeds (11, 12; the model of seed" in out
    assert [line.split()[0] for line in out.split("== 2 seeds")[1].splitlines()[2:7]] == [
        "accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc"]
    assert not (tmp_path / ".r.partial").exists()
