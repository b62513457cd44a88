"""Batches with little padding: length-bucketed shuffled batches for training, length-sorted for inference.

Padding is dynamic (each batch is padded to its own longest text), so the compute spent on a batch
follows the lengths of the texts in it. Training draws a fresh random permutation every epoch, cuts it
into pools of many batches, sorts each pool by length and shuffles the resulting batches. Inference batches
(sorted by length) are made by :mod:`bertclf.inference`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

POOL_BATCHES = 64  # batches per sorting pool: more means less padding, fewer means more randomness


def is_chunked(token_ids: Sequence[Sequence]) -> bool:
    """Whether each text is a list of windows of ids (the 'chunks' strategy) rather than one list of ids; the first
    text tells, as one encoding gives every text the same form."""
    return len(token_ids) > 0 and len(token_ids[0]) > 0 and isinstance(token_ids[0][0], list)


class EncodedTexts(Dataset):
    """Token ids per text (a list of ids, or for chunked texts a list of windows of ids) and, for training and
    evaluation, their label rows."""

    def __init__(self, token_ids: Sequence[Sequence], labels: np.ndarray | None = None):
        self.token_ids = token_ids
        self.labels = labels

    def __len__(self) -> int:
        return len(self.token_ids)

    def __getitem__(self, index: int) -> tuple[Sequence, np.ndarray | None]:
        return self.token_ids[index], None if self.labels is None else self.labels[index]

    @property
    def chunked(self) -> bool:
        return is_chunked(self.token_ids)

    @property
    def lengths(self) -> list[int]:
        """Tokens per text (all windows together for chunked texts): the cost that batches are grouped by."""
        if self.chunked:
            return [sum(len(window) for window in windows) for windows in self.token_ids]
        return [len(ids) for ids in self.token_ids]


def pad(rows: Sequence[Sequence[int]], pad_token_id: int, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest row, and the attention mask (int64, as the encoders take them). ``side`` is
    the tokenizer's ``padding_side``: 'left' for an encoder whose head reads the last position (XLNet), so that
    every row's last position is its own last token whatever the batch."""
    longest = max(len(ids) for ids in rows)
    input_ids = np.full((len(rows), longest), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
    for row, ids in enumerate(rows):
        start = longest - len(ids) if side == "left" else 0
        input_ids[row, start : start + len(ids)] = ids
        attention_mask[row, start : start + len(ids)] = 1
    return input_ids, attention_mask


class PadBatch:
    """Collate function: pad token ids to the longest in the batch and build the attention mask.

    Chunked texts are flattened into one row per window, and ``chunk_counts`` says how many consecutive rows
    belong to each text. ``padding_side`` is the tokenizer's (see :func:`pad`).
    """

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        self.pad_token_id = pad_token_id
        self.padding_side = padding_side

    def __call__(self, items: list[tuple[Sequence, np.ndarray | None]]) -> dict[str, torch.Tensor]:
        token_ids = [ids for ids, _ in items]
        chunked = is_chunked(token_ids)
        input_ids, attention_mask = pad([window for ids in token_ids for window in ids] if chunked else token_ids,
                                        self.pad_token_id, self.padding_side)
        batch = {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask)}
        if chunked:
            batch["chunk_counts"] = torch.tensor([len(ids) for ids in token_ids])
        if items[0][1] is not None:
            batch["labels"] = torch.as_tensor(np.stack([label for _, label in items]))
        return batch


def window_parts(counts: Sequence[int], max_windows: int) -> list[tuple[int, int]]:
    """Ranges of consecutive texts holding at most ``max_windows`` windows (a text with more is a part of its own),
    so that the encoder never sees more than a batch of windows at once, whatever the texts' lengths."""
    parts, start, windows = [], 0, 0
    for index, count in enumerate(counts):
        if index > start and windows + count > max_windows:
            parts.append((start, index))
            start, windows = index, 0
        windows += count
    parts.append((start, len(counts)))
    return parts


def split_batch(batch: dict[str, torch.Tensor], max_windows: int) -> list[dict[str, torch.Tensor]]:
    """A batch of chunked texts cut, between texts, into :func:`window_parts`. Other batches come back whole."""
    if "chunk_counts" not in batch:
        return [batch]
    counts = batch["chunk_counts"].tolist()
    offsets = [0, *itertools.accumulate(counts)]
    return [
        {
            "input_ids": batch["input_ids"][offsets[first] : offsets[last]],
            "attention_mask": batch["attention_mask"][offsets[first] : offsets[last]],
            "chunk_counts": batch["chunk_counts"][first:last],
            **({"labels": batch["labels"][first:last]} if "labels" in batch else {}),
        }
        for first, last in window_parts(counts, max_windows)
    ]


class LengthBucketSampler(Sampler[list[int]]):
    """Shuffled batches of similar-length texts. Each epoch's arrangement depends only on ``seed`` and the epoch's
    number, so a resumed run draws exactly the batches the interrupted one would have."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, pool_batches: int = POOL_BATCHES):
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.pool_size = batch_size * pool_batches
        self.seed = seed
        self.epoch, self.skip = 0, 0

    def arrange(self, epoch: int, skip: int = 0) -> None:
        """Iterate over ``epoch``'s batches, leaving out its first ``skip`` (already trained on)."""
        self.epoch, self.skip = epoch, skip

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        random = np.random.default_rng([self.seed, self.epoch])
        permutation = random.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(permutation), self.pool_size):
            pool = permutation[start : start + self.pool_size]
            pool = pool[np.argsort(-self.lengths[pool], kind="stable")]
            batches.extend(pool[i : i + self.batch_size].tolist() for i in range(0, len(pool), self.batch_size))
        for position in random.permutation(len(batches))[self.skip :]:
            yield batches[position]


def train_loader(dataset: EncodedTexts, batch_size: int, seed: int, pad_token_id: int,
                 padding_side: str = "right") -> DataLoader:
    """Batches of :class:`LengthBucketSampler`; the loader's own generator keeps starting an epoch from drawing on
    the global random state, which dropout uses (and a checkpoint restores)."""
    sampler = LengthBucketSampler(dataset.lengths, batch_size, seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=PadBatch(pad_token_id, padding_side),
                      generator=torch.Generator().manual_seed(seed))
