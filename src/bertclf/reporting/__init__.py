"""What a run reports besides its scores: the data check, the TF-IDF baseline, ``report.html`` and the model card."""

from bertclf.reporting.baseline import tfidf_baseline
from bertclf.reporting.environment import environment
from bertclf.reporting.evaluation import Evaluation
from bertclf.reporting.figures import figure_png
from bertclf.reporting.inspection import DataInspection, format_inspection, inspect_data
from bertclf.reporting.model_card import write_model_card
from bertclf.reporting.page import (
    ReportInputs,
    load_inputs,
    rebuild,
    save_inputs,
    with_report_writing_time,
    write_report,
)

__all__ = [
    "DataInspection",
    "Evaluation",
    "ReportInputs",
    "environment",
    "figure_png",
    "format_inspection",
    "inspect_data",
    "load_inputs",
    "rebuild",
    "save_inputs",
    "tfidf_baseline",
    "with_report_writing_time",
    "write_model_card",
    "write_report",
]
