"""One SetFit run of the fewshot suite, run by the SetFit virtualenv's Python (no bertclf there):

    benchmarks/work/setfit-venv/bin/python benchmarks/setfit_job.py JOB.json

The job names the model folder, the training and test CSV files (text, label; a multilabel label is a JSON list)
and the seed. SetFit runs with its defaults: ``TrainingArguments()`` (``num_iterations`` where the job names one)
and ``Trainer``, a logistic-regression head,
one-vs-rest for multilabel data (SetFit's own way for several labels). It writes the test texts' predictions
as decisions (a class name, or for multilabel a list of label names) and the training time to ``JOB.result.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
from datasets import Dataset
from setfit import SetFitModel, Trainer, TrainingArguments


def main(job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    train, test = pd.read_csv(job["train"]), pd.read_csv(job["test"])
    classes = job["classes"]
    if job["multilabel"]:
        labels = [[int(name in json.loads(cell)) for name in classes] for cell in train["label"]]
        model = SetFitModel.from_pretrained(job["model"], multi_target_strategy="one-vs-rest")
    else:
        labels = [classes.index(str(label)) for label in train["label"]]
        model = SetFitModel.from_pretrained(job["model"])
    data = Dataset.from_dict({"text": train["text"].tolist(), "label": labels})
    arguments = TrainingArguments(seed=job["seed"], num_iterations=job.get("num_iterations"))
    trainer = Trainer(model=model, args=arguments, train_dataset=data)
    started = time.perf_counter()
    trainer.train()
    train_seconds = time.perf_counter() - started
    texts = test["text"].tolist()
    if job["multilabel"]:
        decisions = model.predict(texts, as_numpy=True)
        predicted = [[name for name, on in zip(classes, row, strict=True) if on] for row in decisions]
    else:
        predicted = [classes[index] for index in model.predict_proba(texts, as_numpy=True).argmax(axis=1)]
    Path(job_path).with_suffix(".result.json").write_text(json.dumps({"train_seconds": train_seconds,
                                                                       "predicted": predicted}))


if __name__ == "__main__":
    main(sys.argv[1])
