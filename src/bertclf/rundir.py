"""The run directory's layout and every write bertclf makes: file names, reading, atomic writing.

Outputs (run directories, prediction files, metrics files) are written under a hidden staging name beside the
target and renamed over it at the end, so an interrupted or failed command never leaves a half-written output
under the final name. The checks a command makes before its work (does the output exist, can its folder be
written) live here too, so every command checks alike, and before the work rather than after it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bertclf.errors import BertclfError, first_line

CONFIG_FILE = "bertclf.yaml"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
THRESHOLDS_FILE = "thresholds.json"
MODEL_CARD_FILE = "README.md"
HEAD_WEIGHTS = "head.safetensors"
EXPORT_FILE = "export.json"  # present in an export directory only: its format, quantization and self-check
ONNX_GRAPH = "model.onnx"  # texts (or windows of chunked texts) to logits (or window vectors)
ONNX_DOCUMENT_HEAD = "document_head.onnx"  # chunked texts: window vectors to logits
# A run in training keeps its checkpoints in a staging directory beside the run directory it will become (see
# run_staging_directory): the options it started with (CONFIG_FILE), checkpoints/step-NNNNNNNN/ (accelerate's saved
# state and TRAIN_STATE_FILE), and best/ (the best weights so far, BEST_WEIGHTS).
CHECKPOINTS_DIR = "checkpoints"
BEST_DIR = "best"
BEST_WEIGHTS = "model.safetensors"
TRAIN_STATE_FILE = "train_state.json"
# The run's HTML report, and what it is drawn from besides metrics.json (see bertclf.reporting): the data check, the
# test part's predictions and the TF-IDF baseline's scores.
REPORT_FILE = "report.html"
INSPECTION_FILE = "data.json"
TEST_PREDICTIONS_FILE = "test_predictions.parquet"
BASELINE_FILE = "baseline.json"
TRACKING_DIR = "tracking"  # experiment trackers' files (TensorBoard events, an MLflow file store) by default


def _write_errors() -> tuple[type[BaseException], ...]:
    """Failures of a write that are about the disk, not about bertclf: full, read-only, too large, gone."""
    from safetensors import SafetensorError  # raised instead of OSError when a weights file cannot be written

    return OSError, SafetensorError


def _reason(error: BaseException) -> str:
    """What went wrong, in a few words: the system's own words for a failed system call."""
    return error.strerror if isinstance(error, OSError) and error.strerror else first_line(error)


def _default_mode(kind: str) -> int:
    """The permissions a plain ``open``/``mkdir`` would give under the current umask (mkstemp/mkdtemp use 0600/0700,
    which would hide a shared model from other users)."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if kind == "dir" else 0o666) & ~umask


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, outermost first."""
    missing = []
    for parent in path.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing[::-1]


def _writable_ancestor(path: Path) -> Path:
    """The nearest existing folder above ``path``; an error if a file stands in the way or it cannot be written."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise BertclfError(f"cannot write {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise BertclfError(f"cannot write {path}: {parent} is not writable")
            return parent
    raise BertclfError(f"cannot write {path}: no existing folder above it")


def is_stream(path: Path) -> bool:
    """Whether an output is a stream to write into rather than a file to replace: a device or a pipe that exists
    (``/dev/stdout``, ``/dev/null``, a FIFO), or anything named in ``/dev`` or ``/dev/fd`` (``/dev/stdout`` leads to a
    regular file when the shell redirects standard output to one; that file is the shell's, never replaced)."""
    absolute = Path(os.path.abspath(path))
    if not absolute.exists() or absolute.is_dir():
        return False
    return not absolute.is_file() or absolute.parent in (Path("/dev"), Path("/dev/fd"), Path("/proc/self/fd"))


def check_output_file(path: Path, overwrite: bool) -> None:
    """Fail before any work if ``path`` cannot become an output file. Creates nothing. A stream (see
    :func:`is_stream`) is written into as it is: it needs no --overwrite, only to be writable."""
    if is_stream(path):
        if not os.access(path, os.W_OK):
            raise BertclfError(f"cannot write {path}: not writable")
        return
    if path.is_dir():
        raise BertclfError(f"output {path} is a directory; name a file")
    if path.exists() and not overwrite:
        raise BertclfError(f"output {path} already exists; pass --overwrite to replace it")
    _writable_ancestor(path)


def check_output_directory(path: Path, overwrite: bool) -> None:
    """Fail before any work if ``path`` cannot become a run directory. Creates nothing."""
    if path.exists() and not path.is_dir():
        raise BertclfError(f"output {path} exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise BertclfError(f"output directory {path} already exists; pass --overwrite (overwrite=True) to replace it")
    _writable_ancestor(path)


def check_free_space(path: Path, needed_bytes: int) -> None:
    """Fail before training rather than lose the trained model to a full disk at the save."""
    free = shutil.disk_usage(_writable_ancestor(path)).free
    if free < needed_bytes:
        raise BertclfError(f"not enough disk space for {path}: the run needs about {needed_bytes / 2**20:.0f} MB, "
                           f"{free / 2**20:.0f} MB are free")


@contextlib.contextmanager
def _staged(path: Path, make_staging: Any, move_into_place: Any) -> Iterator[Path]:
    """Create missing parents and a staging entry, yield it, move it into place; undo everything on any failure."""
    created = _missing_parents(path)
    staging = None
    try:
        for folder in created:
            folder.mkdir(mode=_default_mode("dir"))
        staging = make_staging()
        yield staging
        move_into_place(staging)
    except BaseException as error:
        if staging is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(staging) if staging.is_dir() else staging.unlink(missing_ok=True)
        _remove_empty(created)
        if (failure := _failed_write(path, error)) is not None:
            raise failure from None
        raise


def _failed_write(path: Path, error: BaseException) -> BertclfError | None:
    """The one-line error for a write to ``path`` that the disk refused; None for any other failure."""
    return BertclfError(f"cannot write {path}: {_reason(error)}") if isinstance(error, _write_errors()) else None


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def written_as(path: Path, writing: Path) -> Iterator[None]:
    """Writes into ``writing`` (later renamed to ``path``): on failure it is removed, and a failure of the disk
    becomes one error naming ``path``."""
    try:
        yield
    except BaseException as error:
        shutil.rmtree(writing, ignore_errors=True)
        if (failure := _failed_write(path, error)) is not None:
            raise failure from None
        raise


@contextlib.contextmanager
def run_staging(output: Path, folder: Path | None = None) -> Iterator[Path]:
    """The staging directory of a run in training (``folder``, or the one of ``output``), removed when the run is
    saved, or when it fails before any checkpoint (with the folders above it that it created); a failure after a
    checkpoint keeps it, to resume from."""
    staging = folder or run_staging_directory(output)
    created = _missing_parents(staging)
    try:
        yield staging
    except BaseException:
        if not checkpoints_in(staging):
            shutil.rmtree(staging, ignore_errors=True)
            _remove_empty(created)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def atomic_file(path: Path) -> contextlib.AbstractContextManager[Path]:
    """A staging file beside ``path`` to write; renamed over ``path`` when the block ends without error. A stream
    (see :func:`is_stream`) is written into directly: it has no staging name."""
    if is_stream(path):
        return _streamed(path)

    def make_staging() -> Path:
        handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(handle)
        os.chmod(name, _default_mode("file"))
        return Path(name)

    return _staged(path, make_staging, lambda staging: os.replace(staging, path))


@contextlib.contextmanager
def _streamed(path: Path) -> Iterator[Path]:
    try:
        yield path
    except BrokenPipeError:  # the reader went away: the command ends quietly, as with standard output
        raise
    except BaseException as error:
        if (failure := _failed_write(path, error)) is not None:
            raise failure from None
        raise


def atomic_directory(path: Path) -> contextlib.AbstractContextManager[Path]:
    """A staging folder beside ``path`` to fill; it replaces ``path`` when the block ends without error."""

    def make_staging() -> Path:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        os.chmod(staging, _default_mode("dir"))
        return staging

    return _staged(path, make_staging, lambda staging: replace_directory(staging, path))


def replace_directory(staging: Path, path: Path) -> None:
    """Rename the finished folder ``staging`` to ``path``, replacing what is there."""
    # Some writers (safetensors among them) create files readable by their owner only; a run is shared.
    for file in staging.rglob("*"):
        os.chmod(file, _default_mode("dir" if file.is_dir() else "file"))
    if not path.exists():
        staging.rename(path)
        return
    # Move the old directory aside first, so a failure between the renames still leaves one whole copy.
    old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
    path.rename(old / path.name)
    staging.rename(path)
    shutil.rmtree(old, ignore_errors=True)


def run_staging_directory(output: Path) -> Path:
    """Where a run that will be saved as ``output`` keeps its checkpoints while it trains."""
    return output.parent / f".{output.name}.partial"


def checkpoint_directory(folder: Path, step: int) -> Path:
    return folder / CHECKPOINTS_DIR / f"step-{step:08d}"


def writing_name(path: Path) -> Path:
    """The name a folder is written under before it is renamed to ``path``, the same in every process."""
    return path.with_name(f".{path.name}.writing")


def interrupted_run_options(folder: Path) -> Path:
    """The options file of the interrupted run whose staging directory ``folder`` is; an error if it is not one."""
    if not (folder / CONFIG_FILE).is_file() or not checkpoints_in(folder):
        raise BertclfError(f"{folder} is not the staging directory of an interrupted run (no checkpoint in it)")
    return folder / CONFIG_FILE


def checkpoints_in(folder: Path) -> list[Path]:
    """The complete checkpoints in a run's staging directory, oldest first (one being written is not listed)."""
    found = folder / CHECKPOINTS_DIR
    return sorted(found.glob("step-*")) if found.is_dir() else []


def write_json(path: Path, payload: Any) -> None:
    """A JSON file written atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as staging:
        write_json_into(staging, payload)


def onnx_graphs(directory: Path, export: dict[str, Any]) -> tuple[Path, Path | None]:
    """The graph files an export directory must hold."""
    graph = directory / ONNX_GRAPH
    head = directory / ONNX_DOCUMENT_HEAD if export.get("chunked") else None
    for path in (graph, head):
        if path is not None and not path.is_file():
            raise BertclfError(f"{directory} is not a complete export (missing {path.name})")
    return graph, head


def write_json_into(path: Path, payload: Any) -> None:
    """A JSON file inside a staging directory (which is itself renamed into place as a whole). A score that is not
    a number (NaN: undefined on these texts, such as ROC AUC with one class) or infinite is written as null, so the
    file is strict JSON that any reader takes."""
    path.write_text(json.dumps(_finite(payload), ensure_ascii=False, indent=2, allow_nan=False), encoding="utf-8")


def _finite(payload: Any) -> Any:
    """``payload`` with NaN and infinite floats (numpy float64 among them) as None."""
    if isinstance(payload, dict):
        return {key: _finite(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [_finite(value) for value in payload]
    if isinstance(payload, float) and not math.isfinite(payload):
        return None
    return payload


def read_json(path: Path) -> Any:
    """A JSON file of a run directory; a truncated or garbled one is a one-line error naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BertclfError(f"{path.parent} is not a complete bertclf run directory (missing {path.name})") from None
    except (ValueError, UnicodeDecodeError):
        raise BertclfError(f"{path} is corrupt (not valid JSON)") from None
    except OSError as error:
        raise BertclfError(f"cannot read {path}: {_reason(error)}") from None
