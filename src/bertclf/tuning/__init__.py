"""Hyperparameter search on Optuna (the ``tune`` extra): the space (``space``), the study that processes share and
restarts continue (``study``), the trials (``search``) and what they leave to read (``report``)."""

from bertclf.tuning.report import TRIALS_CSV, TUNE_REPORT
from bertclf.tuning.search import TRIAL_FILE, TRIALS_DIR, Found, SearchSettings, search
from bertclf.tuning.space import FINE_TUNE_SPACE, LONG_TEXT_SPACE, LOW_LABEL_SPACE
from bertclf.tuning.study import PRUNERS, STUDY_FILE

__all__ = [
    "FINE_TUNE_SPACE",
    "LONG_TEXT_SPACE",
    "LOW_LABEL_SPACE",
    "PRUNERS",
    "STUDY_FILE",
    "TRIALS_CSV",
    "TRIALS_DIR",
    "TRIAL_FILE",
    "TUNE_REPORT",
    "Found",
    "SearchSettings",
    "search",
]
