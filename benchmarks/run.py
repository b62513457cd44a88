"""Run a dataset suite: bertclf against the Hugging Face Trainer (default and tuned) and ``transformers.pipeline``
(:mod:`benchmarks.suites.training`), or ``pipeline`` against each of bertclf's runtimes
(:mod:`benchmarks.suites.runtimes`).

    python -m benchmarks.run --suite quick    # small slices, under 10 minutes on 2 CPU cores
    python -m benchmarks.run --suite full     # BBC News, CoLA and RuTweetCorp, 3 seeds each (about 2 hours)
    python -m benchmarks.run --suite multilabel   # GoEmotions, Trainer at 0.5 vs bertclf's tuned thresholds
    python -m benchmarks.run --suite long     # long-text strategies on BBC News and fake news, at 128 tokens
    python -m benchmarks.run --suite inference    # pipeline against every runtime (torch, int8, ONNX); 20 minutes
    python -m benchmarks.run --suite inference-mpnet   # the same on all-mpnet-base-v2 (installed apart); 16 minutes
    python -m benchmarks.run --suite wide --seeds 3     # TREC, SST-2, 20 Newsgroups and Reuters-21578, sliced
    python -m benchmarks.run --suite recipes-short --seeds 3  # each recipe against the defaults and the Trainer,
    python -m benchmarks.run --suite recipes-long --seeds 3   # on CoLA and TREC, on BBC News,
    python -m benchmarks.run --suite recipes-multilabel --seeds 3  # on GoEmotions
    python -m benchmarks.run --suite recipes-russian --seeds 3     # and on RuTweetCorp

Every job runs in its own process (its peak RSS is read from ``wait4``) on the same machine, model and
data, in the same run. After every dataset the suite's figures are saved to ``benchmarks/results.json`` and
``BENCHMARKS.md`` is rendered again, so a run stopped part-way keeps the datasets it finished.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.data_specs import SUITES, DatasetSpec, missing
from benchmarks.markdown import write_report
from benchmarks.results import DATASETS, REPORT, RESULTS, WORK, load_results, machine, merge_rerun, save_suite


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), default="quick")
    parser.add_argument("--datasets", type=Path, default=DATASETS, help="Folder holding the shared datasets.")
    parser.add_argument("--seeds", type=int, help="Repeats per configuration (default: 1 quick, 3 full).")
    parser.add_argument("--only", help="Comma-separated dataset names of the suite to run; the suite's other datasets "
                        "keep the figures of its earlier run.")
    parser.add_argument("--configurations", help="Suites that compare bertclf configurations (recipes-*, long): "
                        "the comma-separated configurations to run; the others keep the figures of the suite's earlier "
                        "run.")
    parser.add_argument("--work", type=Path, default=WORK, help="Scratch folder.")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--limit", type=int, help="inference suite only: cut every part of each dataset to this many "
                        "texts (a smoke run; pair it with --results and --report elsewhere)")
    return parser


def chosen(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[list[DatasetSpec], set[str] | None]:
    """The suite's datasets that ``--only`` names (all without it), and the configurations ``--configurations``
    names (None: all)."""
    specs = SUITES[args.suite]
    if args.only:
        wanted = set(args.only.split(","))
        specs = [spec for spec in specs if spec.name in wanted]
        if not specs:
            parser.error(f"--only names no dataset of the {args.suite} suite")
    only_configurations = set(args.configurations.split(",")) if args.configurations else None
    if only_configurations and any(spec.strategies is None for spec in specs):
        parser.error("--configurations applies to suites that compare bertclf configurations (recipes-*, long)")
    return specs, only_configurations


def matmul_rate(bf16: bool) -> dict[str, Any]:
    from benchmarks import flops

    peak = flops.measure_matmul_rate(bf16)
    print(f"matmul rate: {peak['flops_per_s'] / 1e9:.1f} GFLOP/s ({peak['dtype']})", flush=True)
    return peak


def benchmark(spec: DatasetSpec, args: argparse.Namespace, seeds: list[int], peak: dict[str, Any], bf16: bool,
              only_configurations: set[str] | None) -> dict[str, Any]:
    """One dataset of the suite, by the suite's kind."""
    if args.suite.startswith("inference"):
        from benchmarks.suites import runtimes

        return runtimes.benchmark_dataset(spec, args.datasets, args.work, args.limit)
    from benchmarks.suites import training

    return training.benchmark_dataset(spec, args.datasets, args.work, seeds, peak, bf16, only_configurations)


def main(argv: list[str] | None = None) -> None:
    import torch

    parser = build_parser()
    args = parser.parse_args(argv)
    specs, only_configurations = chosen(parser, args)
    seeds = list(range(args.seeds or (3 if args.suite == "full" else 1)))
    bf16 = torch.cuda.is_available()
    started = time.perf_counter()
    peak = matmul_rate(bf16)
    # a rerun of part of the suite is merged into its earlier run's figures
    rerun_of = load_results(args.results).get(args.suite) if args.only or only_configurations else None
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
        reason = missing(spec, args.datasets)
        if reason is None:
            results["datasets"][spec.name] = benchmark(spec, args, seeds, peak, bf16, only_configurations)
        else:
            results["skipped"][spec.name] = reason
            print(f"skipping {spec.name}: {results['skipped'][spec.name]}", flush=True)
        results["unfinished"].remove(spec.name)
        results["total_minutes"] = (time.perf_counter() - started) / 60
        # saved after every dataset, so that a run stopped part-way keeps the datasets it finished
        figures = results if rerun_of is None else merge_rerun(rerun_of, results, only_configurations is not None)
        write_report(save_suite(args.suite, figures, args.results), args.report)
    print(f"wrote {args.report} and {args.results} in {results['total_minutes']:.1f} minutes")


if __name__ == "__main__":
    main()
