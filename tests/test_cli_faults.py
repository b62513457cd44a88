"""Faults and bad input on the command line: one line on stderr, exit 2 (or 128 + the signal), nothing half-written.
Bad files, options and run directories in this process; signals, closed pipes and full disks in real processes."""

import json
import os
import resource
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import (
    assert_one_line_error,
    bertclf_command,
    bertclf_process,
    latest_checkpoint,
    make_texts,
    run_cli,
    wait_until,
)


def test_usage_errors_are_one_line():
    code, _, err = run_cli(["train", "--no-such-flag"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unrecognized arguments" in err


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
        ("learning_rate_nan", "invalid learning_rate (--learning-rate) 'nan': must be a finite number"),
        ("learning_rate_inf", "invalid learning_rate (--learning-rate) 'inf': must be a finite number"),
        ("weight_decay_nan", "invalid weight_decay (--weight-decay) 'nan': must be a finite number"),
        ("seed_out_of_range", "invalid seed (--seed) 4294967296: a seed must be in [0, 4294967295]"),
        ("diverging_loss", "the training loss diverged (nan) by step"),
        ("diverging_contrastive_tuning", "the contrastive tuning diverged (nan) by step"),
        ("low_label_with_chunks", "the low-label mode reads one vector per text; it does not take --long-text chunks"),
        ("label_name_texts_without_the_mode", "--label-name-texts applies to the low-label mode"),
    ],
)
def test_bad_training_input_is_one_line_and_exit_2(case, fragment, tmp_path, text_files, bad_inputs, tiny_model):
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
    elif case in ("learning_rate_nan", "learning_rate_inf", "weight_decay_nan"):
        args["--" + case.rsplit("_", 1)[0].replace("_", "-")] = case.rsplit("_", 1)[1]
    elif case == "seed_out_of_range":
        args["--seed"] = 2**32
    elif case == "diverging_loss":  # a finite rate, but far too high: the loss becomes nan
        args.update({"--learning-rate": "1e30", "--low-label": "off"})
    elif case == "diverging_contrastive_tuning":
        args.update({"--low-label": "on", "--contrastive-learning-rate": "1e30", "--contrastive-steps": 20})
    elif case == "low_label_with_chunks":
        args.update({"--low-label": "on", "--long-text": "chunks"})
    elif case == "label_name_texts_without_the_mode":
        args.update({"--low-label": "off", "--label-name-texts": 2})
    flags = [str(item) for pair in args.items() for item in pair]
    code, _, err = run_cli(["train", *flags])
    assert_one_line_error(code, err, fragment)
    if case != "existing_output":
        assert not output.exists()  # no half-written run directory


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
def test_bad_multilabel_input_is_one_line_and_exit_2(case, fragment, goemotions_like, tmp_path, tiny_model):
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
    code, _, err = run_cli(["train", *args])
    assert_one_line_error(code, err, fragment)
    assert not output.exists()


def test_corrupt_run_directory_is_reported(shared_run, text_files, tmp_path):
    run_dir = shutil.copytree(shared_run, tmp_path / "run")
    (run_dir / "model.safetensors").write_bytes(b"garbage")
    code, _, err = run_cli(["predict", run_dir, "--input", text_files["test"]])
    assert_one_line_error(code, err, "cannot load the model")


def test_not_a_run_directory_and_missing_input(tmp_path, shared_run):
    code, _, err = run_cli(["predict", tmp_path, "--input", "-"])
    assert_one_line_error(code, err, "is not a bertclf run directory (missing bertclf.yaml)")
    code, _, err = run_cli(["evaluate", shared_run, "--data", tmp_path / "nope.csv"])
    assert_one_line_error(code, err, "file not found")


def test_failed_prediction_leaves_no_output_file(shared_run, tmp_path):
    source = tmp_path / "new.csv"
    source.write_text("body\nsome text\n")
    output = tmp_path / "p.csv"
    code, _, err = run_cli(["predict", shared_run, "--input", source, "--output", output])
    assert_one_line_error(code, err, "column 'text' not found")
    assert not output.exists()


# --- the bad-input matrix: every input path of evaluate/predict, and the run directory they read ------------------


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
def test_a_broken_run_directory_is_one_line(shared_run, tmp_path, command, fault, file):
    run_dir = tmp_path / "run"
    shutil.copytree(shared_run, run_dir)
    break_run(run_dir, fault, file)
    data = tmp_path / "data.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    args = ["predict", run_dir, "--input", data] if command == "predict" else ["evaluate", run_dir, "--data", data]
    output = tmp_path / "out.json" if command == "evaluate" else tmp_path / "out.csv"
    code, _, err = run_cli([*args, "--output", output])
    # A run saved without scores is still a model; tokenizer.json alone defines the tokenizer completely.
    optional = fault == "missing" and file in ("metrics.json", "tokenizer_config.json")
    if optional:
        assert code == 0, err
        if command == "predict":
            intact = tmp_path / "intact.csv"
            assert run_cli(["predict", shared_run, "--input", data, "--output", intact])[0] == 0
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
    files = {"empty.csv": "", "header_only.csv": "text,label\n", "booleans.jsonl": '{"text": true}\n',
             "semicolons.csv": "text;label\nhello, world;a\n", "broken.jsonl": '{"text": "a"}\n{"text": "b"\n',
             "bracketed.csv": "text,label\nx,[urgent]\n",
             "latin1.csv": "text\ncaf\xe9\n", "bad.parquet": "not parquet", "dir_in_the_way": None,
             "predicted.csv": "text,predicted_label\nsome text,sport\n", "tabbed.csv": 'text\n"a\ttab"\n'}
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
        "non_text": ([*base[:3], tmp_path / "booleans.jsonl"], "non-text value in row 1: True"),
        "semicolon_csv": ([*base[:3], tmp_path / "semicolons.csv"], "semicolons.csv is separated by semicolons"),
        "repeated_columns": ([*base, "--columns", "text,text"], "--columns names 'text' twice"),
        "broken_jsonl_line": ([*base[:3], tmp_path / "broken.jsonl"], "line 2 of"),
        "unseen_bracketed_label": (["evaluate", run_dir, "--data", tmp_path / "bracketed.csv"],
                                   "has labels that training never saw: '[urgent]'"),
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
        "column_collision": ([*base[:3], tmp_path / "predicted.csv"],
                             "predicted.csv already has a column 'predicted_label', which predict adds"),
        "tab_in_a_tsv_output": ([*base[:3], tmp_path / "tabbed.csv", "--output", tmp_path / "out.tsv"],
                                "column 'text' holds a tab or a line break in row 1"),
        "parquet_to_a_pipe": ([*base, "--output", _fifo(tmp_path / "pipe.parquet")], "cannot write Parquet to"),
    }[case]


def _fifo(path):
    os.mkfifo(path)
    return path


PREDICTION_CASES = ["missing_input", "input_is_a_folder", "input_extension", "empty_input", "header_only", "non_text",
                    "semicolon_csv", "repeated_columns", "broken_jsonl_line", "unseen_bracketed_label",
                    "not_utf8", "corrupt_parquet", "missing_column", "existing_output", "output_under_a_file",
                    "output_extension", "output_is_a_folder", "missing_run", "run_is_a_file", "not_a_run",
                    "batch_size_zero", "threshold_out_of_range", "min_labels_negative", "bad_quoting",
                    "column_collision", "tab_in_a_tsv_output", "parquet_to_a_pipe"]


@pytest.mark.parametrize("case", PREDICTION_CASES)
def test_bad_prediction_input_is_one_line(shared_run, tmp_path, case):
    args, fragment = prediction_case(case, tmp_path, shared_run)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    code, _, err = run_cli(args)
    err = err.replace(f"bertclf {args[0]}: error:", "bertclf: error:")  # argparse names the subcommand
    assert_one_line_error(code, err, fragment)
    after = {path: path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert after == before  # nothing written, nothing overwritten, no staging file left


def test_all_digit_texts_and_a_byte_order_mark_are_read_as_written(shared_run, tmp_path):
    """Codes and numbers are texts, in every part of a streamed file; a UTF-8 BOM (Excel, PowerShell) is no text."""
    (tmp_path / "codes.jsonl").write_bytes('\ufeff{"text": "007"}\n{"text": "12"}\n{"text": "3"}\n'.encode())
    (tmp_path / "codes.csv").write_text("text,label\nfine,sport\n007,tech\n1e3,food\n")
    for name in ("codes.jsonl", "codes.csv"):
        code, _, err = run_cli(["predict", shared_run, "--input", tmp_path / name, "--output", tmp_path / f"p_{name}"])
        assert code == 0, err
    predicted = pd.read_csv(tmp_path / "p_codes.csv", dtype=str)
    assert predicted["text"].tolist() == ["fine", "007", "1e3"] and predicted["label"].tolist()[1] == "tech"
    assert [json.loads(line)["text"] for line in (tmp_path / "p_codes.jsonl").read_text().splitlines()] == \
        ["007", "12", "3"]


# --- faults from outside: signals, closed pipes, bytes on stdin, a full disk (real processes) -------------------


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_signal_while_starting_up_is_one_line(tmp_path):
    process = bertclf_process(["train", "--train", tmp_path / "x.csv"], cwd=tmp_path)
    time.sleep(0.3)  # inside the imports of torch and transformers
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode in (130, 2)  # 2: the imports finished first and the missing file was reported
    assert "Traceback" not in err.decode() and len(err.decode().strip().splitlines()) == 1


@pytest.mark.slow
def test_stdin_bytes_that_are_not_utf8_are_one_line(shared_run):
    process = bertclf_process(["predict", shared_run, "--input", "-"], stdin=subprocess.PIPE)
    _, err = process.communicate(b"caf\xe9\n", timeout=60)
    assert process.returncode == 2
    assert err.decode().strip() == "bertclf: error: standard input is not UTF-8 text (line 1)"


@pytest.mark.slow
def test_a_closed_pipe_ends_quietly(shared_run, tmp_path):
    make_texts(6000, seed=4).to_csv(tmp_path / "big.csv", index=False)
    process = bertclf_process(["-q", "predict", shared_run, "--input", tmp_path / "big.csv"])
    assert process.stdout.readline().startswith(b"text,label")
    process.stdout.close()  # as `| head -1` does
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141 and err == ""


@pytest.mark.slow
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


@pytest.mark.slow
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_standard_output_is_one_line(shared_run, tmp_path):
    make_texts(12, seed=4).to_csv(tmp_path / "new.csv", index=False)
    with open("/dev/full", "w") as full:
        process = subprocess.run(bertclf_command(["-q", "predict", shared_run, "--input", tmp_path / "new.csv"]),
                                 stdout=full, stderr=subprocess.PIPE, timeout=60)
    assert process.returncode == 2
    assert process.stderr.decode().strip() == "bertclf: error: cannot write to standard output: No space left on device"



@pytest.mark.parametrize(("where", "fragment"), [("run", "is the run being exported"),
                                                 ("inside", "is inside the run being exported"),
                                                 ("around", "holds the run being exported")])
def test_an_export_never_replaces_the_run_it_exports(shared_run, tmp_path, where, fragment):
    run = shutil.copytree(shared_run, tmp_path / "runs" / "r")
    (run / "onnx").mkdir()
    output = {"run": run, "inside": run / "onnx", "around": tmp_path / "runs"}[where]
    before = sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*"))
    code, out, err = run_cli(["export", run, "--output", output, "--overwrite"])
    assert_one_line_error(code, err, fragment)
    assert out == "" and sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*")) == before
