"""The checks every option value passes when a :class:`~bertclf.config.ClassifierConfig` is made: allowed choices,
ranges and the combinations that make no sense, each refused in one line naming the option."""

from __future__ import annotations

import codecs
import dataclasses
import math
from typing import TYPE_CHECKING

from bertclf.option_values import invalid_option

if TYPE_CHECKING:  # the options' dataclass calls these checks when made
    from bertclf.config import ClassifierConfig

# accelerate's experiment trackers (accelerate.utils.LoggerType), for --report-to.
TRACKERS = ("aim", "clearml", "comet_ml", "dvclive", "mlflow", "swanlab", "tensorboard", "trackio", "wandb")


def check_options(config: ClassifierConfig) -> None:
    """Refuse the first value of ``config`` (a ClassifierConfig, its values already coerced) that is not allowed."""
    for spec in dataclasses.fields(config):
        choices = spec.metadata.get("choices")
        value = getattr(config, spec.name)
        if choices and value not in choices:
            raise invalid_option(spec.name, value, f"choose one of {', '.join(choices)}")
    for name in ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps"):
        if getattr(config, name) < 1:
            raise invalid_option(name, getattr(config, name), "must be at least 1")
    for name in ("learning_rate", "head_learning_rate"):
        value = getattr(config, name)
        if value is not None and value <= 0:
            raise invalid_option(name, value, "must be positive")
    if not math.isfinite(config.effective_head_learning_rate):  # 10x or 100x a rate near the largest float
        raise invalid_option("learning_rate", config.learning_rate, "too large: the head's rate, a multiple of it, "
                             "is not a finite number")
    for name in ("val_size", "test_size", "warmup_ratio"):
        if not 0 <= getattr(config, name) < 1:
            raise invalid_option(name, getattr(config, name), "must be in [0, 1)")
    if config.val_size + config.test_size >= 1:
        raise invalid_option("val_size", config.val_size, "val_size + test_size must be below 1")
    for name in ("weight_decay", "max_grad_norm", "head_dropout", "min_steps"):
        if getattr(config, name) < 0:
            raise invalid_option(name, getattr(config, name), "must not be negative")
    if config.head_dropout >= 1:
        raise invalid_option("head_dropout", config.head_dropout, "must be below 1")
    for name in ("eval_steps", "patience", "head_hidden_size", "save_steps"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise invalid_option(name, value, "must be at least 1")
    if config.threshold is not None and not 0 < config.threshold < 1:
        raise invalid_option("threshold", config.threshold, "must be between 0 and 1")
    if config.save_total_limit < 1:
        raise invalid_option("save_total_limit", config.save_total_limit, "must be at least 1")
    if config.min_labels < 0:
        raise invalid_option("min_labels", config.min_labels, "must not be negative")
    if not config.label_sep:
        raise invalid_option("label_sep", config.label_sep, "must not be empty")
    if config.label_columns is not None and (not config.label_columns or not all(config.label_columns)):
        raise invalid_option("label_columns", config.label_columns, "name at least one column")
    if config.label_columns and config.task == "multiclass":
        raise invalid_option("task", config.task, "--label-columns describes multilabel data")
    if config.max_chunks < 1:
        raise invalid_option("max_chunks", config.max_chunks, "must be at least 1")
    if config.stride < 0:
        raise invalid_option("stride", config.stride, "must not be negative")
    if config.head_tokens is not None and config.head_tokens < 0:
        raise invalid_option("head_tokens", config.head_tokens, "must not be negative")
    if config.max_length != "auto" and config.max_length < 8:
        raise invalid_option("max_length", config.max_length, "must be 'auto' or a number of tokens of at least 8")
    if config.layer_decay is not None and not 0 < config.layer_decay <= 1:
        raise invalid_option("layer_decay", config.layer_decay, "must be in (0, 1]")
    if config.freeze_epochs < 0:
        raise invalid_option("freeze_epochs", config.freeze_epochs, "must not be negative")
    if config.freeze_epochs >= config.epochs:
        raise invalid_option("freeze_epochs", config.freeze_epochs, f"must be below --epochs ({config.epochs}); to "
                             "train the head alone throughout, pass --freeze-encoder")
    if config.focal_gamma < 0:
        raise invalid_option("focal_gamma", config.focal_gamma, "must not be negative")
    if not 0 <= config.label_smoothing < 1:
        raise invalid_option("label_smoothing", config.label_smoothing, "must be in [0, 1)")
    if config.label_smoothing and config.loss != "cross-entropy":
        raise invalid_option("label_smoothing", config.label_smoothing, "applies to --loss cross-entropy")
    config.seed_list()  # a malformed --seeds, or seeds out of range, are an error now, not after the first run
    try:
        codecs.lookup(config.encoding)
    except LookupError:
        raise invalid_option("encoding", config.encoding,
                             "not a known character encoding (e.g. utf-8, latin-1)") from None
    unknown = [name for name in config.report_to or [] if name not in TRACKERS]
    if unknown:
        raise invalid_option("report_to", unknown[0], f"choose from {', '.join(TRACKERS)}")
    if not config.text_column or any(not name for name in config.text_column):
        raise invalid_option("text_column", config.text_column, "name at least one column")
    _check_low_label(config)


def _check_low_label(config: ClassifierConfig) -> None:
    if config.contrastive_steps is not None and config.contrastive_steps < 0:
        raise invalid_option("contrastive_steps", config.contrastive_steps, "must not be negative")
    if config.contrastive_learning_rate <= 0:
        raise invalid_option("contrastive_learning_rate", config.contrastive_learning_rate, "must be positive")
    if config.label_name_texts < 0:
        raise invalid_option("label_name_texts", config.label_name_texts, "must not be negative")
    if config.low_label == "on" and config.long_text == "chunks":
        raise invalid_option("low_label", config.low_label, "the low-label mode reads one vector per text; it does "
                             "not take --long-text chunks")
    if config.low_label == "on" and config.head != "linear":
        raise invalid_option("low_label", config.low_label, "the low-label mode's head is a logistic regression; "
                             "it does not take --head mlp")
