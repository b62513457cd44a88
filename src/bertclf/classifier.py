"""``TextClassifier``: the public estimator (fit / predict / predict_proba / evaluate / save / load)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from accelerate.utils import set_seed

from bertclf import __version__, rundir
from bertclf.batching import EncodedTexts
from bertclf.config import RUNTIMES, TASK_METRICS, ClassifierConfig
from bertclf.data import DataSource, encode_labels, join_texts, load_examples, make_splits, training_classes
from bertclf.errors import BertclfError
from bertclf.inference import (
    Predictor,
    Runtime,
    TorchRuntime,
    export_runtime,
    model_runtime,
    read_export_info,
    resolve_precision,
    resolve_runtime,
)
from bertclf.metrics import classification_metrics, multilabel_metrics
from bertclf.modeling import (
    CachedFeatures,
    EncoderFeatures,
    build_model,
    first_token_last_layer,
    frozen_encoder_head,
    load_encoder_config,
    load_model,
    load_tokenizer,
    save_model,
    start_at_label_priors,
    vocabulary_rows,
    with_concrete_pooling,
)
from bertclf.reporting import page as report
from bertclf.reporting.baseline import tfidf_baseline
from bertclf.reporting.inspection import DataInspection, inspect_data
from bertclf.reporting.model_card import write_model_card
from bertclf.thresholds import tune_thresholds
from bertclf.tokenization import Encoder, choose_max_length, model_token_limit, special_tokens, tokenize
from bertclf.training import loop as trainer
from bertclf.training.checkpoints import Checkpoints, fingerprint
from bertclf.training.loop import TrainState, class_weights, loss_function
from bertclf.training.tracking import Tracking

log = logging.getLogger("bertclf")


class TextClassifier:
    """Fine-tunes a BERT-family encoder into a text classifier.

    Options are the fields of :class:`ClassifierConfig`, given as keywords (``TextClassifier(epochs=2)``)
    or as a config object. Fitted attributes end with an underscore, as in scikit-learn.
    """

    def __init__(self, config: ClassifierConfig | None = None, **options: Any):
        self.config = dataclasses.replace(config or ClassifierConfig(), **options)
        self.classes_: list[Any] | None = None
        self.task_: str | None = None  # "multiclass" or "multilabel", as found in the training data
        self.thresholds_: np.ndarray | None = None  # multilabel: one decision threshold per class
        self.max_length_: int | None = None
        self.text_encoder_: Encoder | None = None  # texts to token ids under the long-text strategy
        self.model_: torch.nn.Module | None = None  # the PyTorch network (None when loaded from an ONNX export)
        self.runtime_: Runtime | None = None  # what runs it: see bertclf.inference
        self.tokenizer_ = None
        self.metrics_: dict[str, Any] = {}
        self.train_state_: TrainState | None = None  # the training loop's record: history, best step, cost
        # What the run's report shows beside the metrics (see bertclf.reporting); set by fit, not by load.
        self.inspection_: DataInspection | None = None
        self.evaluation_: report.Evaluation | None = None  # the test part's predictions
        self.baseline_: dict[str, Any] | None = None  # the TF-IDF baseline's test scores
        self.tracking_dir_: Path | None = None  # trackers' files that belong in the run directory

    # --- training -----------------------------------------------------------------------------------
    def fit(self, train: DataSource | None = None, val: DataSource | None = None, test: DataSource | None = None,
            *, checkpoint_dir: str | Path | None = None, resume: bool = False) -> TextClassifier:
        """Train on ``train`` (or ``config.train``), pick the best epoch on ``val``, score ``test``.

        With ``checkpoint_dir``, checkpoints are written there as training goes (``save_steps``), and a SIGINT or
        SIGTERM stops after the current step with a checkpoint; ``resume=True`` continues the run whose checkpoints
        are there, with the same options and data."""
        train = train if train is not None else self.config.train
        val = val if val is not None else self.config.val
        test = test if test is not None else self.config.test
        if train is None:
            raise BertclfError("no training data: pass a file or DataFrame to fit() (--train on the command line)")
        # Files are recorded with the run, as on the command line, so that its parts can be rebuilt (export checks).
        self.config = config = dataclasses.replace(with_concrete_pooling(self.config), **{
            name: str(source) if isinstance(source, (str, Path)) else None
            for name, source in (("train", train), ("val", val), ("test", test))})
        if resume:
            self._check_resumable(checkpoint_dir)
        elif checkpoint_dir is not None and rundir.checkpoints_in(Path(checkpoint_dir)):
            raise BertclfError(f"{checkpoint_dir} holds the checkpoints of an interrupted run: resume it "
                               f"(bertclf train --resume {checkpoint_dir}) or delete it")
        splits = make_splits(config, train, val, test)
        task = "multilabel" if splits.train.multilabel else "multiclass"
        if task == "multilabel" and config.label_smoothing:
            raise BertclfError("--label-smoothing applies to single-label data; this data is multilabel")
        if config.metric not in TASK_METRICS[task]:
            raise BertclfError(f"--metric {config.metric} does not apply to {task} data; choose one of "
                               f"{', '.join(TASK_METRICS[task])}")
        classes = training_classes(splits.train, config)
        train_labels = encode_labels(splits.train, classes)
        val_labels = encode_labels(splits.val, classes)
        test_labels = encode_labels(splits.test, classes) if splits.test is not None else None
        log.info("%s, classes (%d): %s", task, len(classes), ", ".join(map(str, classes)))

        tokenizer = load_tokenizer(config.model)
        limit = model_token_limit(tokenizer, load_encoder_config(config.model))
        prefix, suffix = special_tokens(tokenizer)
        train_tokens = tokenize(tokenizer, splits.train.texts)
        counts = [len(ids) + len(prefix) + len(suffix) for ids in train_tokens]
        max_length = self._choose_max_length(counts, limit)
        self.inspection_ = inspect_data([part for part in (splits.train, splits.val, splits.test) if part is not None],
                                        tokenizer, config.model, max_length, counts)
        if self.inspection_.vocabulary_warning():
            log.warning(self.inspection_.vocabulary_warning())

        self.classes_, self.task_, self.tokenizer_, self.max_length_ = classes, task, tokenizer, max_length
        self.thresholds_ = None
        self.text_encoder_ = self._text_encoder()
        weights = class_weights(train_labels, len(classes), config.class_weights)
        train_set = EncodedTexts(self.text_encoder_.from_tokens(train_tokens), train_labels)
        if self.text_encoder_.chunked:
            windows_per_text = [len(document) for document in train_set.token_ids]
            log.info("chunks: %.2f windows of %d tokens per training text on average (at most %d)",
                     np.mean(windows_per_text), max_length, config.max_chunks)
        val_set = EncodedTexts(self.encode(splits.val.texts), val_labels)
        test_set = EncodedTexts(self.encode(splits.test.texts), test_labels) if splits.test is not None else None
        seeds = config.seed_list()
        if len(seeds) > 1 and resume:
            raise BertclfError("a run of several --seeds cannot be resumed: each seed's run takes minutes, start again")
        checkpoints = None
        if checkpoint_dir is not None and len(seeds) == 1:
            checkpoints = Checkpoints(Path(checkpoint_dir), config, fingerprint(train_set))
        runs: list[SeedRun] = []
        best: SeedRun | None = None
        for seed in seeds:
            run = self._train_seed(seed, weights, train_set, val_set, test_set, checkpoints, checkpoint_dir,
                                   several=len(seeds) > 1)
            runs.append(run)
            if best is None or trainer.is_better(run.state.best_score, best.state.best_score, config.metric):
                if best is not None:
                    best.model = None  # only the kept model stays in memory; the others leave their scores
                best = run
            else:
                run.model = None
        model, result = best.model, best.state
        self.model_, self.train_state_ = model, result
        self.runtime_ = TorchRuntime(model, resolve_precision(config.mixed_precision))
        self.thresholds_ = best.thresholds
        self.metrics_ = {"val": result.best_metrics}
        self.evaluation_ = self.baseline_ = None
        if test_set is not None:
            self.metrics_["test"] = best.test_metrics
            self.evaluation_ = report.Evaluation("test", splits.test.texts, test_labels, best.test_probabilities)
            self.baseline_ = tfidf_baseline(splits.train.texts, train_labels, splits.val.texts, val_labels,
                                            splits.test.texts, test_labels, classes, config.threshold_strategy)
        self.metrics_["training"] = {
            "best_step": result.best_step, "stopped_early": result.stopped_early,
            "train_seconds": round(result.train_seconds, 2), "train_samples": result.train_samples,
            "train_samples_per_second": round(result.train_samples_per_second, 2),
            "max_length": max_length, "history": result.history, "log": result.log,
            "environment": report.environment(next(model.parameters()).device.type),
        }
        if len(seeds) > 1:
            self.metrics_["seeds"] = seed_summary(runs, best)
            log.info("kept the model of seed %d (best validation %s %.4f of %d seeds)", best.seed, config.metric,
                     result.best_score, len(seeds))
        return self

    def _train_seed(self, seed: int, weights: torch.Tensor | None, train_set: EncodedTexts, val_set: EncodedTexts,
                    test_set: EncodedTexts | None, checkpoints: Checkpoints | None,
                    checkpoint_dir: str | Path | None, several: bool) -> SeedRun:
        """One training run from a fresh head under ``seed``, scored on the validation and test parts."""
        config, task = self.config, self.task_
        multilabel = task == "multilabel"
        precision = resolve_precision(config.mixed_precision)
        if several:
            log.info("seed %d", seed)
        set_seed(seed)
        model = build_model(config, self.classes_, multilabel=multilabel)
        if multilabel:
            start_at_label_priors(model, train_set.labels, weights)
        training_model, training_set = model, train_set
        head = frozen_encoder_head(model) if config.freeze_encoder else None
        feature_seconds = 0.0
        if head is not None:  # each text's encoder output once; then the head trains on those vectors alone
            started = time.perf_counter()
            features = Predictor(TorchRuntime(EncoderFeatures(model), precision), self.tokenizer_.pad_token_id,
                                 config.eval_batch_size, across_processes=True).logits(train_set.token_ids)
            training_model = CachedFeatures(torch.from_numpy(features), head)
            training_set = EncodedTexts([[row] for row in range(len(features))], train_set.labels)
            feature_seconds = time.perf_counter() - started
        tracking = self._tracking(checkpoint_dir, f"seed{seed}" if several else None)
        seeded = dataclasses.replace(config, seed=seed)
        try:
            with first_token_last_layer(model):  # 'cls' pooling reads one position of the last layer: compute it only
                trained, state = trainer.train(
                    training_model, training_set, seeded, pad_token_id=self.tokenizer_.pad_token_id,
                    loss_fn=loss_function(multilabel, weights, config.loss, config.focal_gamma,
                                          config.label_smoothing),
                    # the whole model is scored (the cached features' head is the model's own)
                    evaluate=lambda _trained: self._score(TorchRuntime(model, precision), val_set, tune=True,
                                                          across_processes=True),
                    checkpoints=checkpoints, tracking=tracking)
            state.train_seconds += feature_seconds  # computing the features is part of training
            if head is None:
                model = trained  # the same network, unwrapped, holding its best weights
            thresholds = (np.array(list(state.best_metrics["thresholds"].values())) if multilabel else None)
            run = SeedRun(seed, model, state, thresholds)
            if test_set is not None:
                self.thresholds_ = thresholds  # the tuned thresholds decide the test labels
                run.test_probabilities, run.test_metrics = self._predict_and_score(
                    TorchRuntime(model, precision), test_set, across_processes=True)
                if tracking is not None:
                    tracking.log({f"test/{name}": value for name, value in run.test_metrics.items()
                                  if isinstance(value, (int, float))}, state.step)
        finally:
            if tracking is not None:
                tracking.finish()
        return run

    def _tracking(self, checkpoint_dir: str | Path | None, seed_name: str | None = None) -> Tracking | None:
        """The trackers of ``--report-to`` (one run per seed where there are several); without ``--tracking-dir``
        their files go into the run directory (by way of the checkpoint folder, which becomes it on the command
        line) or ./tracking."""
        config = self.config
        if not config.report_to:
            return None
        if config.tracking_dir is not None:
            folder, self.tracking_dir_ = Path(config.tracking_dir), None
        elif checkpoint_dir is not None:
            folder = self.tracking_dir_ = Path(checkpoint_dir) / rundir.TRACKING_DIR
        else:
            folder, self.tracking_dir_ = Path(rundir.TRACKING_DIR), None
        name = Path(config.output).name if config.output else "bertclf"
        return Tracking(config.report_to, folder, f"{name}-{seed_name}" if seed_name else name, config.to_dict())

    def _check_resumable(self, checkpoint_dir: str | Path | None) -> None:
        """A run to resume must have a checkpoint, and this classifier its options (see RESUME_SAFE)."""
        if checkpoint_dir is None:
            raise BertclfError("resume=True needs the checkpoint_dir of the interrupted run")
        interrupted = ClassifierConfig.from_file(rundir.interrupted_run_options(Path(checkpoint_dir)))
        changed = self.config.changes_on_resume(interrupted)
        if changed:
            raise BertclfError("resuming needs the interrupted run's options, but " + ", ".join(
                f"--{name.replace('_', '-')} is {getattr(self.config, name)!r} (was {getattr(interrupted, name)!r})"
                for name in changed))

    def _choose_max_length(self, counts: Sequence[int], limit: int) -> int:
        requested = self.config.max_length
        if requested == "auto":
            chosen = choose_max_length(counts, limit)
        elif requested > limit:
            log.warning("warning: --max-length %d exceeds the model's limit; using %d", requested, limit)
            chosen = limit
        else:
            chosen = requested
        covered = float(np.mean(np.asarray(counts) <= chosen))
        log.info("max length: %d tokens (%s; covers %.1f%% of training texts in full; model limit %d)",
                 chosen, "auto" if requested == "auto" else "set", 100 * covered, limit)
        return chosen

    # --- inference ----------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self.runtime_ is None:
            raise BertclfError("this TextClassifier is not fitted yet: call fit() or TextClassifier.load()")

    def _text_encoder(self) -> Encoder:
        config = self.config
        return Encoder(self.tokenizer_, self.max_length_, config.long_text, config.head_tokens, config.stride,
                       config.max_chunks)

    def encode(self, texts: Sequence[str]) -> list:
        """Model-ready token ids of each text under the long-text strategy (what :meth:`predictor` takes)."""
        return self.text_encoder_(texts)

    def predictor(self, runtime: Runtime | None = None, across_processes: bool = False) -> Predictor:
        """The predictor of the current settings (batch size, thresholds and minimum labels may change after
        loading), on this classifier's runtime or another one (see ``Predictor.across_processes``)."""
        return Predictor(runtime or self.runtime_, self.tokenizer_.pad_token_id, self.config.eval_batch_size,
                         multilabel=self.task_ == "multilabel", thresholds=self.decision_thresholds(),
                         min_labels=self.config.min_labels, across_processes=across_processes)

    def decision_thresholds(self) -> np.ndarray:
        """Multilabel thresholds in force: ``config.threshold`` when set, else those tuned on validation data."""
        if self.config.threshold is not None:
            return np.full(len(self.classes_), self.config.threshold)
        return self.thresholds_

    def _score(self, runtime: Runtime, dataset: EncodedTexts, tune: bool = False,
               across_processes: bool = False) -> dict[str, Any]:
        """Scores on a labelled set; with ``tune`` (validation during training) the multilabel thresholds are
        first tuned on this very set, as they will be for the model that is kept."""
        return self._predict_and_score(runtime, dataset, tune, across_processes)[1]

    def _predict_and_score(self, runtime: Runtime, dataset: EncodedTexts, tune: bool = False,
                           across_processes: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
        probabilities = self.predictor(runtime, across_processes).predict_proba(dataset.token_ids)
        if self.task_ != "multilabel":
            return probabilities, classification_metrics(dataset.labels, probabilities, self.classes_)
        thresholds = self.decision_thresholds()
        if tune:
            thresholds = tune_thresholds(dataset.labels, probabilities, self.config.threshold_strategy,
                                         self.config.threshold)
        return probabilities, multilabel_metrics(dataset.labels, probabilities, self.classes_, thresholds,
                                                 self.config.min_labels)

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

    def evaluation_of(self, data: DataSource) -> tuple[report.Evaluation, dict[str, Any]]:
        """Labelled data's predictions (for a report) and scores."""
        self._check_fitted()
        examples = load_examples(data, dataclasses.replace(self.config, task=self.task_))
        labels = encode_labels(examples, self.classes_)
        probabilities, metrics = self._predict_and_score(self.runtime_, EncodedTexts(self.encode(examples.texts),
                                                                                      labels))
        return report.Evaluation(examples.name, examples.texts, labels, probabilities), metrics

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
            self.write_description(staging, target.name)
            if self.inspection_ is not None:  # fitted here: the report and what it is drawn from
                started = time.perf_counter()
                report.save_inputs(staging, self.inspection_, self.evaluation_, self.baseline_)
                report.write_report(staging / rundir.REPORT_FILE, report.inputs_of(
                    self, target.name, self.inspection_, self.evaluation_, self.baseline_))
                log.info("report written in %.1f s: %s", time.perf_counter() - started, target / rundir.REPORT_FILE)
            if self.tracking_dir_ is not None and self.tracking_dir_.is_dir():
                shutil.copytree(self.tracking_dir_, staging / rundir.TRACKING_DIR)
        return target

    def write_description(self, directory: Path, name: str, export: dict[str, Any] | None = None) -> None:
        """Everything but the network: resolved options, classes, thresholds, scores and the model card."""
        resolved = dataclasses.replace(self.config, max_length=self.max_length_, task=self.task_)
        resolved.save(directory / rundir.CONFIG_FILE)
        rundir.write_json_into(directory / rundir.LABELS_FILE, {"classes": self.classes_})
        if self.thresholds_ is not None:
            thresholds = dict(zip(map(str, self.classes_), self.thresholds_.tolist(), strict=True))
            rundir.write_json_into(directory / rundir.THRESHOLDS_FILE,
                                   {"strategy": self.config.threshold_strategy, "thresholds": thresholds})
        if self.metrics_:
            rundir.write_json_into(directory / rundir.METRICS_FILE, self.metrics_)
        write_model_card(directory, name, resolved, self.classes_, self.metrics_, __version__, export)

    def export(self, path: str | Path, quantize: str | None = None, check_data: DataSource | None = None,
               overwrite: bool = False) -> dict[str, Any]:
        """Write an ONNX export (see :mod:`bertclf.exporters`) after checking it against this model; returns the
        check's figures."""
        from bertclf.inference.export import export_classifier

        self._check_fitted()
        if self.model_ is None:
            raise BertclfError(f"this classifier runs on {self.runtime_.name} without its PyTorch weights; export "
                               "from its run directory")
        return export_classifier(self, Path(path), quantize, check_data, overwrite)

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
        classes = rundir.read_json(directory / rundir.LABELS_FILE)
        if not isinstance(classes, dict) or not isinstance(classes.get("classes"), list) or len(classes["classes"]) < 2:
            raise BertclfError(f"{directory / rundir.LABELS_FILE} is corrupt (no list of classes)")
        classes = classes["classes"]
        if config.task not in ("multiclass", "multilabel") or config.max_length == "auto":
            raise BertclfError(f"{directory / rundir.CONFIG_FILE} is corrupt (no resolved task or max_length)")
        classifier = cls(config)
        classifier.classes_ = classes
        classifier.task_ = "multilabel" if config.task == "multilabel" else "multiclass"
        classifier.max_length_ = int(config.max_length)
        if config.task == "multilabel":
            classifier.thresholds_ = read_thresholds(directory / rundir.THRESHOLDS_FILE, classes)
        classifier.tokenizer_ = load_tokenizer(str(directory))
        classifier.text_encoder_ = classifier._text_encoder()
        export = read_export_info(directory)
        name = resolve_runtime(directory, export, runtime)
        if export is not None:
            rows = export.get("vocabulary_rows")
            classifier.runtime_ = export_runtime(directory, export, name, classifier.tokenizer_, threads)
        else:
            model = load_model(directory, config, len(classes))
            rows = vocabulary_rows(model)
            classifier.runtime_ = model_runtime(model, name, classifier.tokenizer_, config.mixed_precision, threads)
            classifier.model_ = model if name == "torch" else None
        if not isinstance(rows, int) or not rows / 2 <= len(classifier.tokenizer_) <= rows:
            raise BertclfError(f"{directory} is corrupt: its tokenizer has {len(classifier.tokenizer_)} tokens but the "
                               f"model {rows} (a tokenizer file is missing or damaged)")
        metrics_path = directory / rundir.METRICS_FILE
        if metrics_path.is_file():
            classifier.metrics_ = rundir.read_json(metrics_path)
        return classifier


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


@dataclasses.dataclass
class SeedRun:
    """One seed's training run: its model (holding its best weights), the loop's record, and its scores."""

    seed: int
    model: torch.nn.Module | None  # None once another seed's model is kept
    state: TrainState
    thresholds: np.ndarray | None
    test_probabilities: np.ndarray | None = None
    test_metrics: dict[str, Any] | None = None


def seed_summary(runs: Sequence[SeedRun], kept: SeedRun) -> dict[str, Any]:
    """Mean and standard deviation (population, as numpy computes it) of every scalar score over the seeds."""
    def spread(scores: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
        names = [name for name, value in scores[0].items() if isinstance(value, (int, float)) and name != "n"]
        return {name: {"mean": float(np.mean([score[name] for score in scores])),
                       "std": float(np.std([score[name] for score in scores]))} for name in names}

    summary = {"seeds": [run.seed for run in runs], "kept": kept.seed,
               "val": spread([run.state.best_metrics for run in runs])}
    if kept.test_metrics is not None:
        summary["test"] = spread([run.test_metrics for run in runs])
    return summary

