"""The report's figures (embedded in the page as base64 PNG) and the numbers they draw: class shares, token
lengths, learning curves, the confusion matrix, precision-recall and ROC curves, calibration, the multilabel
threshold sweep, and the surest mistakes."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import auc, average_precision_score, f1_score, precision_recall_curve, roc_curve

from bertclf.metrics import CONFUSION_NUMBERS
from bertclf.reporting.evaluation import Evaluation
from bertclf.reporting.inspection import DataInspection
from bertclf.thresholds import CANDIDATES, decide

MISTAKES_SHOWN = 20
MISTAKE_CHARS = 400  # characters of a mistaken text shown
CALIBRATION_BINS = 10
CURVE_CLASSES = 10  # classes drawn one by one in the precision-recall and ROC figures; the micro average besides
FIGURE_DPI = 96


def _pyplot() -> Any:
    # Imported on first use: pyplot is slow to import and only drawing a page needs it (predict and serve load
    # this module through the classifier but never draw).
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    return plt


def figure_png(figure: Any) -> str:
    """A matplotlib figure as base64 PNG for an offline page (the figure is closed)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    _pyplot().close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(label: Any, width: int = 18) -> str:
    text = str(label)
    return text if len(text) <= width else text[: width - 1] + "…"


def label_distribution_figure(inspection: DataInspection) -> str:
    plt = _pyplot()
    parts = inspection.parts
    labels = list(parts[0].label_counts)
    for part in parts[1:]:
        labels += [label for label in part.label_counts if label not in labels]
    figure, axis = plt.subplots(figsize=(8, max(2.5, 0.28 * len(labels) + 1)))
    height = 0.8 / len(parts)
    positions = np.arange(len(labels))
    for index, part in enumerate(parts):
        shares = [100 * part.label_counts.get(label, 0) / max(part.rows, 1) for label in labels]
        axis.barh(positions + index * height, shares, height=height, label=f"{part.name} ({part.rows} texts)")
    axis.set_yticks(positions + height * (len(parts) - 1) / 2, [_short(label, 28) for label in labels])
    axis.invert_yaxis()
    axis.set_xlabel("share of the part's texts (%)")
    axis.set_title("Texts per label" if parts[0].labels_per_text is not None else "Texts per class")
    axis.legend(loc="lower right")
    axis.grid(axis="x", alpha=0.3)
    return figure_png(figure)


def token_length_figure(inspection: DataInspection, chunked: bool) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.2))
    lengths = np.asarray(inspection.lengths)
    axis.hist(lengths, bins=min(60, max(10, len(np.unique(lengths)))), color="#4c72b0")
    if inspection.max_length:
        cut = "window" if chunked else "cut"
        axis.axvline(inspection.max_length, color="#c44e52", linestyle="--",
                     label=f"max_length {inspection.max_length} ({cut}); longer: "
                           f"{100 * (inspection.truncated_share or 0):.1f}%")
        axis.legend()
    axis.set_xlabel("tokens per text (special tokens included)")
    axis.set_ylabel("texts")
    axis.set_title(f"Token lengths of the {inspection.parts[0].name} texts")
    axis.grid(alpha=0.3)
    return figure_png(figure)


def learning_curve_figure(training: dict[str, Any], metric: str) -> str:
    plt = _pyplot()
    log_entries, history = training.get("log") or [], training.get("history") or []
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    loss_axis, metric_axis, rate_axis = axes
    if log_entries:
        loss_axis.plot([entry["step"] for entry in log_entries], [entry["loss"] for entry in log_entries],
                       label="training loss", color="#4c72b0")
        rate_axis.plot([entry["step"] for entry in log_entries], [entry["learning_rate"] for entry in log_entries],
                       color="#55a868")
    if history:
        steps = [entry["step"] for entry in history]
        loss_axis.plot(steps, [entry["loss"] for entry in history], "o-", label="validation loss", color="#c44e52")
        metric_axis.plot(steps, [entry.get(metric, np.nan) for entry in history], "o-", color="#8172b2")
        best = training.get("best_step")
        if best in steps:
            metric_axis.axvline(best, color="grey", linestyle=":", label=f"best (step {best}), kept")
            metric_axis.legend()
    loss_axis.set(title="Loss", xlabel="optimizer step", ylabel="loss")
    loss_axis.legend()
    metric_axis.set(title=f"Validation {metric}", xlabel="optimizer step", ylabel=metric)
    rate_axis.set(title="Learning rate (encoder)", xlabel="optimizer step", ylabel="learning rate")
    rate_axis.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def confusion_figure(evaluation: Evaluation, classes: Sequence[Any], decisions: np.ndarray,
                     multilabel: bool) -> str:
    """Rows: true class; columns: predicted class; each row divided by its texts (multilabel: of the texts
    carrying the row's label, the share predicted to carry each label; the diagonal is each label's recall)."""
    plt = _pyplot()
    count = len(classes)
    if multilabel:
        truth = evaluation.labels.astype(float)
        matrix = truth.T @ decisions.astype(float) / np.maximum(truth.sum(axis=0), 1)[:, None]
    else:
        matrix = np.zeros((count, count))
        np.add.at(matrix, (evaluation.labels, decisions), 1)
        matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(14, max(5, 0.38 * count + 2.5))
    figure, axis = plt.subplots(figsize=(size + 1.5, size))
    image = axis.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    names = [_short(label) for label in classes]
    axis.set_xticks(range(count), names, rotation=60, ha="right")
    axis.set_yticks(range(count), names)
    axis.set_xlabel("predicted label" if multilabel else "predicted class")
    axis.set_ylabel("true label" if multilabel else "true class")
    if count <= CONFUSION_NUMBERS:
        for row in range(count):
            for column in range(count):
                axis.text(column, row, f"{matrix[row, column]:.2f}", ha="center", va="center",
                          color="white" if matrix[row, column] > 0.5 else "black", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.046, label="share of the row's texts")
    axis.set_title(f"Normalised confusion matrix ({evaluation.name})")
    return figure_png(figure)


def _one_hot(evaluation: Evaluation, count: int) -> np.ndarray:
    if evaluation.labels.ndim == 2:
        return evaluation.labels.astype(int)
    return np.eye(count, dtype=int)[evaluation.labels]


def curves_figure(evaluation: Evaluation, classes: Sequence[Any]) -> str:
    """Precision-recall and ROC, one-vs-rest for the most frequent classes, and micro-averaged over all."""
    plt = _pyplot()
    truth = _one_hot(evaluation, len(classes))
    scores = evaluation.probabilities
    figure, (pr_axis, roc_axis) = plt.subplots(1, 2, figsize=(13, 5))
    drawn = [index for index in np.argsort(-truth.sum(axis=0), kind="stable")[:CURVE_CLASSES]
             if 0 < truth[:, index].sum() < len(truth)]
    series = [(f"micro average ({len(classes)} classes)", truth.ravel(), scores.ravel(), 2.5)]
    series += [(_short(classes[index]), truth[:, index], scores[:, index], 1.0) for index in drawn]
    for name, positives, score, width in series:
        precision, recall, _ = precision_recall_curve(positives, score)
        pr_axis.plot(recall, precision, linewidth=width,
                     label=f"{name}: AP {average_precision_score(positives, score):.3f}")
        false_positive, true_positive, _ = roc_curve(positives, score)
        roc_axis.plot(false_positive, true_positive, linewidth=width,
                      label=f"{name}: AUC {auc(false_positive, true_positive):.3f}")
    roc_axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    pr_axis.set(title="Precision-recall (one vs rest)", xlabel="recall", ylabel="precision", xlim=(0, 1),
                ylim=(0, 1.02))
    roc_axis.set(title="ROC (one vs rest)", xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1),
                 ylim=(0, 1.02))
    for axis in (pr_axis, roc_axis):
        axis.legend(fontsize=8, loc="lower left" if axis is pr_axis else "lower right")
        axis.grid(alpha=0.3)
    if len(drawn) < len(classes):
        figure.suptitle(f"the {len(drawn)} most frequent classes of {len(classes)} drawn one by one", fontsize=9)
    figure.tight_layout()
    return figure_png(figure)


def calibration(evaluation: Evaluation, multilabel: bool) -> dict[str, Any]:
    """Expected calibration error over equal-width confidence bins: for a single label, the predicted class's
    probability against how often it is right; for multilabel, every label probability against its outcome."""
    if multilabel:
        confidence = evaluation.probabilities.ravel()
        correct = evaluation.labels.ravel().astype(float)
    else:
        confidence = evaluation.probabilities.max(axis=1)
        correct = (evaluation.probabilities.argmax(axis=1) == evaluation.labels).astype(float)
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    bins = np.clip(np.digitize(confidence, edges[1:-1]), 0, CALIBRATION_BINS - 1)
    counts = np.bincount(bins, minlength=CALIBRATION_BINS)
    mean_confidence = np.bincount(bins, confidence, CALIBRATION_BINS) / np.maximum(counts, 1)
    accuracy = np.bincount(bins, correct, CALIBRATION_BINS) / np.maximum(counts, 1)
    ece = float(np.sum(counts * np.abs(accuracy - mean_confidence)) / max(counts.sum(), 1))
    return {"ece": ece, "counts": counts.tolist(), "confidence": mean_confidence.tolist(),
            "accuracy": accuracy.tolist(), "edges": edges.tolist()}


def reliability_figure(figures: dict[str, Any], multilabel: bool) -> str:
    plt = _pyplot()
    counts = np.asarray(figures["counts"])
    filled = counts > 0
    figure, (axis, count_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    centres = (np.asarray(figures["edges"][:-1]) + np.asarray(figures["edges"][1:])) / 2
    axis.bar(centres[filled], np.asarray(figures["accuracy"])[filled], width=1 / CALIBRATION_BINS, alpha=0.7,
             edgecolor="black", label="observed")
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    axis.plot(np.asarray(figures["confidence"])[filled], np.asarray(figures["accuracy"])[filled], "o-",
              color="#c44e52", label="observed, at the bin's mean probability")
    what = "label probability" if multilabel else "confidence (probability of the predicted class)"
    axis.set(title=f"Reliability diagram (ECE {figures['ece']:.3f})", xlabel=what,
             ylabel="share of labels present" if multilabel else "accuracy", xlim=(0, 1), ylim=(0, 1))
    axis.legend(loc="upper left")
    count_axis.bar(centres, counts, width=1 / CALIBRATION_BINS, edgecolor="black", color="#4c72b0")
    count_axis.set(title="Predictions per bin", xlabel=what, ylabel="predictions", xlim=(0, 1))
    if multilabel:
        count_axis.set_yscale("log")
    for each in (axis, count_axis):
        each.grid(alpha=0.3)
    figure.tight_layout()
    return figure_png(figure)


def threshold_sweep(evaluation: Evaluation, min_labels: int) -> dict[str, list[float]]:
    """Micro- and macro-F1 of the part if one threshold served every label, at each candidate threshold."""
    truth = evaluation.labels.astype(int)
    micro, macro = [], []
    for threshold in CANDIDATES[::2]:
        decisions = decide(evaluation.probabilities, threshold, min_labels).astype(int)
        micro.append(float(f1_score(truth, decisions, average="micro", zero_division=0)))
        macro.append(float(f1_score(truth, decisions, average="macro", zero_division=0)))
    return {"thresholds": CANDIDATES[::2].tolist(), "f1_micro": micro, "f1_macro": macro}


def threshold_figure(sweep: dict[str, list[float]], thresholds: np.ndarray) -> str:
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3.6))
    axis.plot(sweep["thresholds"], sweep["f1_micro"], label="micro-F1")
    axis.plot(sweep["thresholds"], sweep["f1_macro"], label="macro-F1")
    distinct = np.unique(np.round(thresholds, 2))
    if len(distinct) == 1:
        axis.axvline(distinct[0], color="grey", linestyle=":", label=f"tuned threshold {distinct[0]:.2f}")
    else:
        for value in distinct:
            axis.axvline(value, color="grey", linestyle=":", alpha=0.3)
        axis.plot([], [], color="grey", linestyle=":", label="per-label tuned thresholds")
    axis.set(title="One threshold for every label: F1 on the test part", xlabel="decision threshold",
             ylabel="F1", xlim=(0, 1), ylim=(0, 1))
    axis.legend()
    axis.grid(alpha=0.3)
    return figure_png(figure)


# --- tables --------------------------------------------------------------------------------------------

def mistakes(evaluation: Evaluation, classes: Sequence[Any], decisions: np.ndarray,
             multilabel: bool) -> list[dict[str, Any]]:
    """The wrongly labelled texts the model was surest of, surest first."""
    if multilabel:
        truth = evaluation.labels.astype(bool)
        wrong_by = np.where(decisions != truth, np.where(decisions, evaluation.probabilities,
                                                         1 - evaluation.probabilities), 0.0)
        confidence = wrong_by.max(axis=1)
        wrong = np.flatnonzero(confidence > 0)
    else:
        confidence = evaluation.probabilities[np.arange(len(decisions)), decisions]
        wrong = np.flatnonzero(decisions != evaluation.labels)
    rows = []
    for index in wrong[np.argsort(-confidence[wrong], kind="stable")][:MISTAKES_SHOWN]:
        text = evaluation.texts[index]
        if multilabel:
            true = ", ".join(str(classes[i]) for i in np.flatnonzero(evaluation.labels[index])) or "(none)"
            predicted = ", ".join(str(classes[i]) for i in np.flatnonzero(decisions[index])) or "(none)"
        else:
            true, predicted = str(classes[evaluation.labels[index]]), str(classes[decisions[index]])
        rows.append({"text": text if len(text) <= MISTAKE_CHARS else text[:MISTAKE_CHARS] + " …",
                     "true": true, "predicted": predicted, "confidence": float(confidence[index])})
    return rows
