"""What a labelled data set holds, and how the model's tokenizer reads it, before any training.

``bertclf inspect`` prints it, ``bertclf train`` runs the same check first and warns, and the run's HTML report
shows it. Two things make a run useless no matter how it trains: texts repeated across parts (leaks inflate the
scores) and a vocabulary that does not cover the language (an English WordPiece vocabulary reads Russian as
single letters and most Chinese characters as unknown tokens): both are found here.
"""

from __future__ import annotations

import collections
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from bertclf.data import Examples, find_leaks
from bertclf.tokenization import token_lengths, tokenize

LENGTH_PERCENTILES = (50, 90, 95, 99)
COVERAGE_WORDS = 20_000  # words measured for vocabulary coverage: enough for a stable share, few enough to be quick
# A vocabulary that covers a language splits a word into 1.1-1.6 tokens (English under BERT's WordPiece); one
# that does not falls back to letters. Above these the model reads the text as characters or unknowns.
MAX_TOKENS_PER_WORD = 2.5
MAX_SHATTERED_SHARE = 0.3
MAX_UNKNOWN_SHARE = 0.05
MULTILINGUAL_MODELS = "xlm-roberta-base or bert-base-multilingual-cased"
# Scripts written without spaces between words: their texts are measured per character, not per word.
_UNSPACED_SCRIPTS = ("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR", "TIBETAN")
_WORD = re.compile(r"[^\W\d_]+")  # a run of letters
_PIECE_MARKERS = re.compile(r"^(##|▁|Ġ)|(</w>)$")  # WordPiece, SentencePiece and byte-level BPE word marks


@dataclass
class PartSummary:
    """One part of the data (a file, or train/val/test of a run)."""

    name: str
    rows: int
    empty_texts: int  # rows skipped because their text was empty
    duplicate_texts: int  # rows whose text already appeared earlier in the part
    conflicting_texts: int  # distinct texts that carry different labels in different rows
    label_counts: dict[str, int]  # texts per class, or for multilabel texts per label
    labels_per_text: float | None  # multilabel: the mean number of labels of a text


@dataclass
class Coverage:
    """How much of the text the tokenizer's vocabulary covers."""

    script: str  # the most frequent script of the letters, e.g. 'LATIN', 'CYRILLIC', 'CJK'
    unit: str  # 'word', or 'character' for scripts written without spaces
    tokens_per_unit: float  # tokens per word (or per character)
    shattered_share: float  # words of 2+ letters split into pieces of at most one letter each
    unknown_share: float  # tokens that are the tokenizer's unknown token
    texts: int  # texts measured

    def problem(self) -> str | None:
        """Why this tokenizer reads the text badly, naming the figure; None when it reads it well."""
        if self.unknown_share > MAX_UNKNOWN_SHARE:
            return f"{100 * self.unknown_share:.0f}% of its tokens are unknown to the vocabulary"
        if self.unit == "word" and (self.tokens_per_unit > MAX_TOKENS_PER_WORD
                                    or self.shattered_share > MAX_SHATTERED_SHARE):
            return (f"it splits a word into {self.tokens_per_unit:.1f} tokens on average and "
                    f"{100 * self.shattered_share:.0f}% of words into single letters (a vocabulary that covers the "
                    f"language: about 1.1-1.6 tokens per word)")
        return None


@dataclass
class DataInspection:
    parts: list[PartSummary]
    leaks: list[dict[str, Any]]  # {'part', 'other', 'texts', 'of'}: texts of 'part' also present in 'other'
    token_lengths: dict[str, float]  # percentiles of the first part's tokens per text, special tokens included
    max_length: int | None  # the cut, where known
    truncated_share: float | None  # texts of the first part longer than max_length
    coverage: Coverage
    model: str
    lengths: list[int] = field(default_factory=list, repr=False)  # the first part's tokens per text

    def vocabulary_warning(self) -> str | None:
        problem = self.coverage.problem()
        if problem is None:
            return None
        script = self.coverage.script.title()
        return (f"warning: the tokenizer of {self.model} reads this {script} text poorly: {problem}; a model whose "
                f"vocabulary covers the language will likely do much better (e.g. --model {MULTILINGUAL_MODELS})")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataInspection:
        values = dict(values)
        values["parts"] = [PartSummary(**part) for part in values["parts"]]
        values["coverage"] = Coverage(**values["coverage"])
        return cls(**values)


def summarize_part(examples: Examples) -> PartSummary:
    counts: collections.Counter = collections.Counter(map(str, examples.label_values()))
    duplicates = 0
    labels_of: dict[str, set[str]] = {}
    for position, text in enumerate(examples.texts):
        label = str(sorted(map(str, examples.labels[position]))) if examples.multilabel else str(
            examples.labels[position])
        seen = labels_of.setdefault(text, set())
        duplicates += bool(seen)
        seen.add(label)
    conflicting = sum(len(labels) > 1 for labels in labels_of.values())
    per_text = float(np.mean([len(labels) for labels in examples.labels])) if examples.multilabel else None
    return PartSummary(examples.name, len(examples), examples.skipped_empty, duplicates, conflicting,
                       dict(sorted(counts.items(), key=lambda item: -item[1])), per_text)


def _script(character: str) -> str:
    name = unicodedata.name(character, "")
    return next((script for script in _UNSPACED_SCRIPTS if name.startswith(script)), name.split(" ")[0] or "OTHER")


def vocabulary_coverage(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], sample: int = COVERAGE_WORDS,
                        seed: int = 0) -> Coverage:
    """Tokens per word (per character for scripts without spaces), words shattered into letters and unknown
    tokens, over the words of a random sample of ``texts``."""
    order = np.random.default_rng(seed).permutation(len(texts))
    words: list[str] = []
    measured = 0
    for position in order:
        if len(words) >= sample:
            break
        words += _WORD.findall(texts[position])
        measured += 1
    scripts = collections.Counter(_script(word[0]) for word in words)
    script = scripts.most_common(1)[0][0] if scripts else "OTHER"
    pieces = tokenize(tokenizer, words) if words else []
    tokens = sum(map(len, pieces))
    unknown = tokenizer.unk_token_id
    unknown_share = sum(row.count(unknown) for row in pieces) / tokens if tokens and unknown is not None else 0.0
    if script in _UNSPACED_SCRIPTS:
        characters = sum(map(len, words))
        return Coverage(script, "character", tokens / max(characters, 1), 0.0, unknown_share, measured)
    shattered = sum(len(word) > 1 and len(ids) > 1 and _all_single_letters(tokenizer, ids)
                    for word, ids in zip(words, pieces, strict=True))
    return Coverage(script, "word", tokens / max(len(words), 1), shattered / max(len(words), 1), unknown_share,
                    measured)


def _all_single_letters(tokenizer: PreTrainedTokenizerBase, tokens: Sequence[int]) -> bool:
    pieces = (_PIECE_MARKERS.sub("", piece) for piece in tokenizer.convert_ids_to_tokens(list(tokens)))
    return all(len(piece) <= 1 for piece in pieces)


def inspect_data(parts: Sequence[Examples], tokenizer: PreTrainedTokenizerBase, model: str,
                 max_length: int | None = None, lengths: Sequence[int] | None = None) -> DataInspection:
    """The whole check: each part, leaks between parts, token lengths and vocabulary coverage of the first part.
    ``lengths`` (tokens per text of the first part, special tokens included) saves tokenizing it again."""
    first = parts[0]
    if lengths is None:
        lengths = token_lengths(tokenizer, first.texts)
    counts = np.asarray(lengths)
    percentiles = {f"p{q}": float(np.percentile(counts, q)) for q in LENGTH_PERCENTILES}
    percentiles["max"] = float(counts.max())
    truncated = float(np.mean(counts > max_length)) if max_length else None
    return DataInspection([summarize_part(part) for part in parts], find_leaks(parts), percentiles, max_length,
                          truncated, vocabulary_coverage(tokenizer, first.texts), model, [int(n) for n in counts])


def format_inspection(inspection: DataInspection) -> str:
    """The plain-text account ``bertclf inspect`` prints."""
    lines = []
    for part in inspection.parts:
        lines.append(f"{part.name}: {part.rows} texts; {part.empty_texts} empty (skipped), {part.duplicate_texts} "
                     f"duplicates, {part.conflicting_texts} texts under different labels")
        shown = list(part.label_counts.items())
        labels = ", ".join(f"{label} {count} ({100 * count / max(part.rows, 1):.1f}%)" for label, count in shown[:30])
        more = f", ... ({len(shown) - 30} more)" if len(shown) > 30 else ""
        lines.append(f"  {'labels' if part.labels_per_text is not None else 'classes'} ({len(shown)}): {labels}{more}")
        if part.labels_per_text is not None:
            lines.append(f"  labels per text: {part.labels_per_text:.2f}")
    for leak in inspection.leaks:
        lines.append(f"leak: {leak['texts']} texts of {leak['part']} also appear in {leak['other']}")
    lengths = inspection.token_lengths
    first = inspection.parts[0].name
    lines.append(f"tokens per text in {first} ({inspection.model}): " + ", ".join(
        f"{name} {value:.0f}" for name, value in lengths.items()))
    if inspection.truncated_share is not None:
        lines.append(f"  longer than max length {inspection.max_length}: {100 * inspection.truncated_share:.1f}%")
    coverage = inspection.coverage
    lines.append(f"vocabulary coverage ({coverage.script.lower()} script, {coverage.texts} texts): "
                 f"{coverage.tokens_per_unit:.2f} tokens per {coverage.unit}, "
                 + (f"{100 * coverage.shattered_share:.1f}% of words split into single letters, "
                    if coverage.unit == "word" else "")
                 + f"{100 * coverage.unknown_share:.2f}% unknown tokens")
    warning = inspection.vocabulary_warning()
    if warning:
        lines.append(warning)
    return "\n".join(lines)
