"""One measured job, run in its own process so that its peak memory is its own.

``python -m benchmarks.worker JOB.json`` reads the job, runs it and writes the result next to it
(``JOB.result.json``); :func:`benchmarks.jobs.run_job` starts it. Jobs of the training suites: train one side
(``trainer-default``, ``trainer-tuned``, ``bertclf``) and score it on the test part, or time inference of a saved
bertclf run against ``transformers.pipeline``; the runtimes suite's jobs (``serve-train``, ``serve-time``) live in
:mod:`benchmarks.suites.runtimes`, the fewshot and tune suites' (``fewshot``, ``tune-search``) in theirs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmarks.scoring import label_matrix, multilabel_scores, single_label_scores


def train_bertclf(paths: dict[str, Path], settings: dict[str, Any], save_to: Path, bf16: bool) -> dict[str, Any]:
    from bertclf import TextClassifier

    options = {name: settings[name] for name in ("max_length", "epochs", "batch_size", "eval_batch_size",
                                                 "learning_rate", "warmup_ratio", "weight_decay", "max_grad_norm",
                                                 "metric", "seed")}
    # test_size=0: the test part is scored below, so none of the training part is held out as in a plain run;
    # min_steps=0: the epochs set on every side, never grown on a small slice (the Trainer runs them as set)
    classifier = TextClassifier(**{"min_steps": 0, **options, **settings.get("bertclf_options", {})}, test_size=0,
                                mixed_precision="bf16" if bf16 else "no")
    classifier.fit(str(paths["train"]), val=str(paths["val"]))
    test = pd.read_csv(paths["test"])
    started = time.perf_counter()
    probabilities = classifier.predict_proba(test["text"].tolist())
    predict_seconds = time.perf_counter() - started
    if settings["multilabel"]:
        labels = label_matrix([json.loads(cell) for cell in test["label"]], classifier.classes_)
        metrics = multilabel_scores(labels, label_matrix(classifier.labels_from_probabilities(probabilities),
                                                         classifier.classes_))
        # the same model deciding at 0.5, as the Trainer does: what tuning the thresholds adds
        at_half = multilabel_scores(labels, (probabilities >= 0.5).astype(int))
        metrics.update({f"{name}_at_0.5": value for name, value in at_half.items()})
    else:
        labels = np.array([classifier.classes_.index(label) for label in test["label"]])
        metrics = single_label_scores(labels, probabilities.argmax(axis=1))
    classifier.save(save_to, overwrite=True)
    return {
        "train_seconds": classifier.train_state_.train_seconds,
        "train_samples": classifier.train_state_.train_samples,
        "predict_texts_per_s": len(test) / predict_seconds,
        "metrics": metrics,
    }


def time_inference(run_dir: Path, test_path: Path, batch_size: int, bf16: bool) -> dict[str, Any]:
    """Texts per second of ``TextClassifier.predict`` and of ``pipeline`` on the same texts and model."""
    from transformers import pipeline

    from bertclf import TextClassifier

    texts = pd.read_csv(test_path)["text"].tolist()
    classifier = TextClassifier.load(run_dir)
    classifier.predict(texts[:batch_size])  # warm-up
    started = time.perf_counter()
    ours = classifier.predict(texts)
    ours_seconds = time.perf_counter() - started

    device = 0 if torch.cuda.is_available() else -1
    classify = pipeline("text-classification", model=str(run_dir), device=device,
                        dtype=torch.bfloat16 if bf16 else torch.float32)
    multilabel = classifier.task_ == "multilabel"
    options = {"batch_size": batch_size, "truncation": True, **({"top_k": None} if multilabel else {})}
    classify(texts[:batch_size], **options)  # warm-up
    started = time.perf_counter()
    served = classify(texts, **options)
    pipeline_seconds = time.perf_counter() - started
    if multilabel:  # the pipeline's per-label scores, decided at bertclf's saved thresholds
        scores = np.array([[{s["label"]: s["score"] for s in row}[str(label)] for label in classifier.classes_]
                           for row in served])
        theirs = classifier.labels_from_probabilities(scores)
    else:
        theirs = [classifier.classes_[classifier.model_.config.label2id[row["label"]]] for row in served]
    lengths = [len(ids) for ids in classify.tokenizer(texts, truncation=True)["input_ids"]]
    batches = [lengths[i : i + batch_size] for i in range(0, len(lengths), batch_size)]
    padded = sum(len(batch) * max(batch) for batch in batches)
    return {
        "texts": len(texts),
        "pipeline_padding_share": 1 - sum(lengths) / padded,
        "bertclf_texts_per_s": len(texts) / ours_seconds,
        "pipeline_texts_per_s": len(texts) / pipeline_seconds,
        "agreement": float(np.mean([a == b for a, b in zip(ours, theirs, strict=True)])),
    }


def main(job_path: str) -> None:
    logging.getLogger("bertclf").setLevel(logging.WARNING)
    job = json.loads(Path(job_path).read_text())
    paths = {part: Path(path) for part, path in job["paths"].items()}
    bf16 = job["bf16"]
    if job["kind"] in ("serve-train", "serve-time"):  # the runtimes suite's jobs
        from benchmarks.suites.runtimes import run_worker_job

        result = run_worker_job(job)
    elif job["kind"] == "fewshot":
        from benchmarks.suites.fewshot import run_worker_job as fewshot_job

        result = fewshot_job(job)
    elif job["kind"] == "tune-search":
        from benchmarks.suites.tune import run_worker_job as search_job

        result = search_job(job)
    elif job["kind"] == "inference":
        result = time_inference(Path(job["run_dir"]), paths["test"], job["settings"]["eval_batch_size"], bf16)
    elif job["side"] == "bertclf":
        result = train_bertclf(paths, job["settings"], Path(job["run_dir"]), bf16)
    else:
        from benchmarks.hf_trainer import train_and_test

        variant = job["side"].removeprefix("trainer-")
        result = train_and_test(variant, paths, job["model_path"], job["settings"], Path(job["run_dir"]), bf16)
    Path(job_path).with_suffix(".result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
