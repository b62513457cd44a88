"""The training suites: bertclf against the Hugging Face Trainer (default and tuned) and ``transformers.pipeline``,
or bertclf's own configurations (long-text strategies, recipes) against one another.

Run through ``python -m benchmarks.run --suite NAME`` (quick, full, multilabel, long, wide, recipes-*): per dataset,
:func:`benchmark_dataset` trains and scores every configuration once per seed, each in a ``benchmarks.worker``
process of its own (its peak RSS read from ``wait4``), and for the three sides times bertclf's inference against
the pipeline's. Nothing here imports torch or bertclf until a dataset is benchmarked.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from statistics import mean, stdev
from typing import Any

import pandas as pd

from benchmarks.data_specs import DatasetSpec, configurations_of, prepare
from benchmarks.jobs import run_job

SETTINGS_SHOWN = ("max_length", "epochs", "batch_size", "eval_batch_size", "learning_rate", "warmup_ratio",
                  "weight_decay")


@dataclasses.dataclass
class Workload:
    """What every job of one dataset shares: its files, model and settings, and the useful FLOPs of its texts."""

    spec: DatasetSpec
    folder: Path  # the dataset's scratch folder: data, run directories, jobs and their logs
    paths: dict[str, Path]
    sizes: dict[str, int]
    model_path: str
    settings: dict[str, Any]  # bertclf's defaults for this dataset, max_length resolved
    train_counts: list[int]  # tokens of each training text, special tokens included, before truncation
    train_lengths: list[int]  # ... and after
    test_lengths: list[int]
    train_flops: float | None  # FLOPs of one training run (None where configurations do different work)
    inference_flops: float  # FLOPs of one pass over the test texts
    peak_flops_per_s: float  # the measured matmul rate
    bf16: bool


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every figure over the seeds."""
    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": mean(values), "std": stdev(values) if len(values) > 1 else 0.0}

    numbers = {name for run in runs for name, value in run.items() if isinstance(value, (int, float))}
    summary = {name: stats([run[name] for run in runs]) for name in sorted(numbers)}
    if "metrics" in runs[0]:
        summary["metrics"] = {name: stats([run["metrics"][name] for run in runs]) for name in runs[0]["metrics"]}
    return summary


def settings_for(spec: DatasetSpec, train_counts: list[int], model: str) -> dict[str, Any]:
    """bertclf's defaults for this dataset, with ``max_length='auto'`` resolved as bertclf resolves it."""
    from bertclf.config import ClassifierConfig
    from bertclf.modeling import load_encoder_config, load_tokenizer
    from bertclf.tokenization import choose_max_length, model_token_limit

    settings = {**dataclasses.asdict(ClassifierConfig()), **spec.options, "metric": spec.metric,
                "multilabel": spec.multilabel}
    if settings["max_length"] == "auto":
        limit = model_token_limit(load_tokenizer(model), load_encoder_config(model))
        settings["max_length"] = choose_max_length(train_counts, limit)
    return settings


def prepare_workload(spec: DatasetSpec, root: Path, work: Path, peak: dict[str, Any], bf16: bool) -> Workload:
    """Write the dataset's parts, count their tokens, resolve the settings and count the useful FLOPs."""
    from benchmarks import flops
    from bertclf.config import ClassifierConfig
    from bertclf.modeling import load_encoder_config, load_tokenizer, resolve_model_path
    from bertclf.tokenization import token_lengths

    model = ClassifierConfig().model
    folder = work / spec.name
    paths = prepare(spec, root, folder / "data")
    frames = {part: pd.read_csv(path) for part, path in paths.items()}
    tokenizer = load_tokenizer(model)
    train_counts = token_lengths(tokenizer, frames["train"]["text"].tolist())
    settings = settings_for(spec, train_counts, model)
    train_lengths = [min(count, settings["max_length"]) for count in train_counts]
    test_lengths = [min(count, settings["max_length"])
                    for count in token_lengths(tokenizer, frames["test"]["text"].tolist())]
    encoder = load_encoder_config(model)
    # FLOPs of truncated texts: the useful work of every side when they all truncate alike
    train_flops = None if spec.strategies else flops.training_flops(encoder, train_lengths) * settings["epochs"]
    return Workload(spec=spec, folder=folder, paths=paths, sizes={part: len(frame) for part, frame in frames.items()},
                    model_path=resolve_model_path(model), settings=settings, train_counts=train_counts,
                    train_lengths=train_lengths, test_lengths=test_lengths, train_flops=train_flops,
                    inference_flops=flops.inference_flops(encoder, test_lengths),
                    peak_flops_per_s=peak["flops_per_s"], bf16=bf16)


def train_configuration(workload: Workload, name: str, configuration: dict[str, Any], seed: int) -> dict[str, Any]:
    """One configuration trained and scored on the test part in a worker process; its speed against the FLOPs."""
    spec = workload.spec
    print(f"[{spec.name}] seed {seed}: {name} ...", flush=True)
    stem = f"{name.replace(', ', '-').replace(' ', '-')}-seed{seed}"
    job = {"kind": "train", "side": configuration["side"], "paths": workload.paths, "model_path": workload.model_path,
           "settings": {**workload.settings, "seed": seed, "bertclf_options": configuration["bertclf_options"]},
           "run_dir": workload.folder / stem, "bf16": workload.bf16}
    result = run_job(job, workload.folder / f"{stem}.json")
    result["train_samples_per_s"] = result["train_samples"] / result["train_seconds"]
    if workload.train_flops is not None:
        result["train_flops_per_s"] = workload.train_flops / result["train_seconds"]
        result["train_peak_fraction"] = result["train_flops_per_s"] / workload.peak_flops_per_s
    print(f"[{spec.name}] seed {seed}: {name}: {result['train_samples_per_s']:.1f} samples/s, "
          f"{spec.metric} {result['metrics'][spec.metric]:.4f}", flush=True)
    return result


def time_inference(workload: Workload, seed: int) -> dict[str, Any]:
    """bertclf's saved model of this seed against ``pipeline`` on the test texts, in a worker process."""
    spec = workload.spec
    job = {"kind": "inference", "paths": workload.paths, "settings": workload.settings,
           "run_dir": workload.folder / f"bertclf-seed{seed}", "bf16": workload.bf16}
    result = run_job(job, workload.folder / f"inference-seed{seed}.json")
    flops_per_text = workload.inference_flops / len(workload.test_lengths)
    for side in ("bertclf", "pipeline"):
        result[f"{side}_peak_fraction"] = flops_per_text * result[f"{side}_texts_per_s"] / workload.peak_flops_per_s
    print(f"[{spec.name}] seed {seed}: inference {result['bertclf_texts_per_s']:.1f} vs pipeline "
          f"{result['pipeline_texts_per_s']:.1f} texts/s, agreement {result['agreement']:.4f}", flush=True)
    return result


def dataset_figures(workload: Workload, seeds: list[int], configurations: dict[str, dict[str, Any]],
                    measured: dict[str, list[dict[str, Any]]], inference_runs: list[dict[str, Any]]
                    ) -> dict[str, Any]:
    """The dataset's entry in results.json: what it is, its settings, and every configuration over the seeds."""
    spec = workload.spec
    dataset = {
        "description": spec.description,
        "metric": spec.metric,
        "multilabel": spec.multilabel,
        "sizes": workload.sizes,
        "settings": {name: workload.settings[name] for name in SETTINGS_SHOWN},
        "bertclf_options": spec.bertclf_options,
        "mean_train_tokens": mean(workload.train_lengths),
        "mean_train_tokens_untruncated": mean(workload.train_counts),
        "seeds": seeds,
        "configurations": {name: {**summarise(runs), "options": configurations[name]["bertclf_options"],
                                  "runs": runs} for name, runs in measured.items()},
    }
    if inference_runs:
        dataset["inference"] = {**summarise(inference_runs), "runs": inference_runs}
    return dataset


def benchmark_dataset(spec: DatasetSpec, root: Path, work: Path, seeds: list[int], peak: dict[str, Any],
                      bf16: bool, only_configurations: set[str] | None = None) -> dict[str, Any]:
    """Every configuration of ``spec`` (or those named) trained once per seed and, for the three sides, bertclf's
    inference timed against the pipeline; returns the dataset's figures."""
    workload = prepare_workload(spec, root, work, peak, bf16)
    configurations = {name: configuration for name, configuration in configurations_of(spec).items()
                      if only_configurations is None or name in only_configurations}
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in configurations}
    inference_runs = []
    for seed in seeds:
        for name, configuration in configurations.items():
            measured[name].append(train_configuration(workload, name, configuration, seed))
        if not spec.strategies:
            inference_runs.append(time_inference(workload, seed))
    return dataset_figures(workload, seeds, configurations, measured, inference_runs)
