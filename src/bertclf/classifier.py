"""``TextClassifier``: the public estimator (fit / predict / predict_proba / evaluate / save / load)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags

from bertclf import __version__, fitting, rundir
from bertclf.batching import EncodedTexts
from bertclf.config import RUNTIMES, ClassifierConfig
from bertclf.data import DataSource, encode_labels, join_texts, load_examples
from bertclf.device import resolve_precision
from bertclf.errors import BertclfError
from bertclf.export_check import MIN_FP32_AGREEMENT, compare_with_export, examples_for_export_check
from bertclf.inference import (
    OnnxRuntime,
    Predictor,
    Runtime,
    TorchRuntime,
    export_graphs,
    make_predictor,
    open_runtime,
    predict_and_score,
    raise_if_unavailable,
    read_export_info,
    resolve_runtime,
    thresholds_in_force,
    write_export_files,
)
from bertclf.modeling import load_model, load_tokenizer, save_model, vocabulary_rows
from bertclf.reporting import (
    DataInspection,
    Evaluation,
    ReportInputs,
    save_inputs,
    with_report_writing_time,
    write_model_card,
    write_report,
)
from bertclf.tokenization import TokenEncoder
from bertclf.training import TrainState

if TYPE_CHECKING:
    from bertclf.tuning import SearchSettings

log = logging.getLogger("bertclf")


class TextClassifier:
    """Fine-tunes a BERT-family encoder into a text classifier.

    Options are the fields of :class:`ClassifierConfig`, given as keywords (``TextClassifier(epochs=2)``)
    or as a config object. Fitted attributes end with an underscore, as in scikit-learn.
    """

    def __init__(self, config: ClassifierConfig | None = None, **options: Any):
        self.config = dataclasses.replace(config or ClassifierConfig(), **options)
        self._set_fitted()

    def _set_fitted(self, config: ClassifierConfig | None = None, classes: list[Any] | None = None,
                    task: str | None = None, max_length: int | None = None, tokenizer: Any = None,
                    thresholds: np.ndarray | None = None, model: torch.nn.Module | None = None,
                    runtime: Runtime | None = None, metrics: dict[str, Any] | None = None,
                    train_state: TrainState | None = None, inspection: DataInspection | None = None,
                    evaluation: Evaluation | None = None, baseline: dict[str, Any] | None = None,
                    tracking_dir: Path | None = None) -> None:
        """The one place where the fitted state is set: by ``fit`` and ``load``, or cleared by the constructor."""
        self.config_ = config  # the options the model was trained under, resolved (pooling, max_length, task)
        self.classes_ = classes
        self.task_ = task  # "multiclass" or "multilabel", as found in the training data
        self.max_length_ = max_length
        self.tokenizer_ = tokenizer
        # texts to token ids under the long-text strategy
        self.token_encoder_ = None if tokenizer is None else TokenEncoder(
            tokenizer, max_length, config.long_text, config.head_tokens, config.stride, config.max_chunks)
        self.thresholds_ = thresholds  # multilabel: one decision threshold per class, tuned on validation data
        self.model_ = model  # the PyTorch network (None when loaded from an ONNX export)
        self.runtime_ = runtime  # what runs it: see bertclf.inference
        self.metrics_ = metrics or {}
        self.train_state_ = train_state  # the training loop's record: history, best step, cost
        # What the run's report shows beside the metrics (see bertclf.reporting); set by fit, not by load.
        self.inspection_ = inspection
        self.evaluation_ = evaluation  # the test part's predictions
        self.baseline_ = baseline  # the TF-IDF baseline's test scores
        self.tracking_dir_ = tracking_dir  # trackers' files that belong in the run directory

    # --- the scikit-learn estimator contract -----------------------------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The options (the fields of :class:`ClassifierConfig`), as scikit-learn's ``clone`` and searches read them."""
        return {spec.name: getattr(self.config, spec.name) for spec in dataclasses.fields(ClassifierConfig)}

    def set_params(self, **options: Any) -> TextClassifier:
        """Change options, checked as the constructor checks them; a fitted model keeps its own until ``fit``
        (prediction options such as ``eval_batch_size``, ``threshold`` and ``min_labels`` apply at once)."""
        self.config = dataclasses.replace(self.config, **options)
        return self

    def score(self, data: Sequence[str] | pd.DataFrame, labels: Sequence[Any]) -> float:
        """Accuracy on ``(texts, labels)`` (multilabel: the share of texts whose label set is exactly right), as
        scikit-learn's ``cross_val_score`` and ``GridSearchCV`` score a classifier by default."""
        predicted = self.predict(data)
        if self.task_ == "multilabel":
            return float(np.mean([set(row) == set(truth) for row, truth in zip(predicted, labels, strict=True)]))
        return float(np.mean([row == truth for row, truth in zip(predicted, labels, strict=True)]))

    def __sklearn_tags__(self) -> Tags:
        """What scikit-learn's model selection reads: a classifier (so its folds are stratified) of texts."""
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(),
                    input_tags=InputTags(one_d_array=True, two_d_array=False, string=True))

    def __getstate__(self) -> dict[str, Any]:
        """Pickling keeps the PyTorch network and rebuilds its runtime on loading; a classifier running an ONNX or
        int8 runtime has no network to pickle: save and load its directory instead."""
        if self.runtime_ is not None and (self.model_ is None or self.runtime_.name != "torch"):
            raise BertclfError(f"a classifier running on {self.runtime_.name} cannot be pickled: use save(path) "
                               "and TextClassifier.load(path)")
        return {**self.__dict__, "runtime_": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.model_ is not None:
            self.runtime_ = self._torch_runtime()

    # --- training -----------------------------------------------------------------------------------
    def fit(self, train: DataSource | Sequence[str] | None = None, labels: Sequence[Any] | None = None, *,
            val: DataSource | None = None, test: DataSource | None = None, checkpoint_dir: str | Path | None = None,
            resume: bool = False) -> TextClassifier:
        """Train on ``train`` (or ``config.train``), pick the best epoch on ``val``, score ``test``.

        Each part is a file path, a DataFrame or a ``(texts, labels)`` pair; ``fit(texts, labels)`` is
        ``fit((texts, labels))``, as scikit-learn calls it. With ``checkpoint_dir``, checkpoints are written there
        (``save_steps``) and a SIGINT or SIGTERM stops after the current step with a checkpoint; ``resume=True``
        continues the run whose checkpoints are there, with the same options and data."""
        train, val, test = fitting.data_sources(self.config, train, labels, val, test)
        self._set_fitted(**vars(fitting.fit(self.config, train, val, test, checkpoint_dir, resume)))
        return self

    def tune(self, train: DataSource | Sequence[str] | None = None, labels: Sequence[Any] | None = None, *,
             val: DataSource | None = None, test: DataSource | None = None, settings: SearchSettings | None = None,
             **search: Any) -> TextClassifier:
        """Search the options (see :mod:`bertclf.tuning`; ``settings``, or its fields as keywords: ``trials``,
        ``study_dir``, ``storage``, ...) on ``train`` scored on ``val``, then return a new classifier of these
        options with the best trial's over them, fitted as :meth:`fit` fits (its ``metrics_['tuning']`` sums up the
        search). This classifier is left as it was."""
        try:
            from bertclf import tuning
        except ModuleNotFoundError as missing:
            raise BertclfError(f"tuning needs {missing.name}: pip install 'bertclf[tune]'") from None
        train, val, test = fitting.data_sources(self.config, train, labels, val, test)
        found = tuning.search(self.config, train, val, test, settings or tuning.SearchSettings(**search))
        tuned = type(self)(self.config, **found.options)
        fitted = fitting.fit(tuned.config, train, val, test)
        tuned._set_fitted(**vars(dataclasses.replace(fitted, metrics={**fitted.metrics, "tuning": found.summary})))
        return tuned

    # --- inference ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.runtime_ is None:
            raise BertclfError("this TextClassifier is not fitted yet: call fit() or TextClassifier.load()")

    def encode(self, texts: Sequence[str]) -> list:
        """Model-ready token ids of each text under the long-text strategy (what :meth:`predictor` takes)."""
        return self.token_encoder_(texts)

    def predictor(self, runtime: Runtime | None = None, across_processes: bool = False) -> Predictor:
        """The predictor of the current settings (batch size, thresholds and minimum labels may change after
        fitting), on this classifier's runtime or another one (see ``Predictor.across_processes``)."""
        return make_predictor(runtime or self.runtime_, self.tokenizer_.pad_token_id, self.config,
                              self.task_ == "multilabel", self.decision_thresholds(), across_processes,
                              self.tokenizer_.padding_side)

    def decision_thresholds(self) -> np.ndarray | None:
        """Multilabel thresholds in force: ``config.threshold`` when set, else those tuned on validation data."""
        return thresholds_in_force(self.config, self.thresholds_, len(self.classes_))

    def _torch_runtime(self) -> TorchRuntime:
        return TorchRuntime(self.model_, resolve_precision(self.config_.mixed_precision))

    def _texts(self, data: Sequence[str] | pd.DataFrame) -> list[str]:
        if isinstance(data, str):
            raise BertclfError("expected a list of texts, got a single string: wrap it in a list")
        if isinstance(data, pd.DataFrame):
            return join_texts(data, self.config, "DataFrame")
        if data is None or not isinstance(data, Iterable):
            raise BertclfError(f"expected a list of texts, got {type(data).__name__}")
        texts = list(data)
        bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
        if bad is not None:
            raise BertclfError(f"text {bad + 1} is not a string: {texts[bad]!r}")
        return texts

    def predict_proba(self, data: Sequence[str] | pd.DataFrame) -> np.ndarray:
        """Probabilities, one row per text, columns in the order of ``classes_``: a distribution over the
        classes (multiclass) or each label's own probability (multilabel)."""
        self._check_fitted()
        texts = self._texts(data)
        if not texts:
            return np.zeros((0, len(self.classes_)), dtype=np.float32)
        empty = sum(not text.strip() for text in texts)
        if empty:
            log.warning("warning: %d of %d texts are empty; their predictions are only the classes' prior", empty,
                        len(texts))
        return self.predictor().predict_proba(self.encode(texts))

    def predict(self, data: Sequence[str] | pd.DataFrame) -> list[Any]:
        """Per text, in input order: the most probable class, or for multilabel a tuple of the labels whose
        probability reaches their threshold (at least ``min_labels`` of them)."""
        return self.labels_from_probabilities(self.predict_proba(data))

    def labels_from_probabilities(self, probabilities: np.ndarray) -> list[Any]:
        """The decisions :meth:`predict` makes, from rows of :meth:`predict_proba`."""
        decisions = self.predictor().decisions(probabilities)
        if self.task_ != "multilabel":
            return [self.classes_[i] for i in decisions]
        return [tuple(self.classes_[i] for i in np.flatnonzero(row)) for row in decisions]

    def evaluate(self, data: DataSource) -> dict[str, Any]:
        """Scores on labelled data (a file, a DataFrame or a ``(texts, labels)`` pair)."""
        return self.evaluation_of(data)[1]

    def evaluation_of(self, data: DataSource) -> tuple[Evaluation, dict[str, Any]]:
        """Labelled data's predictions (for a report) and scores."""
        self._check_fitted()
        examples = load_examples(data, dataclasses.replace(self.config, task=self.task_))
        labels = encode_labels(examples, self.classes_)
        probabilities, metrics = predict_and_score(self.predictor(), EncodedTexts(self.encode(examples.texts), labels),
                                                   self.classes_, self.config)
        return Evaluation(examples.name, examples.texts, labels, probabilities), metrics

    # --- persistence --------------------------------------------------------------------------------
    def save(self, path: str | Path, overwrite: bool | None = None) -> Path:
        """Write the run directory atomically: a failure leaves no half-written directory behind."""
        self._check_fitted()
        if self.model_ is None:
            raise BertclfError(f"this classifier runs on {self.runtime_.name} without its PyTorch weights; load it "
                               "with runtime='torch' to save it")
        target = Path(path)
        overwrite = self.config.overwrite if overwrite is None else overwrite
        rundir.check_output_directory(target, overwrite)
        with rundir.atomic_directory(target) as staging:
            save_model(self.model_, self.tokenizer_, staging, self.max_length_)
            metrics = self.metrics_
            if self.inspection_ is not None:  # fitted here: the report and what it is drawn from
                started = time.perf_counter()
                save_inputs(staging, self.inspection_, self.evaluation_, self.baseline_)
                write_report(staging / rundir.REPORT_FILE,
                             self.report_inputs(target.name, self.inspection_, self.evaluation_, self.baseline_))
                seconds = time.perf_counter() - started
                log.info("report written in %.1f s: %s", seconds, target / rundir.REPORT_FILE)
                metrics = with_report_writing_time(metrics, seconds)
            self.write_description(staging, target.name, metrics=metrics)
            if self.tracking_dir_ is not None and self.tracking_dir_.is_dir():
                shutil.copytree(self.tracking_dir_, staging / rundir.TRACKING_DIR)
        return target

    def report_inputs(self, run_name: str, inspection: DataInspection | None = None,
                      evaluation: Evaluation | None = None, baseline: dict[str, Any] | None = None) -> ReportInputs:
        """What ``report.html`` shows of this classifier (the options it trained under, its classes, scores and
        decision rule), beside the data check, a labelled part's predictions and the baseline's scores."""
        multilabel = self.task_ == "multilabel"
        return ReportInputs(run_name, self.config_.to_dict(), list(self.classes_), multilabel, self.metrics_,
                            self.decision_thresholds() if multilabel else None, self.config.min_labels,
                            self.predictor().decisions, inspection, evaluation, baseline)

    def write_description(self, directory: Path, name: str, export: dict[str, Any] | None = None,
                          metrics: dict[str, Any] | None = None) -> None:
        """Everything but the network: resolved options, classes, thresholds, scores (``metrics``, by default the
        fitted ones) and the model card."""
        metrics = self.metrics_ if metrics is None else metrics
        resolved = self.config_
        resolved.save(directory / rundir.CONFIG_FILE)
        rundir.write_json_into(directory / rundir.LABELS_FILE, {"classes": self.classes_})
        if self.thresholds_ is not None:
            thresholds = dict(zip(map(str, self.classes_), self.thresholds_.tolist(), strict=True))
            rundir.write_json_into(directory / rundir.THRESHOLDS_FILE,
                                   {"strategy": self.config.threshold_strategy, "thresholds": thresholds})
        if metrics:
            rundir.write_json_into(directory / rundir.METRICS_FILE, metrics)
        write_model_card(directory, name, resolved, self.classes_, metrics, __version__, export)

    def export(self, path: str | Path, quantize: str | None = None, check_data: DataSource | None = None,
               overwrite: bool = False) -> dict[str, Any]:
        """Write an ONNX export (see :mod:`bertclf.inference.export`) into ``path``: graphs, tokenizer, classes,
        thresholds, long-text settings, resolved options and a model card, checked against this model first on
        ``check_data`` (default: the run's validation texts); nothing is written if the check fails. Returns what
        export.json holds, the check's figures among them."""
        self._check_fitted()
        if self.model_ is None:
            raise BertclfError(f"this classifier runs on {self.runtime_.name} without its PyTorch weights; export "
                               "from its run directory")
        raise_if_unavailable()
        if quantize not in (None, "int8"):
            raise BertclfError(f"unknown quantization {quantize!r}; the one offered is int8")
        output = Path(path)
        rundir.check_output_directory(output, overwrite)
        if (output / rundir.CONFIG_FILE).is_file() and not (output / rundir.EXPORT_FILE).is_file():
            raise BertclfError(f"{output} is a run directory (its PyTorch weights and report): an export never "
                               "replaces a run; name another directory")
        texts, labels = examples_for_export_check(self.config_, self.classes_, check_data)
        if not texts:
            raise BertclfError("no texts to check the export on")
        with rundir.atomic_directory(output) as staging:
            graphs = export_graphs(self.model_, staging, self.tokenizer_ if quantize == "int8" else None)
            runtime = OnnxRuntime(graphs.graph, graphs.head, "onnx-int8" if quantize else "onnx")
            check = compare_with_export(self.predictor(self._torch_runtime()), self.predictor(runtime),
                                        self.encode(texts), labels, self.classes_, self.config)
            if quantize is None and check["agreement"] < MIN_FP32_AGREEMENT:
                raise BertclfError(f"the export agrees with PyTorch on only {100 * check['agreement']:.2f}% of "
                                   f"{check['texts']} labels (at least {100 * MIN_FP32_AGREEMENT:.0f}% needed); "
                                   "nothing was written")
            info = write_export_files(staging, graphs, self.model_, self.tokenizer_, self.max_length_, check,
                                      __version__)
            self.write_description(staging, output.name, info)
        return info

    @classmethod
    def load(cls, path: str | Path, runtime: str = "auto", threads: int | None = None) -> TextClassifier:
        """A fitted classifier from a run directory written by :meth:`save` or an export directory, run by
        ``runtime`` (one of ``bertclf.config.RUNTIMES``; 'auto' is what the directory holds) on ``threads``
        CPU threads (default: the library's own choice)."""
        if runtime not in RUNTIMES:
            raise BertclfError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
        directory = Path(path)
        if directory.exists() and not directory.is_dir():
            raise BertclfError(f"{directory} is a file, not a model directory (a run or an export)")
        if not directory.is_dir():
            raise BertclfError(f"model directory not found: {directory}")
        for required in (rundir.CONFIG_FILE, rundir.LABELS_FILE):
            if not (directory / required).is_file():
                raise BertclfError(f"{directory} is not a bertclf run directory (missing {required})")
        try:
            config = ClassifierConfig.from_file(directory / rundir.CONFIG_FILE)
        except BertclfError as error:
            raise BertclfError(f"{directory / rundir.CONFIG_FILE} is corrupt: {error}") from None
        classes = read_classes(directory / rundir.LABELS_FILE)
        if config.task not in ("multiclass", "multilabel") or config.max_length == "auto":
            raise BertclfError(f"{directory / rundir.CONFIG_FILE} is corrupt (no resolved task or max_length)")
        thresholds = read_thresholds(directory / rundir.THRESHOLDS_FILE, classes) if config.task == "multilabel" \
            else None
        tokenizer = load_tokenizer(str(directory))
        export = read_export_info(directory)
        name = resolve_runtime(directory, export, runtime)
        model = None
        if export is not None:
            rows = export.get("vocabulary_rows")
            opened = open_runtime(directory, name, tokenizer, threads=threads)
        else:
            model = load_model(directory, config, len(classes))
            rows = vocabulary_rows(model)
            opened = open_runtime(model, name, tokenizer, config.mixed_precision, threads)
        if not isinstance(rows, int) or not rows / 2 <= len(tokenizer) <= rows:
            raise BertclfError(f"{directory} is corrupt: its tokenizer has {len(tokenizer)} tokens but the "
                               f"model {rows} (a tokenizer file is missing or damaged)")
        metrics = directory / rundir.METRICS_FILE
        classifier = cls(config)
        classifier._set_fitted(config=config, classes=classes, task=config.task, max_length=int(config.max_length),
                               tokenizer=tokenizer, thresholds=thresholds, model=model if name == "torch" else None,
                               runtime=opened, metrics=rundir.read_json(metrics) if metrics.is_file() else None)
        return classifier


def read_classes(path: Path) -> list[Any]:
    """The saved classes, in the order of the probability columns."""
    saved = rundir.read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("classes"), list) or len(saved["classes"]) < 2:
        raise BertclfError(f"{path} is corrupt (no list of classes)")
    return saved["classes"]


def read_thresholds(path: Path, classes: Sequence[Any]) -> np.ndarray:
    """The saved multilabel thresholds, in class order."""
    if not path.is_file():
        raise BertclfError(f"{path.parent} is a multilabel run directory without {path.name}")
    saved = rundir.read_json(path)
    try:
        saved = saved["thresholds"]
        return np.array([float(saved[str(label)]) for label in classes])
    except (ValueError, KeyError, TypeError):
        raise BertclfError(f"{path} is corrupt") from None
