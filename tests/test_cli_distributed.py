"""Training across processes: two torchrun workers against one process, and a run killed in one process and resumed
in another."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from bertclf.cli import main
from tests.helpers import bertclf_process, free_port, latest_checkpoint, make_texts, run_cli, tiny_flags, wait_until


@pytest.mark.slow
def test_two_processes_train_one_run_that_matches_one_process(tmp_path, text_files, tiny_options):
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
    # only the first process prints: one test report, one line naming the saved run
    assert result.stdout.count("model saved to") == 1 and result.stdout.count("== test (") == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["test.csv", "train.csv", "two", "val.csv"]  # no staging
    code, _, _ = run_cli(["-q", "train", *common, "--batch-size", 16, "--output", tmp_path / "one"])
    assert code == 0

    two, one = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("two", "one"))
    for part in ("val", "test"):  # every text predicted once: gathered without the repeats that even batches add
        assert two[part]["n"] == one[part]["n"] == 30
        assert sum(map(sum, two[part]["confusion_matrix"]["matrix"])) == 30
        assert abs(two[part]["accuracy"] - one[part]["accuracy"]) <= 0.1 and two[part]["accuracy"] >= 0.8
    # throughput counts both processes: about the texts of 8 epochs (even batches repeat a few)
    assert 8 * 150 <= two["training"]["train_samples"] <= 8 * 150 * 1.15


def test_several_processes_need_an_output_name(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, _, err = run_cli(["train", "--train", tmp_path / "train.csv"])
    assert code == 2 and err.strip() == (
        "bertclf: error: several processes need --output: each would name its own default run directory")


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_weights_and_metrics_of_an_unbroken_run(tiny_model, tmp_path):
    make_texts(480, seed=1).to_csv(tmp_path / "train.csv", index=False)
    options = ["--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs", 2, "--batch-size", 8,
               "--save-steps", 4, "--eval-steps", 10, "--seed", 3, "--low-label", "off"]
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
        # the clock and the machine
        for timing in ("train_seconds", "train_samples_per_second", "environment", "report_seconds"):
            del values["training"][timing]
        return values

    assert metrics("killed") == metrics("unbroken")
    resumed, unbroken = load_file(tmp_path / "killed" / "model.safetensors"), load_file(
        tmp_path / "unbroken" / "model.safetensors")
    assert resumed.keys() == unbroken.keys()
    assert all(torch.equal(resumed[name], unbroken[name]) for name in resumed)


@pytest.mark.slow
def test_resuming_with_an_option_that_changes_the_result_is_one_line(tiny_model, tmp_path):
    make_texts(240, seed=1).to_csv(tmp_path / "train.csv", index=False)
    process = bertclf_process(["-q", "train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--epochs",
                               50, "--save-steps", 3, "--low-label", "off", "--output", tmp_path / "r1"],
                              cwd=tmp_path)
    staging = tmp_path / ".r1.partial"
    wait_until(lambda: latest_checkpoint(staging), "the first checkpoint")
    process.kill()
    process.wait(timeout=60)
    code, _, err = run_cli(["train", "--resume", staging, "--batch-size", "4", "--save-steps", "9"])
    assert code == 2 and err.strip() == (
        "bertclf: error: resuming needs the interrupted run's options, but --batch-size is 4 (was 32)")
    code, _, err = run_cli(["train", "--resume", tmp_path])
    assert code == 2 and err.strip() == (
        f"bertclf: error: {tmp_path} is not the staging directory of an interrupted run (no checkpoint in it)")
    code, _, err = run_cli(["train", "--train", tmp_path / "train.csv", "--model", tiny_model, "--low-label", "off",
                            "--output", tmp_path / "r1"])
    assert code == 2 and err.strip() == (f"bertclf: error: {staging} holds the checkpoints of an interrupted run: "
                                         f"resume it (bertclf train --resume {staging}) or delete it")

