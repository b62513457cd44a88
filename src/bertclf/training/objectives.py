"""What training optimises: the loss and its class weights, the optimizer's parameter groups (which parameters
learn at which rate, which decay), freezing the encoder, the head's starting point and which score is better."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError
from bertclf.modeling import CachedFeatures, PooledClassifier

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def class_weights(labels: np.ndarray, num_classes: int, scheme: str) -> torch.Tensor | None:
    """Loss weights from the training labels' frequencies, or ``None`` for ``scheme='none'``.

    Multiclass (``labels`` are class indices): n / (classes x count), 1 for a class without examples.
    Multilabel (``labels`` is a 0/1 matrix): each label's negatives / positives, BCE's ``pos_weight``; 1 for a
    label that no text or every text carries (0 would make the loss ignore its positives).
    ``sqrt`` takes the square root of either, a milder correction.
    """
    if scheme == "none":
        return None
    if labels.ndim == 1:
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        weights = np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 1.0)
    else:
        positives = labels.sum(axis=0).astype(np.float64)
        weights = np.where((positives > 0) & (positives < len(labels)),
                           (len(labels) - positives) / np.maximum(positives, 1), 1.0)
    if scheme == "sqrt":
        weights = np.sqrt(weights)
    return torch.tensor(weights, dtype=torch.float32)


def loss_function(multilabel: bool, weights: torch.Tensor | None = None, kind: str = "cross-entropy",
                  gamma: float = 2.0, label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy for class indices (``label_smoothing`` spreads that share of each target over the other
    classes), or binary cross-entropy on logits for a multilabel 0/1 matrix, weighted by :func:`class_weights`
    (``pos_weight`` for multilabel). ``kind='focal'`` multiplies each term by (1 - p)^gamma, p the probability
    given to the true outcome, so that examples the model already gets right count less (Lin et al., 2017)."""

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        weight = None if weights is None else weights.to(logits.device)
        if multilabel:
            targets = targets.to(logits.dtype)
            terms = nn.functional.binary_cross_entropy_with_logits(logits, targets, pos_weight=weight,
                                                                   reduction="none")
            if kind == "focal":
                right = torch.sigmoid(torch.where(targets > 0.5, logits, -logits))  # probability of the truth
                terms = terms * (1 - right) ** gamma
            return terms.mean()
        if kind != "focal":
            return nn.functional.cross_entropy(logits, targets, weight=weight, label_smoothing=label_smoothing)
        log_right = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).squeeze(1)
        terms = -(1 - log_right.exp()) ** gamma * log_right
        if weight is None:
            return terms.mean()
        # Weighted as cross_entropy weighs: by each target's class weight, normalised by their sum.
        return (weight[targets] * terms).sum() / weight[targets].sum()

    return loss


def parameter_groups(model: nn.Module, config: ClassifierConfig) -> list[dict[str, Any]]:
    """AdamW groups: the new head learns faster (see :func:`head_parameter_names`); with ``layer_decay`` each
    encoder layer learns at that factor times the rate of the layer above it (see :func:`encoder_depths`)."""
    head = head_parameter_names(model)
    depths = encoder_depths(model) if config.layer_decay is not None else {}
    top = max(depths.values(), default=0)
    groups: dict[tuple[bool, bool, int], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            depth = top if name in head else depths.get(name, top)
            # 2-D parameters (weight matrices, embeddings) decay; biases and norms (1-D) do not.
            groups.setdefault((name in head, parameter.ndim >= 2, depth), []).append(parameter)
    return [
        {
            "params": parameters,
            "lr": config.effective_head_learning_rate if is_head
            else config.learning_rate * (config.layer_decay or 1.0) ** (top - depth),
            "weight_decay": config.weight_decay if decays else 0.0,
        }
        for (is_head, decays, depth), parameters in groups.items()
    ]


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


def encoder_depths(model: nn.Module) -> dict[str, int]:
    """Each encoder parameter's depth for layer-wise learning rates: 0 for the embeddings, i + 1 for the i-th
    transformer layer, and the top depth (the number of layers) for what sits above them (a final norm, the pooler).

    The layers are found by structure, not by name: the longest list of blocks under the encoder (nested lists, as
    Funnel's blocks of layers, read in order; ALBERT's one shared group is one layer). Embeddings are the input
    embedding table and whatever sits in an embedding module outside the layers."""
    if isinstance(model, CachedFeatures):  # the encoder's part is already computed: nothing of it learns
        return {}
    encoder = model.encoder if isinstance(model, PooledClassifier) else model.base_model
    layers = _layer_list(encoder)
    if not layers:
        model_type = getattr(encoder.config, "model_type", None) or type(encoder).__name__
        raise BertclfError(f"--layer-decay: cannot tell the layers of the {model_type} encoder apart")
    depth_of = {id(parameter): index + 1 for index, layer in enumerate(layers) for parameter in layer.parameters()}
    try:
        embedding = {id(parameter) for parameter in encoder.get_input_embeddings().parameters()}
    except (NotImplementedError, AttributeError):
        embedding = set()
    for name, parameter in encoder.named_parameters():
        if id(parameter) not in depth_of:
            depth_of[id(parameter)] = 0 if id(parameter) in embedding or "embed" in name else len(layers)
    return {name: depth_of[id(parameter)] for name, parameter in model.named_parameters()
            if id(parameter) in depth_of}


def _layer_list(encoder: nn.Module) -> list[nn.Module]:
    """The encoder's transformer layers in order: its longest ``nn.ModuleList``, nested lists flattened."""

    def flatten(modules: nn.ModuleList) -> list[nn.Module]:
        return [leaf for module in modules
                for leaf in (flatten(module) if isinstance(module, nn.ModuleList) else [module])]

    longest: list[nn.Module] = []
    for module in encoder.modules():
        if isinstance(module, nn.ModuleList) and len(flat := flatten(module)) > len(longest):
            longest = flat
    return longest


def set_encoder_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze or unfreeze every parameter outside the head (see :func:`head_parameter_names`); a frozen parameter
    has no gradient, so backpropagation stops at the head and the optimizer leaves it as it is."""
    head = head_parameter_names(model)
    for name, parameter in model.named_parameters():
        if name not in head:
            parameter.requires_grad_(not frozen)


def start_at_label_priors(model: nn.Module, labels: np.ndarray, pos_weight: torch.Tensor | None) -> None:
    """Set a multilabel head's output biases so that, before training, each label's probability is its
    frequency in ``labels`` (a texts x labels 0/1 matrix), shifted by ``pos_weight`` where the loss uses one.

    A fresh head outputs logit 0, probability 0.5, for every label, while most labels are rare: at first the
    loss mostly asks for every logit to go down, and that gradient runs through the pretrained encoder.
    Starting at the prior leaves the steps to telling texts apart, which matters most where labels are many
    and rare (the multilabel benchmark suite measures it).
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


def is_better(score: float, best: float | None, metric: str) -> bool:
    """Whether ``score`` beats the best so far (none yet: it does); lower is better for the loss only."""
    if best is None:
        return True
    return score < best if metric == "loss" else score > best
