"""The ``inference`` suite: ``transformers.pipeline`` against each of bertclf's runtimes on the same model.

    python -m benchmarks.run --suite inference                                   # about 45 minutes on 2 cores
    python -m benchmarks.run --suite inference --only cola --limit 40 \\
        --work /tmp/bench --results /tmp/bench/results.json --report /tmp/bench/BENCHMARKS.md   # smoke run

Per dataset, one job trains one bertclf model on a slice, saves its run directory and writes two ONNX exports of it
(fp32 and int8). Then every runtime (``pipeline``, ``torch``, ``torch-int8``, ``onnx``, ``onnx-int8``) is timed in a
process of its own, so that the peak RSS reported is that runtime's alone: texts/s at batch size 64 (median of
``PASSES`` passes over the test slice, after a warm-up batch), latency of single texts, and the probabilities it
gives the test slice. The parent turns those into labels with one decision rule for every runtime and scores them.
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

from benchmarks.datasets import DatasetSpec, prepare
from benchmarks.scoring import multilabel_scores, single_label_scores

RUNTIMES = ("torch", "torch-int8", "onnx", "onnx-int8")
ROWS = ("pipeline", *RUNTIMES)
INT8 = ("torch-int8", "onnx-int8")
BATCH_SIZE = 64  # throughput batch, the pipeline's best setting in the other suites too
LATENCY_TEXTS = 200  # texts sent one at a time for the latency percentiles
LATENCY_WARMUP = 5
QUIET_WAIT_S = 60  # longest wait, before each timing job, for other processes to leave the CPU
QUIET_SHARE = 0.15
PASSES = 3  # timed passes over the test slice; the median is reported (one pass is at the mercy of a stall)
SPEEDUP_TARGETS = {"rutweetcorp": 3.0, "cola": 3.0, "sst2": 3.0, "bbc_news": 2.0}
MAX_METRIC_LOSS = 0.005  # half a point of the test metric, int8 against torch fp32
MIN_INT8_AGREEMENT = 0.99
MIN_ONNX_AGREEMENT = 0.999
MAX_INT8_SIZE_SHARE = 0.40
METRIC_NAMES = {"accuracy": "accuracy", "f1_macro": "macro-F1", "mcc": "MCC", "f1_micro": "micro-F1",
                "subset_accuracy": "subset accuracy"}


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


def _load(loader: Any, job: dict[str, Any], runtime: str, threads: int) -> tuple[Any, str]:
    """The classifier on ``runtime``, and where it was loaded from. ONNX runtimes open the export directory, which
    holds what a deployment ships ('auto' = fp32 or int8 by what it holds); where the library cannot open it, the
    run directory with that runtime, which exports the same graphs (``export_graphs``) into a temporary folder."""
    from bertclf.errors import BertclfError

    if not runtime.startswith("onnx"):
        return loader.load(job["run_dir"], runtime=runtime, threads=threads), "run directory"
    try:
        return loader.load(job["exports"][runtime], threads=threads), "export directory"
    except BertclfError as error:
        print(f"cannot load the export directory ({error}); loading the run directory as {runtime}", flush=True)
        return (loader.load(job["run_dir"], runtime=runtime, threads=threads),
                f"run directory (the export directory failed to load: {error})")


def time_runtime(job: dict[str, Any]) -> dict[str, Any]:
    """Throughput at batch 64, single-text latency and the test probabilities of one runtime (or the pipeline)."""
    import torch

    from bertclf import TextClassifier

    texts = pd.read_csv(job["paths"]["test"])["text"].tolist()
    runtime, threads = job["runtime"], job["threads"]
    started = time.perf_counter()
    if runtime == "pipeline":
        batch, single, to_scores = _pipeline(Path(job["run_dir"]), threads)
        source = "run directory"
    else:
        classifier, source = _load(TextClassifier, job, runtime, threads)
        classifier.config = dataclasses.replace(classifier.config, eval_batch_size=BATCH_SIZE)
        batch, single = classifier.predict_proba, (lambda text: classifier.predict_proba([text]))
        to_scores = np.asarray
    load_seconds = time.perf_counter() - started

    batch(texts[:BATCH_SIZE])  # warm-up: first-call allocations, lazy initialisation
    busy_before, own_before, timing_started = machine_busy_seconds(), _own_cpu_seconds(), time.perf_counter()
    passes = []
    for _ in range(job["passes"]):
        outputs, seconds = _timed(lambda: batch(texts))
        passes.append(len(texts) / seconds)
    latency_texts = texts[: job["latency_texts"]]
    for text in latency_texts[:LATENCY_WARMUP]:
        single(text)
    latencies = [_timed(lambda text=text: single(text))[1] * 1000 for text in latency_texts]
    timing_seconds = time.perf_counter() - timing_started
    # what other processes took of the machine while this one was timed: contention that slows every figure
    others = None if busy_before is None else max(0.0, (machine_busy_seconds() - busy_before - _own_cpu_seconds()
                                                         + own_before) / (timing_seconds * (os.cpu_count() or 1)))
    np.save(job["scores"], to_scores(outputs))
    result = {
        "texts": len(texts),
        "source": source,
        "threads": torch.get_num_threads() if runtime in ("pipeline", "torch", "torch-int8") else threads,
        "load_seconds": load_seconds,
        "texts_per_s": median(passes),
        "texts_per_s_passes": passes,
        "latency_texts": len(latencies),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
        "others_cpu_share": others,
    }
    if runtime == "torch-int8":  # what saving the quantized network would write
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "model.pt"
            torch.save(classifier.runtime_.model.state_dict(), path)
            result["size_bytes"] = path.stat().st_size
    return result


def run_worker_job(job: dict[str, Any]) -> dict[str, Any]:
    logging.getLogger("transformers").setLevel(logging.ERROR)
    return train_and_export(job) if job["kind"] == "serve-train" else time_runtime(job)


# --- the parent: jobs in order, then scores, agreement and sizes ------------------------------------------------


def _files_size(directory: Path, names: tuple[str, ...]) -> int:
    return sum((directory / name).stat().st_size for name in names if (directory / name).is_file())


def _limit(paths: dict[str, Path], limit: int | None) -> None:
    """Smoke runs: a random ``limit`` rows of every part, rewritten in place."""
    if not limit:
        return
    for path in paths.values():
        frame = pd.read_csv(path)
        frame.sample(n=min(limit, len(frame)), random_state=0).to_csv(path, index=False)


def score(run_dir: Path, test_path: Path, scores: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Test metrics of every row and its label agreement with torch fp32, all decided by bertclf's rules: argmax,
    or for multilabel the thresholds saved with the model (``labels_from_probabilities``)."""
    from benchmarks.worker import label_matrix
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
        figures[row] = {"metrics": metrics, "agreement": float(same.mean())}
        if not multilabel:  # a model that gives nearly every text one class agrees with anything trivially
            figures[row]["top_class_share"] = float(np.bincount(decided).max() / len(decided))
    return figures


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, run_job: Callable, limit: int | None = None
                      ) -> dict[str, Any]:
    """Train, export, time every runtime in its own process, then score; returns the dataset's figures."""
    folder = work / "inference" / spec.name
    paths = prepare(spec, root, folder / "data")
    _limit(paths, limit)
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


# --- report ------------------------------------------------------------------------------------------------------


def _fastest_int8(dataset: dict[str, Any]) -> str:
    rows = dataset["runtimes"]
    return max(INT8, key=lambda row: rows[row]["texts_per_s"])


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(name: str, dataset: dict[str, Any]) -> list[str]:
    """One line per acceptance target that applies to this dataset, with its verdict."""
    rows, metric = dataset["runtimes"], dataset["metric"]
    lines = []
    if name in SPEEDUP_TARGETS and "pipeline" in rows:
        fastest = _fastest_int8(dataset)
        speedup = rows[fastest]["texts_per_s"] / rows["pipeline"]["texts_per_s"]
        loss = rows["torch"]["metrics"][metric] - rows[fastest]["metrics"][metric]
        agreement = rows[fastest]["agreement"]
        target = SPEEDUP_TARGETS[name]
        lines.append(
            f"fastest int8 runtime ({fastest}) vs `pipeline`: {speedup:.2f}x ({_met(speedup >= target)}, target ≥ "
            f"{target:g}x); {metric} loss vs torch fp32 {100 * loss:+.2f} points ({_met(loss <= MAX_METRIC_LOSS)}, "
            f"target ≤ {100 * MAX_METRIC_LOSS:g}); label agreement {agreement:.2%} "
            f"({_met(agreement >= MIN_INT8_AGREEMENT)}, target ≥ {MIN_INT8_AGREEMENT:.0%})")
    onnx, torch_fp32 = rows["onnx"], rows["torch"]
    ratio = onnx["texts_per_s"] / torch_fp32["texts_per_s"]
    lines.append(f"onnx vs torch fp32: {ratio:.2f}x ({_met(ratio >= 1.0)}, target ≥ 1x); label agreement "
                 f"{onnx['agreement']:.2%} ({_met(onnx['agreement'] >= MIN_ONNX_AGREEMENT)}, target ≥ "
                 f"{MIN_ONNX_AGREEMENT:.1%})")
    share = rows["onnx-int8"]["size_mb"] / onnx["size_mb"]
    lines.append(f"int8 export size: {rows['onnx-int8']['size_mb']:.1f} MB = {share:.0%} of the fp32 export "
                 f"({onnx['size_mb']:.1f} MB) ({_met(share <= MAX_INT8_SIZE_SHARE)}, target ≤ "
                 f"{MAX_INT8_SIZE_SHARE:.0%}); torch-int8's saved state is "
                 f"{rows['torch-int8']['size_mb'] / torch_fp32['size_mb']:.0%} of model.safetensors")
    return lines


def dataset_section(name: str, dataset: dict[str, Any]) -> list[str]:
    rows, metric, sizes = dataset["runtimes"], dataset["metric"], dataset["sizes"]
    shown = ("f1_micro", "f1_macro", "subset_accuracy") if dataset["multilabel"] else ("accuracy", "f1_macro", "mcc")
    options = {key: value for key, value in dataset["options"].items() if key not in ("metric", "eval_batch_size")}
    pipeline = rows.get("pipeline")
    exports = dataset["exports"]
    lines = [
        f"### {name}",
        "",
        f"{dataset['description']}. Texts: train {sizes['train']}, validation {sizes['val']}, test {sizes['test']}"
        + (f" (smoke run: every part cut to {dataset['limit']})" if dataset.get("limit") else "")
        + f". One bertclf model (options {options}; max length {dataset['max_length']}), trained in "
        f"{dataset['train_seconds']:.0f} s; the test metric is {METRIC_NAMES[metric]}.",
        "",
        f"| runtime | texts/s at batch {dataset['batch_size']} | vs pipeline | latency p50 ms | latency p99 ms "
        f"| size on disk MB | peak RSS MB | load s | labels as torch fp32 "
        f"| {' | '.join(METRIC_NAMES[score] for score in shown)} |",
        "|---" * (9 + len(shown)) + "|",
    ]
    for row, figures in rows.items():
        versus = f"{figures['texts_per_s'] / pipeline['texts_per_s']:.2f}x" if pipeline else "n/a"
        scores = " | ".join(f"{figures['metrics'][score]:.4f}" for score in shown)
        lines.append(
            f"| {'`pipeline`' if row == 'pipeline' else row} | {figures['texts_per_s']:.1f} | {versus} "
            f"| {figures['latency_p50_ms']:.1f} | {figures['latency_p99_ms']:.1f} | {figures['size_mb']:.1f} "
            f"| {figures['peak_rss_mb']:.0f} | {figures['load_seconds']:.1f} | {figures['agreement']:.2%} | {scores} |")
    lines.append("")
    if pipeline is None:
        lines += ["No `pipeline` row: the pipeline runs a standard sequence-classification checkpoint on one window "
                  "per text, and this model's windows and their pooling into a document are bertclf's own.", ""]
    else:
        lines += ["`pipeline`'s size is the same model.safetensors as torch fp32's; its texts/s passes: "
                  + ", ".join(f"{value:.1f}" for value in pipeline["texts_per_s_passes"]) + ".", ""]
    top = rows["torch"].get("top_class_share")
    if top is not None and top >= 0.9:
        lines += [f"Caveat: torch fp32 gives {top:.0%} of the test texts one class, so label agreement here says "
                  "little about how close the runtimes' probabilities are.", ""]
    lines.append("Export self-checks on the validation texts (bertclf's `export`, against PyTorch): " + "; ".join(
        f"{runtime} agreement {info['check']['agreement']:.2%}, largest probability difference "
        f"{info['check']['max_probability_difference']:.4f}, exported in {info['seconds']:.0f} s"
        for runtime, info in exports.items()) + ".")
    lines += ["", *[f"- {line}" for line in targets(name, dataset)], ""]
    return lines


def section(results: dict[str, Any], header: list[str]) -> list[str]:
    """The suite's part of BENCHMARKS.md: the run's header, the targets at a glance, then one table per dataset."""
    datasets = results["datasets"]
    first = next(iter(datasets.values()), None)
    lines = [*header]
    if first is not None:
        lines += [
            f"Each dataset's model is timed on {first['threads']} threads in every runtime, each runtime in a "
            f"process of its own (peak RSS is that process's). texts/s: the median of {first['passes']} passes "
            f"over the test texts at batch size {first['batch_size']} after one warm-up batch, tokenization "
            f"included. Latency: the first {LATENCY_TEXTS} test texts (fewer where the test part is smaller), "
            "one call per text after a warm-up. `pipeline`: `transformers.pipeline('text-classification', "
            "device=-1, dtype=float32)` on the run directory, `batch_size=64, truncation=True` (`top_k=None` for "
            "multilabel), torch set to the same threads. torch and torch-int8 load the run directory "
            "(torch-int8: dynamic int8 Linear layers, sized by `torch.save` of its state dict); onnx and onnx-int8 "
            "load the exports written by `TextClassifier.export` (sized as model.onnx plus document_head.onnx). "
            "Labels: argmax, or for multilabel the thresholds saved with the model, applied alike to every "
            "runtime's probabilities (the pipeline's scores included); agreement is with torch fp32's labels "
            "(multilabel: the whole label set).",
            "",
            "| dataset | fastest int8 vs pipeline | int8 test-metric loss, agreement | onnx vs torch fp32 "
            "| int8 export size |",
            "|---|---|---|---|---|",
        ]
    for name, dataset in datasets.items():
        verdicts = targets(name, dataset)
        speed = verdicts[0] if len(verdicts) == 3 else None
        if speed is not None:
            speed_part, quality_part = speed.split("; ", 1)
        else:
            speed_part, quality_part = "no target", "no target"
        lines.append(f"| {name} | {speed_part} | {quality_part} | {verdicts[-2]} | {verdicts[-1].split('; ')[0]} |")
    for name, reason in results["skipped"].items():
        lines.append(f"| {name} | skipped: {reason} | | | |")
    lines.append("")
    for name, dataset in datasets.items():
        lines += dataset_section(name, dataset)
    return lines
