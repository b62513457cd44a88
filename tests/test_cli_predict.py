"""`bertclf predict` and `evaluate` on a trained run: files and standard input, every runtime, an export."""

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from bertclf import TextClassifier
from bertclf.data import read_table
from tests.helpers import (
    NASTY_TEXTS,
    TSV_TEXTS,
    assert_one_line_error,
    bertclf_process,
    make_multilabel_texts,
    make_texts,
    run_cli,
)


def test_predict_reads_stdin_lines_and_writes_jsonl(shared_run, tmp_path):
    output = tmp_path / "p.jsonl"
    code, _, err = run_cli(["predict", shared_run, "--input", "-", "--output", output],
                           stdin="the goal of the match\n\nsoftware and data\n")
    assert code == 0, err
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert [row["text"] for row in rows] == ["the goal of the match", "software and data"]
    assert all(abs(sum(v for k, v in row.items() if k.startswith("proba_")) - 1) < 1e-4 for row in rows)


def test_predict_to_stdout(shared_run):
    code, out, _ = run_cli(["predict", shared_run, "--input", "-"], stdin="bread and soup\n")
    assert code == 0 and out.splitlines()[0].startswith("text,predicted_label")


def test_predict_and_evaluate_overwrite_only_when_asked(shared_run, tmp_path):
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    output = tmp_path / "out.csv"
    output.write_text("old\n")
    code, _, err = run_cli(["predict", shared_run, "--input", data, "--output", output, "--overwrite"])
    assert code == 0, err
    assert "predicted_label" in output.read_text()
    metrics = tmp_path / "m.json"
    metrics.write_text("{}")
    code, _, err = run_cli(["evaluate", shared_run, "--data", data, "--output", metrics])
    assert_one_line_error(code, err, "already exists")
    code, _, _ = run_cli(["evaluate", shared_run, "--data", data, "--output", metrics, "--overwrite"])
    assert code == 0 and "accuracy" in json.loads(metrics.read_text())


def test_quiet_goes_before_or_after_the_command(shared_run, tmp_path):
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    for args in (["-q", "predict", shared_run, "--input", data], ["predict", shared_run, "--input", data, "-q"]):
        code, out, err = run_cli(args)
        assert code == 0 and err == "" and out.startswith("text,label,predicted_label")


def test_export_then_predict_and_evaluate_on_the_export(shared_run, tmp_path):
    data = tmp_path / "new.csv"
    make_texts(20, seed=4).to_csv(data, index=False)
    code, out, err = run_cli(["export", shared_run, "--output", tmp_path / "onnx", "--check-data", data])
    assert code == 0, err
    assert "labels agree 100.00%" in out and "fused" in out and "f1_macro: torch" in out
    torch_out, onnx_out = tmp_path / "torch.csv", tmp_path / "onnx.csv"
    assert run_cli(["predict", shared_run, "--input", data, "--output", torch_out])[0] == 0
    assert run_cli(["predict", tmp_path / "onnx", "--input", data, "--output", onnx_out, "--threads", 1])[0] == 0
    assert pd.read_csv(onnx_out)["predicted_label"].tolist() == pd.read_csv(torch_out)["predicted_label"].tolist()
    code, out, _ = run_cli(["evaluate", tmp_path / "onnx", "--data", data])
    assert code == 0 and "accuracy" in out
    code, _, err = run_cli(["export", shared_run, "--output", tmp_path / "onnx"])
    assert_one_line_error(code, err, "already exists")
    code, _, err = run_cli(["predict", tmp_path / "onnx", "--input", data, "--runtime", "torch-int8"])
    assert_one_line_error(code, err, "cannot run as torch-int8")


@pytest.mark.parametrize("runtime", ["torch-int8", "onnx", pytest.param("onnx-int8", marks=pytest.mark.slow)])
def test_predict_runs_on_every_runtime(shared_run, tmp_path, runtime):
    data = tmp_path / "new.csv"
    make_texts(20, seed=4).to_csv(data, index=False)
    code, out, err = run_cli(["predict", shared_run, "--input", data, "--runtime", runtime])
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 20



@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_predictions_read_back_with_every_text_unchanged(shared_run, tmp_path, suffix):
    texts = TSV_TEXTS if suffix == ".tsv" else NASTY_TEXTS
    source = tmp_path / "new.jsonl"
    pd.DataFrame({"text": texts, "code": [f"{i:03d}" for i in range(len(texts))]}).to_json(
        source, orient="records", lines=True, force_ascii=False)
    output = tmp_path / f"out{suffix}"
    code, _, err = run_cli(["predict", shared_run, "--input", source, "--output", output])
    assert code == 0, err
    back = read_table(output)
    assert list(back.columns) == ["text", "code", "predicted_label", "proba_food", "proba_sport", "proba_tech"]
    read = [value if isinstance(value, str) else "" for value in back["text"]]  # CSV/TSV: an empty field is missing
    assert read == texts and back["code"].tolist() == [f"{i:03d}" for i in range(len(texts))]
    if suffix == ".json":
        assert isinstance(json.loads(output.read_text(encoding="utf-8")), list)  # a JSON list, not JSON lines


def test_a_device_or_pipe_output_is_a_stream_that_needs_no_overwrite(shared_run, tmp_path):
    data = tmp_path / "new.csv"
    make_texts(12, seed=4).to_csv(data, index=False)
    code, _, err = run_cli(["predict", shared_run, "--input", data, "--output", "/dev/null"])
    assert code == 0, err
    code, _, err = run_cli(["evaluate", shared_run, "--data", data, "--output", "/dev/null"])
    assert code == 0, err
    assert Path("/dev/null").is_char_device()


def test_evaluate_writes_strict_json_to_a_json_file_only(tiny_options, tmp_path):
    run = TextClassifier(**{**tiny_options, "epochs": 1}, task="multilabel").fit(
        make_multilabel_texts(60, 1), val=make_multilabel_texts(20, 2)).save(tmp_path / "run")
    make_multilabel_texts(1, 3).to_csv(tmp_path / "one.csv", index=False)  # ROC AUC is undefined on one text
    code, _, err = run_cli(["evaluate", run, "--data", tmp_path / "one.csv", "--output", tmp_path / "m.json"])
    assert code == 0, err
    metrics = json.loads((tmp_path / "m.json").read_text(), parse_constant=lambda name: pytest.fail(f"bare {name}"))
    assert metrics["roc_auc_macro"] is None
    code, _, err = run_cli(["evaluate", run, "--data", tmp_path / "one.csv", "--output", tmp_path / "m.csv"])
    assert_one_line_error(code, err, "evaluate --output writes the metrics as JSON; name a .json file")
    assert not (tmp_path / "m.csv").exists()


@pytest.mark.slow
def test_predict_to_dev_stdout_writes_csv_there(shared_run, tmp_path):
    make_texts(12, seed=4).to_csv(tmp_path / "new.csv", index=False)
    process = bertclf_process(["-q", "predict", shared_run, "--input", tmp_path / "new.csv", "--output", "/dev/stdout"])
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    assert len(pd.read_csv(io.BytesIO(out))) == 12 and err == b""
