"""`bertclf train` (and `demo`, `inspect`, `report`) end to end: the run directory, its metrics and report, and what
the command prints."""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers import make_tail_texts, make_texts, run_cli, tiny_flags


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, shared_text_files, tiny_options) -> Path:
    """A run of `bertclf train` (8 epochs of the tiny model on ``shared_text_files``), once per module: a test that
    changes the run directory works on its own copy."""
    output = tmp_path_factory.mktemp("trained") / "run"
    files = shared_text_files
    code, out, err = run_cli(["train", "--train", files["train"], "--val", files["val"], "--test", files["test"],
                              "--output", output, *tiny_flags(tiny_options)])
    assert code == 0, err
    assert "== test" in out and f"model saved to {output}" in out
    return output


def test_train_evaluate_predict_end_to_end(trained_run, text_files, tmp_path):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.9
    assert {"accuracy", "f1_macro", "f1_micro", "mcc"} <= set(metrics["val"])

    code, out, _ = run_cli(["evaluate", trained_run, "--data", text_files["test"], "--output", tmp_path / "m.json"])
    assert code == 0 and "accuracy" in out
    assert json.loads((tmp_path / "m.json").read_text())["accuracy"] == pytest.approx(metrics["test"]["accuracy"])

    predictions = tmp_path / "predictions.csv"
    code, _, _ = run_cli(["predict", trained_run, "--input", text_files["test"], "--output", predictions])
    assert code == 0
    result = pd.read_csv(predictions)
    source = pd.read_csv(text_files["test"])
    assert result["text"].tolist() == source["text"].tolist()  # input order kept
    assert {"predicted_label", "proba_food", "proba_sport", "proba_tech"} <= set(result.columns)
    assert (result["predicted_label"] == source["label"]).mean() == pytest.approx(metrics["test"]["accuracy"])


def test_config_file_with_flag_overrides(tmp_path, text_files, tiny_options):
    config = tmp_path / "run.yaml"
    config.write_text("".join(f"{key}: {value}\n" for key, value in tiny_options.items()) + "epochs: 9\n")
    code, _, err = run_cli(["train", "--config", config, "--train", text_files["train"], "--epochs", "1",
                            "--output", tmp_path / "run"])
    assert code == 0, err
    saved = (tmp_path / "run" / "bertclf.yaml").read_text()
    assert "epochs: 1\n" in saved and "seed: 11\n" in saved


def test_headerless_tsv_with_columns(tmp_path, tiny_options):
    frame = make_texts(90, seed=5)
    frame.insert(0, "source", "x")
    frame[["source", "label", "text"]].to_csv(tmp_path / "data.tsv", sep="\t", header=False, index=False)
    code, _out, err = run_cli(["train", "--train", tmp_path / "data.tsv", "--columns", "source,label,text",
                              "--output", tmp_path / "run", *tiny_flags({**tiny_options, "epochs": 1})])
    assert code == 0, err
    assert "data: train 72, val 9 (held out), test 9 (held out)" in err


def test_demo_runs_on_the_bundled_data(tmp_path, tiny_options):
    code, out, err = run_cli(["demo", "--output", tmp_path / "demo", *tiny_flags({**tiny_options, "epochs": 1})])
    assert code == 0, err
    assert "predictions on new tickets" in out and "model saved to" in out
    assert "classes (5): account, billing, feature_request, shipping, technical" in err
    assert re.search(r"- training: 1 epoch \(\d+ optimizer steps\), batch size",
                     (tmp_path / "demo" / "README.md").read_text())


def test_a_run_grown_to_min_steps_says_so_and_its_card_names_the_epochs_it_ran(tmp_path, tiny_options):
    make_texts(24, seed=2).to_csv(tmp_path / "train.csv", index=False)  # 20 after the split: 3 batches of 8
    code, _out, err = run_cli(["train", "--train", tmp_path / "train.csv", "--output", tmp_path / "run",
                               *tiny_flags({**tiny_options, "epochs": 2, "min_steps": 30})])
    assert code == 0, err
    assert "3 optimizer steps per epoch: 10 epochs instead of 2, to reach --min-steps 30" in err
    assert "- training: 10 epochs (30 optimizer steps), batch size 8" in (tmp_path / "run" / "README.md").read_text()
    training = json.loads((tmp_path / "run" / "metrics.json").read_text())["training"]
    assert (training["epochs"], training["steps"], len(training["history"])) == (10, 30, 10)


def test_multilabel_train_evaluate_predict(goemotions_like, tmp_path, tiny_options):
    files = goemotions_like
    output = tmp_path / "run"
    code, out, err = run_cli(["train", "--task", "multilabel", "--train", files["train"], "--val", files["dev"],
                              "--test", files["test"], "--columns", "text,labels,id", "--label-column", "labels",
                              "--label-sep", ",", "--label-names", files["labels"], "--output", output,
                              *tiny_flags({**tiny_options, "pooling": "mean"})])
    assert code == 0, err
    assert "multilabel, classes (3): food, sport, tech" in err and "at threshold 0.5:" in out
    metrics = json.loads((output / "metrics.json").read_text())
    assert {"f1_micro", "f1_macro", "f1_samples", "subset_accuracy", "hamming_loss", "lrap", "roc_auc_macro",
            "at_0.5", "thresholds", "per_class"} <= set(metrics["test"])
    assert metrics["test"]["f1_micro"] >= 0.9 and 0 < metrics["test"]["at_0.5"]["f1_micro"] <= 1

    code, out, _ = run_cli(["evaluate", output, "--data", files["test"], "--threshold", "0.5"])
    assert code == 0 and f"f1_micro {metrics['test']['at_0.5']['f1_micro']:.4f}" in out

    predictions = tmp_path / "predictions.csv"
    code, _, err = run_cli(["predict", output, "--input", files["test"], "--output", predictions])
    assert code == 0, err
    result = pd.read_csv(predictions, keep_default_na=False)
    assert {"predicted_labels", "proba_food", "proba_sport", "proba_tech"} <= set(result.columns)
    assert all(set(cell.split(",")) <= {"food", "sport", "tech", ""} for cell in result["predicted_labels"])
    jsonl = tmp_path / "predictions.jsonl"
    code, _, _ = run_cli(["predict", output, "--input", files["test"], "--output", jsonl, "--min-labels", "1"])
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert code == 0 and all(isinstance(row["predicted_labels"], list) and row["predicted_labels"] for row in rows)


def test_chunked_long_texts_train_and_predict(tmp_path, tiny_options):
    for part, count, seed in (("train", 120, 1), ("val", 30, 2)):
        make_tail_texts(count, seed=seed).to_csv(tmp_path / f"{part}.csv", index=False)
    output = tmp_path / "run"
    code, _, err = run_cli(["train", "--train", tmp_path / "train.csv", "--val", tmp_path / "val.csv", "--output",
                            output, "--long-text", "chunks", "--max-length", "16", "--max-chunks", "8", "--stride", "2",
                            "--chunk-pooling", "attention", *tiny_flags({**tiny_options, "epochs": 2})])
    assert code == 0, err
    assert "chunks:" in err and "windows of 16 tokens per training text on average (at most 8)" in err
    assert "transformers.pipeline` does not reproduce" not in (output / "README.md").read_text()  # not native
    code, out, err = run_cli(["predict", output, "--input", tmp_path / "val.csv"])
    assert code == 0, err
    assert len(pd.read_csv(io.StringIO(out))) == 30


def test_several_seeds_print_the_mean_and_spread(text_files, tmp_path, tiny_options):
    code, out, err = run_cli(["train", "--train", text_files["train"], "--val", text_files["val"], "--test",
                              text_files["test"], "--output", tmp_path / "r", "--seeds", "2",
                              *tiny_flags({**tiny_options, "epochs": 1})])
    assert code == 0, err
    assert "== 2 seeds (11, 12; the model of seed" in out
    assert [line.split()[0] for line in out.split("== 2 seeds")[1].splitlines()[2:7]] == [
        "accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc"]
    assert not (tmp_path / ".r.partial").exists()


def test_train_writes_the_report_and_report_redraws_it_for_a_new_file(trained_run, text_files, tmp_path):
    run_dir = shutil.copytree(trained_run, tmp_path / "run")
    report = run_dir / "report.html"
    assert '<section id="baseline">' in report.read_text()
    report.unlink()
    code, out, err = run_cli(["report", run_dir])
    assert code == 0, err
    assert out.strip() == f"report written to {report}" and report.is_file()
    renamed = tmp_path / "renamed.csv"
    pd.read_csv(text_files["test"]).rename(columns={"text": "body"}).to_csv(renamed, index=False)
    code, _, err = run_cli(["report", run_dir, "--data", renamed, "--text-column", "body"])
    assert code == 0, err
    assert "Test metrics (renamed.csv, 30 texts)" in report.read_text()
    code, _, err = run_cli(["report", run_dir, "--data", tmp_path / "missing.csv"])
    assert code == 2 and err.strip() == f"bertclf: error: file not found: {tmp_path / 'missing.csv'}"


def test_inspect_reports_leaks_and_warns_when_the_vocabulary_shatters_the_language(text_files, tmp_path):
    code, out, err = run_cli(["inspect", text_files["train"], text_files["val"], text_files["train"]])
    assert code == 0, err
    assert "train.csv: 150 texts" in out and "classes (3): " in out
    assert "leak: 150 texts of train.csv also appear in train.csv" in out
    assert "warning" not in out + err
    russian = tmp_path / "ru.csv"
    texts = ["сегодня был отличный день и мы гуляли в парке", "ужасное обслуживание больше не приду"]
    pd.DataFrame({"text": texts * 10, "label": ["pos", "neg"] * 10}).to_csv(russian, index=False)
    code, out, err = run_cli(["inspect", russian])
    assert code == 0, err
    [warning] = [line for line in out.splitlines() if line.startswith("warning")]
    assert "Cyrillic" in warning and "tokens on average" in warning and "multilingual" in warning
    code, _, err = run_cli(["inspect", russian, "--text-column", "body"])
    assert code == 2 and err.startswith("bertclf: error: column 'body' not found in ru.csv")


def test_train_warns_in_one_line_when_the_vocabulary_shatters_the_language(tmp_path, tiny_options):
    russian = tmp_path / "ru.csv"
    words = ["отличный", "день", "гуляли", "парке", "ужасное", "обслуживание", "никогда", "приду"]
    pd.DataFrame({"text": [" ".join(words[i % 8:] + words[: i % 8]) for i in range(60)],
                  "label": ["a", "b"] * 30}).to_csv(russian, index=False)
    code, _, err = run_cli(["train", "--train", russian, "--output", tmp_path / "r", *tiny_flags(
        {**tiny_options, "epochs": 1})])
    assert code == 0, err
    [warning] = [line for line in err.splitlines() if "reads this Cyrillic text poorly" in line]
    assert "words into single letters" in warning


def test_help_does_not_import_the_heavy_modules():
    script = "import sys, bertclf.cli; print(sorted({'torch', 'transformers', 'pandas', 'sklearn'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

