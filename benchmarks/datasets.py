"""The benchmark datasets: where each lives under the shared folder and how it is split.

Every configuration of a run reads the same train/val/test files, written once per dataset by
:func:`prepare`, so the Trainer baselines and bertclf see identical texts.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SPLIT_SEED = 0  # the data split is fixed; the training seed varies between repeats


@dataclass
class DatasetSpec:
    name: str
    description: str
    files: tuple[str, ...]  # paths under the datasets folder that must exist
    load: Callable[[Path], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]  # -> train, val, test (text, label)
    options: dict = field(default_factory=dict)  # settings every side uses (e.g. max_length, epochs)
    bertclf_options: dict = field(default_factory=dict)  # options only bertclf has (e.g. a long-text strategy)
    metric: str = "f1_macro"  # validation metric that picks the best epoch, on every side
    multilabel: bool = False  # labels are lists, written to the CSV files as JSON lists
    # when set, bertclf's long-text strategies (name -> options) are compared with one another instead of the
    # three sides (Trainer-default, Trainer-tuned, bertclf): the Trainer has no chunked documents to compare with
    strategies: dict[str, dict] | None = None


def _hold_out(frame: pd.DataFrame, size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    kept, held = train_test_split(frame, test_size=size, random_state=SPLIT_SEED, stratify=frame["label"])
    return kept.reset_index(drop=True), held.reset_index(drop=True)


def _split_80_10_10(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    rest, test = _hold_out(frame, 0.1)
    train, val = _hold_out(rest, 1 / 9)
    return train, val, test


def _head(frame: pd.DataFrame, rows: int | None) -> pd.DataFrame:
    """A stratified slice of ``rows`` rows (all of them when ``rows`` is None)."""
    if rows is None or rows >= len(frame):
        return frame
    return _hold_out(frame, rows / len(frame))[1]


def rutweetcorp(train_rows: int | None = None, test_rows: int | None = None):
    def load(root: Path):
        train = pd.read_csv(root / "rutweetcorp" / "valid.csv")[["text", "label"]]
        test = pd.read_csv(root / "rutweetcorp" / "test.csv")[["text", "label"]]
        train, val = _hold_out(_head(train, train_rows), 0.1)
        return train, val, _head(test, test_rows)
    return load


def cola(train_rows: int | None = None):
    def load(root: Path):
        names = ["source", "label", "mark", "text"]

        def read(name: str) -> pd.DataFrame:
            return pd.read_csv(root / "cola" / name, sep="\t", header=None, names=names)[["text", "label"]]

        return _head(read("in_domain_train.tsv"), train_rows), read("in_domain_dev.tsv"), read("out_of_domain_dev.tsv")
    return load


def bbc_news(rows: int | None = None):
    def load(root: Path):
        frame = pd.read_csv(root / "bbc_news" / "bbc_news_train.csv").rename(columns={"Text": "text",
                                                                                      "Category": "label"})
        return _split_80_10_10(_head(frame[["text", "label"]], rows))
    return load


def fake_news():
    """The shared 256-article subset, title and body joined (some bodies are empty)."""
    def load(root: Path):
        frame = pd.read_csv(root / "fake_news" / "fake_or_real_news.csv")
        frame["text"] = frame["title"].fillna("") + ". " + frame["text"].fillna("")
        return _split_80_10_10(frame[["text", "label"]])
    return load


def goemotions(train_rows: int | None = None, val_rows: int | None = None, test_rows: int | None = None):
    """The first rows of each file (label combinations are too many to stratify on)."""
    def load(root: Path):
        names = (root / "goemotions" / "labels.txt").read_text().split()

        def read(name: str, rows: int | None = None) -> pd.DataFrame:
            frame = pd.read_csv(root / "goemotions" / name, sep="\t", header=None, names=["text", "ids", "id"],
                                nrows=rows)
            frame["label"] = [json.dumps([names[int(i)] for i in ids.split(",")]) for ids in frame["ids"]]
            return frame[["text", "label"]]

        return read("train.tsv", train_rows), read("dev.tsv", val_rows), read("test.tsv", test_rows)
    return load


def sst2(train_rows: int | None = None, val_rows: int = 800):
    """GLUE SST-2: a stratified slice of train.tsv (mostly phrases), part of it held out for validation; the
    labelled dev.tsv (whole sentences) is the test part, since GLUE's test labels are not public."""
    def load(root: Path):
        def read(name: str) -> pd.DataFrame:
            frame = pd.read_csv(root / "sst2" / name, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False)
            return frame.rename(columns={"sentence": "text"})[["text", "label"]]

        train = read("train.tsv")
        rows = None if train_rows is None else train_rows + val_rows
        train, val = _hold_out(_head(train, rows), val_rows)
        return train, val, read("dev.tsv")
    return load


# issue 5's comparison: what each long-text strategy buys over keeping the first 128 tokens
LONG_TEXT_STRATEGIES = {
    "head": {"long_text": "head"},
    "head-tail": {"long_text": "head-tail"},
    "chunks-mean": {"long_text": "chunks", "chunk_pooling": "mean"},
    "chunks-attention": {"long_text": "chunks", "chunk_pooling": "attention"},
    "chunks-mean, 8 chunks": {"long_text": "chunks", "chunk_pooling": "mean", "max_chunks": 8},
}

SUITES: dict[str, list[DatasetSpec]] = {
    "quick": [
        DatasetSpec("rutweetcorp", "RuTweetCorp (Russian sentiment), 600-text slice of valid.csv, 400 test texts",
                    ("rutweetcorp/valid.csv", "rutweetcorp/test.csv"), rutweetcorp(600, 400), {"epochs": 2}),
        DatasetSpec("cola", "CoLA (acceptability), 1,000-text slice of in_domain_train, out-of-domain test",
                    ("cola/in_domain_train.tsv",), cola(1000), {"epochs": 2}, metric="mcc"),
    ],
    # 2 epochs, and BBC News at 128 tokens, so that 3 sides x 3 seeds of the whole datasets fit in about two hours
    # on 2 CPU cores (at 3 epochs and 256 tokens it was about 3.5 hours); GoEmotions has its own suite
    "full": [
        DatasetSpec("bbc_news", "BBC News (5 topics, long articles), 80/10/10 split, max length 128",
                    ("bbc_news/bbc_news_train.csv",), bbc_news(), {"max_length": 128, "epochs": 2}),
        DatasetSpec("cola", "CoLA: in_domain_train / in_domain_dev (validation) / out_of_domain_dev (test)",
                    ("cola/in_domain_train.tsv",), cola(), {"epochs": 2}, metric="mcc"),
        DatasetSpec("rutweetcorp", "RuTweetCorp: valid.csv (90% train, 10% validation) / test.csv",
                    ("rutweetcorp/valid.csv", "rutweetcorp/test.csv"), rutweetcorp(), {"epochs": 2}),
    ],
    "multilabel": [
        DatasetSpec("goemotions", "GoEmotions (28 labels, multilabel): the first 10,000 rows of train.tsv / dev.tsv "
                    "(validation) / test.tsv; the Trainer decides at 0.5, bertclf at thresholds tuned on validation",
                    ("goemotions/train.tsv", "goemotions/dev.tsv", "goemotions/test.tsv", "goemotions/labels.txt"),
                    goemotions(10_000), metric="f1_micro", multilabel=True),
    ],
    "long": [
        DatasetSpec("fake_news", "Fake or real news (the shared 256-article subset, title + text), 80/10/10 split, "
                    "max length 128", ("fake_news/fake_or_real_news.csv",), fake_news(), {"max_length": 128},
                    metric="accuracy", strategies=LONG_TEXT_STRATEGIES),
        DatasetSpec("bbc_news", "BBC News (5 topics, long articles), 80/10/10 split, "
                    "max length 128", ("bbc_news/bbc_news_train.csv",), bbc_news(), {"max_length": 128},
                    metric="accuracy", strategies=LONG_TEXT_STRATEGIES),
    ],
    # issue text: `pipeline` against every runtime (see benchmarks/inference.py). One model per dataset, 1 epoch
    # (RuTweetCorp and CoLA 2: after one, their models gave nearly every test text one class), on slices: training,
    # two exports and five timed runtimes per dataset take about 25 minutes in all on 2 cores
    "inference": [
        DatasetSpec("rutweetcorp", "RuTweetCorp: valid.csv (90% train, 10% validation), a stratified 1,000-text slice "
                    "of test.csv", ("rutweetcorp/valid.csv", "rutweetcorp/test.csv"), rutweetcorp(None, 1000),
                    {"epochs": 2}),
        DatasetSpec("cola", "CoLA: in_domain_train / in_domain_dev (validation) / out_of_domain_dev (test)",
                    ("cola/in_domain_train.tsv",), cola(), {"epochs": 2}, metric="mcc"),
        DatasetSpec("sst2", "SST-2: a stratified 8,800-row slice of train.tsv (800 held out for validation) / "
                    "dev.tsv (test)", ("sst2/train.tsv", "sst2/dev.tsv"), sst2(8000), {"epochs": 1},
                    metric="accuracy"),
        DatasetSpec("bbc_news", "BBC News (5 topics, long articles), 80/10/10 split, max length 128",
                    ("bbc_news/bbc_news_train.csv",), bbc_news(), {"max_length": 128, "epochs": 1}),
        DatasetSpec("goemotions", "GoEmotions (28 labels, multilabel): the first 8,000 rows of train.tsv, the first "
                    "1,000 of dev.tsv (validation, thresholds) and of test.tsv",
                    ("goemotions/train.tsv", "goemotions/dev.tsv", "goemotions/test.tsv", "goemotions/labels.txt"),
                    goemotions(8000, 1000, 1000), {"epochs": 1}, metric="f1_micro", multilabel=True),
        DatasetSpec("bbc_news_chunks", "BBC News, chunked: up to 4 windows of 128 tokens per article, mean-pooled; "
                    "80/10/10 split", ("bbc_news/bbc_news_train.csv",), bbc_news(), {"max_length": 128, "epochs": 1},
                    {"long_text": "chunks", "max_chunks": 4}),
    ],
}


def available(spec: DatasetSpec, root: Path) -> bool:
    return all((root / name).is_file() for name in spec.files)


def prepare(spec: DatasetSpec, root: Path, directory: Path) -> dict[str, Path]:
    """Write the dataset's train/val/test parts as CSV files (columns text, label; for multilabel data the label
    is a JSON list) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, frame in zip(("train", "val", "test"), spec.load(root), strict=True):
        paths[part] = directory / f"{part}.csv"
        frame.to_csv(paths[part], index=False)
    return paths
