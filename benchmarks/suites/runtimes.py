"""The ``inference`` suite: ``transformers.pipeline`` against each of bertclf's runtimes on the same model.

    python -m benchmarks.run --suite inference          # about 20 minutes on 2 cores (measured: 19.5)
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
QUIET_WAIT_S = 30  # longest wait, before each timing job, for other processes to leave the CPU
QUIET_SHARE = 0.15
PASSES = 3  # timed passes over the test slice; the median is reported (one pass is at the mercy of a stall)
MAX_PASSES = 8  # passes made at most when other processes take the CPU during some of them
MAX_LATENCY_ROUNDS = 3  # rounds of the latency texts made at most, likewise
CLEAN_SHARE = 0.10  # a measurement during which other processes took less of the CPU than this counts as clean
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
        figures[row] = {"metrics": metrics, "agreement": float(same.mean()),
                        # how far the probabilities moved, which agreement on labels alone can hide
                        "max_probability_difference": None if row == "pipeline" and not multilabel else
                        float(np.abs(scores[row] - scores["torch"]).max())}
        if not multilabel:  # a model that gives nearly every text one class agrees with anything trivially
            figures[row]["top_class_share"] = float(np.bincount(decided).max() / len(decided))
    return figures


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, run_job: Callable, limit: int | None = None
                      ) -> dict[str, Any]:
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


# --- report ------------------------------------------------------------------------------------------------------


def _fastest_int8(dataset: dict[str, Any]) -> str:
    rows = dataset["runtimes"]
    return max(INT8, key=lambda row: rows[row]["texts_per_s"])


def _difference(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def targets(name: str, dataset: dict[str, Any]) -> dict[str, str]:
    """The verdict on each acceptance target that applies to this dataset: ``speed`` and ``quality`` (the fastest
    int8 runtime against ``pipeline`` and against torch fp32) where the issue sets a speed-up, ``onnx`` and
    ``size`` everywhere."""
    rows, metric = dataset["runtimes"], dataset["metric"]
    verdicts = {}
    if name in SPEEDUP_TARGETS and "pipeline" in rows:
        fastest = _fastest_int8(dataset)
        speedup = rows[fastest]["texts_per_s"] / rows["pipeline"]["texts_per_s"]
        loss = rows["torch"]["metrics"][metric] - rows[fastest]["metrics"][metric]
        agreement = rows[fastest]["agreement"]
        target = SPEEDUP_TARGETS[name]
        verdicts["speed"] = (f"{fastest} {speedup:.2f}x `pipeline` ({_met(speedup >= target)}, target ≥ "
                             f"{target:g}x)")
        verdicts["quality"] = (f"{fastest}: {METRIC_NAMES[metric]} {100 * -loss:+.2f} points vs torch fp32 "
                               f"({_met(loss <= MAX_METRIC_LOSS)}, target ≥ {-100 * MAX_METRIC_LOSS:g}); labels "
                               f"{agreement:.2%} as torch fp32 ({_met(agreement >= MIN_INT8_AGREEMENT)}, target ≥ "
                               f"{MIN_INT8_AGREEMENT:.0%})")
    onnx, torch_fp32 = rows["onnx"], rows["torch"]
    ratio = onnx["texts_per_s"] / torch_fp32["texts_per_s"]
    verdicts["onnx"] = (f"{ratio:.2f}x torch fp32 ({_met(ratio >= 1.0)}, target ≥ 1x); labels "
                        f"{onnx['agreement']:.2%} as torch fp32 ({_met(onnx['agreement'] >= MIN_ONNX_AGREEMENT)}, "
                        f"target ≥ {MIN_ONNX_AGREEMENT:.1%})")
    share = rows["onnx-int8"]["size_mb"] / onnx["size_mb"]
    verdicts["size"] = (f"{rows['onnx-int8']['size_mb']:.1f} MB = {share:.0%} of the fp32 export's "
                        f"{onnx['size_mb']:.1f} MB ({_met(share <= MAX_INT8_SIZE_SHARE)}, target ≤ "
                        f"{MAX_INT8_SIZE_SHARE:.0%})")
    return verdicts


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
        f"| size on disk MB | peak RSS MB | load s | labels as torch fp32 | largest probability difference "
        f"| {' | '.join(METRIC_NAMES[score] for score in shown)} | others' CPU |",
        "|---" * (11 + len(shown)) + "|",
    ]
    for row, figures in rows.items():
        versus = f"{figures['texts_per_s'] / pipeline['texts_per_s']:.2f}x" if pipeline else "n/a"
        scores = " | ".join(f"{figures['metrics'][score]:.4f}" for score in shown)
        lines.append(
            f"| {'`pipeline`' if row == 'pipeline' else row} | {figures['texts_per_s']:.1f} | {versus} "
            f"| {figures['latency_p50_ms']:.1f} | {figures['latency_p99_ms']:.1f} | {figures['size_mb']:.1f} "
            f"| {figures['peak_rss_mb']:.0f} | {figures['load_seconds']:.1f} | {figures['agreement']:.2%} "
            f"| {_difference(figures.get('max_probability_difference'))} | {scores} "
            f"| {_share(figures.get('others_cpu_share'))} |")
    lines.append("")
    if pipeline is None:
        lines += ["No `pipeline` row: the pipeline runs a standard sequence-classification checkpoint on one window "
                  "per text, and this model's windows and their pooling into a document are bertclf's own.", ""]
    else:
        lines += ["`pipeline`'s size is the same model.safetensors as torch fp32's; its texts/s passes: "
                  + ", ".join(f"{value:.1f}" for value in pipeline["texts_per_s_passes"]) + ".", ""]
    sources = {row: figures["source"] for row, figures in rows.items() if row.startswith("onnx")}
    if any(source != "export directory" for source in sources.values()):
        lines += ["ONNX rows: " + "; ".join(f"{row} loaded from the {source}" for row, source in sources.items())
                  + ".", ""]
    top = rows["torch"].get("top_class_share")
    if top is not None and top >= 0.9:
        lines += [f"Caveat: torch fp32 gives {top:.0%} of the test texts one class, so label agreement here says "
                  "little about how close the runtimes' probabilities are.", ""]
    lines.append("Export self-checks on the validation texts (bertclf's `export`, against PyTorch): " + "; ".join(
        f"{runtime} agreement {info['check']['agreement']:.2%}, largest probability difference "
        f"{info['check']['max_probability_difference']:.4f}, exported in {info['seconds']:.0f} s"
        for runtime, info in exports.items()) + ".")
    verdicts = targets(name, dataset)
    torch_int8_share = rows["torch-int8"]["size_mb"] / rows["torch"]["size_mb"]
    lines += [
        "",
        *([f"- fastest int8 runtime vs `pipeline`: {verdicts['speed']}",
           f"- int8 quality: {verdicts['quality']} (one test text is {100 / sizes['test']:.2f} points of accuracy "
           f"here)"] if "speed" in verdicts else []),
        f"- onnx fp32: {verdicts['onnx']}",
        f"- int8 export size: {verdicts['size']}; torch-int8's saved state dict is {torch_int8_share:.0%} of "
        "model.safetensors (dynamic quantization leaves the embeddings in fp32)",
        "",
    ]
    return lines


def section(results: dict[str, Any], header: list[str]) -> list[str]:
    """The suite's part of BENCHMARKS.md: the run's header, the targets at a glance, then one table per dataset."""
    datasets = results["datasets"]
    first = next(iter(datasets.values()), None)
    lines = [*header]
    if first is not None:
        lines += [
            "How it was measured:",
            "",
            "- One bertclf model per dataset (the embedded all-MiniLM-L6-v2, seed 0, the epochs and slices each "
            "dataset names), saved as a run directory and exported twice with `TextClassifier.export` (fp32, and "
            "`quantize='int8'`), each export checked against PyTorch on the validation texts.",
            f"- Every runtime then runs in a process of its own on {first['threads']} threads (peak RSS is that "
            "process's, from `wait4`): `pipeline` is `transformers.pipeline('text-classification', device=-1, "
            f"dtype=float32)` on the run directory, called with `batch_size={first['batch_size']}, truncation=True` "
            "(`top_k=None` for multilabel) after `torch.set_num_threads`; torch and torch-int8 (dynamic int8 Linear "
            "layers) load the run directory; onnx and onnx-int8 load the export directories.",
            f"- texts/s: texts of the test part divided by the time of one `predict_proba` (pipeline: one call) over "
            f"all of them at batch size {first['batch_size']}, tokenization included, after one warm-up batch; the "
            f"median of {first['passes']} passes. Latency: the first {LATENCY_TEXTS} test texts (all of them where "
            f"the test part is smaller), one call per text after {LATENCY_WARMUP} warm-up calls; p50 and p99 in ms. "
            "Load time (which for the ONNX runtimes includes opening the graphs) is not in either.",
            f"- The machine is shared: before each runtime's process starts, the harness waits (at most "
            f"{QUIET_WAIT_S} s) until other processes use under {QUIET_SHARE:.0%} of the CPU, and a pass during "
            f"which they took {CLEAN_SHARE:.0%} or more is repeated (up to {MAX_PASSES} passes, "
            f"{MAX_LATENCY_ROUNDS} latency rounds), keeping the least contended. *others' CPU* is the most other "
            "processes took (from `/proc/stat`, less this process's own CPU time) during the kept measurements.",
            "- Size on disk: torch and `pipeline`, the run directory's *.safetensors; torch-int8, `torch.save` of the "
            "quantized network's state dict; onnx and onnx-int8, the export's model.onnx (plus document_head.onnx "
            "for a chunked model).",
            "- Labels: argmax, or for multilabel the thresholds saved with the model (`labels_from_probabilities`), "
            "applied alike to every runtime's probabilities (for the pipeline, its top label, or for multilabel its "
            "per-label scores); *labels as torch fp32* is the share of test texts given the same label (multilabel: "
            "the same label set) as torch fp32, and *largest probability difference* the largest gap between any "
            "of its probabilities and torch fp32's (not for the single-label pipeline, which returns its top label "
            "only). Test metrics: the scikit-learn code of the other suites.",
            "",
            "| dataset | fastest int8 vs pipeline | int8 test-metric loss, agreement | onnx vs torch fp32 "
            "| int8 export size |",
            "|---|---|---|---|---|",
        ]
    for name, dataset in datasets.items():
        verdicts = targets(name, dataset)
        no_target = "no target" if "pipeline" in dataset["runtimes"] else "no `pipeline` for a chunked model"
        lines.append(f"| {name} | {verdicts.get('speed', no_target)} | {verdicts.get('quality', no_target)} "
                     f"| {verdicts['onnx']} | {verdicts['size']} |")
    for name, reason in results["skipped"].items():
        lines.append(f"| {name} | skipped: {reason} | | | |")
    lines.append("")
    for name, dataset in datasets.items():
        lines += dataset_section(name, dataset)
    return lines
