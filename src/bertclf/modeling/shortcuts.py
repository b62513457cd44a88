"""Shortcuts around the network's full forward pass where the classifier reads less than it computes: the
vectors a head reads (to train a head alone on a frozen encoder's outputs, computed once), and a last layer that
computes the first token only."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from transformers import PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

from bertclf.modeling.networks import PooledClassifier

# Architectures whose own sequence-classification head reads the first token's last hidden state only.
FIRST_TOKEN_HEADS = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}


class EncoderFeatures(nn.Module):
    """The vectors a classifier's head reads (returned as ``logits``, so the inference batching computes them):
    the pooled vector of a :class:`PooledClassifier`, or the first token's last hidden state of an architecture's
    own classifier (see :class:`FirstTokenHead`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_: Any) -> SequenceClassifierOutput:
        if isinstance(self.model, PooledClassifier):
            return SequenceClassifierOutput(logits=self.model.row_vectors(input_ids, attention_mask))
        hidden = self.model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return SequenceClassifierOutput(logits=hidden[:, 0])


class FirstTokenHead(nn.Module):
    """The head of an architecture's own sequence classifier, fed the first token's last hidden state: BERT's
    pooler, dropout and classifier, or the classification head of RoBERTa, XLM-R, CamemBERT and ELECTRA."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.pooler = getattr(model.base_model, "pooler", None) if model.config.model_type == "bert" else None
        self.dropout = model.dropout if self.pooler is not None else nn.Identity()
        self.classifier = model.classifier

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        hidden = vectors[:, None, :]  # as one-token sequences: each head reads position 0
        if self.pooler is not None:
            return self.classifier(self.dropout(self.pooler(hidden)))
        return self.classifier(hidden)


class CachedFeatures(nn.Module):
    """A head trained on encoder outputs computed once (a frozen encoder's ``EncoderFeatures``): each text's token
    ids are its row number in ``features``, so the training loop's batching, loss and evaluation serve unchanged."""

    def __init__(self, features: torch.Tensor, head: nn.Module):
        super().__init__()
        self.register_buffer("features", features, persistent=False)  # not part of the weights to keep
        self.head = head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                **_: Any) -> SequenceClassifierOutput:
        return SequenceClassifierOutput(logits=self.head(self.features[input_ids[:, 0]]))


def frozen_encoder_head(model: nn.Module) -> nn.Module | None:
    """The part of ``model`` above a frozen encoder, to train on cached :class:`EncoderFeatures`; None where the
    encoder's outputs cannot be cached per text (chunked texts, pooled per document) or the head is unknown."""
    if isinstance(model, PooledClassifier):
        return model.head if model.chunk_pooling is None else None
    if getattr(model.config, "model_type", None) in FIRST_TOKEN_HEADS and hasattr(model, "classifier"):
        return FirstTokenHead(model)
    return None


def _first_token_last_layer(model: nn.Module) -> nn.Module | None:
    """The encoder's last layer, where the classifier reads nothing of it but the first token's output and the
    layer has BERT's structure (query/key/value self-attention, then the feed-forward block); else None."""
    if isinstance(model, PooledClassifier):
        encoder = model.encoder if model.pooling == "cls" and not model.reads_last_token else None
    elif isinstance(model, PreTrainedModel) and model.config.model_type in FIRST_TOKEN_HEADS:
        encoder = model.base_model
    else:
        encoder = None
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    # Configurations of encoder-only families (DeBERTa, MPNet, Longformer) have no is_decoder field at all.
    if encoder is None or not isinstance(layers, nn.ModuleList) or getattr(encoder.config, "is_decoder", False):
        return None
    if getattr(encoder.config, "_attn_implementation", None) not in ("sdpa", "eager"):  # other masks look different
        return None
    last = layers[-1]
    attention = getattr(last, "attention", None)
    if not all(hasattr(getattr(attention, "self", None), name)
               for name in ("query", "key", "value", "scaling", "attention_head_size", "dropout")):
        return None
    if not (hasattr(attention, "output") and hasattr(last, "feed_forward_chunk")):
        return None
    return last if _takes_bert_layer_arguments(last) else None


def _takes_bert_layer_arguments(layer: nn.Module) -> bool:
    """Whether the layer's forward takes BERT's (hidden_states, attention_mask, ...), the call the shortcut stands
    in for; a layer called otherwise (Longformer's, DeBERTa's) runs whole."""
    try:
        parameters = list(inspect.signature(type(layer).forward).parameters)
    except (TypeError, ValueError):
        return False
    return parameters[1:3] == ["hidden_states", "attention_mask"]


def _first_token_forward(layer: nn.Module, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         *_: Any, **__: Any) -> torch.Tensor:
    """A BERT layer's forward for the first token alone: its query attends over every token's keys and values,
    then the attention output and feed-forward blocks run on that one position."""
    attention = layer.attention.self
    batch = hidden_states.shape[0]
    first = hidden_states[:, :1]

    def heads(projected: torch.Tensor) -> torch.Tensor:
        return projected.view(batch, projected.shape[1], -1, attention.attention_head_size).transpose(1, 2)

    mask = attention_mask[..., :1, :] if attention_mask is not None else None  # the first query's row
    context = functional.scaled_dot_product_attention(
        heads(attention.query(first)), heads(attention.key(hidden_states)), heads(attention.value(hidden_states)),
        attn_mask=mask, dropout_p=attention.dropout.p if layer.training else 0.0, scale=attention.scaling,
    )
    context = context.transpose(1, 2).reshape(batch, 1, -1)
    return layer.feed_forward_chunk(layer.attention.output(context, first))


@contextlib.contextmanager
def first_token_last_layer(model: nn.Module) -> Iterator[None]:
    """While open, the encoder's last layer computes the first token's output only, where that is all the
    classifier reads ('cls' pooling): the other positions' attention output and feed-forward work there feed
    nothing. Logits and gradients are unchanged; the saved weights are untouched (the layer's ``forward`` is
    swapped on the instance and put back on exit). For the 6-layer default model that saves nearly all of one
    layer's work. Re-entering it (evaluation inside training) is harmless; other models run unchanged."""
    layer = _first_token_last_layer(model)
    if layer is None or "forward" in vars(layer):
        yield
        return
    layer.forward = functools.partial(_first_token_forward, layer)
    try:
        yield
    finally:
        del layer.forward
