"""The one predictor every consumer uses (``predict``, ``evaluate``, the Python API, the server, Ray workers,
evaluation during training, shared among processes there): length-sorted batches, windows of chunked texts and
their pooling into documents, probabilities, multilabel thresholds, and results in input order. What computes the
logits is a :class:`~bertclf.inference.runtimes.Runtime`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import gather_object

from bertclf.batching import EncodedTexts, pad, window_parts
from bertclf.inference.runtimes import Runtime
from bertclf.thresholds import decide


def group_window_vectors(vectors: np.ndarray, counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Window vectors, consecutive per text, as texts x most windows x hidden (zero padded) and the mask."""
    most = max(counts)
    windows = np.zeros((len(counts), most, vectors.shape[1]), dtype=vectors.dtype)
    mask = np.zeros((len(counts), most), dtype=bool)
    start = 0
    for text, count in enumerate(counts):
        windows[text, :count] = vectors[start : start + count]
        mask[text, :count] = True
        start += count
    return windows, mask


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Positions in batches over texts sorted longest first (an out-of-memory error shows at once, not at the end):
    each batch is padded only to its own longest text."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class Predictor:
    """Texts' token ids in, logits, probabilities and decisions out, in input order."""

    runtime: Runtime
    pad_token_id: int
    batch_size: int
    multilabel: bool = False
    thresholds: np.ndarray | None = None  # multilabel: one per class
    min_labels: int = 0
    # In a run of several processes (torchrun, accelerate launch), each predicts its share of the texts and all
    # receive all the logits: every process must then call with the same texts.
    across_processes: bool = False
    padding_side: str = "right"  # the tokenizer's: 'left' where the encoder's head reads the last position (XLNet)

    def logits(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        """Logits of every text (ids, or a list of windows of ids for chunked texts), in input order."""
        if not self.across_processes:
            return self._logits_in_this_process(token_ids)
        state = PartialState()
        if state.num_processes == 1:
            return self._logits_in_this_process(token_ids)
        # Contiguous shares without padding, gathered in process order: every text once, in input order.
        with state.split_between_processes(list(range(len(token_ids)))) as mine:
            share = self._logits_in_this_process([token_ids[position] for position in mine])
        return np.concatenate([part for part in gather_object([share]) if len(part)])

    def _logits_in_this_process(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        results: np.ndarray | None = None
        for batch in sorted_batches(EncodedTexts(token_ids).lengths, self.batch_size):
            if self.runtime.chunked:
                logits = self._documents([token_ids[position] for position in batch])
            else:
                logits = self.runtime.rows(*pad([token_ids[position] for position in batch], self.pad_token_id,
                                                      self.padding_side))
            if results is None:
                results = np.empty((len(token_ids), logits.shape[1]), dtype=np.float32)
            results[batch] = logits
        return results if results is not None else np.zeros((0, 0), dtype=np.float32)

    def _documents(self, documents: list[list[list[int]]]) -> np.ndarray:
        counts = [len(windows) for windows in documents]
        logits = []
        for first, last in window_parts(counts, self.batch_size):
            rows = [window for windows in documents[first:last] for window in windows]
            vectors = self.runtime.rows(*pad(rows, self.pad_token_id, self.padding_side))
            logits.append(self.runtime.documents(*group_window_vectors(vectors, counts[first:last])))
        return np.concatenate(logits)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Each label's own probability (multilabel), or a distribution over the classes."""
        scores = torch.from_numpy(logits)
        return (torch.sigmoid(scores) if self.multilabel else torch.softmax(scores, dim=-1)).numpy()

    def predict_proba(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        return self.probabilities(self.logits(token_ids))

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """Class positions (multiclass), or a 0/1 matrix of the labels each text receives (multilabel)."""
        if not self.multilabel:
            return probabilities.argmax(axis=1)
        return decide(probabilities, self.thresholds, self.min_labels)
