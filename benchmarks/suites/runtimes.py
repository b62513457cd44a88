"""The runtimes suite (``inference`` in the results): ``transformers.pipeline`` against each of bertclf's runtimes.

    python -m benchmarks.run --suite inference          # about 20 minutes on 2 cores (measured: 19.5)
    python -m benchmarks.run --suite inference --only cola --limit 40 \\
        --work /tmp/bench --results /tmp/bench/results.json --report /tmp/bench/BENCHMARKS.md   # smoke run

Per dataset, one job trains one bertclf model on a slice, saves its run directory and writes two ONNX exports of it
(fp32 and int8). Then every runtime (``pipeline``, ``torch``, ``torch-int8``, ``onnx``, ``onnx-int8``) is timed in a
process of its own, so that the peak RSS reported is that runtime's alone: texts/s at batch size 64 (median of
``PASSES`` passes over the test slice, after a warm-up batch), latency of single texts, and the probabilities it
gives the test slice. The parent turns those into labels with one decision rule for every runtime and scores them.
The timing settings are in :mod:`benchmarks.runtime_timing`; the section of BENCHMARKS.md is drawn by
:mod:`benchmarks.markdown`. The jobs below run in ``benchmarks.worker`` processes; the parent is
:func:`benchmark_dataset`, called once per dataset by ``benchmarks.run``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import resource
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.data_specs import DatasetSpec, prepare
from benchmarks.jobs import run_job
from benchmarks.runtime_timing import (
    BATCH_SIZE,
    CLEAN_SHARE,
    LATENCY_TEXTS,
    LATENCY_WARMUP,
    MAX_LATENCY_ROUNDS,
    MAX_PASSES,
    PASSES,
    QUIET_SHARE,
    QUIET_WAIT_S,
    ROWS,
)
from benchmarks.scoring import label_matrix, multilabel_scores, single_label_scores

# --- jobs, each run by ``benchmarks.worker`` in a process of its own -------------------------------------------


def train_and_export(job: dict[str, Any]) -> dict[str, Any]:
    """Train the dataset's model, save its run directory and write its fp32 and int8 ONNX exports (each checked
    against PyTorch on the validation texts by ``export`` itself)."""
    from bertclf import TextClassifier

    paths = job["paths"]
    # test_size=0: the test part is scored by the timing jobs, so none of the training part is held out
    classifier = TextClassifier(**job["options"], seed=0, test_size=0, mixed_precision="no")
    started = time.perf_counter()
    classifier.fit(paths["train"], val=paths["val"])
    train_seconds = time.perf_counter() - started
    classifier.save(job["run_dir"], overwrite=True)
    exports = {}
    for runtime, quantize in (("onnx", None), ("onnx-int8", "int8")):
        started = time.perf_counter()
        info = classifier.export(job["exports"][runtime], quantize=quantize, check_data=paths["val"], overwrite=True)
        exports[runtime] = {"seconds": time.perf_counter() - started, "check": info["check"],
                            "fused_operators": info.get("fused_operators", {})}
    return {"train_seconds": train_seconds, "max_length": classifier.max_length_, "task": classifier.task_,
            "classes": [str(label) for label in classifier.classes_], "exports": exports}


def machine_busy_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy (``/proc/stat``, time stolen by the hypervisor included)."""
    stat = Path("/proc/stat")
    if not stat.is_file():
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def wait_for_quiet(limit_s: float = QUIET_WAIT_S, share: float = QUIET_SHARE) -> float:
    """Wait (at most ``limit_s``) until other processes use less than ``share`` of the cores, so that a timing job
    does not start while, say, a test run shares the machine; returns the seconds waited."""
    started = time.perf_counter()
    cores = os.cpu_count() or 1
    while time.perf_counter() - started < limit_s:
        before = machine_busy_seconds()
        if before is None:
            break
        time.sleep(2)
        if (machine_busy_seconds() - before) / (2 * cores) < share:
            break
    return time.perf_counter() - started


def _timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def _pipeline(run_dir: Path, threads: int) -> tuple[Callable, Callable, Callable]:
    """``pipeline`` at its best settings on the CPU: batch 64, truncation to the saved tokenizer's length (the
    trained one), fp32, all cores; returns (batch call, single-text call, outputs -> texts x classes scores)."""
    import torch
    from transformers import pipeline

    from bertclf import rundir

    torch.set_num_threads(threads)
    classes = [str(label) for label in rundir.read_json(run_dir / rundir.LABELS_FILE)["classes"]]
    classify = pipeline("text-classification", model=str(run_dir), device=-1, dtype=torch.float32)
    multilabel = classify.model.config.problem_type == "multi_label_classification"
    options = {"truncation": True, **({"top_k": None} if multilabel else {})}
    label2id = classify.model.config.label2id

    def scores(outputs: list) -> np.ndarray:
        matrix = np.zeros((len(outputs), len(classes)), dtype=np.float32)
        for row, output in enumerate(outputs):
            if multilabel:  # every label's own probability, in bertclf's class order
                by_label = {item["label"]: item["score"] for item in output}
                matrix[row] = [by_label[label] for label in classes]
            else:  # the top label only (the pipeline's default): its argmax is the decision
                matrix[row, label2id[output["label"]]] = 1.0
        return matrix

    return (lambda texts: classify(texts, batch_size=BATCH_SIZE, **options),
            lambda text: classify(text, **options), scores)


def _load(loader: Any, job: dict[str, Any], runtime: str, threads: int, scratch: Path) -> tuple[Any, str]:
    """The classifier on ``runtime``, and where it was loaded from. ONNX runtimes open the export directory, which
    holds what a deployment ships ('auto' = fp32 or int8 by what it holds). Where the library refuses it for want
    of a ``config.json`` (which it checks for before reading the tokenizer, though an export has none), the same
    export is opened through a folder of links to its files plus the run directory's ``config.json``: still no
    PyTorch weights loaded and no graph exported at load time, as serving an export would be."""
    from bertclf.errors import BertclfError

    if not runtime.startswith("onnx"):
        return loader.load(job["run_dir"], runtime=runtime, threads=threads), "run directory"
    export = Path(job["exports"][runtime])
    try:
        return loader.load(export, threads=threads), "export directory"
    except BertclfError as error:
        if "config.json" not in str(error):
            raise
        for file in export.iterdir():
            (scratch / file.name).symlink_to(file.resolve())
        (scratch / "config.json").symlink_to((Path(job["run_dir"]) / "config.json").resolve())
        return loader.load(scratch, threads=threads), f"export directory + the run's config.json ({error})"


def _others_share(busy_before: float | None, own_before: float, seconds: float) -> float | None:
    """Share of the machine's CPU that other processes used over the last ``seconds``."""
    if busy_before is None:
        return None
    others = machine_busy_seconds() - busy_before - (_own_cpu_seconds() - own_before)
    return max(0.0, others / (seconds * (os.cpu_count() or 1)))


def measured(function: Callable[[], Any]) -> tuple[Any, float, float | None]:
    """``function()``'s result, its seconds, and the share of the CPU other processes took meanwhile."""
    busy_before, own_before, started = machine_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    return result, seconds, _others_share(busy_before, own_before, seconds)


def least_contended(function: Callable[[], Any], wanted: int, most: int) -> list[tuple[Any, float, float | None]]:
    """Run ``function`` until ``wanted`` runs saw other processes take under ``CLEAN_SHARE`` of the CPU (or
    ``most`` runs were made, waiting for quiet after a contended one); returns the ``wanted`` least contended runs,
    in the order they ran. On a machine shared with, say, a test suite, one stall or a busy neighbour would
    otherwise decide a figure."""
    runs = []
    while len(runs) < most:
        runs.append(measured(function))
        share = runs[-1][2]
        if share is None or sum((run[2] or 0) < CLEAN_SHARE for run in runs) >= wanted:
            break
        if share >= CLEAN_SHARE:
            wait_for_quiet(QUIET_WAIT_S / 2)
    kept = sorted(range(len(runs)), key=lambda index: runs[index][2] or 0)[:wanted]
    return [runs[index] for index in sorted(kept)]


def time_runtime(job: dict[str, Any]) -> dict[str, Any]:
    """Throughput at batch 64, single-text latency and the test probabilities of one runtime (or the pipeline)."""
    import torch

    from bertclf import TextClassifier

    texts = pd.read_csv(job["paths"]["test"])["text"].tolist()
    runtime, threads = job["runtime"], job["threads"]
    scratch = tempfile.TemporaryDirectory(prefix="bench-export-")
    started = time.perf_counter()
    if runtime == "pipeline":
        batch, single, to_scores = _pipeline(Path(job["run_dir"]), threads)
        source = "run directory"
    else:
        classifier, source = _load(TextClassifier, job, runtime, threads, Path(scratch.name))
        classifier.config = dataclasses.replace(classifier.config, eval_batch_size=BATCH_SIZE)
        batch, single = classifier.predict_proba, (lambda text: classifier.predict_proba([text]))
        to_scores = np.asarray
    load_seconds = time.perf_counter() - started

    batch(texts[:BATCH_SIZE])  # warm-up: first-call allocations, lazy initialisation
    passes = least_contended(lambda: batch(texts), job["passes"], MAX_PASSES)
    latency_texts = texts[: job["latency_texts"]]
    for text in latency_texts[:LATENCY_WARMUP]:
        single(text)

    def latencies() -> list[float]:
        return [_timed(lambda text=text: single(text))[1] * 1000 for text in latency_texts]

    latency, _, latency_others = least_contended(latencies, 1, MAX_LATENCY_ROUNDS)[0]
    np.save(job["scores"], to_scores(passes[-1][0]))
    shares = [share for share in [*(run[2] for run in passes), latency_others] if share is not None]
    result = {
        "texts": len(texts),
        "source": source,
        "threads": torch.get_num_threads() if runtime in ("pipeline", "torch", "torch-int8") else threads,
        "load_seconds": load_seconds,
        "texts_per_s": median(len(texts) / run[1] for run in passes),
        "texts_per_s_passes": [len(texts) / run[1] for run in passes],
        "latency_texts": len(latency),
        "latency_p50_ms": float(np.percentile(latency, 50)),
        "latency_p99_ms": float(np.percentile(latency, 99)),
        # what other processes took of the machine while the kept figures were measured (None: not on Linux)
        "others_cpu_share": max(shares) if shares else None,
    }
    if runtime == "torch-int8":  # what saving the quantized network would write
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.pt"
            torch.save(classifier.runtime_.model.state_dict(), path)
            result["size_bytes"] = path.stat().st_size
    scratch.cleanup()
    return result


def run_worker_job(job: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return train_and_export(job) if job["kind"] == "serve-train" else time_runtime(job)


# --- the parent: jobs in order, then scores, agreement and sizes ------------------------------------------------


def _files_size(directory: Path, names: tuple[str, ...]) -> int:
    return sum((directory / name).stat().st_size for name in names if (directory / name).is_file())


def _limit(paths: dict[str, Path], limit: int | None, multilabel: bool) -> None:
    """Smoke runs: a random ``limit`` rows of every part, rewritten in place; for multilabel data, validation and
    test rows keep only labels the cut training part still has (bertclf refuses labels training never saw)."""
    if not limit:
        return
    frames = {part: pd.read_csv(path) for part, path in paths.items()}
    frames = {part: frame.sample(n=min(limit, len(frame)), random_state=0) for part, frame in frames.items()}
    if multilabel:
        seen = {label for cell in frames["train"]["label"] for label in json.loads(cell)}
        for part in ("val", "test"):
            labels = [[label for label in json.loads(cell) if label in seen] for cell in frames[part]["label"]]
            frame = frames[part].assign(label=[json.dumps(kept) for kept in labels])
            frames[part] = frame[[bool(kept) for kept in labels]]
    for part, frame in frames.items():
        frame.to_csv(paths[part], index=False)


def score(run_dir: Path, test_path: Path, scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Test metrics of every row and its label agreement with torch fp32, all decided by bertclf's rules: argmax,
    or for multilabel the thresholds saved with the model (``labels_from_probabilities``)."""
    from bertclf import TextClassifier

    classifier = TextClassifier.load(run_dir, runtime="torch")
    classes = classifier.classes_
    test = pd.read_csv(test_path)
    multilabel = classifier.task_ == "multilabel"
    if multilabel:
        truth = label_matrix([json.loads(cell) for cell in test["label"]], classes)
    else:
        truth = np.array([classes.index(label) for label in test["label"]])

    def decide(probabilities: np.ndarray) -> np.ndarray:
        if multilabel:
            return label_matrix(classifier.labels_from_probabilities(probabilities), classes)
        return probabilities.argmax(axis=1)

    decisions = {row: decide(values) for row, values in scores.items()}
    reference = decisions["torch"]
    figures = {}
    for row, decided in decisions.items():
        same = (decided == reference).all(axis=1) if multilabel else decided == reference
        metrics = multilabel_scores(truth, decided) if multilabel else single_label_scores(truth, decided)
        figures[row] = {"metrics": metrics, "agreement": float(same.mean()),
                        # how far the probabilities moved, which agreement on labels alone can hide
                        "max_probability_difference": None if row == "pipeline" and not multilabel else
                        float(np.abs(scores[row] - scores["torch"]).max())}
        if not multilabel:  # a model that gives nearly every text one class agrees with anything trivially
            figures[row]["top_class_share"] = float(np.bincount(decided).max() / len(decided))
    return figures


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, limit: int | None = None) -> dict[str, Any]:
    """Train, export, time every runtime in its own process, then score; returns the dataset's figures."""
    folder = work / "inference" / spec.name
    paths = prepare(spec, root, folder / "data")
    _limit(paths, limit, spec.multilabel)
    sizes = {part: len(pd.read_csv(path)) for part, path in paths.items()}
    run_dir = folder / "run"
    exports = {runtime: folder / f"export-{runtime}" for runtime in ("onnx", "onnx-int8")}
    options = {**spec.options, **spec.bertclf_options, "metric": spec.metric, "eval_batch_size": BATCH_SIZE}
    print(f"[{spec.name}] training and exporting ...", flush=True)
    trained = run_job({"kind": "serve-train", "paths": paths, "options": options, "run_dir": run_dir,
                       "exports": exports, "bf16": False}, folder / "train.json")
    print(f"[{spec.name}] trained in {trained['train_seconds']:.0f} s (max length {trained['max_length']})",
          flush=True)
    chunked = spec.bertclf_options.get("long_text") == "chunks"
    threads = os.cpu_count() or 1
    latency_texts = min(LATENCY_TEXTS, sizes["test"])
    timings, scores = {}, {}
    for row in ROWS:
        if row == "pipeline" and chunked:
            continue  # the pipeline cannot run a chunked model: its windows and pooling are bertclf's own
        job = {"kind": "serve-time", "runtime": row, "paths": paths, "run_dir": run_dir, "exports": exports,
               "threads": threads, "passes": PASSES, "latency_texts": latency_texts,
               "scores": folder / f"scores-{row}.npy", "bf16": False}
        waited = wait_for_quiet()
        timings[row] = {**run_job(job, folder / f"time-{row}.json"), "waited_for_quiet_s": waited}
        scores[row] = np.load(folder / f"scores-{row}.npy")
        print(f"[{spec.name}] {row}: {timings[row]['texts_per_s']:.1f} texts/s, latency p50 "
              f"{timings[row]['latency_p50_ms']:.1f} ms, peak RSS {timings[row]['peak_rss_mb']:.0f} MB, others' CPU "
              f"{timings[row]['others_cpu_share'] or 0:.0%}", flush=True)
    quality = score(run_dir, paths["test"], scores)
    weights = ("model.safetensors", "head.safetensors")
    graphs = ("model.onnx", "document_head.onnx")
    disk = {"pipeline": _files_size(run_dir, weights), "torch": _files_size(run_dir, weights),
            "torch-int8": timings["torch-int8"]["size_bytes"],
            "onnx": _files_size(exports["onnx"], graphs), "onnx-int8": _files_size(exports["onnx-int8"], graphs)}
    rows = {row: {**timings[row], **quality[row], "size_mb": disk[row] / 2**20} for row in timings}
    return {
        "description": spec.description,
        "metric": spec.metric,
        "multilabel": spec.multilabel,
        "chunked": chunked,
        "sizes": sizes,
        "limit": limit,
        "options": options,
        "max_length": trained["max_length"],
        "train_seconds": trained["train_seconds"],
        "exports": trained["exports"],
        "threads": threads,
        "passes": PASSES,
        "batch_size": BATCH_SIZE,
        "runtimes": rows,
    }
