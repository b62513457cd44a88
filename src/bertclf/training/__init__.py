"""Training: the loop (``loop``), what it optimises (``objectives``), its checkpoints and experiment trackers."""

from bertclf.training.checkpoints import Checkpoints, fingerprint
from bertclf.training.loop import EvaluationHook, TrainState, train, train_step
from bertclf.training.objectives import (
    class_weights,
    head_parameter_names,
    is_better,
    loss_function,
    parameter_groups,
    start_at_label_priors,
)
from bertclf.training.tracking import Tracking

__all__ = [
    "Checkpoints",
    "EvaluationHook",
    "Tracking",
    "TrainState",
    "class_weights",
    "fingerprint",
    "head_parameter_names",
    "is_better",
    "loss_function",
    "parameter_groups",
    "start_at_label_priors",
    "train",
    "train_step",
]
