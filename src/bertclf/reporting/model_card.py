"""A README.md for each run directory: what was trained, how well it scored, and how to load it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bertclf.config import ClassifierConfig
from bertclf.metrics import HEADLINE, MULTILABEL_HEADLINE
from bertclf.modeling import uses_native_head
from bertclf.rundir import MODEL_CARD_FILE


def write_model_card(directory: Path, name: str, config: ClassifierConfig, classes: Sequence[Any],
                     metrics: dict[str, Any], version: str, export: dict[str, Any] | None = None) -> None:
    """``export``: the export's description (format, quantization, self-check), for an export directory."""
    lines = [
        "# Text classifier trained with bertclf",
        "",
        f"- base model: `{config.model}`",
        f"- classes ({len(classes)}): {', '.join(f'`{label}`' for label in classes)}",
        f"- max length: {config.max_length} tokens; pooling `{config.pooling}`, head `{config.head}`; long texts: "
        + (f"up to {config.max_chunks} windows (stride {config.stride}), `{config.chunk_pooling}` pooled"
           if config.long_text == "chunks" else f"`{config.long_text}`"),
        f"- training: {_training_length(config, metrics.get('training', {}))}, batch size {config.batch_size}, "
        f"learning rate {config.learning_rate:g}, "
        f"seed {config.seed}; bertclf {version}",
        "",
    ]
    multilabel = config.task == "multilabel"
    headline = MULTILABEL_HEADLINE if multilabel else HEADLINE
    scored = [split for split in ("val", "test") if split in metrics]
    if scored:
        lines += ["| split | texts | " + " | ".join(headline) + " |", "|---" * (len(headline) + 2) + "|"]
        for split in scored:
            values = " | ".join(f"{metrics[split][name]:.4f}" for name in headline)
            lines.append(f"| {split} | {metrics[split]['n']} | {values} |")
        lines.append("")
    if multilabel:
        lines += [f"Multilabel: a label is predicted when its probability reaches its threshold "
                  f"(`thresholds.json`, strategy `{config.threshold_strategy}`, tuned on the validation data).", ""]
    lines += ["## Use", "", "```python", "from bertclf import TextClassifier",
              f"clf = TextClassifier.load(\"{name}\")", "clf.predict([\"some text\"])", "```", ""]
    if export is not None:
        check = export["check"]
        precision = "int8" if export.get("quantize") else "fp32"
        lines += [f"This directory is an ONNX export ({precision}) for ONNX Runtime, without PyTorch weights "
                  "(`pip install 'bertclf[onnx]'`). Checked against the PyTorch model on "
                  f"{check['texts']} texts: labels agree on {100 * check['agreement']:.2f}%, probabilities differ by "
                  f"at most {check['max_probability_difference']:.2g}.", ""]
        (directory / MODEL_CARD_FILE).write_text("\n".join(lines))
        return
    if uses_native_head(config) and config.long_text != "head":
        lines += [f"This directory is a standard `transformers` checkpoint, but it was trained on the "
                  f"`{config.long_text}` of long texts, which `transformers.pipeline` does not reproduce (it keeps the "
                  "head): use bertclf to predict.", ""]
    elif uses_native_head(config):
        lines += [
            "This directory is also a standard `transformers` checkpoint:", "", "```python",
            "from transformers import pipeline",
            f"classify = pipeline(\"text-classification\", model=\"{name}\")",
            "classify([\"some text\"], truncation=True" + (", top_k=None)" if multilabel else ")"), "```", "",
        ]
    (directory / MODEL_CARD_FILE).write_text("\n".join(lines))


def _training_length(config: ClassifierConfig, training: dict[str, Any]) -> str:
    """How long it trained: the low-label mode's contrastive steps, or the epochs and optimizer steps run (more
    epochs than --epochs where --min-steps grew them); --epochs alone for a run that recorded neither."""
    steps, epochs = training.get("steps"), training.get("epochs", config.epochs)
    if config.low_label == "on":
        return f"low-label mode, {steps} contrastive steps and a logistic-regression head" if steps is not None \
            else "low-label mode"
    length = f"{epochs} epoch{'' if epochs == 1 else 's'}"
    return length if steps is None else f"{length} ({steps} optimizer steps)"
