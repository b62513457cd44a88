"""The benchmarks' figures: where they live, the machine they were measured on, and the one way to save them.

Every suite keeps its figures under its name in ``benchmarks/results.json`` (``{"suites": {name: figures}}``);
:func:`save_suite` is the only code that writes that file, and ``benchmarks.markdown.write_report`` renders
``BENCHMARKS.md`` from what it holds. Nothing here imports torch or bertclf until a run is described.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]  # the repository
DATASETS = ROOT.parent / "shared" / "datasets"  # the shared datasets, beside the repository
RESULTS = ROOT / "benchmarks" / "results.json"
REPORT = ROOT / "BENCHMARKS.md"
WORK = ROOT / "benchmarks" / "work"  # scratch folder of the dataset suites

METRIC_NAMES = {"accuracy": "accuracy", "f1_macro": "macro-F1", "mcc": "MCC", "f1_micro": "micro-F1",
                "subset_accuracy": "subset accuracy"}


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def machine() -> dict[str, Any]:
    """The machine and software of a benchmark run, as bertclf describes a training run's."""
    from bertclf.reporting.environment import environment

    found = environment(device())
    return {"cpu": found["cpu"], "cores": found["cpu_cores"],
            **{name: found[name] for name in ("torch_threads", "gpu", "python", "torch", "transformers", "bertclf")}}


def described_run(command: str, started: float) -> dict[str, Any]:
    """What the single-measurement suites record about their run: the command, date, duration and machine."""
    return {"command": command, "date": time.strftime("%Y-%m-%d"),
            "minutes": round((time.perf_counter() - started) / 60, 1), "machine": machine()}


def load_results(path: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Every suite's latest figures (none when the file does not exist yet)."""
    return json.loads(path.read_text())["suites"] if path.is_file() else {}


def save_suite(suite: str, figures: dict[str, Any], path: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """Replace ``suite``'s figures in the results file and keep the other suites'; returns them all, to render."""
    suites = load_results(path)
    suites[suite] = figures
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"suites": suites}, indent=2))
    return suites


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
