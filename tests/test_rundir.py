"""Atomic writes, the checks before the work, and the reading of a run directory's files."""

import json
import os
import stat
from pathlib import Path

import pytest

from bertclf.errors import BertclfError, Interrupted
from bertclf.rundir import (
    atomic_directory,
    atomic_file,
    check_free_space,
    check_output_directory,
    check_output_file,
    checkpoint_directory,
    is_stream,
    read_json,
    run_staging,
    write_json,
)


def entries(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_file_in_the_way_is_one_error_and_nothing_is_left(tmp_path):
    (tmp_path / "some_file.csv").write_text("x")
    target = tmp_path / "some_file.csv" / "out.csv"
    with pytest.raises(BertclfError, match="is a file, not a folder"):
        check_output_file(target, overwrite=False)
    with pytest.raises(BertclfError, match=r"cannot write .*out.csv"), atomic_file(target) as staging:
        staging.write_text("never")
    assert entries(tmp_path) == ["some_file.csv"]


@pytest.mark.parametrize("failure", [RuntimeError("bug"), Interrupted(15), OSError(28, "No space left on device")])
def test_a_failed_write_leaves_neither_staging_files_nor_new_folders(tmp_path, failure):
    target = tmp_path / "new" / "deeper" / "out.json"
    expected = BertclfError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected), atomic_file(target) as staging:
        staging.write_text("half")
        raise failure
    assert entries(tmp_path) == []  # the folders made for the output are gone too


def test_an_existing_output_is_kept_until_the_new_one_is_complete(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(Interrupted), atomic_directory(target) as staging:
        (staging / "weights").write_text("partial")
        raise Interrupted(2)
    assert (target / "weights").read_text() == "old" and entries(tmp_path) == ["run"]
    with atomic_directory(target) as staging:
        (staging / "weights").write_text("new")
    assert (target / "weights").read_text() == "new" and entries(tmp_path) == ["run"]


def test_outputs_get_the_permissions_of_the_umask_not_owner_only(tmp_path):
    previous = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "run") as staging:
            (staging / "model.bin").write_bytes(b"1")
            os.chmod(staging / "model.bin", 0o600)  # as some writers leave their files
        write_json(tmp_path / "metrics.json", {"accuracy": 1.0})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "run" / "model.bin").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o644


def test_checks_before_the_work_create_nothing(tmp_path):
    (tmp_path / "exists.csv").write_text("x")
    with pytest.raises(BertclfError, match="already exists; pass --overwrite"):
        check_output_file(tmp_path / "exists.csv", overwrite=False)
    check_output_file(tmp_path / "exists.csv", overwrite=True)
    with pytest.raises(BertclfError, match="is a directory"):
        check_output_file(tmp_path, overwrite=True)
    check_output_directory(tmp_path / "runs" / "r1", overwrite=False)
    assert entries(tmp_path) == ["exists.csv"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_named(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o555)
    with pytest.raises(BertclfError, match="is not writable"):
        check_output_file(folder / "out.csv", overwrite=False)


def test_a_disk_too_full_for_the_run_is_refused_before_training(tmp_path):
    with pytest.raises(BertclfError, match="not enough disk space"):
        check_free_space(tmp_path / "run", needed_bytes=1 << 62)
    check_free_space(tmp_path / "run", needed_bytes=1)


@pytest.mark.parametrize("content", ['{"test": {"accuracy": 0.9', "", "\xff"])
def test_a_truncated_json_file_is_named(tmp_path, content):
    path = tmp_path / "metrics.json"
    path.write_text(content, encoding="latin-1")
    with pytest.raises(BertclfError, match=r"metrics\.json is corrupt"):
        read_json(path)
    with pytest.raises(BertclfError, match=r"missing labels\.json"):
        read_json(tmp_path / "labels.json")


def test_a_run_staging_directory_goes_with_success_and_with_a_failure_before_any_checkpoint(tmp_path):
    output = tmp_path / "runs" / "r1"
    with run_staging(output) as staging:
        assert staging == tmp_path / "runs" / ".r1.partial"
        staging.mkdir(parents=True)
    assert entries(tmp_path / "runs") == []
    with pytest.raises(Interrupted), run_staging(tmp_path / "other" / "r2") as staging:
        staging.mkdir(parents=True)
        raise Interrupted(2)
    assert entries(tmp_path) == ["runs"]  # "other", which it created, went too


def test_a_failure_after_a_checkpoint_keeps_the_staging_directory_to_resume(tmp_path):
    output = tmp_path / "r1"
    with pytest.raises(Interrupted), run_staging(output) as staging:
        checkpoint_directory(staging, 4).mkdir(parents=True)
        raise Interrupted(15, checkpoint=str(staging))
    assert entries(tmp_path / ".r1.partial" / "checkpoints") == ["step-00000004"]


def test_json_files_are_strict_json_with_undefined_scores_as_null(tmp_path):
    write_json(tmp_path / "metrics.json", {"f1": 0.5, "roc_auc_macro": float("nan"), "per_class": [float("inf")]})
    text = (tmp_path / "metrics.json").read_text()
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"bare {name}")) == \
        {"f1": 0.5, "roc_auc_macro": None, "per_class": [None]}


def test_devices_and_pipes_are_streams_written_in_place(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "file.json").write_text("{}")
    assert is_stream(Path("/dev/null")) and is_stream(fifo)
    assert not is_stream(tmp_path / "file.json") and not is_stream(tmp_path) and not is_stream(tmp_path / "none")
    # no "already exists; pass --overwrite" for a stream, and nothing staged beside it
    check_output_file(Path("/dev/null"), overwrite=False)
    check_output_file(fifo, overwrite=False)
    write_json(Path("/dev/null"), {"accuracy": 1.0})
    assert Path("/dev/null").is_char_device() and entries(tmp_path) == ["file.json", "pipe"]
