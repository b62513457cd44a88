"""The fewshot suite: bertclf's default on a few labelled texts per class (the low-label mode, chosen by its rule)
against SetFit with its defaults, bertclf's fine-tune (``--low-label off``), the frozen encoder with a
logistic-regression head and TF-IDF with logistic regression, all on the embedded all-MiniLM-L6-v2.

    python -m benchmarks.suites.fewshot --sizes 8          # SST-2, TREC, GoEmotions (5 labels): about 20 minutes
    python -m benchmarks.suites.fewshot --sizes 16,64 --only sst2
    python -m benchmarks.suites.fewshot --sizes 64 --only trec --setfit-iterations 20
    python -m benchmarks.suites.fewshot --sizes 128,256 --methods bertclf,fine-tune,low-label   # the crossover

Per dataset and size (texts per class), 3 draws of the training texts (the draw is also every method's seed); each
method of each draw runs in a process of its own, SetFit in its own virtualenv (``benchmarks/setfit-requirements
.txt``, made under ``benchmarks/work/setfit-venv`` when missing). No method sees any other labelled text: the
fine-tune is given the same few texts as its validation data. The test sets are sliced (see ``DATASETS``). A run of
some sizes, datasets or methods replaces those figures and keeps the others, each cell naming the runs it came from
(per method).

SetFit's default draws every pair of training texts, so its steps grow with the square of the texts: 7,680 at 64
per class on TREC's 6 classes, about 50 minutes a draw here. ``--setfit-iterations R`` gives it
``TrainingArguments(num_iterations=R)`` instead (R pairs per text and side, the SetFit paper's setting at R=20),
recorded in the cell. ``--methods`` runs some of the methods (the others' columns stay empty): past 64 per class the
question is the crossover of bertclf's low-label mode (``low-label``, forced on) and its fine-tune, not SetFit.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.data_specs import _head, goemotions, sst2, trec
from benchmarks.jobs import run_job
from benchmarks.markdown import write_report
from benchmarks.results import DATASETS, REPORT, RESULTS, ROOT, WORK, described_run, load_results, save_suite
from benchmarks.scoring import label_matrix, multilabel_scores, single_label_scores

SUITE = "fewshot"
DRAWS = 3
METHODS = ("setfit", "bertclf", "fine-tune", "low-label", "frozen-lr", "tfidf")
# bertclf's options per method: its default, its fine-tune on the same texts, its low-label mode whatever the size,
# its frozen encoder with the head
BERTCLF_OPTIONS = {"bertclf": {}, "fine-tune": {"low_label": "off"}, "low-label": {"low_label": "on"},
                   "frozen-lr": {"low_label": "on", "freeze_encoder": True}}
SETFIT_VENV = WORK / "setfit-venv"
GOEMOTIONS_LABELS = ("admiration", "amusement", "anger", "gratitude", "love")


@dataclass
class FewshotData:
    name: str
    description: str
    load: Callable[[Path], tuple[pd.DataFrame, pd.DataFrame]]  # -> the pool to draw from, the test slice
    multilabel: bool = False

    @property
    def metric(self) -> str:
        return "f1_micro" if self.multilabel else "accuracy"


def _sst2(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    pool, _, test = sst2(4000, 100)(root)
    return pool, _head(test, 500)


def _trec(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    pool, _, test = trec()(root)
    return pool, _head(test, 300)


def _goemotions(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The texts carrying at least one of five labels, with those labels only."""
    pool, _, test = goemotions(None, 0, None)(root)

    def restrict(frame: pd.DataFrame) -> pd.DataFrame:
        labels = [[name for name in json.loads(cell) if name in GOEMOTIONS_LABELS] for cell in frame["label"]]
        kept = frame.assign(label=[json.dumps(names) for names in labels])[[bool(names) for names in labels]]
        return kept.reset_index(drop=True)

    return restrict(pool), restrict(test).head(400)


DATASETS_OF_SUITE = [
    FewshotData("sst2", "SST-2: draws from a 4,000-text stratified slice of train.tsv; test: a stratified 500-text "
                "slice of dev.tsv", _sst2),
    FewshotData("trec", "TREC (6 classes): draws from train_5500.label; test: a stratified 300-question slice of "
                "TREC_10.label", _trec),
    FewshotData("goemotions", "GoEmotions on five labels (" + ", ".join(GOEMOTIONS_LABELS) + "), multilabel: the "
                "texts with at least one of them; draws from train.tsv; test: the first 400 of test.tsv",
                _goemotions, multilabel=True),
]


def draw(pool: pd.DataFrame, per_class: int, seed: int, multilabel: bool) -> pd.DataFrame:
    """``per_class`` texts of each class (multilabel: texts enough that each label has about ``per_class``)."""
    rng = np.random.default_rng(seed)
    if not multilabel:
        return pd.concat([group.iloc[rng.permutation(len(group))[:per_class]]
                          for _, group in pool.groupby("label")]).reset_index(drop=True)
    labels = [json.loads(cell) for cell in pool["label"]]
    chosen: list[int] = []
    for name in GOEMOTIONS_LABELS:
        having = [row for row in rng.permutation(len(pool)).tolist() if name in labels[row] and row not in chosen]
        already = sum(name in labels[row] for row in chosen)
        chosen += having[:max(0, per_class - already)]
    return pool.iloc[chosen].reset_index(drop=True)


# --- jobs, each run by ``benchmarks.worker`` (bertclf) or by the SetFit virtualenv's Python ----------------------


def run_worker_job(job: dict[str, Any]) -> dict[str, Any]:
    """One bertclf method on one draw: train on the draw, decide on the test slice."""
    from bertclf import TextClassifier

    paths = job["paths"]
    options = {**BERTCLF_OPTIONS[job["method"]], "seed": job["seed"], "test_size": 0}
    classifier = TextClassifier(**options)
    # the fine-tune is given the same few texts as validation data; the low-label mode holds none out anyway
    classifier.fit(paths["train"], val=paths["train"] if job["method"] == "fine-tune" else None)
    test = pd.read_csv(paths["test"])
    probabilities = classifier.predict_proba(test["text"].tolist())
    decisions = classifier.labels_from_probabilities(probabilities)
    return {"train_seconds": classifier.train_state_.train_seconds, "low_label": classifier.config_.low_label,
            "predicted": [list(labels) if isinstance(labels, (list, tuple)) else str(labels) for labels in decisions]}


def setfit_python() -> Path:
    """The SetFit virtualenv's Python, made on first use (torch from the CPU wheel first, as bertclf's CI does)."""
    python = SETFIT_VENV / "bin" / "python"
    if not python.is_file():
        print("making the SetFit virtualenv (a few minutes) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(SETFIT_VENV)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, "-r", str(ROOT / "benchmarks" / "setfit-requirements.txt")], check=True)
    return python


def run_setfit(job: dict[str, Any], job_path: Path) -> dict[str, Any]:
    job_path.write_text(json.dumps(job, default=str))
    log_path = job_path.with_suffix(".log")
    with log_path.open("w") as log:
        # in the job's folder: SetFit's Trainer writes its checkpoints under the working directory
        finished = subprocess.run([str(setfit_python()), str(ROOT / "benchmarks" / "setfit_job.py"), str(job_path)],
                                  stdout=log, stderr=subprocess.STDOUT, cwd=job_path.parent,
                                  env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    if finished.returncode != 0:
        raise RuntimeError(f"SetFit job {job_path.name} failed:\n" + "\n".join(log_path.read_text().splitlines()[-15:]))
    return json.loads(job_path.with_suffix(".result.json").read_text())


def tfidf(train: pd.DataFrame, test: pd.DataFrame, multilabel: bool, classes: list[str]) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    started = time.perf_counter()
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform(train["text"])
    if multilabel:
        model = OneVsRestClassifier(LogisticRegression(max_iter=2000))
        model.fit(features, label_matrix([json.loads(cell) for cell in train["label"]], classes))
        predicted = [[name for name, on in zip(classes, row, strict=True) if on]
                     for row in model.predict(vectorizer.transform(test["text"]))]
    else:
        model = LogisticRegression(max_iter=2000).fit(features, train["label"].astype(str))
        predicted = model.predict(vectorizer.transform(test["text"])).tolist()
    return {"train_seconds": time.perf_counter() - started, "predicted": predicted}


# --- the parent ----------------------------------------------------------------------------------------------


def score(predicted: list, test: pd.DataFrame, data: FewshotData, classes: list[str]) -> float:
    """The test score of the decisions (class names, or for multilabel lists of label names)."""
    if data.multilabel:
        truth = label_matrix([json.loads(cell) for cell in test["label"]], classes)
        return multilabel_scores(truth, label_matrix(predicted, classes))["f1_micro"]
    truth = np.array([classes.index(str(label)) for label in test["label"]])
    return single_label_scores(truth, np.array([classes.index(label) for label in predicted]))["accuracy"]


def cell(data: FewshotData, pool: pd.DataFrame, test: pd.DataFrame, per_class: int, work: Path,
         model_path: str, methods: tuple[str, ...], setfit_iterations: int | None) -> dict[str, Any]:
    """``methods`` on ``DRAWS`` draws of ``per_class`` texts per class."""
    folder = work / data.name / str(per_class)
    folder.mkdir(parents=True, exist_ok=True)
    test_path = folder / "test.csv"
    test.to_csv(test_path, index=False)
    classes = sorted(GOEMOTIONS_LABELS) if data.multilabel else sorted(pool["label"].astype(str).unique())
    figures: dict[str, dict[str, list]] = {method: {"scores": [], "train_seconds": []} for method in methods}
    modes = []
    for seed in range(DRAWS):
        train = draw(pool, per_class, seed, data.multilabel)
        train_path = folder / f"train-{seed}.csv"
        train.to_csv(train_path, index=False)
        for method in methods:
            name = f"{method}-{seed}"
            if method == "setfit":
                result = run_setfit({"model": model_path, "train": str(train_path), "test": str(test_path),
                                     "classes": classes, "multilabel": data.multilabel, "seed": seed,
                                     "num_iterations": setfit_iterations},
                                    folder / f"{name}.json")
            elif method == "tfidf":
                result = tfidf(train, test, data.multilabel, classes)
            else:
                result = run_job({"kind": "fewshot", "method": method, "seed": seed, "bf16": False,
                                  "paths": {"train": str(train_path), "test": str(test_path)}},
                                 folder / f"{name}.json")
                if method == "bertclf":
                    modes.append(result["low_label"])
            figures[method]["scores"].append(score(result["predicted"], test, data, classes))
            figures[method]["train_seconds"].append(result["train_seconds"])
            print(f"[{data.name} {per_class}/class draw {seed}] {method}: {figures[method]['scores'][-1]:.3f} "
                  f"({result['train_seconds']:.1f} s)", flush=True)
    return {"metric": data.metric, "train_texts": len(train), "test_texts": len(test), "low_label": modes,
            "setfit_iterations": setfit_iterations if "setfit" in methods else None,
            "methods": {method: {**values, "mean": float(np.mean(values["scores"])),
                                 "std": float(np.std(values["scores"])),
                                 "mean_train_seconds": float(np.mean(values["train_seconds"]))}
                        for method, values in figures.items()}}


def merged(old: dict[str, Any] | None, new: dict[str, Any], run: int) -> dict[str, Any]:
    """A cell's figures after a run of some of its methods: the new methods' figures over the old ones, each
    method's run noted; the mode bertclf's rule chose and SetFit's configuration follow the run that measured them."""
    old = old or {"methods": {}, "runs": {}, "low_label": [], "setfit_iterations": None}
    runs = old.get("runs") or dict.fromkeys(old["methods"], old.get("run"))  # cells of one run name it once
    kept = {"low_label": new["low_label"] if "bertclf" in new["methods"] else old["low_label"],
            "setfit_iterations": new["setfit_iterations"] if "setfit" in new["methods"]
            else old.get("setfit_iterations")}
    cell = {**old, **new, **kept, "methods": {**old["methods"], **new["methods"]},
            "runs": {**runs, **dict.fromkeys(new["methods"], run)}}
    cell.pop("run", None)
    return cell


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="8,16,64", help="Texts per class, comma-separated.")
    parser.add_argument("--only", help="Comma-separated dataset names (sst2, trec, goemotions).")
    parser.add_argument("--methods", default=",".join(METHODS), help="Comma-separated methods: " + ", ".join(METHODS))
    parser.add_argument("--setfit-iterations", type=int, help="SetFit's num_iterations (default: its own default, "
                        "every pair of texts).")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--work", type=Path, default=WORK / SUITE)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    from bertclf.config import DEFAULT_MODEL
    from bertclf.modeling import resolve_model_path

    sizes = [int(size) for size in args.sizes.split(",")]
    methods = tuple(method for method in METHODS if method in args.methods.split(","))
    if unknown := set(args.methods.split(",")) - set(METHODS):
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    chosen = [data for data in DATASETS_OF_SUITE if not args.only or data.name in args.only.split(",")]
    started = time.perf_counter()
    command = "python -m benchmarks.suites.fewshot " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    figures = load_results(args.results).get(SUITE, {"runs": [], "cells": {}, "descriptions": {}})
    run_index = len(figures["runs"])
    figures["runs"].append({"command": command})
    for data in chosen:
        pool, test = data.load(args.datasets)
        figures["descriptions"][data.name] = data.description
        for per_class in sizes:
            result = cell(data, pool, test, per_class, args.work, resolve_model_path(DEFAULT_MODEL), methods,
                          args.setfit_iterations)
            cells = figures["cells"].setdefault(data.name, {})
            cells[str(per_class)] = merged(cells.get(str(per_class)), result, run_index)
            figures["runs"][run_index] = described_run(command, started)
            write_report(save_suite(SUITE, figures, args.results), args.report)
    print(f"wrote {args.report} and {args.results} in {(time.perf_counter() - started) / 60:.1f} minutes")


if __name__ == "__main__":
    main()
