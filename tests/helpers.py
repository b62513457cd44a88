"""What several test modules share: generated texts, model layouts, the command line run in this process or in
another, and a free port."""

from __future__ import annotations

import contextlib
import io
import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd

from bertclf.batching import EncodedTexts
from bertclf.cli import main

# --- generated data --------------------------------------------------------------------------------------------

TOPIC_WORDS = {
    "sport": ["match", "goal", "team", "league", "coach", "score", "season", "player"],
    "tech": ["software", "chip", "computer", "network", "phone", "internet", "code", "data"],
    "food": ["recipe", "cheese", "bread", "dinner", "soup", "kitchen", "bake", "flavour"],
}
FILLER = ["the", "a", "on", "with", "about", "today", "we", "people", "new", "old", "big", "very", "said", "it"]
# Texts that break careless writers and readers: separators, quotes, line breaks, empty, unicode, all digits.
NASTY_TEXTS = ["tab\there", "new\nline", "carriage\rreturn", "windows\r\nline", 'say "hi"', '"quoted"', "a,b", "",
               "unicode é 漢字 🙂", "12345", "007", "1e3", "NA", "null", " padded ", "back\\slash", "#hash",
               "line\u2028sep", "semi;colon", "'single'", "[1]", "{}"]
# Those an unquoted TSV field can hold (no tab, no line break).
TSV_TEXTS = [text for text in NASTY_TEXTS if not any(mark in text for mark in "\t\n\r")]


def insert_topic_words(rng: random.Random, words: list[str], topic: str) -> None:
    """Put two of the topic's words at random places among ``words``."""
    for _ in range(2):
        words.insert(rng.randrange(len(words) + 1), rng.choice(TOPIC_WORDS[topic]))


def make_texts(count: int, seed: int = 0, classes: tuple[str, ...] = ("sport", "tech", "food"),
               min_words: int = 4, max_words: int = 14) -> pd.DataFrame:
    """Texts whose topic words give the label away, with filler of varying length around them."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        label = classes[i % len(classes)]
        words = [rng.choice(FILLER) for _ in range(rng.randint(min_words, max_words))]
        insert_topic_words(rng, words, label)
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def make_multilabel_texts(count: int, seed: int = 0) -> pd.DataFrame:
    """Texts about one or two topics, labelled with every topic they mention (comma-separated)."""
    rng = random.Random(seed)
    topics = sorted(TOPIC_WORDS)
    rows = []
    for i in range(count):
        chosen = [topics[i % len(topics)]] + ([topics[(i + 1) % len(topics)]] if rng.random() < 0.4 else [])
        words = [rng.choice(FILLER) for _ in range(rng.randint(4, 12))]
        for topic in chosen:
            insert_topic_words(rng, words, topic)
        rows.append({"text": " ".join(words), "label": ",".join(chosen)})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def make_tail_texts(count: int, seed: int = 0) -> pd.DataFrame:
    """Long texts of filler whose topic words come only in the last few words: the head alone says nothing."""
    rng = random.Random(seed)
    classes = sorted(TOPIC_WORDS)
    rows = []
    for i in range(count):
        label = classes[i % len(classes)]
        ending = [rng.choice(FILLER) for _ in range(4)]
        insert_topic_words(rng, ending, label)
        words = [rng.choice(FILLER) for _ in range(rng.randint(40, 70))] + ending
        rows.append({"text": " ".join(words), "label": label})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def write_text_files(folder: Path) -> dict[str, Path]:
    """Train/val/test CSV files of generated texts (150, 30 and 30) in ``folder``."""
    paths = {}
    for name, count, seed in (("train", 150, 1), ("val", 30, 2), ("test", 30, 3)):
        paths[name] = folder / f"{name}.csv"
        make_texts(count, seed=seed).to_csv(paths[name], index=False)
    return paths


def toy_set(count: int = 64, seed: int = 0) -> EncodedTexts:
    """Token ids whose label is 1 iff token 2000 appears: learnable by the tiny model in a few epochs."""
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for _ in range(count):
        body = rng.integers(3000, 3100, size=rng.integers(3, 12)).tolist()
        label = int(rng.integers(0, 2))
        if label:
            body[rng.integers(0, len(body))] = 2000
        ids.append([101, *body, 102])
        labels.append(label)
    return EncodedTexts(ids, np.array(labels))


def sentence_transformers_layout(directory: Path, **modes: bool) -> str:
    """Give a model directory sentence-transformers' modules.json and pooling configuration with these modes."""
    (directory / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 32, **{f"pooling_mode_{mode}": on for mode, on in modes.items()}}))
    return str(directory)


# --- the command line in this process ----------------------------------------------------------------------------

def run_cli(args: Sequence[Any], stdin: str | None = None) -> tuple[int, str, str]:
    """``bertclf ARGS`` in this process: its exit status (argparse's usage errors included), stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as context:
        context.enter_context(contextlib.redirect_stdout(out))
        context.enter_context(contextlib.redirect_stderr(err))
        if stdin is not None:
            context.enter_context(mock.patch.object(sys, "stdin", io.StringIO(stdin)))
        try:
            code = main([str(arg) for arg in args])
        except SystemExit as usage_error:  # argparse's own errors exit from inside parse_args
            code = usage_error.code
    return code, out.getvalue(), err.getvalue()


def tiny_flags(options: Mapping[str, Any]) -> list[Any]:
    """Options as command line flags: {"batch_size": 8} -> ["--batch-size", 8]."""
    flags = []
    for name, value in options.items():
        flags += [f"--{name.replace('_', '-')}", value]
    return flags


def assert_one_line_error(code: int, err: str, fragment: str) -> None:
    """Exit 2, no traceback, and the error is the last line of stderr (progress lines may come before it)."""
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("bertclf: error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    assert fragment in errors[0]


# --- the command line in another process -------------------------------------------------------------------------

def bertclf_command(args: Sequence[Any]) -> list[str]:
    return [sys.executable, "-c", "import sys; from bertclf.cli import main; sys.exit(main())", *map(str, args)]


def bertclf_process(args: Sequence[Any], **options: Any) -> subprocess.Popen:
    return subprocess.Popen(bertclf_command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.005)


def latest_checkpoint(staging: Path) -> Path | None:
    found = sorted((staging / "checkpoints").glob("step-*"))
    return found[-1] if found else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
