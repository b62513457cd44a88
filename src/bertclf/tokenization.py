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

from bertclf.errors import BertclfError

log = logging.getLogger("bertclf")

# Architectures whose position ids start after the padding index, so two positions are unusable.
_OFFSET_POSITIONS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "longformer"}
AUTO_LENGTH_QUANTILE = 0.95
FEW_TEXTS, FEW_TEXTS_FLOOR = 1000, 128  # max_length='auto' on fewer training texts: see choose_max_length


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
        return tokenizer(list(texts), add_special_tokens=False, truncation=False, return_attention_mask=False,
                         return_token_type_ids=False)["input_ids"]
    finally:
        base_logger.setLevel(level)


def token_lengths(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str] | Sequence[Sequence[int]]) -> list[int]:
    """Tokens of each text with the model's special tokens, before truncation. ``texts`` are strings, or their
    content ids as :func:`tokenize` returns them (which saves tokenizing them again)."""
    prefix, suffix = special_tokens(tokenizer)
    contents = tokenize(tokenizer, texts) if len(texts) and isinstance(texts[0], str) else texts
    return [len(prefix) + len(ids) + len(suffix) for ids in contents]


def model_token_limit(tokenizer: PreTrainedTokenizerBase, model_config: PretrainedConfig) -> int:
    """The most tokens the encoder accepts, from its position table and the tokenizer's declared maximum. A limit
    that is absent or not positive is unknown (XLNet's relative positions declare -1): the other one decides, else
    512."""
    limits = []
    if 0 < tokenizer.model_max_length < 100_000:  # unset maxima are stored as a huge number
        limits.append(tokenizer.model_max_length)
    positions = getattr(model_config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        usable = positions - 2 if model_config.model_type in _OFFSET_POSITIONS else positions
        if usable > 0:
            limits.append(usable)
    return min(limits) if limits else 512


def choose_max_length(token_counts: Sequence[int], limit: int) -> int:
    """The smallest multiple of 8 covering 95% of the texts (special tokens included), capped at ``limit``. Fewer
    than ``FEW_TEXTS`` training texts say little about the lengths of the texts to come: then it covers all of them
    and is at least ``FEW_TEXTS_FLOOR`` (batches are padded to their longest text, so short texts cost no more)."""
    few = len(token_counts) < FEW_TEXTS
    covering = float(np.quantile(np.asarray(token_counts), 1.0 if few else AUTO_LENGTH_QUANTILE, method="higher"))
    return min(limit, max(FEW_TEXTS_FLOOR if few else 8, 8 * math.ceil(covering / 8)))


def truncate(content: Sequence[int], budget: int, strategy: str, head_tokens: int | None) -> list[int]:
    """At most ``budget`` content tokens: the first ones ('head'), the last ones ('tail'), or the first
    ``head_tokens`` (default a quarter of the budget) and the last ones ('head-tail', after Sun et al. 2019)."""
    if len(content) <= budget:
        return list(content)
    if strategy == "tail":
        return list(content[len(content) - budget :])
    if strategy == "head-tail":
        head = budget // 4 if head_tokens is None else head_tokens
        return [*content[:head], *content[len(content) - (budget - head) :]]
    return list(content[:budget])


def windows(content: Sequence[int], budget: int, stride: int, max_chunks: int) -> list[list[int]]:
    """Consecutive windows of ``budget`` content tokens, each starting ``budget - stride`` after the previous
    one, until one reaches the end of the text or there are ``max_chunks``; a short text is one window."""
    step = budget - stride
    parts = [list(content[:budget])]
    while len(parts) < max_chunks and (len(parts) - 1) * step + budget < len(content):
        start = len(parts) * step
        parts.append(list(content[start : start + budget]))
    return parts


TOKENIZE_SLICE = 256  # texts tokenized at a time by TokenEncoder


class TokenEncoder:
    """Model-ready token ids under a long-text strategy: a list of ids per text, or with 'chunks' a list of
    windows (each a list of ids) per text. Every piece is wrapped in the model's special tokens."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, strategy: str = "head",
                 head_tokens: int | None = None, stride: int = 0, max_chunks: int = 1):
        self.tokenizer = tokenizer
        self.prefix, self.suffix = special_tokens(tokenizer)
        self.budget = max_length - len(self.prefix) - len(self.suffix)
        self.strategy, self.head_tokens, self.stride, self.max_chunks = strategy, head_tokens, stride, max_chunks
        if strategy == "head-tail" and head_tokens is not None and head_tokens > self.budget:
            raise BertclfError(f"--head-tokens {head_tokens} exceeds the {self.budget} content tokens that "
                               f"--max-length {max_length} leaves")
        if strategy == "chunks" and stride >= self.budget:
            raise BertclfError(f"--stride {stride} must be below the {self.budget} content tokens of a window "
                               f"(--max-length {max_length})")

    @property
    def chunked(self) -> bool:
        return self.strategy == "chunks"

    def wrap(self, content: Sequence[int]) -> list[int]:
        return [*self.prefix, *content, *self.suffix]

    def from_tokens(self, contents: Sequence[Sequence[int]]) -> list:
        """Encode content token ids as returned by :func:`tokenize`."""
        if self.chunked:
            return [[self.wrap(part) for part in windows(content, self.budget, self.stride, self.max_chunks)]
                    for content in contents]
        return [self.wrap(truncate(content, self.budget, self.strategy, self.head_tokens)) for content in contents]

    def __call__(self, texts: Sequence[str]) -> list:
        # In slices: a long text's full token list lives only until it is cut, not for every text at once.
        encoded = []
        for start in range(0, len(texts), TOKENIZE_SLICE):
            encoded.extend(self.from_tokens(tokenize(self.tokenizer, texts[start : start + TOKENIZE_SLICE])))
        return encoded
