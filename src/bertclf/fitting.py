"""The steps of :meth:`TextClassifier.fit`, each a function of values: resolve the options, prepare the data, encode
it, train one seed, pick the best seed; :func:`fit` strings them together, and the estimator keeps its result.

Nothing here reads or writes a classifier: every step takes what it needs and returns what it made, so a step can
be run, tested or reused (a search, cross-fitting) on its own.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import set_seed

from bertclf import fewshot, rundir
from bertclf.batching import EncodedTexts
from bertclf.config import TASK_METRICS, ClassifierConfig
from bertclf.data import DataSource, Examples, Splits, encode_labels, load_examples, make_splits, training_classes
from bertclf.device import resolve_precision
from bertclf.errors import BertclfError
from bertclf.inference import Predictor, TorchRuntime, make_predictor, predict_and_score, thresholds_in_force
from bertclf.modeling import (
    CachedFeatures,
    EncoderFeatures,
    build_model,
    first_token_last_layer,
    frozen_encoder_head,
    load_encoder_config,
    load_tokenizer,
    resolve_pooling,
)
from bertclf.reporting import DataInspection, Evaluation, environment, inspect_data, tfidf_baseline
from bertclf.tokenization import TokenEncoder, choose_max_length, model_token_limit, token_lengths, tokenize
from bertclf.training import (
    Checkpoints,
    EvaluationHook,
    Tracking,
    TrainState,
    class_weights,
    fingerprint,
    is_better,
    loss_function,
    start_at_label_priors,
    train,
)

log = logging.getLogger("bertclf")


# --- the recipe -------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Fitted:
    """What a fit made: the fitted state of :class:`TextClassifier`, field for field."""

    config: ClassifierConfig  # resolved: concrete pooling, max_length and task
    classes: list[Any]
    task: str
    max_length: int
    tokenizer: Any
    thresholds: np.ndarray | None
    model: torch.nn.Module
    runtime: TorchRuntime
    metrics: dict[str, Any]
    train_state: TrainState
    inspection: DataInspection
    evaluation: Evaluation | None
    baseline: dict[str, Any] | None
    tracking_dir: Path | None


def fit(config: ClassifierConfig, train: DataSource, val: DataSource | None, test: DataSource | None,
        checkpoint_dir: str | Path | None = None, resume: bool = False,
        on_evaluation: EvaluationHook | None = None) -> Fitted:
    """Train under ``config`` on the parts given (see :func:`data_sources`), keep the best seed, score the test part;
    checkpoints go to ``checkpoint_dir`` (``resume``: continue the run whose checkpoints are there)."""
    config, train_examples = settle_low_label(config, train, val, test)
    config = resolve_options(config, train, val, test)
    check_checkpoint_dir(config, checkpoint_dir, resume)
    prepared = prepare(config, train_examples, val, test)
    encoded = encode(config, prepared)
    runs = train_seeds(config, prepared, encoded, checkpoint_dir, on_evaluation)
    best = pick_best(runs, config.metric)
    outcome = test_outcome(config, prepared, best)
    tracking_dir, kept = tracking_folder(config, checkpoint_dir)
    return Fitted(config=dataclasses.replace(config, max_length=encoded.max_length, task=prepared.task),
                  classes=prepared.classes, task=prepared.task, max_length=encoded.max_length,
                  tokenizer=encoded.tokenizer, thresholds=best.thresholds, model=best.model,
                  runtime=TorchRuntime(best.model, resolve_precision(config.mixed_precision)),
                  metrics=run_metrics(config, runs, best, encoded, outcome), train_state=best.state,
                  inspection=encoded.inspection, evaluation=outcome and outcome.evaluation,
                  baseline=outcome and outcome.baseline,
                  tracking_dir=tracking_dir if kept and config.report_to else None)


# --- options --------------------------------------------------------------------------------------------------

def data_sources(config: ClassifierConfig, train: DataSource | Sequence[str] | None, labels: Sequence[Any] | None,
                 val: DataSource | None, test: DataSource | None) -> tuple[DataSource, DataSource | None,
                                                                        DataSource | None]:
    """The parts to fit on: those given (texts and labels given apart make a pair), else the options' files."""
    if labels is not None:
        train = (list(train), list(labels))
    train = train if train is not None else config.train
    if train is None:
        raise BertclfError("no training data: pass a file or DataFrame to fit() (--train on the command line)")
    return train, val if val is not None else config.val, test if test is not None else config.test


def settle_low_label(config: ClassifierConfig, train: DataSource, val: DataSource | None,
                     test: DataSource | None) -> tuple[ClassifierConfig, Examples]:
    """Whether the run is in the low-label mode, by the rule on the training texts (read here, once, for the run),
    and those texts, with the ones made from class names where the mode adds them."""
    examples = load_examples(train, config)
    config = fewshot.settle(config, examples, val is not None, test is not None)
    if config.low_label != "on":
        if config.label_name_texts:
            raise BertclfError("--label-name-texts applies to the low-label mode, which this run is not in "
                               "(pass --low-label on)")
        return config, examples
    return config, fewshot.with_label_name_texts(examples, config.label_name_texts)


def resolve_options(config: ClassifierConfig, train: DataSource | None, val: DataSource | None,
                    test: DataSource | None) -> ClassifierConfig:
    """The options a run goes by: concrete pooling, and its data files recorded (as on the command line) so that
    its parts can be rebuilt later (export checks, reports); data given as frames or pairs is recorded as none."""
    return dataclasses.replace(config, pooling=resolve_pooling(config), **{
        name: str(source) if isinstance(source, (str, Path)) else None
        for name, source in (("train", train), ("val", val), ("test", test))})


def check_checkpoint_dir(config: ClassifierConfig, checkpoint_dir: str | Path | None, resume: bool) -> None:
    """A run to resume must have a checkpoint and the interrupted run's options (see RESUME_SAFE); a fresh run must
    not start over an interrupted one's checkpoints."""
    if not resume:
        if checkpoint_dir is not None and rundir.checkpoints_in(Path(checkpoint_dir)):
            raise BertclfError(f"{checkpoint_dir} holds the checkpoints of an interrupted run: resume it "
                               f"(bertclf train --resume {checkpoint_dir}) or delete it")
        return
    if checkpoint_dir is None:
        raise BertclfError("resume=True needs the checkpoint_dir of the interrupted run")
    if len(config.seed_list()) > 1:
        raise BertclfError("a run of several --seeds cannot be resumed: each seed's run takes minutes, start again")
    interrupted = ClassifierConfig.from_file(rundir.interrupted_run_options(Path(checkpoint_dir)))
    changed = config.changes_on_resume(interrupted)
    if changed:
        raise BertclfError("resuming needs the interrupted run's options, but " + ", ".join(
            f"--{name.replace('_', '-')} is {getattr(config, name)!r} (was {getattr(interrupted, name)!r})"
            for name in changed))


# --- data -----------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Prepared:
    """The run's parts, its task and classes, and each part's labels encoded against the classes."""

    splits: Splits
    task: str  # "multiclass" or "multilabel"
    classes: list[Any]
    train_labels: np.ndarray
    val_labels: np.ndarray
    test_labels: np.ndarray | None

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"


def prepare(config: ClassifierConfig, train: DataSource | Examples, val: DataSource | None,
            test: DataSource | None) -> Prepared:
    """Read and split the data, find the task and the classes, and check the options that depend on them."""
    splits = make_splits(config, train, val, test)
    task = "multilabel" if splits.train.multilabel else "multiclass"
    if task == "multilabel" and config.label_smoothing:
        raise BertclfError("--label-smoothing applies to single-label data; this data is multilabel")
    if config.metric not in TASK_METRICS[task]:
        raise BertclfError(f"--metric {config.metric} does not apply to {task} data; choose one of "
                           f"{', '.join(TASK_METRICS[task])}")
    classes = training_classes(splits.train, config)
    test_labels = encode_labels(splits.test, classes) if splits.test is not None else None
    log.info("%s, classes (%d): %s", task, len(classes), ", ".join(map(str, classes)))
    return Prepared(splits, task, classes, encode_labels(splits.train, classes), encode_labels(splits.val, classes),
                    test_labels)


@dataclasses.dataclass
class Encoded:
    """The parts as token ids under the run's token budget, and what the data check found."""

    tokenizer: Any
    max_length: int
    token_encoder: TokenEncoder
    inspection: DataInspection
    inspection_seconds: float
    train_set: EncodedTexts
    val_set: EncodedTexts
    test_set: EncodedTexts | None


def encode(config: ClassifierConfig, prepared: Prepared) -> Encoded:
    """Tokenize, choose the token budget, check the data and encode every part."""
    splits = prepared.splits
    tokenizer = load_tokenizer(config.model)
    limit = model_token_limit(tokenizer, load_encoder_config(config.model))
    train_tokens = tokenize(tokenizer, splits.train.texts)
    counts = token_lengths(tokenizer, train_tokens)
    max_length = choose_token_budget(config.max_length, counts, limit)
    started = time.perf_counter()
    inspection = inspect_data([part for part in (splits.train, splits.val, splits.test) if part is not None],
                              tokenizer, config.model, max_length, counts)
    inspection_seconds = time.perf_counter() - started
    if inspection.vocabulary_warning():
        log.warning(inspection.vocabulary_warning())
    token_encoder = TokenEncoder(tokenizer, max_length, config.long_text, config.head_tokens, config.stride,
                                 config.max_chunks)
    train_set = EncodedTexts(token_encoder.from_tokens(train_tokens), prepared.train_labels)
    if token_encoder.chunked:
        windows_per_text = [len(document) for document in train_set.token_ids]
        log.info("chunks: %.2f windows of %d tokens per training text on average (at most %d)",
                 np.mean(windows_per_text), max_length, config.max_chunks)
    val_set = EncodedTexts(token_encoder(splits.val.texts), prepared.val_labels)
    test_set = EncodedTexts(token_encoder(splits.test.texts), prepared.test_labels) if splits.test is not None \
        else None
    return Encoded(tokenizer, max_length, token_encoder, inspection, inspection_seconds, train_set, val_set, test_set)


def choose_token_budget(requested: int | str, counts: Sequence[int], limit: int) -> int:
    """``--max-length``: chosen from the training texts' lengths ('auto'), or as set within the model's limit."""
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


# --- training -------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class SeedRun:
    """One seed's training run: its model (holding its best weights), the loop's record, and its scores."""

    seed: int
    model: torch.nn.Module | None  # None once another seed's model is kept
    state: TrainState
    thresholds: np.ndarray | None
    test_probabilities: np.ndarray | None = None
    test_metrics: dict[str, Any] | None = None


def tracking_folder(config: ClassifierConfig, checkpoint_dir: str | Path | None) -> tuple[Path, bool]:
    """Where the trackers of ``--report-to`` write, and whether their files belong in the run directory: without
    ``--tracking-dir`` they go into the run (by way of the checkpoint folder, which becomes it on the command line),
    or ./tracking."""
    if config.tracking_dir is not None:
        return Path(config.tracking_dir), False
    if checkpoint_dir is not None:
        return Path(checkpoint_dir) / rundir.TRACKING_DIR, True
    return Path(rundir.TRACKING_DIR), False


def _tracking(config: ClassifierConfig, checkpoint_dir: str | Path | None, seed_name: str | None) -> Tracking | None:
    """The trackers of ``--report-to``, one run per seed where there are several."""
    if not config.report_to:
        return None
    name = Path(config.output).name if config.output else "bertclf"
    return Tracking(config.report_to, tracking_folder(config, checkpoint_dir)[0],
                    f"{name}-{seed_name}" if seed_name else name, config.to_dict())


def train_seed(seed: int, config: ClassifierConfig, prepared: Prepared, encoded: Encoded,
               checkpoints: Checkpoints | None, checkpoint_dir: str | Path | None, several: bool,
               on_evaluation: EvaluationHook | None = None) -> SeedRun:
    """One training run from a fresh head under ``seed``, scored on the validation and test parts (the fine-tune's
    every validation score told to ``on_evaluation``; the low-label mode scores once, at its end)."""
    if config.low_label == "on":
        return _low_label_seed(seed, config, prepared, encoded, several)
    multilabel, precision = prepared.multilabel, resolve_precision(config.mixed_precision)
    pad_token_id = encoded.tokenizer.pad_token_id
    if several:
        log.info("seed %d", seed)
    set_seed(seed)
    weights = class_weights(prepared.train_labels, len(prepared.classes), config.class_weights)
    model = build_model(config, prepared.classes, multilabel=multilabel)
    if multilabel:
        start_at_label_priors(model, encoded.train_set.labels, weights)
    training_model, training_set, feature_seconds = _training_inputs(model, encoded, config, precision)

    def score_on_validation(_trained: torch.nn.Module) -> dict[str, Any]:  # the whole model is scored (the cached
        predictor = make_predictor(TorchRuntime(model, precision), pad_token_id, config,  # features' head is its own)
                                   multilabel, None, across_processes=True,
                                   padding_side=encoded.tokenizer.padding_side)
        return predict_and_score(predictor, encoded.val_set, prepared.classes, config, tune=True)[1]

    tracking = _tracking(config, checkpoint_dir, f"seed{seed}" if several else None)
    try:
        with first_token_last_layer(model):  # 'cls' pooling reads one position of the last layer: compute it only
            trained, state = train(training_model, training_set, dataclasses.replace(config, seed=seed),
                                   pad_token_id=pad_token_id, padding_side=encoded.tokenizer.padding_side,
                                   evaluate=score_on_validation,
                                   loss_fn=loss_function(multilabel, weights, config.loss, config.focal_gamma,
                                                         config.label_smoothing),
                                   checkpoints=checkpoints, tracking=tracking, on_evaluation=on_evaluation)
        state.train_seconds += feature_seconds  # computing the features is part of training
        if training_model is model:
            model = trained  # the same network, unwrapped, holding its best weights
        thresholds = np.array(list(state.best_metrics["thresholds"].values())) if multilabel else None
        run = SeedRun(seed, model, state, thresholds)
        if encoded.test_set is not None:
            _score_test(run, config, prepared, encoded, tracking)
    finally:
        if tracking is not None:
            tracking.finish()
    return run


def _low_label_seed(seed: int, config: ClassifierConfig, prepared: Prepared, encoded: Encoded,
                    several: bool) -> SeedRun:
    """One seed of the low-label mode (see :mod:`bertclf.fewshot`), scored as a fine-tune's seed is."""
    if several:
        log.info("seed %d", seed)
    if config.report_to:
        log.warning("warning: --report-to: the low-label mode reports nothing to experiment trackers; its scores are "
                    "in metrics.json")
    set_seed(seed)
    model = build_model(config, prepared.classes, multilabel=prepared.multilabel)
    weights = class_weights(prepared.train_labels, len(prepared.classes), config.class_weights)
    task = fewshot.Task(prepared.classes, prepared.multilabel, encoded.tokenizer.pad_token_id,
                        encoded.tokenizer.padding_side)
    state = fewshot.train_low_label(model, encoded.train_set, None if prepared.splits.val_is_train else
                                    encoded.val_set, task, config, None if weights is None else weights.numpy(), seed)
    thresholds = np.array(list(state.best_metrics["thresholds"].values())) if prepared.multilabel else None
    run = SeedRun(seed, model, state, thresholds)
    if encoded.test_set is not None:
        _score_test(run, config, prepared, encoded, None)
    return run


def _training_inputs(model: torch.nn.Module, encoded: Encoded, config: ClassifierConfig,
                     precision: str) -> tuple[torch.nn.Module, EncodedTexts, float]:
    """What the loop trains on: the model and the texts, or with a frozen encoder its head alone on each text's
    encoder output, computed once (and the seconds that took)."""
    head = frozen_encoder_head(model) if config.freeze_encoder else None
    if head is None:
        return model, encoded.train_set, 0.0
    started = time.perf_counter()
    features = Predictor(TorchRuntime(EncoderFeatures(model), precision), encoded.tokenizer.pad_token_id,
                         config.eval_batch_size, across_processes=True,
                         padding_side=encoded.tokenizer.padding_side).logits(encoded.train_set.token_ids)
    training_set = EncodedTexts([[row] for row in range(len(features))], encoded.train_set.labels)
    return CachedFeatures(torch.from_numpy(features), head), training_set, time.perf_counter() - started


def _score_test(run: SeedRun, config: ClassifierConfig, prepared: Prepared, encoded: Encoded,
                tracking: Tracking | None) -> None:
    """The test part's probabilities and scores under the seed's tuned thresholds, into ``run`` and the trackers."""
    runtime = TorchRuntime(run.model, resolve_precision(config.mixed_precision))
    predictor = make_predictor(runtime, encoded.tokenizer.pad_token_id, config, prepared.multilabel,
                               thresholds_in_force(config, run.thresholds, len(prepared.classes)),
                               across_processes=True, padding_side=encoded.tokenizer.padding_side)
    run.test_probabilities, run.test_metrics = predict_and_score(predictor, encoded.test_set, prepared.classes,
                                                                 config)
    if tracking is not None:
        tracking.log({f"test/{name}": value for name, value in run.test_metrics.items()
                      if isinstance(value, (int, float))}, run.state.step)


def train_seeds(config: ClassifierConfig, prepared: Prepared, encoded: Encoded, checkpoint_dir: str | Path | None,
                on_evaluation: EvaluationHook | None = None) -> list[SeedRun]:
    """A run per seed; only the best seed's model stays in memory, the others leave their scores. The first seed's
    validation scores are told to ``on_evaluation``."""
    seeds = config.seed_list()
    checkpoints = None
    if checkpoint_dir is not None and len(seeds) == 1:
        checkpoints = Checkpoints(Path(checkpoint_dir), config, fingerprint(encoded.train_set))
    runs: list[SeedRun] = []
    for seed in seeds:
        run = train_seed(seed, config, prepared, encoded, checkpoints, checkpoint_dir, several=len(seeds) > 1,
                         on_evaluation=on_evaluation if not runs else None)
        best = pick_best([*runs, run], config.metric)
        for other in (*runs, run):
            if other is not best:
                other.model = None
        runs.append(run)
    return runs


def pick_best(runs: Sequence[SeedRun], metric: str) -> SeedRun:
    """The run of the best validation score; the first of equals."""
    best = runs[0]
    for run in runs[1:]:
        if is_better(run.state.best_score, best.state.best_score, metric):
            best = run
    return best


# --- what the run keeps ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class TestOutcome:
    """The test part's predictions (for the report) and the TF-IDF baseline's scores beside them."""

    evaluation: Evaluation
    baseline: dict[str, Any]
    baseline_seconds: float


def test_outcome(config: ClassifierConfig, prepared: Prepared, best: SeedRun) -> TestOutcome | None:
    """What the report shows of the test part, where there is one."""
    splits = prepared.splits
    if splits.test is None:
        return None
    evaluation = Evaluation("test", splits.test.texts, prepared.test_labels, best.test_probabilities)
    started = time.perf_counter()
    baseline = tfidf_baseline(splits.train.texts, prepared.train_labels, splits.val.texts, prepared.val_labels,
                              splits.test.texts, prepared.test_labels, prepared.classes, config.threshold_strategy)
    return TestOutcome(evaluation, baseline, time.perf_counter() - started)


def run_metrics(config: ClassifierConfig, runs: Sequence[SeedRun], best: SeedRun, encoded: Encoded,
                outcome: TestOutcome | None) -> dict[str, Any]:
    """``metrics.json``: the kept seed's validation and test scores, its training record (with what the report's
    data check and baseline cost), and the spread over seeds where there are several."""
    result = best.state
    report_seconds = {"inspect_data": encoded.inspection_seconds,
                      **({"tfidf_baseline": outcome.baseline_seconds} if outcome else {})}
    metrics: dict[str, Any] = {"val": result.best_metrics}
    if best.test_metrics is not None:
        metrics["test"] = best.test_metrics
    metrics["training"] = {
        "steps": result.step, "epochs": result.epoch, "best_step": result.best_step,
        "stopped_early": result.stopped_early,
        "train_seconds": round(result.train_seconds, 2), "train_samples": result.train_samples,
        "train_samples_per_second": round(result.train_samples_per_second, 2),
        "max_length": encoded.max_length, "history": result.history, "log": result.log,
        "environment": environment(next(best.model.parameters()).device.type),
        "report_seconds": {name: round(seconds, 3) for name, seconds in report_seconds.items()},
    }
    if len(runs) > 1:
        metrics["seeds"] = seed_summary(runs, best)
        log.info("kept the model of seed %d (best validation %s %.4f of %d seeds)", best.seed, config.metric,
                 result.best_score, len(runs))
    return metrics


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
