"""The baseline: the Hugging Face ``Trainer`` set up as transformers' ``run_classification.py`` does it.

Two variants, differing only in how batches are padded:

- ``default``: every text padded to ``max_length`` at tokenization time and ``default_data_collator``
  (``run_classification.py``'s default, ``pad_to_max_length=True``);
- ``tuned``: no padding at tokenization, ``DataCollatorWithPadding`` pads each batch to its longest text, and
  ``train_sampling_strategy="group_by_length"`` puts texts of similar length together.

Both evaluate on the validation set every epoch and restore the best checkpoint by the same metric as bertclf,
with the same model, max length, batch size, learning rate, warmup, weight decay, clipping and epochs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
    default_data_collator,
)

from benchmarks.scoring import multilabel_scores, single_label_scores


def read_parts(paths: dict[str, Path], multilabel: bool) -> tuple[dict[str, pd.DataFrame], list]:
    """The train/val/test frames and the sorted classes of the training part."""
    frames = {part: pd.read_csv(path) for part, path in paths.items()}
    if multilabel:  # as run_classification.py does it: multi-hot float vectors and a 0.5 decision threshold
        for frame in frames.values():
            frame["label"] = [json.loads(cell) for cell in frame["label"]]
        return frames, sorted({label for labels in frames["train"]["label"] for label in labels})
    return frames, sorted(frames["train"]["label"].unique().tolist())


def encode(frames: dict[str, pd.DataFrame], tokenizer: Any, classes: list, multilabel: bool, max_length: int,
           pad: bool) -> dict[str, Dataset]:
    """Each part tokenized (padded to ``max_length`` when ``pad``), with a ``labels`` column of ids or multi-hot
    vectors."""
    label_ids = {label: index for index, label in enumerate(classes)}

    def encode_label(label: Any) -> int | list[float]:
        if not multilabel:
            return label_ids[label]
        vector = [0.0] * len(classes)
        for name in label:
            vector[label_ids[name]] = 1.0
        return vector

    def tokenize(batch: dict[str, list]) -> dict[str, list]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length,
                            padding="max_length" if pad else False)
        # a new column: written over "label", integer ids would keep a string label column's type
        encoded["labels"] = [encode_label(label) for label in batch["label"]]
        return encoded

    return {part: Dataset.from_pandas(frame[["text", "label"]]).map(tokenize, batched=True,
                                                                       remove_columns=["text", "label"])
            for part, frame in frames.items()}


def scorer(multilabel: bool):
    """Logits and label ids -> the test scores every side is judged by."""
    def score(logits: np.ndarray, label_ids: np.ndarray) -> dict[str, float]:
        if multilabel:  # a positive logit is a sigmoid above 0.5
            return multilabel_scores(label_ids.astype(int), (logits > 0).astype(int))
        return single_label_scores(label_ids, logits.argmax(axis=-1))

    return score


def training_arguments(settings: dict[str, Any], work_dir: Path, pad: bool, bf16: bool) -> TrainingArguments:
    """bertclf's settings in the Trainer's terms: validation and a checkpoint every epoch, the best one kept."""
    return TrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=settings["batch_size"],
        per_device_eval_batch_size=settings["eval_batch_size"],
        learning_rate=settings["learning_rate"],
        num_train_epochs=settings["epochs"],
        warmup_steps=settings["warmup_ratio"],  # a float below 1 is a fraction of the steps
        weight_decay=settings["weight_decay"],
        max_grad_norm=settings["max_grad_norm"],
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model=settings["metric"],
        train_sampling_strategy="random" if pad else "group_by_length",
        seed=settings["seed"],
        bf16=bf16,
        logging_strategy="epoch",
        report_to="none",
        disable_tqdm=True,
    )


def train_and_test(variant: str, paths: dict[str, Path], model_path: str, settings: dict[str, Any],
                   work_dir: Path, bf16: bool) -> dict[str, Any]:
    """Train one Trainer baseline and score it on the test part; returns timings, token counts and metrics."""
    multilabel = settings["multilabel"]
    pad = variant == "default"
    frames, classes = read_parts(paths, multilabel)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    datasets = encode(frames, tokenizer, classes, multilabel, settings["max_length"], pad)
    model = AutoModelForSequenceClassification.from_pretrained(
        model_path, num_labels=len(classes), id2label=dict(enumerate(map(str, classes))),
        label2id={str(label): index for index, label in enumerate(classes)},
        problem_type="multi_label_classification" if multilabel else "single_label_classification",
    )
    score = scorer(multilabel)
    trainer = Trainer(
        model=model, args=training_arguments(settings, work_dir, pad, bf16), train_dataset=datasets["train"],
        eval_dataset=datasets["val"], processing_class=tokenizer,
        data_collator=default_data_collator if pad else DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda prediction: score(prediction.predictions, prediction.label_ids),
    )
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    # With group_by_length the test predictions come back reordered: score them against label_ids.
    output = trainer.predict(datasets["test"])
    scores = score(output.predictions, output.label_ids)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return {
        "train_seconds": train_seconds,
        "train_samples": len(frames["train"]) * settings["epochs"],
        "train_tokens": int(sum(np.sum(mask) for mask in datasets["train"]["attention_mask"])),
        "metrics": scores,
    }
