"""Texts to token ids: tokenize once, then cut to the length budget and wrap in the model's special tokens.

Texts are tokenized without special tokens and without truncation, so the full token sequence is known:
``max_length='auto'`` reads the lengths from it, and the cut is made on content tokens before the
model's own special tokens are put back around it. For plain head truncation the result is exactly
what ``tokenizer(text, truncation=True, max_length=n)`` gives, which keeps ``transformers.pipeline``
in agreement with bertclf.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
from transformers import PretrainedConfig, PreTrainedTokenizerBase

log = logging.getLogger("bertclf")

# Architectures whose position ids start after the padding index, so two positions are unusable.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer"}
AUTO_LENGTH_QUANTILE = 0.95


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a single text (e.g. [CLS] and [SEP] for BERT)."""
    plain = tokenizer("a", add_special_tokens=False)["input_ids"]
    wrapped = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(wrapped) - len(plain) + 1):
        if wrapped[start : start + len(plain)] == plain:
            return wrapped[:start], wrapped[start + len(plain) :]
    raise ValueError(f"cannot locate the text inside the special tokens of {type(tokenizer).__name__}")


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> list[list[int]]:
    """Content token ids of each text, untruncated and without special tokens."""
    # The "sequence longer than the model's maximum" warning is expected here: truncation comes next.
    base_logger = logging.getLogger("transformers.tokenization_utils_base")
    level = base_logger.level
    base_logger.setLevel(logging.ERROR)
    try:
        return tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    finally:
        base_logger.setLevel(level)


def model_token_limit(tokenizer: PreTrainedTokenizerBase, model_config: PretrainedConfig) -> int:
    """The most tokens the encoder accepts, from its position table and the tokenizer's declared maximum."""
    limits = []
    if 0 < tokenizer.model_max_length < 100_000:  # unset maxima are stored as a huge number
        limits.append(tokenizer.model_max_length)
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions:
        limits.append(positions - 2 if model_config.model_type in _OFFSET_POSITIONS else positions)
    return min(limits) if limits else 512


def choose_max_length(token_counts: Sequence[int], limit: int) -> int:
    """The smallest multiple of 8 covering 95% of the texts (special tokens included), capped at ``limit``."""
    covering = float(np.quantile(np.asarray(token_counts), AUTO_LENGTH_QUANTILE, method="higher"))
    return max(8, min(limit, 8 * math.ceil(covering / 8)))


def wrap(content: Sequence[int], prefix: Sequence[int], suffix: Sequence[int], max_length: int) -> list[int]:
    """The first tokens that fit in ``max_length`` together with the special tokens."""
    budget = max_length - len(prefix) - len(suffix)
    return [*prefix, *content[:budget], *suffix]


def encode(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """Model-ready token ids of each text, truncated to ``max_length``."""
    prefix, suffix = special_tokens(tokenizer)
    return [wrap(ids, prefix, suffix, max_length) for ids in tokenize(tokenizer, texts)]
