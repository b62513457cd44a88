"""The tune suite: what ``bertclf tune`` buys over bertclf's defaults, and what it costs.

    python -m benchmarks.suites.tune                  # CoLA and TREC, 20 trials each: 51 minutes on 2 cores
    python -m benchmarks.suites.tune --only trec --trials 10

Per dataset: one search (``TextClassifier.tune``, the default space, the median pruner, seed 0) on the training
part scored on the validation part, timed whole (the trials and the final fit of the best); then bertclf's defaults,
the best trial's options over them, and the two Trainer configurations (bertclf's default settings: epochs, learning
rate, batch size) each trained with seeds 0, 1 and 2 and scored on the test part, which the search never reads.
Each search and each training runs in a ``benchmarks.worker`` process of its own. The datasets are sliced (see
``DATASETS_OF_SUITE``: past the low-label mode's 500 texts, so that trials fine-tune) for a dataset's search and its 12
trainings to take 20 to 30 minutes here (the search 11 and 15).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.data_specs import DatasetSpec, cola, missing, trec
from benchmarks.jobs import run_job
from benchmarks.markdown import write_report
from benchmarks.results import DATASETS, REPORT, RESULTS, WORK, machine, save_suite
from benchmarks.suites import training

SUITE = "tune"
SEEDS = (0, 1, 2)
SEARCH_SEED = 0
DATASETS_OF_SUITE = [
    DatasetSpec("cola", "CoLA (acceptability): a stratified 1,000-sentence slice of in_domain_train / in_domain_dev "
                "(validation) / out_of_domain_dev (test)", ("cola/in_domain_train.tsv",), cola(1000), metric="mcc"),
    DatasetSpec("trec", "TREC (6 question types): a stratified 1,200-question slice of train_5500 (10% held out for "
                "validation) / TREC_10 (test)", ("trec/train_5500.label", "trec/TREC_10.label"), trec(1200),
                metric="accuracy"),
]


def run_worker_job(job: dict[str, Any]) -> dict[str, Any]:
    """One search, run by ``benchmarks.worker``: ``TextClassifier.tune`` on the training part, scored on the
    validation part, under the options every trained side shares."""
    from bertclf import TextClassifier

    paths, settings = job["paths"], job["settings"]
    classifier = TextClassifier(max_length=settings["max_length"], metric=settings["metric"], seed=SEARCH_SEED,
                                test_size=0, mixed_precision="bf16" if job["bf16"] else "no")
    started = time.perf_counter()
    tuned = classifier.tune(paths["train"], val=paths["val"], trials=job["trials"], study_dir=job["study_dir"])
    return {"search_seconds": time.perf_counter() - started, "tuning": tuned.metrics_["tuning"]}


def search(workload: training.Workload, trials: int) -> dict[str, Any]:
    spec = workload.spec
    print(f"[{spec.name}] search: {trials} trials ...", flush=True)
    study_dir = workload.folder / "study"
    job = {"kind": "tune-search", "paths": workload.paths, "settings": workload.settings, "trials": trials,
           "study_dir": study_dir, "bf16": workload.bf16}
    found = run_job(job, workload.folder / "search.json")
    tuning = found["tuning"]
    print(f"[{spec.name}] search: {found['search_seconds'] / 60:.1f} min, trials {tuning['trials']}, best "
          f"{tuning['metric']} {tuning['best_value']:.4f}: {tuning['best_options']}", flush=True)
    return {"minutes": found["search_seconds"] / 60, "trials": tuning["trials"], "metric": tuning["metric"],
            "best_value": tuning["best_value"], "best_trial": tuning["best_trial"],
            "best_options": tuning["best_options"], "pruner": tuning["pruner"], "peak_rss_mb": found["peak_rss_mb"]}


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, trials: int, peak: dict[str, Any],
                      bf16: bool) -> dict[str, Any]:
    """The search, then the four configurations trained with every seed and scored on the test part."""
    from bertclf.config import MIN_STEPS_DEFAULT

    workload = training.prepare_workload(spec, root, work, peak, bf16)
    found = search(workload, trials)
    # bertclf's own defaults (the benchmark worker's min_steps=0 undone: a trial ran with bertclf's default)
    defaults = {"min_steps": MIN_STEPS_DEFAULT}
    configurations = {
        "trainer-default": {"side": "trainer-default", "bertclf_options": {}},
        "trainer-tuned": {"side": "trainer-tuned", "bertclf_options": {}},
        "defaults": {"side": "bertclf", "bertclf_options": defaults},
        "tuned": {"side": "bertclf", "bertclf_options": {**defaults, **found["best_options"]}},
    }
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    for seed in SEEDS:
        for name, configuration in configurations.items():
            measured[name].append(training.train_configuration(workload, name, configuration, seed))
    figures = training.dataset_figures(workload, list(SEEDS), configurations, measured, [])
    return {**figures, "search": found}


def main(argv: list[str] | None = None) -> None:
    import torch

    from benchmarks import flops

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--only", help="Comma-separated dataset names (" + ", ".join(
        spec.name for spec in DATASETS_OF_SUITE) + "); the suite's figures are replaced whole.")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--work", type=Path, default=WORK / SUITE)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    specs = [spec for spec in DATASETS_OF_SUITE if not args.only or spec.name in args.only.split(",")]
    if not specs:
        parser.error("--only names no dataset of the tune suite")
    bf16 = torch.cuda.is_available()
    started = time.perf_counter()
    peak = flops.measure_matmul_rate(bf16)
    results = {
        "suite": SUITE,
        "command": "python -m benchmarks.suites.tune " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d"), "machine": machine(), "precision": "bf16" if bf16 else "fp32",
        "matmul": peak, "datasets": {}, "skipped": {},
        "unfinished": [spec.name for spec in specs],
    }
    for spec in specs:
        reason = missing(spec, args.datasets)
        if reason is None:
            results["datasets"][spec.name] = benchmark_dataset(spec, args.datasets, args.work, args.trials, peak, bf16)
        else:
            results["skipped"][spec.name] = reason
            print(f"skipping {spec.name}: {reason}", flush=True)
        results["unfinished"].remove(spec.name)
        results["total_minutes"] = (time.perf_counter() - started) / 60
        write_report(save_suite(SUITE, results, args.results), args.report)
    print(f"wrote {args.report} and {args.results} in {results['total_minutes']:.1f} minutes")


if __name__ == "__main__":
    main()
