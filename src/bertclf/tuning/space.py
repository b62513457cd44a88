"""What a search varies: the default spaces (a fine-tune's, the low-label mode's, the long-text strategy's), the
``search_space`` section of a config file in Optuna's own distributions, and a trial's options drawn from them."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    json_to_distribution,
)

from bertclf.config import ClassifierConfig
from bertclf.errors import BertclfError

Space = dict[str, BaseDistribution]

# A fine-tune's settings, searched by default (README: "Tuning").
FINE_TUNE_SPACE: Mapping[str, BaseDistribution] = {
    "learning_rate": FloatDistribution(1e-5, 3e-4, log=True),
    "head_learning_rate": FloatDistribution(1e-4, 1e-2, log=True),
    "epochs": IntDistribution(2, 6),
    "batch_size": CategoricalDistribution([8, 16, 32]),
    "warmup_ratio": FloatDistribution(0.0, 0.2),
    "layer_decay": FloatDistribution(0.7, 1.0),
    "pooling": CategoricalDistribution(["mean", "cls"]),
    "head": CategoricalDistribution(["linear", "mlp"]),
    "freeze_epochs": IntDistribution(0, 1),
    "class_weights": CategoricalDistribution(["none", "balanced"]),
    "label_smoothing": FloatDistribution(0.0, 0.2),  # single-label data only
}
# The low-label mode's (where the training data are few enough for it: see --low-label).
LOW_LABEL_SPACE: Mapping[str, BaseDistribution] = {
    "contrastive_learning_rate": FloatDistribution(5e-6, 1e-4, log=True),
    "contrastive_steps": IntDistribution(20, 1000, log=True),
    "batch_size": CategoricalDistribution([8, 16, 32]),
    "pooling": CategoricalDistribution(["mean", "cls"]),
}
# Added for long texts: where more than LONG_SHARE of the training texts exceed LONG_TOKENS tokens.
LONG_TEXT_SPACE: Mapping[str, BaseDistribution] = {
    "long_text": CategoricalDistribution(["head", "head-tail", "chunks"]),
    "max_length": CategoricalDistribution([256, 512]),
}
LONG_TOKENS, LONG_SHARE = 256, 0.05
OPTIONS = frozenset(spec.name for spec in dataclasses.fields(ClassifierConfig))


def default_space(low_label: bool, multilabel: bool, token_counts: Sequence[int]) -> Space:
    """The space searched unless the config file says otherwise: the low-label mode's or a fine-tune's (label
    smoothing for single-label data only), with the long-text strategy and budget where the texts are long."""
    if low_label:
        return dict(LOW_LABEL_SPACE)
    space = {name: distribution for name, distribution in FINE_TUNE_SPACE.items()
             if not (multilabel and name == "label_smoothing")}
    if token_counts and float(np.mean(np.asarray(token_counts) > LONG_TOKENS)) > LONG_SHARE:
        space.update(LONG_TEXT_SPACE)
    return space


def parse_space(entries: Mapping[str, Any], source: str) -> dict[str, BaseDistribution | None]:
    """A config file's ``search_space``: option name -> an Optuna distribution as its JSON form spells it
    (``{name: FloatDistribution, attributes: {low: 1e-5, high: 1e-4, log: true}}``), or null to leave the option
    out of the default space."""
    if not isinstance(entries, Mapping):
        raise BertclfError(f"search_space in {source} must map option names to Optuna distributions")
    parsed: dict[str, BaseDistribution | None] = {}
    for key, value in entries.items():
        name = str(key).replace("-", "_")
        if name not in OPTIONS:
            raise BertclfError(f"search_space in {source}: unknown option '{key}'")
        if value is None:
            parsed[name] = None
            continue
        try:
            parsed[name] = json_to_distribution(json.dumps(value))
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise BertclfError(f"search_space in {source}: '{key}' is not an Optuna distribution "
                               f"({{name: FloatDistribution|IntDistribution|CategoricalDistribution, attributes: "
                               f"{{...}}}}): {error}") from None
    return parsed


def build_space(default: Space, overrides: Mapping[str, BaseDistribution | None],
                models: Sequence[str]) -> Space:
    """The default space with the config file's entries over it, and the encoder as a choice when several are
    candidates."""
    space = {**default, **overrides}
    if len(models) > 1:
        space["model"] = CategoricalDistribution(list(models))
    space = {name: distribution for name, distribution in space.items() if distribution is not None}
    if not space:
        raise BertclfError("the search space is empty: search_space left out every option")
    return space


def suggest(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """The trial's options, one draw from each distribution."""
    options = {}
    for name, distribution in space.items():
        if isinstance(distribution, FloatDistribution):
            options[name] = trial.suggest_float(name, distribution.low, distribution.high, log=distribution.log,
                                                step=distribution.step)
        elif isinstance(distribution, IntDistribution):
            options[name] = trial.suggest_int(name, distribution.low, distribution.high, log=distribution.log,
                                              step=distribution.step)
        else:
            options[name] = trial.suggest_categorical(name, distribution.choices)
    return options


def described(space: Space) -> dict[str, dict[str, Any]]:
    """Each distribution in the form :func:`parse_space` reads (what a study and metrics.json record of it)."""
    return {name: json.loads(optuna.distributions.distribution_to_json(distribution))
            for name, distribution in space.items()}
