"""Experiment tracking through accelerate's trackers (TensorBoard, MLflow, W&B, ...): ``--report-to``.

The trainer reports its training log (loss, learning rate) and every evaluation; the classifier adds the final
test metrics and closes the run. accelerate writes only from the first process of several.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from bertclf.errors import BertclfError, first_line

# The module each tracker needs, and what to install when it is missing (MLflow's client alone is enough).
_MODULES = {"tensorboard": ("tensorboard", "tensorboard"), "mlflow": ("mlflow", "mlflow-skinny"),
            "comet_ml": ("comet_ml", "comet-ml")}


def check_trackers(names: list[str]) -> None:
    """A one-line error for a tracker whose package is not installed (the names are checked by the config)."""
    for name in names:
        module, package = _MODULES.get(name, (name, name))
        if importlib.util.find_spec(module) is None:
            raise BertclfError(f"--report-to {name} needs {package}: pip install {package} (or 'bertclf[tracking]' "
                               "for TensorBoard and MLflow)")


def _plain(value: Any) -> bool | int | float | str:
    """Hyperparameters as trackers take them: lists joined, None as text."""
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class Tracking:
    """One run's trackers: started by the training loop on its Accelerator, closed after the test metrics."""

    def __init__(self, report_to: list[str], logging_dir: Path, run_name: str, options: dict[str, Any]):
        check_trackers(report_to)
        self.report_to, self.logging_dir, self.run_name = report_to, logging_dir, run_name
        self.options = {name: _plain(value) for name, value in options.items()}
        self.accelerator: Any = None

    def accelerator_options(self) -> dict[str, Any]:
        return {"log_with": self.report_to, "project_dir": str(self.logging_dir)}

    def start(self, accelerator: Any) -> None:
        if "mlflow" in self.report_to and not os.environ.get("MLFLOW_TRACKING_URI"):
            # Without a server named by the environment, MLflow's default store is a database that its client
            # package cannot write: a file store in the tracking folder instead (kept by MLflow, though no longer
            # developed, hence the opt-in), read by `mlflow ui --backend-store-uri <that folder>`.
            import mlflow

            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            mlflow.set_tracking_uri((self.logging_dir / "mlruns").absolute().as_uri())
        try:
            accelerator.init_trackers(self.run_name, config=self.options)
        except Exception as error:  # each tracker fails in its own way: a server unreachable, a bad key
            raise BertclfError(f"--report-to {','.join(self.report_to)}: a tracker failed to start: "
                               f"{first_line(error)}") from None
        self.accelerator = accelerator

    def log(self, values: dict[str, Any], step: int) -> None:
        self.accelerator.log({name: float(value) for name, value in values.items()}, step=step)

    def finish(self) -> None:
        if self.accelerator is not None:
            self.accelerator.end_training()
            self.accelerator = None
