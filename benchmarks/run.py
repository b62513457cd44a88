"""Benchmark bertclf against the Hugging Face Trainer (default and tuned) and ``transformers.pipeline``.

    python -m benchmarks.run --suite quick    # small slices, under 10 minutes on 2 CPU cores
    python -m benchmarks.run --suite full     # BBC News, CoLA and RuTweetCorp, 3 seeds each (about 2 hours)
    python -m benchmarks.run --suite multilabel   # GoEmotions, Trainer at 0.5 vs bertclf's tuned thresholds
    python -m benchmarks.run --suite long     # long-text strategies on BBC News and fake news, at 128 tokens
    python -m benchmarks.run --suite inference    # pipeline against every runtime (torch, int8, ONNX); 20 minutes
    python -m benchmarks.run --suite wide --seeds 3     # TREC, SST-2, 20 Newsgroups and Reuters-21578, sliced
    python -m benchmarks.run --suite recipes-short --seeds 3  # each recipe against the defaults and the Trainer,
    python -m benchmarks.run --suite recipes-long --seeds 3   # on CoLA and TREC, on BBC News,
    python -m benchmarks.run --suite recipes-multilabel --seeds 3  # on GoEmotions
    python -m benchmarks.run --suite recipes-russian --seeds 3     # and on RuTweetCorp

Every job runs in its own process (its peak RSS is read from ``wait4``) on the same machine, model and
data, in the same run; the figures go to ``BENCHMARKS.md`` and ``benchmarks/results.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from statistics import mean, stdev
from typing import Any

import pandas as pd
import torch

from benchmarks import flops, inference
from benchmarks.datasets import SUITES, DatasetSpec, available, prepare
from benchmarks.report import write_report
from bertclf.config import ClassifierConfig
from bertclf.modeling import load_encoder_config, load_tokenizer, resolve_model_path
from bertclf.report import environment
from bertclf.tokenization import choose_max_length, model_token_limit, special_tokens, tokenize

ROOT = Path(__file__).resolve().parents[1]
SIDES = ("trainer-default", "trainer-tuned", "bertclf")


def machine() -> dict[str, Any]:
    """The machine and software of a benchmark run, as bertclf describes a training run's (see report.environment)."""
    found = environment("cuda" if torch.cuda.is_available() else "cpu")
    return {"cpu": found["cpu"], "cores": found["cpu_cores"],
            **{name: found[name] for name in ("torch_threads", "gpu", "python", "torch", "transformers", "bertclf")}}


def run_job(job: dict[str, Any], job_path: Path) -> dict[str, Any]:
    """Run one worker process; add its wall time and peak RSS to its result."""
    job_path.write_text(json.dumps(job, default=str))
    log_path = job_path.with_suffix(".log")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.worker", str(job_path)], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise RuntimeError(f"benchmark job {job_path.name} failed:\n{tail}")
    result = json.loads(job_path.with_suffix(".result.json").read_text())
    return {**result, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}


def token_counts(texts: list[str], model: str) -> list[int]:
    """Tokens of each text with the model's special tokens, before truncation."""
    tokenizer = load_tokenizer(model)
    prefix, suffix = special_tokens(tokenizer)
    return [len(ids) + len(prefix) + len(suffix) for ids in tokenize(tokenizer, texts)]


def settings_for(spec: DatasetSpec, train_counts: list[int], model: str) -> dict[str, Any]:
    """bertclf's defaults for this dataset, with ``max_length='auto'`` resolved as bertclf resolves it."""
    settings = {**dataclasses.asdict(ClassifierConfig()), **spec.options, "metric": spec.metric,
                "multilabel": spec.multilabel}
    if settings["max_length"] == "auto":
        limit = model_token_limit(load_tokenizer(model), load_encoder_config(model))
        settings["max_length"] = choose_max_length(train_counts, limit)
    return settings


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every figure over the seeds."""
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": mean(values), "std": stdev(values) if len(values) > 1 else 0.0}

    numbers = {name for run in runs for name, value in run.items() if isinstance(value, (int, float))}
    summary = {name: stats([run[name] for run in runs]) for name in sorted(numbers)}
    if "metrics" in runs[0]:
        summary["metrics"] = {name: stats([run["metrics"][name] for run in runs]) for name in runs[0]["metrics"]}
    return summary


def configurations_of(spec: DatasetSpec) -> dict[str, dict[str, Any]]:
    """Name -> (side, bertclf options) of every configuration the dataset runs."""
    if spec.strategies:
        trainers = {side: {"side": side, "bertclf_options": {}} for side in SIDES[:2] if spec.trainer_baselines}
        return {**trainers, **{name: {"side": "bertclf", "bertclf_options": {**spec.bertclf_options, **options}}
                               for name, options in spec.strategies.items()}}
    return {side: {"side": side, "bertclf_options": spec.bertclf_options} for side in SIDES}


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, seeds: list[int], peak: dict[str, float],
                      bf16: bool, only_configurations: set[str] | None = None) -> dict[str, Any]:
    model = ClassifierConfig().model
    model_path = resolve_model_path(model)
    paths = prepare(spec, root, work / spec.name / "data")
    frames = {part: pd.read_csv(path) for part, path in paths.items()}
    train_counts = token_counts(frames["train"]["text"].tolist(), model)
    settings = settings_for(spec, train_counts, model)
    train_lengths = [min(count, settings["max_length"]) for count in train_counts]
    test_lengths = [min(count, settings["max_length"]) for count in token_counts(frames["test"]["text"].tolist(),
                                                                                  model)]
    encoder = load_encoder_config(model)
    # FLOPs of truncated texts: the useful work of every side when they all truncate alike
    train_flops = None if spec.strategies else flops.training_flops(encoder, train_lengths) * settings["epochs"]
    inference_flops = flops.inference_flops(encoder, test_lengths)
    configurations = {name: configuration for name, configuration in configurations_of(spec).items()
                      if only_configurations is None or name in only_configurations}
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    inference_runs = []
    for seed in seeds:
        for name, configuration in configurations.items():
            print(f"[{spec.name}] seed {seed}: {name} ...", flush=True)
            stem = f"{name.replace(', ', '-').replace(' ', '-')}-seed{seed}"
            job = {"kind": "train", "side": configuration["side"], "paths": paths, "model_path": model_path,
                   "settings": {**settings, "seed": seed, "bertclf_options": configuration["bertclf_options"]},
                   "run_dir": work / spec.name / stem, "bf16": bf16}
            result = run_job(job, work / spec.name / f"{stem}.json")
            result["train_samples_per_s"] = result["train_samples"] / result["train_seconds"]
            if train_flops is not None:
                result["train_flops_per_s"] = train_flops / result["train_seconds"]
                result["train_peak_fraction"] = result["train_flops_per_s"] / peak["flops_per_s"]
            measured[name].append(result)
            print(f"[{spec.name}] seed {seed}: {name}: {result['train_samples_per_s']:.1f} samples/s, "
                  f"{spec.metric} {result['metrics'][spec.metric]:.4f}", flush=True)
        if spec.strategies:
            continue
        job = {"kind": "inference", "paths": paths, "settings": settings, "run_dir": work / spec.name /
               f"bertclf-seed{seed}", "bf16": bf16}
        result = run_job(job, work / spec.name / f"inference-seed{seed}.json")
        result["bertclf_peak_fraction"] = inference_flops * result["bertclf_texts_per_s"] / len(test_lengths) \
            / peak["flops_per_s"]
        result["pipeline_peak_fraction"] = inference_flops * result["pipeline_texts_per_s"] / len(test_lengths) \
            / peak["flops_per_s"]
        inference_runs.append(result)
        print(f"[{spec.name}] seed {seed}: inference {result['bertclf_texts_per_s']:.1f} vs pipeline "
              f"{result['pipeline_texts_per_s']:.1f} texts/s, agreement {result['agreement']:.4f}", flush=True)
    dataset = {
        "description": spec.description,
        "metric": spec.metric,
        "multilabel": spec.multilabel,
        "sizes": {part: len(frame) for part, frame in frames.items()},
        "settings": {name: settings[name] for name in ("max_length", "epochs", "batch_size", "eval_batch_size",
                                                        "learning_rate", "warmup_ratio", "weight_decay")},
        "bertclf_options": spec.bertclf_options,
        "mean_train_tokens": mean(train_lengths),
        "mean_train_tokens_untruncated": mean(train_counts),
        "seeds": seeds,
        "configurations": {name: {**summarise(runs), "options": configurations[name]["bertclf_options"],
                                  "runs": runs} for name, runs in measured.items()},
    }
    if inference_runs:
        dataset["inference"] = {**summarise(inference_runs), "runs": inference_runs}
    return dataset


def merge_rerun(earlier: dict[str, Any], rerun: dict[str, Any], partial_datasets: bool) -> dict[str, Any]:
    """A rerun of some datasets (or, with ``partial_datasets``, of some configurations of them) on top of the suite's
    earlier run: its datasets (configurations) replace those, the others keep the earlier figures, and the rerun's
    command and date are recorded beside the earlier run's."""
    merged = {**earlier, "datasets": dict(earlier["datasets"]), "skipped": {**earlier["skipped"], **rerun["skipped"]}}
    for name, dataset in rerun["datasets"].items():
        if partial_datasets and name in earlier["datasets"]:
            before = earlier["datasets"][name]
            # configurations side by side must have seen the same texts, seeds and settings
            changed = [key for key in ("sizes", "seeds", "settings") if before[key] != dataset[key]]
            if changed:
                raise ValueError(f"{name}: the rerun's {', '.join(changed)} differ from the earlier run's; rerun all "
                                 "of its configurations (--only without --configurations)")
            dataset = {**before, "configurations": {**before["configurations"], **dataset["configurations"]}}
        merged["datasets"][name] = dataset
        merged["skipped"].pop(name, None)
    merged["unfinished"] = [name for name in dict.fromkeys(earlier.get("unfinished", []) + rerun["unfinished"])
                            if name not in merged["datasets"]]
    merged["reruns"] = [*earlier.get("reruns", []), {
        "command": rerun["command"], "date": rerun["date"], "total_minutes": rerun.get("total_minutes", 0.0),
        "datasets": {name: list(dataset["configurations"]) for name, dataset in rerun["datasets"].items()}}]
    return merged


def save(results: dict[str, Any], results_path: Path, report_path: Path, rerun_of: dict[str, Any] | None = None,
         partial_datasets: bool = False) -> None:
    """Replace this suite's figures in the results file (or, for a rerun of part of the suite, merge them into
    ``rerun_of``, its earlier figures), keep the other suites', and rewrite the report."""
    suites = json.loads(results_path.read_text())["suites"] if results_path.is_file() else {}
    suites[results["suite"]] = results if rerun_of is None else merge_rerun(rerun_of, results, partial_datasets)
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps({"suites": suites}, indent=2))
    write_report(suites, report_path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets",
                        help="Folder holding the shared datasets.")
    parser.add_argument("--seeds", type=int, help="Repeats per configuration (default: 1 quick, 3 full).")
    parser.add_argument("--only", help="Comma-separated dataset names of the suite to run; the suite's other datasets "
                        "keep the figures of its earlier run.")
    parser.add_argument("--configurations", help="Suites that compare bertclf configurations (recipes-*, long): "
                        "the comma-separated configurations to run; the others keep the figures of the suite's earlier "
                        "run.")
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work", help="Scratch folder.")
    parser.add_argument("--report", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--limit", type=int, help="inference suite only: cut every part of each dataset to this many "
                        "texts (a smoke run; pair it with --results and --report elsewhere)")
    args = parser.parse_args(argv)

    seeds = list(range(args.seeds or (3 if args.suite == "full" else 1)))
    bf16 = torch.cuda.is_available()
    started = time.perf_counter()
    peak = flops.measure_matmul_rate(bf16)
    print(f"matmul rate: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['dtype']})", flush=True)
    specs = SUITES[args.suite]
    if args.only:
        wanted = set(args.only.split(","))
        specs = [spec for spec in specs if spec.name in wanted]
        if not specs:
            parser.error(f"--only names no dataset of the {args.suite} suite")
    only_configurations = set(args.configurations.split(",")) if args.configurations else None
    if only_configurations and any(spec.strategies is None for spec in specs):
        parser.error("--configurations applies to suites that compare bertclf configurations (recipes-*, long)")
    rerun_of = None
    if args.only or only_configurations:
        earlier = json.loads(args.results.read_text())["suites"] if args.results.is_file() else {}
        rerun_of = earlier.get(args.suite)
    results = {
        "suite": args.suite,
        "command": "python -m benchmarks.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:])),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "precision": "bf16" if bf16 else "fp32",
        "matmul": peak,
        "datasets": {},
        "skipped": {},
        "unfinished": [spec.name for spec in specs],
    }
    for spec in specs:
        if available(spec, args.datasets) and args.suite == "inference":
            results["datasets"][spec.name] = inference.benchmark_dataset(spec, args.datasets, args.work, run_job,
                                                                         args.limit)
        elif available(spec, args.datasets):
            results["datasets"][spec.name] = benchmark_dataset(spec, args.datasets, args.work, seeds, peak, bf16,
                                                               only_configurations)
        else:
            results["skipped"][spec.name] = f"missing under {args.datasets}: {', '.join(spec.files)}"
            print(f"skipping {spec.name}: {results['skipped'][spec.name]}", flush=True)
        results["unfinished"].remove(spec.name)
        results["total_minutes"] = (time.perf_counter() - started) / 60
        # written after every dataset, so that a run stopped part-way keeps the datasets it finished
        save(results, args.results, args.report, rerun_of, partial_datasets=only_configurations is not None)
    print(f"wrote {args.report} and {args.results} in {results['total_minutes']:.1f} minutes")


if __name__ == "__main__":
    main()
