"""The benchmark datasets: where each lives under the shared folder, how it is split, which suite runs it and which
configurations it compares.

Every configuration of a run reads the same train/val/test files, written once per dataset by
:func:`prepare`, so the Trainer baselines and bertclf see identical texts. (Named ``data_specs`` rather than
``datasets`` so that it never shadows Hugging Face's ``datasets`` package.)
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from sklearn.model_selection import train_test_split

SPLIT_SEED = 0  # the data split is fixed; the training seed varies between repeats
# The second real encoder, installed offline by ../shared/models/install-all-mpnet-base-v2 (never in CI).
MPNET = Path(os.environ.get("BERTCLF_MODELS", "~/.cache/bertclf-models")).expanduser() / "all-mpnet-base-v2"
MPNET_INSTALL = "../shared/models/install-all-mpnet-base-v2"
SIDES = ("trainer-default", "trainer-tuned", "bertclf")  # what a suite of bertclf against the Trainer compares


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
    # with strategies: the two Trainer configurations run beside them, so that each is also judged against the better
    trainer_baselines: bool = False
    model_folder: Path | None = None  # a local model the suite needs, beyond the embedded default


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


def trec(train_rows: int | None = None):
    """TREC question types (6 coarse classes): train_5500.label (10% held out for validation) / TREC_10.label."""
    def load(root: Path):
        def read(name: str) -> pd.DataFrame:
            lines = (root / "trec" / name).read_text(encoding="latin-1").splitlines()
            rows = [line.split(" ", 1) for line in lines if line.strip()]
            return pd.DataFrame({"text": [text for _, text in rows],
                                 "label": [fine.split(":")[0] for fine, _ in rows]})

        train, val = _hold_out(_head(read("train_5500.label"), train_rows), 0.1)
        return train, val, read("TREC_10.label")
    return load


def twenty_newsgroups(train_rows: int | None = None, test_rows: int | None = None):
    """20 Newsgroups (bydate): each message's body (the text after the header block, which names the newsgroup),
    read as latin-1; 10% of the train folder held out for validation; stratified slices."""
    def load(root: Path):
        def read(split: str) -> pd.DataFrame:
            rows = []
            for folder in sorted((root / "20newsgroups" / f"20news-bydate-{split}").iterdir()):
                for file in sorted(folder.iterdir()):
                    body = file.read_text(encoding="latin-1").split("\n\n", 1)[-1].strip()
                    rows.append((body or file.read_text(encoding="latin-1"), folder.name))
            return pd.DataFrame(rows, columns=["text", "label"])

        train, val = _hold_out(_head(read("train"), train_rows), 0.1)
        return train, val, _head(read("test"), test_rows)
    return load


def reuters(train_rows: int | None = None, test_rows: int | None = None):
    """Reuters-21578, ModApte split, title and body: the first rows of the training and test documents, 10% of the
    training rows held out for validation, keeping the topics that the training part and the test part both carry
    (on the whole split, 86 of R90's 90 topics) and the documents with text and at least one of them."""
    def load(root: Path):
        documents = []
        for path in sorted((root / "reuters21578").glob("reut2-*.sgm")):
            for found in re.finditer(r"<REUTERS ([^>]*)>(.*?)</REUTERS>", path.read_text(encoding="latin-1"), re.S):
                attributes, body = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1))), found.group(2)

                def field(tag: str, text: str = body) -> str:
                    match = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
                    return match.group(1) if match else ""

                if attributes.get("TOPICS") == "YES" and attributes.get("LEWISSPLIT") in ("TRAIN", "TEST"):
                    documents.append({"split": attributes["LEWISSPLIT"],
                                      "topics": re.findall(r"<D>(.*?)</D>", field("TOPICS")),
                                      "text": html.unescape(f"{field('TITLE')}\n{field('BODY')}").strip()})
        frame = pd.DataFrame(documents)
        # a few documents have neither title nor body, and most have no topic: nothing to classify
        frame = frame[(frame.text.str.len() > 0) & (frame.topics.str.len() > 0)]
        train = frame[frame.split == "TRAIN"].head(train_rows)
        cut = len(train) // 10
        parts = [train.iloc[cut:], train.iloc[:cut], frame[frame.split == "TEST"].head(test_rows)]
        # a topic the training part lacks cannot be learned, one the test part lacks cannot be scored
        kept = set.intersection(*({topic for topics in part.topics for topic in topics} for part in parts[::2]))

        def labelled(part: pd.DataFrame) -> pd.DataFrame:
            topics = [sorted(topic for topic in found if topic in kept) for found in part.topics]
            part = part.assign(label=[json.dumps(found) for found in topics])[[bool(found) for found in topics]]
            return part[["text", "label"]].reset_index(drop=True)

        return tuple(labelled(part) for part in parts)
    return load


# issue 5's comparison: what each long-text strategy buys over keeping the first 128 tokens
LONG_TEXT_STRATEGIES = {
    "head": {"long_text": "head"},
    "head-tail": {"long_text": "head-tail"},
    "chunks-mean": {"long_text": "chunks", "chunk_pooling": "mean"},
    "chunks-attention": {"long_text": "chunks", "chunk_pooling": "attention"},
    "chunks-mean, 8 chunks": {"long_text": "chunks", "chunk_pooling": "mean", "max_chunks": 8},
}

# issue 20's recipes, each against bertclf's defaults (label smoothing is for single-label data only)
RECIPES = {
    "defaults": {},
    "layer decay 0.95": {"layer_decay": 0.95},
    "head first (1 epoch)": {"freeze_epochs": 1},
    "frozen encoder": {"freeze_encoder": True},
    "focal loss": {"loss": "focal"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
}
MULTILABEL_RECIPES = {name: options for name, options in RECIPES.items() if "label_smoothing" not in options}

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
    # issue 20's wider benchmark: the four datasets the other suites do not hold, 3 sides x 3 seeds, sliced so that
    # the suite fits in about an hour on 2 cores (long texts at 128 tokens: 600 training texts)
    "wide": [
        DatasetSpec("trec", "TREC (6 question types): a stratified 3,000-question slice of train_5500 (10% held out "
                    "for validation) / TREC_10 (test)", ("trec/train_5500.label", "trec/TREC_10.label"),
                    trec(3000), {"epochs": 2}, metric="accuracy"),
        DatasetSpec("sst2", "SST-2: a stratified 3,400-row slice of train.tsv (400 held out for validation) / dev.tsv "
                    "(test)", ("sst2/train.tsv", "sst2/dev.tsv"), sst2(3000, 400), {"epochs": 2},
                    metric="accuracy"),
        DatasetSpec("20newsgroups", "20 Newsgroups (bydate, message bodies without headers): a stratified "
                    "670-message slice of the train folders (10% held out for validation), a stratified 1,000-message "
                    "slice of the test folders, max length 128",
                    ("20newsgroups/20news-bydate-train/alt.atheism/49960",), twenty_newsgroups(670, 1000),
                    {"max_length": 128, "epochs": 2}),
        DatasetSpec("reuters", "Reuters-21578 (ModApte, multilabel): the first 670 training documents with a topic "
                    "(10% held out for validation) and 1,000 test documents, title and body, max length 128; the "
                    "topics that both the training and the test part carry",
                    ("reuters21578/reut2-000.sgm",), reuters(670, 1000), {"max_length": 128, "epochs": 2},
                    metric="f1_micro", multilabel=True),
    ],
    # issue 20: every recipe against the defaults and the two Trainer configurations on four kinds of data, 3 seeds,
    # 2 epochs: a suite per kind, so that each fits in an hour on 2 cores (each took 24 to 35 minutes where measured,
    # but the machines drawn here differ in matmul speed by up to 2x). The report puts their verdicts in one table.
    "recipes-short": [
        # the frozen encoder's speed against a full fine-tune, 3 epochs as the issue asks, on a 4,000-text slice
        DatasetSpec("cola", "CoLA: a stratified 4,000-sentence slice of in_domain_train / in_domain_dev "
                    "(validation) / out_of_domain_dev (test), 3 epochs", ("cola/in_domain_train.tsv",), cola(4000),
                    {"epochs": 3}, metric="mcc",
                    strategies={name: RECIPES[name] for name in ("defaults", "frozen encoder")}),
        DatasetSpec("trec", "TREC (6 question types, short): a stratified 3,000-question slice of train_5500 (10% "
                    "held out for validation) / TREC_10 (test)", ("trec/train_5500.label", "trec/TREC_10.label"),
                    trec(3000), {"epochs": 2}, metric="accuracy", strategies=RECIPES, trainer_baselines=True),
    ],
    "recipes-long": [
        DatasetSpec("bbc_news", "BBC News (5 topics, long articles at 128 tokens): a stratified 700-article slice, "
                    "80/10/10", ("bbc_news/bbc_news_train.csv",), bbc_news(700), {"max_length": 128, "epochs": 2},
                    strategies=RECIPES, trainer_baselines=True),
    ],
    "recipes-multilabel": [
        DatasetSpec("goemotions", "GoEmotions (28 labels, multilabel): the first 3,000 rows of train.tsv, 500 of "
                    "dev.tsv, 1,000 of test.tsv", ("goemotions/train.tsv", "goemotions/dev.tsv", "goemotions/test.tsv",
                                                  "goemotions/labels.txt"),
                    goemotions(3000, 500, 1000), {"epochs": 2}, metric="f1_micro", multilabel=True,
                    strategies=MULTILABEL_RECIPES, trainer_baselines=True),
    ],
    "recipes-russian": [
        DatasetSpec("rutweetcorp", "RuTweetCorp (Russian sentiment): a stratified 900-tweet slice of valid.csv (10% "
                    "held out for validation), a stratified 500-tweet slice of test.csv",
                    ("rutweetcorp/valid.csv", "rutweetcorp/test.csv"), rutweetcorp(900, 500), {"epochs": 2},
                    strategies=RECIPES, trainer_baselines=True),
    ],
    # the runtimes suite on the second real architecture, 12 layers 768 wide (MPNet): 1,500 SST-2 texts, 1 epoch at
    # 64 tokens, the whole dev set as the test part; about 16 minutes on 2 cores
    "inference-mpnet": [
        DatasetSpec("sst2_mpnet", "SST-2 on all-mpnet-base-v2: a stratified 1,800-row slice of train.tsv (300 held out "
                    "for validation) / dev.tsv (test), max length 64", ("sst2/train.tsv", "sst2/dev.tsv"),
                    sst2(1500, 300), {"epochs": 1, "max_length": 64, "model": str(MPNET)}, metric="accuracy",
                    model_folder=MPNET),
    ],
    # issue text: `pipeline` against every runtime (see benchmarks/suites/runtimes.py). One model per dataset, 1 epoch
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


def missing(spec: DatasetSpec, root: Path) -> str | None:
    """Why the dataset cannot run here (its files or its model are absent), or None."""
    absent = [name for name in spec.files if not (root / name).is_file()]
    if absent:
        return f"missing under {root}: {', '.join(absent)}"
    if spec.model_folder is not None and not (spec.model_folder / "config.json").is_file():
        return f"the model {spec.model_folder} is not installed (install it with {MPNET_INSTALL})"
    return None


def prepare(spec: DatasetSpec, root: Path, directory: Path) -> dict[str, Path]:
    """Write the dataset's train/val/test parts as CSV files (columns text, label; for multilabel data the label
    is a JSON list) and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part, frame in zip(("train", "val", "test"), spec.load(root), strict=True):
        paths[part] = directory / f"{part}.csv"
        frame.to_csv(paths[part], index=False)
    return paths


def configurations_of(spec: DatasetSpec) -> dict[str, dict]:
    """Name -> (side, bertclf options) of every configuration the dataset runs."""
    if spec.strategies:
        trainers = {side: {"side": side, "bertclf_options": {}} for side in SIDES[:2] if spec.trainer_baselines}
        return {**trainers, **{name: {"side": "bertclf", "bertclf_options": {**spec.bertclf_options, **options}}
                               for name, options in spec.strategies.items()}}
    return {side: {"side": side, "bertclf_options": spec.bertclf_options} for side in SIDES}
