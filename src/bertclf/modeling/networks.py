"""The classifier network: any Hugging Face encoder, a pooling of its token vectors and a head; built fresh,
saved into a run directory and loaded back.

With ``pooling='cls'`` and ``head='linear'`` the network *is* the architecture's own
``AutoModelForSequenceClassification`` (for BERT: the [CLS] vector through BERT's pooler, then a linear
layer), so a saved run directory is a standard checkpoint that ``transformers.pipeline`` can serve.
Other combinations wrap ``AutoModel`` in :class:`PooledClassifier`; the encoder is still saved as a
standard checkpoint and the pooling/head weights go to ``head.safetensors``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_outputs import SequenceClassifierOutput

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.modeling.hub import loading, quiet_transformers, resolve_model_path, resolve_pooling
from bertclf.rundir import HEAD_WEIGHTS


def uses_native_head(config: ClassifierConfig) -> bool:
    """Whether the network is the architecture's own ``AutoModelForSequenceClassification``."""
    return config.pooling == "cls" and config.head == "linear" and config.long_text != "chunks" \
        and config.low_label != "on"


def last_real_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The vector of each row's last token that the mask marks as real, whichever side the padding is on."""
    positions = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
    last = (positions * attention_mask.to(positions.dtype)).argmax(dim=1)
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token vectors that the mask marks as real (padding is ignored)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


class ClassificationHead(nn.Module):
    """Dropout + linear, or for 'mlp' dropout + linear + GELU + dropout + linear."""

    def __init__(self, in_size: int, num_labels: int, kind: str, hidden_size: int | None, dropout: float):
        super().__init__()
        if kind == "linear":
            self.layers = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, num_labels))
        else:
            hidden_size = hidden_size or in_size
            self.layers = nn.Sequential(
                nn.Dropout(dropout), nn.Linear(in_size, hidden_size), nn.GELU(),
                nn.Dropout(dropout), nn.Linear(hidden_size, num_labels),
            )

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.layers(pooled)


def group_window_vectors(vectors: torch.Tensor, chunk_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One vector per window (windows x hidden), consecutive per text, as texts x most windows x hidden, zero
    padded, and the mask of the real windows (texts x most windows)."""
    per_text = torch.split(vectors, chunk_counts.tolist())
    padded = nn.utils.rnn.pad_sequence(per_text, batch_first=True)
    mask = torch.arange(padded.shape[1], device=vectors.device)[None, :] < chunk_counts.to(vectors.device)[:, None]
    return padded, mask


class ChunkPooling(nn.Module):
    """The window vectors of a text become one document vector: their mean, their element-wise max, or an
    attention-weighted sum (a learned score per window, softmax over the text's windows). Padded window slots
    take no part in any of them."""

    def __init__(self, kind: str, hidden_size: int):
        super().__init__()
        self.kind = kind
        self.score = nn.Linear(hidden_size, 1) if kind == "attention" else None

    def forward(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return windows.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
        if self.kind == "attention":
            scores = self.score(windows).squeeze(-1).masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=1)
        else:
            weights = mask.to(windows.dtype) / mask.sum(dim=1, keepdim=True)
        return (weights[..., None] * windows).sum(dim=1)


class PooledClassifier(nn.Module):
    """An ``AutoModel`` encoder, a pooling of its last hidden states and a classification head.

    With ``chunk_pooling`` the rows are windows of longer texts: ``chunk_counts`` says how many consecutive rows
    belong to each text, and the window vectors are pooled into one vector per text before the head, so the
    loss is on the document.
    """

    def __init__(self, encoder: PreTrainedModel, num_labels: int, pooling: str, head: str,
                 head_hidden_size: int | None, head_dropout: float, chunk_pooling: str | None = None,
                 unit_length: bool = False):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.unit_length = unit_length  # the low-label mode's vectors: compared by cosine, its head fitted on them
        # The pooling reads the last hidden states, never the encoder's own pooler: frozen, it is left out of the
        # optimizer, and several processes (DistributedDataParallel) do not wait for gradients it never gets.
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)
        # 'cls' pooling reads the token the architecture summarises a sequence in: the first, or for XLNet (its
        # configuration's summary_type 'last') the last real one, which padding on either side leaves in place.
        self.reads_last_token = getattr(encoder.config, "summary_type", "first") == "last"
        hidden_size = encoder.config.hidden_size
        self.chunk_pooling = ChunkPooling(chunk_pooling, hidden_size) if chunk_pooling else None
        self.head = ClassificationHead(hidden_size, num_labels, head, head_hidden_size, head_dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk_counts: torch.Tensor | None = None,
                **_: Any) -> SequenceClassifierOutput:
        pooled = self.row_vectors(input_ids, attention_mask)
        if self.chunk_pooling is not None:
            return SequenceClassifierOutput(logits=self.document_logits(*group_window_vectors(pooled, chunk_counts)))
        return SequenceClassifierOutput(logits=self.head(pooled))

    def row_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per row (a text, or a window of a chunked text), of unit length where the network says so."""
        vectors = self._pooled(input_ids, attention_mask)
        return nn.functional.normalize(vectors, dim=-1) if self.unit_length else vectors

    def _pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling != "cls":
            if hidden.shape[1] != attention_mask.shape[1]:  # Funnel's base model pools the sequence as it goes
                raise BertclfError(f"{self.encoder.config.model_type} shortens the sequence inside its encoder, so "
                                   "mean pooling cannot weigh its token vectors by the padding mask: use --pooling cls")
            return mean_pool(hidden, attention_mask)
        return last_real_token(hidden, attention_mask) if self.reads_last_token else hidden[:, 0]

    def document_logits(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Chunked texts: logits from each text's window vectors (texts x most windows x hidden) and their mask.
        Inference runs this apart from the encoder, so exported graphs need no data-dependent grouping."""
        return self.head(self.chunk_pooling(windows, mask))


def _label_maps(classes: Sequence[Any]) -> dict[str, dict]:
    names = [str(label) for label in classes]
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def build_model(config: ClassifierConfig, classes: Sequence[Any], multilabel: bool = False) -> nn.Module:
    """A fresh classifier on the pretrained encoder ``config.model``, with a randomly initialised head.

    The problem type tells ``transformers.pipeline`` to apply a sigmoid (multilabel) or a softmax to the logits.
    """
    config = dataclasses.replace(config, pooling=resolve_pooling(config))
    path = resolve_model_path(config.model)
    if uses_native_head(config):
        problem_type = "multi_label_classification" if multilabel else "single_label_classification"
        with loading(config.model, "model"):
            return AutoModelForSequenceClassification.from_pretrained(
                path, num_labels=len(classes), problem_type=problem_type, **_label_maps(classes)
            )
    with loading(config.model, "model"):
        encoder = AutoModel.from_pretrained(path)
    return _pooled_classifier(encoder, len(classes), config)


def _pooled_classifier(encoder: PreTrainedModel, num_labels: int, config: ClassifierConfig) -> PooledClassifier:
    return PooledClassifier(encoder, num_labels, config.pooling, config.head, config.head_hidden_size,
                            config.head_dropout, config.chunk_pooling if config.long_text == "chunks" else None,
                            unit_length=config.low_label == "on")


def vocabulary_rows(model: nn.Module) -> int:
    """Rows of the encoder's token embedding: the token ids the model can read."""
    encoder = model.encoder if isinstance(model, PooledClassifier) else model
    return encoder.get_input_embeddings().num_embeddings


def save_model(model: nn.Module, tokenizer: PreTrainedTokenizerBase, directory: Path, max_length: int) -> None:
    """Write the weights and tokenizer; the tokenizer's maximum is the trained one, so pipelines cut alike."""
    with quiet_transformers():
        _save_weights(model, directory)
    save_tokenizer(tokenizer, directory, max_length)


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, directory: Path, max_length: int) -> None:
    tokenizer.model_max_length = max_length
    tokenizer.save_pretrained(directory)


def _save_weights(model: nn.Module, directory: Path) -> None:
    if isinstance(model, PooledClassifier):
        model.encoder.save_pretrained(directory)
        save_file({name: tensor.contiguous() for name, tensor in model.state_dict().items()
                   if not name.startswith("encoder.")}, str(directory / HEAD_WEIGHTS))
    else:
        model.save_pretrained(directory)


def _load_complete(auto_class: type, directory: Path) -> PreTrainedModel:
    """Load a checkpoint and insist that every weight came from disk (a missing one means a corrupt directory)."""
    with loading(str(directory), "model"):
        model, info = auto_class.from_pretrained(directory, output_loading_info=True)
    if info.get("missing_keys"):
        raise BertclfError(f"model directory {directory} is corrupt: {len(info['missing_keys'])} weights are missing "
                           f"(e.g. {sorted(info['missing_keys'])[0]})")
    return model


def load_model(directory: Path, config: ClassifierConfig, num_labels: int) -> nn.Module:
    """The classifier saved by :func:`save_model` in a run directory."""
    # A run directory saves the pooling resolved; a caller may not have.
    config = dataclasses.replace(config, pooling=resolve_pooling(config))
    if uses_native_head(config):
        model = _load_complete(AutoModelForSequenceClassification, directory)
        if model.config.num_labels != num_labels:
            raise BertclfError(f"model directory {directory} is corrupt: the model has {model.config.num_labels} "
                               f"outputs but labels.json lists {num_labels} classes")
        return model
    if not (directory / HEAD_WEIGHTS).is_file():
        raise BertclfError(f"model directory {directory} is missing {HEAD_WEIGHTS}")
    model = _pooled_classifier(_load_complete(AutoModel, directory), num_labels, config)
    with loading(str(directory), "classification head"):
        head_weights = load_file(str(directory / HEAD_WEIGHTS))
        expected = {name for name in model.state_dict() if not name.startswith("encoder.")}
        if set(head_weights) != expected:
            raise BertclfError(f"{directory / HEAD_WEIGHTS} does not match bertclf.yaml's head and pooling")
        model.load_state_dict(head_weights, strict=False)
    return model
