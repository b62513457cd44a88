"""The ``bertclf`` command: train, tune, evaluate, predict, export, serve, inspect, report and demo.

The flags of ``train`` and ``demo`` are generated from :class:`ClassifierConfig`; a problem with the
user's input ends in one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import logging
import os
import shutil
import signal
import sys
import time
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bertclf import __version__
from bertclf.config import RUNTIMES, ClassifierConfig, read_config_file
from bertclf.errors import BertclfError, Interrupted
from bertclf.option_values import base_type, default_text
from bertclf.processes import is_main_process, world_size
from bertclf.serving import ServeSettings
from bertclf.signals import STOP_SIGNALS, StopSignalHandler

if TYPE_CHECKING:  # the heavy modules (torch, transformers, pandas) are imported when a command runs, not for --help
    from bertclf.classifier import TextClassifier

log = logging.getLogger("bertclf")

EXIT_BAD_INPUT = 2
RUN_DIRECTORY_EXTRA_BYTES = 20 << 20  # a run directory beyond the encoder's weights: tokenizer, head, metrics
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
STDOUT_ROWS = 1000
# The options of `inspect`: how files are read, and the model whose tokenizer reads them.
INSPECT_OPTIONS = ("text_column", "label_column", "task", "label_columns", "label_sep", "label_names",
                   "allow_empty_labels", "columns", "quoting", "text_separator", "encoding", "model", "max_length")
DEMO_TEXTS = [
    "I was billed twice for the same month, please refund one of the charges",
    "The app crashes every time I try to export a report to PDF",
    "My parcel has been stuck at customs for two weeks",
    "Please add a dark theme to the desktop version",
    "I can't log in, the password reset email never arrives",
]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, like every other bertclf error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config_flags(parser: argparse.ArgumentParser, only: Callable[[dataclasses.Field], bool] | None = None) -> None:
    """One flag per config field (those ``only`` accepts), grouped as in the dataclass; defaults stay unset so files
    can fill them."""
    parser.add_argument("--config", metavar="FILE", help="YAML or JSON file of options; flags override it.")
    groups: dict[str, argparse._ArgumentGroup] = {}
    hints = typing.get_type_hints(ClassifierConfig)
    for spec in dataclasses.fields(ClassifierConfig):
        if only is not None and not only(spec):
            continue
        group_name = spec.metadata["group"]
        if group_name not in groups:
            groups[group_name] = parser.add_argument_group(f"{group_name} options")
        help_text = f"{spec.metadata['help']} [default: {default_text(spec)}]".replace("%", "%%")
        flag = "--" + spec.name.replace("_", "-")
        choices = spec.metadata["choices"]
        metavar = "{" + ",".join(choices) + "}" if choices else spec.name.upper()
        target = base_type(hints[spec.name])
        if target is bool:
            groups[group_name].add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                            help=help_text)
        elif typing.get_origin(target) is list and not spec.metadata["comma_list"]:
            groups[group_name].add_argument(flag, action="append", metavar=metavar, default=argparse.SUPPRESS,
                                            help=help_text)
        else:
            groups[group_name].add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=help_text)


def config_from_args(args: argparse.Namespace, sections: Sequence[str] = (), **defaults: Any) -> ClassifierConfig:
    """Defaults < ``defaults`` (e.g. the demo's data) < the ``--config`` file < flags given on the command line;
    the file's ``sections`` (read by the command itself) are not options."""
    names = {spec.name for spec in dataclasses.fields(ClassifierConfig)}
    flags = {name: value for name, value in vars(args).items() if name in names}
    from_file = read_config_file(args.config, sections) if args.config else {}
    options = {name: value for name, value in from_file.items() if name not in sections}
    return ClassifierConfig(**{**defaults, **options, **flags})


def positive_int(text: str) -> int:
    return _checked_number(text, int, lambda value: value >= 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    return _checked_number(text, int, lambda value: value >= 0, "a whole number of at least 0")


def non_negative_float(text: str) -> float:
    return _checked_number(text, float, lambda value: value >= 0, "a number of at least 0")


def positive_seconds(text: str) -> float:
    """Finite and above 0: NaN passes no comparison and infinity every one."""
    return _checked_number(text, float, lambda value: 0 < value < float("inf"), "a finite number of seconds above 0")


def probability(text: str) -> float:
    return _checked_number(text, float, lambda value: 0 < value < 1, "a number between 0 and 1")


def _checked_number(text: str, kind: type, valid: Callable[[Any], bool], expected: str) -> Any:
    """argparse ``type=``: the error names the flag the user typed, not the config field behind it."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    # -q works before or after the command; SUPPRESS keeps a subcommand from resetting what the main parser read.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="Print only results and errors.")
    parser = _Parser(prog="bertclf", description="Fine-tune BERT-family encoders into text classifiers.",
                     parents=[common])
    parser.add_argument("--version", action="version", version=f"bertclf {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="Fine-tune a classifier on a labelled file.", parents=[common],
                                description="Fine-tune a classifier and save it as a run directory.")
    train.add_argument("--resume", metavar="PATH", help="Continue an interrupted run from its latest checkpoint: the "
                                                        "staging directory that the interruption named (options come "
                                                        "from it; those given must not change the result).")
    add_config_flags(train)

    tune = commands.add_parser(
        "tune", help="Search the training options (Optuna, pruned), then train the best into a run directory.",
        parents=[common], description="Trials of training runs under options drawn from a search space, scored on the "
                                      "validation metric and pruned from their evaluations, in a study that a "
                                      "restarted command continues and several processes share; then the best "
                                      "options trained into --output (default: STUDY_DIR/best).")
    tune.add_argument("--trials", type=positive_int, default=20,
                      help="Trials the study holds at the end, finished or pruned, whichever process ran them "
                           "[default: 20].")
    tune.add_argument("--timeout", type=positive_seconds, metavar="S",
                      help="Start no trial after S seconds (the one running finishes) [default: none].")
    tune.add_argument("--study-dir", default="tune-study", metavar="DIR",
                      help="The study (SQLite), each trial's folder, trials.csv and tune_report.html "
                           "[default: tune-study].")
    tune.add_argument("--storage", metavar="URL", help="An Optuna storage URL shared by several machines "
                                                       "(postgresql://...) [default: the study directory's SQLite].")
    tune.add_argument("--study-name", default="bertclf", help="The study's name in its storage [default: bertclf].")
    tune.add_argument("--pruner", choices=("median", "halving", "none"), default="median",
                      help="Stop bad trials from their epochs' validation scores: 'median' (worse than the median of "
                           "earlier trials at the same epoch), 'halving' (successive halving) [default: median].")
    tune.add_argument("--pruner-startup-trials", type=non_negative_int, default=3, metavar="N",
                      help="Trials the median pruner lets finish before it stops any [default: 3].")
    tune.add_argument("--model", action="append", metavar="MODEL",
                      help="Encoder (hub id or local directory); repeat it to search among several [default: "
                           "the embedded all-MiniLM-L6-v2].")
    add_config_flags(tune, only=lambda spec: spec.name != "model")

    demo = commands.add_parser("demo", help="Train, evaluate and predict on the bundled support-ticket data.",
                               parents=[common],
                               description="Train on the bundled support tickets with the bundled model.")
    add_config_flags(demo)

    inspect = commands.add_parser(
        "inspect", help="Check labelled data before training: labels, duplicates, leaks, lengths, vocabulary.",
        parents=[common], description="What the data holds and how the model's tokenizer reads it: rows, labels, empty "
                                      "and duplicate texts, texts under different labels, leaks between the files "
                                      "given, token lengths and vocabulary coverage.")
    inspect.add_argument("data", nargs="+", help="Labelled files; texts of a later file found in an earlier one are "
                                                 "leaks (e.g. train.csv test.csv).")
    add_config_flags(inspect, only=lambda spec: spec.name in INSPECT_OPTIONS)

    report = commands.add_parser("report", help="Rebuild a run's report.html, or draw it for a new labelled file.",
                                 parents=[common])
    report.add_argument("run", help="Run directory written by 'bertclf train'.")
    report.add_argument("--data", help="Labelled file to score and report on instead of the run's test part (the "
                                       "baseline is retrained on the run's training file).")
    add_column_overrides(report, labelled=True)

    evaluate = commands.add_parser("evaluate", help="Score a trained classifier on labelled data.", parents=[common])
    evaluate.add_argument("run", help="Run directory written by 'bertclf train'.")
    evaluate.add_argument("--data", required=True, help="Labelled file to score.")
    evaluate.add_argument("--output", help="Also write the metrics to this JSON file.")
    evaluate.add_argument("--overwrite", action="store_true", help="Replace --output if it already exists.")
    add_column_overrides(evaluate, labelled=True)

    predict = commands.add_parser("predict", help="Label new texts with a trained classifier.", parents=[common])
    predict.add_argument("run", help="Run directory written by 'bertclf train'.")
    predict.add_argument("--input", required=True, help="File of texts, or '-' for one text per line on stdin.")
    predict.add_argument("--output", default="-",
                         help="Predictions file (.csv, .tsv, .jsonl, .parquet), or '-' for CSV on stdout [default: -].")
    predict.add_argument("--overwrite", action="store_true", help="Replace --output if it already exists.")
    add_column_overrides(predict, labelled=False)

    export = commands.add_parser("export", help="Export a trained classifier for ONNX Runtime.", parents=[common],
                                 description="Write a self-contained ONNX export of a run directory, checked against "
                                             "the PyTorch model before anything is written.")
    export.add_argument("run", help="Run directory written by 'bertclf train'.")
    export.add_argument("--format", choices=("onnx",), default="onnx", help="Export format [default: onnx].")
    export.add_argument("--quantize", choices=("int8",), help="Int8 weights (dynamic quantization) [default: fp32].")
    export.add_argument("--output", required=True, help="Export directory to create.")
    export.add_argument("--check-data", help="File of texts (labelled or not) to check the export on [default: the "
                                             "run's validation texts].")
    export.add_argument("--overwrite", action="store_true", help="Replace --output if it already exists.")

    serve = commands.add_parser("serve", help="Serve a classifier over HTTP (REST, micro-batched).", parents=[common],
                                description="Serve a run or export directory: POST /predict, GET /health, /ready, "
                                            "/info, /metrics and /docs.")
    serve.add_argument("run", help="Run directory or export directory.")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on [default: 127.0.0.1].")
    serve.add_argument("--port", type=positive_int, default=8000, help="Port [default: 8000].")
    serve.add_argument("--runtime", choices=RUNTIMES, default="auto", help="What runs the model [default: auto].")
    serve.add_argument("--threads", type=positive_int, help="CPU threads for inference [default: the runtime's].")
    serve.add_argument("--shutdown-timeout", type=positive_seconds, metavar="S",
                       help="On SIGTERM or SIGINT, cut requests still running after S seconds (to stay within an "
                            "orchestrator's grace period) [default: wait for every request in flight].")
    for spec in dataclasses.fields(ServeSettings):
        serve.add_argument("--" + spec.name.replace("_", "-"), default=spec.default,
                           type=non_negative_float if spec.type in (float, "float") else positive_int,
                           help=f"{spec.metadata['help']} [default: {spec.default}]")
    return parser


def add_column_overrides(parser: argparse.ArgumentParser, labelled: bool) -> None:
    """Data columns of a new file may differ from the training file's; by default the saved ones are used."""
    parser.add_argument("--text-column", action="append", help="Text column(s) [default: as in training].")
    if labelled:
        parser.add_argument("--label-column", help="Label column [default: as in training].")
    parser.add_argument("--columns", help="Column names of a header-less file, comma-separated.")
    parser.add_argument("--quoting", choices=("auto", "csv", "none"),
                        help="Quoted fields in CSV/TSV files [default: as in training].")
    parser.add_argument("--encoding", help="Character encoding of the file [default: as in training].")
    parser.add_argument("--batch-size", type=positive_int, help="Texts per batch [default: as in training].")
    parser.add_argument("--threshold", type=probability,
                        help="Multilabel: one decision threshold for every label, instead of the thresholds tuned in "
                             "training.")
    parser.add_argument("--min-labels", type=non_negative_int,
                        help="Multilabel: predict at least this many labels per text [default: as in training].")
    parser.add_argument("--runtime", choices=RUNTIMES, default="auto",
                        help="What runs the model: PyTorch (torch), PyTorch with int8 Linear layers (torch-int8), ONNX "
                             "Runtime (onnx, onnx-int8; on a run directory the model is exported on the fly, see "
                             "'bertclf export'); 'auto' is what the directory holds [default: auto].")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for inference [default: the runtime's].")


def load_for_data(args: argparse.Namespace) -> TextClassifier:
    """A saved classifier whose column settings follow this command's flags."""
    from bertclf.classifier import TextClassifier

    classifier = TextClassifier.load(args.run, runtime=args.runtime, threads=args.threads)
    overrides = {"text_column": args.text_column, "label_column": getattr(args, "label_column", None),
                 "columns": args.columns, "quoting": args.quoting, "encoding": args.encoding,
                 "eval_batch_size": args.batch_size,
                 "threshold": args.threshold, "min_labels": args.min_labels}
    given = {name: value for name, value in overrides.items() if value is not None}
    if args.columns is None and given.get("text_column"):
        given["columns"] = None  # new text columns mean a file with a header, unlike the training file
    classifier.config = dataclasses.replace(classifier.config, **given)
    return classifier


def emit(text: str) -> None:
    """Write results to standard output, flushed, so that a full disk or a closed pipe surfaces here (in the first
    process only, when there are several)."""
    if not is_main_process():
        return
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as error:
        raise BertclfError(f"cannot write to standard output: {error.strerror or error}") from None


def run_train(config: ClassifierConfig, resume: Path | None = None) -> TextClassifier:
    """Train, print the reports, save the run; checkpoints go to the run's staging directory (``resume``: the
    staging directory of an interrupted run) until the run directory is saved."""
    from bertclf import rundir
    from bertclf.classifier import TextClassifier
    from bertclf.metrics import format_report, format_seed_summary
    from bertclf.modeling import weights_size

    if config.output is None and world_size() > 1:
        raise BertclfError("several processes need --output: each would name its own default run directory")
    output = Path(config.output or f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    config = dataclasses.replace(config, output=str(output))  # recorded, so that a resumed run saves to it too
    rundir.check_output_directory(output, config.overwrite)
    # A checkpoint is the weights and the optimizer's two moments; one more is written before the oldest goes, and
    # the best weights and the run directory hold a copy each.
    copies = 3 * (config.save_total_limit + 1) + 2
    rundir.check_free_space(output, copies * (weights_size(config.model) or 0) + RUN_DIRECTORY_EXTRA_BYTES)
    if not is_main_process():  # one of several processes (torchrun, accelerate launch): it trains, the first writes
        return TextClassifier(config).fit(checkpoint_dir=resume or rundir.run_staging_directory(output),
                                          resume=resume is not None)
    if resume is None and config.overwrite:
        shutil.rmtree(rundir.run_staging_directory(output), ignore_errors=True)
    with rundir.run_staging(output, resume) as staging:
        classifier = TextClassifier(config).fit(checkpoint_dir=staging, resume=resume is not None)
        for split in ("val", "test"):
            if split in classifier.metrics_:
                emit(format_report(classifier.metrics_[split], split) + "\n\n")
        if "seeds" in classifier.metrics_:
            emit(format_seed_summary(classifier.metrics_["seeds"], classifier.task_ == "multilabel") + "\n\n")
        saved = classifier.save(output)
    emit(f"model saved to {saved}\n")
    return classifier


def run_tune(args: argparse.Namespace) -> TextClassifier:
    """Search, print the best run's reports, save it; the study stays in --study-dir for the next command."""
    from bertclf import rundir
    from bertclf.classifier import TextClassifier
    from bertclf.metrics import format_report

    models = args.model or []
    if models:
        args.model = models[0]
    else:
        del args.model
    config = config_from_args(args, sections=("search_space",))
    search_space = read_config_file(args.config, ("search_space",)).get("search_space") if args.config else None
    output = Path(config.output or Path(args.study_dir) / "best")
    config = dataclasses.replace(config, output=str(output))
    rundir.check_output_directory(output, config.overwrite)
    _optuna_lines_off()
    classifier = TextClassifier(config).tune(
        trials=args.trials, timeout=args.timeout, study_dir=args.study_dir, storage=args.storage,
        study_name=args.study_name, pruner=args.pruner, pruner_startup_trials=args.pruner_startup_trials,
        models=tuple(models), search_space=search_space)
    tuning = classifier.metrics_["tuning"]
    for split in ("val", "test"):
        if split in classifier.metrics_:
            emit(format_report(classifier.metrics_[split], split) + "\n\n")
    saved = classifier.save(output)
    emit(f"best of {sum(tuning['trials'].values())} trials: trial {tuning['best_trial']}, validation "
         f"{tuning['metric']} {tuning['best_value']:.4f}; trials and report in {args.study_dir}\n"
         f"model saved to {saved}\n")
    return classifier


def _optuna_lines_off() -> None:
    """Optuna prints a line per trial through its own handler; the command prints its own (``-q``: none)."""
    try:
        import optuna
    except ModuleNotFoundError:  # TextClassifier.tune says what to install
        return
    optuna.logging.disable_default_handler()


def resumed_config(args: argparse.Namespace) -> tuple[ClassifierConfig, Path]:
    """The options of the interrupted run in ``--resume``, with those given now on top (checked in ``fit``)."""
    from bertclf import rundir

    folder = Path(args.resume)
    options = rundir.interrupted_run_options(folder)
    names = {spec.name for spec in dataclasses.fields(ClassifierConfig)}
    given = {**(read_config_file(args.config) if args.config else {}),
             **{name: value for name, value in vars(args).items() if name in names}}
    return ClassifierConfig(**{**read_config_file(options), **given}), folder


def run_demo(config: ClassifierConfig) -> None:
    classifier = run_train(config)
    probabilities = classifier.predict_proba(DEMO_TEXTS)
    emit("\npredictions on new tickets:\n")
    for text, row in zip(DEMO_TEXTS, probabilities, strict=True):
        emit(f"  {classifier.classes_[row.argmax()]:<16} {row.max():.2f}  {text}\n")


def run_inspect(config: ClassifierConfig, files: Sequence[str]) -> None:
    from bertclf.data import load_examples
    from bertclf.modeling import load_tokenizer
    from bertclf.reporting import format_inspection, inspect_data

    parts = [load_examples(path, config) for path in files]
    multilabel = {part.multilabel for part in parts}
    if len(multilabel) > 1:
        raise BertclfError("some files hold one label per text and others several: pass --task multilabel")
    tokenizer = load_tokenizer(config.model)
    max_length = None if config.max_length == "auto" else config.max_length
    inspection = inspect_data(parts, tokenizer, config.model, max_length)
    emit(format_inspection(inspection) + "\n")


def run_report(args: argparse.Namespace) -> None:
    from bertclf.reporting import load_inputs, rebuild  # keeps bertclf --help light

    run = Path(args.run)
    classifier = load_for_data(args)
    inputs = classifier.report_inputs(run.name, *load_inputs(run))
    new = classifier.evaluation_of(args.data) if args.data is not None else None
    emit(f"report written to {rebuild(run, inputs, new)}\n")


def run_evaluate(args: argparse.Namespace) -> None:
    from bertclf.data import SUPPORTED_EXTENSIONS
    from bertclf.metrics import format_report
    from bertclf.rundir import check_output_file, write_json

    if args.output:
        suffix = Path(args.output).suffix.lower()
        if suffix in SUPPORTED_EXTENSIONS and suffix != ".json":  # a .csv holding JSON would be read as CSV
            raise BertclfError(f"evaluate --output writes the metrics as JSON; name a .json file, not {args.output}")
        check_output_file(Path(args.output), args.overwrite)
    classifier = load_for_data(args)
    metrics = classifier.evaluate(args.data)
    emit(format_report(metrics, Path(args.data).name) + "\n")
    if args.output:
        write_json(Path(args.output), metrics)


def read_stdin_texts() -> list[str]:
    """One text per non-blank line of standard input, which must be UTF-8 (as files must)."""
    stream = getattr(sys.stdin, "buffer", None)
    raw = stream.read() if stream is not None else sys.stdin.read().encode("utf-8", "surrogateescape")
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise BertclfError(f"standard input is not UTF-8 text (line {line})") from None
    texts = [line for line in content.splitlines() if line.strip()]
    if not texts:
        raise BertclfError("no texts on standard input")
    return texts


def run_predict(args: argparse.Namespace) -> None:
    import pandas as pd  # keeps bertclf --help light

    from bertclf.data import DELIMITED_SUFFIXES, TableWriter, check_output_extension, check_writable
    from bertclf.prediction import PART_ROWS, PredictionColumns, check_parts, predict_parts, read_parts
    from bertclf.rundir import check_output_file

    output = None if args.output == "-" else Path(args.output)
    suffix = ".csv"  # standard output, and a stream such as /dev/stdout without an extension
    if output is not None:
        check_output_file(output, args.overwrite)
        suffix = check_output_extension(output)
    classifier = load_for_data(args)
    config = classifier.config
    if args.input == "-":
        texts = read_stdin_texts()
        stdin_parts = [(pd.DataFrame({"text": texts}), texts)]
        source, parts_of = "standard input", lambda: iter(stdin_parts)
    else:
        source, parts_of = Path(args.input).name, lambda: read_parts(args.input, config, PART_ROWS)
    columns = PredictionColumns(classifier.classes_, classifier.task_ == "multilabel", config.label_sep,
                                suffix in DELIMITED_SUFFIXES)
    # The whole input is read and checked once first: a bad row in its last part fails before anything is written.
    total = check_parts(parts_of(), columns, lambda frame: check_writable(frame, suffix), source)
    parts = parts_of()
    probabilities_of, labels_of = classifier.predict_proba, classifier.labels_from_probabilities
    if output is None:
        written = predict_parts(probabilities_of, labels_of, parts, _emit_csv_part(), columns, total)
    else:
        with TableWriter(output) as writer:
            written = predict_parts(probabilities_of, labels_of, parts, writer.write, columns, total)
        log.info("wrote %d predictions to %s", written, output)


def _emit_csv_part() -> Callable[[Any], None]:
    """Writes frames to stdout as one CSV (a header before the first), in parts: a reader that stops early (``| head``)
    stops us early."""
    from bertclf.data import delimited_text

    first = [True]

    def write(frame: Any) -> None:
        for start in range(0, len(frame), STDOUT_ROWS):
            emit(delimited_text(frame.iloc[start:start + STDOUT_ROWS], ".csv", header=first[0]))
            first[0] = False

    return write


def run_serve(args: argparse.Namespace) -> None:
    # the limits are checked first: a wrong one is refused at once, not after the model has loaded
    settings = ServeSettings(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(ServeSettings)})
    try:
        import uvicorn  # optional: [serve]

        from bertclf.serving import create_app
    except ImportError:
        raise BertclfError("serving needs FastAPI and uvicorn: pip install 'bertclf[serve]'") from None
    from bertclf.classifier import TextClassifier

    check_can_listen(args.host, args.port)  # before the model loads, not after
    classifier = TextClassifier.load(args.run, runtime=args.runtime, threads=args.threads)
    log.info("serving %s (%s, %s runtime) on http://%s:%d", args.run, classifier.task_, classifier.runtime_.name,
             args.host, args.port)
    # uvicorn handles SIGINT/SIGTERM itself (stop accepting, finish requests in flight) and then re-raises the
    # signal to the handler it found: ignoring it there makes a requested stop a clean exit. Without a
    # --shutdown-timeout it waits for every request in flight, as the README promises.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    try:
        uvicorn.run(create_app(classifier, settings), host=args.host, port=args.port,
                    log_level="warning" if getattr(args, "quiet", False) else "info",
                    timeout_graceful_shutdown=args.shutdown_timeout)
    except SystemExit as failure:  # uvicorn exits when it cannot listen (port taken, bad address)
        raise BertclfError(f"cannot serve on {args.host}:{args.port} (see the message above)") from failure


def check_can_listen(host: str, port: int) -> None:
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise BertclfError(f"cannot listen on {host}:{port}: {reason}") from None


def run_export(args: argparse.Namespace) -> None:
    from bertclf.classifier import TextClassifier
    from bertclf.inference import describe_fusion, raise_if_unavailable
    from bertclf.modeling import PooledClassifier
    from bertclf.rundir import check_output_directory

    raise_if_unavailable()
    output = Path(args.output)
    # An export replaces its output: never the run it reads nor a folder holding it, and no part of the run either
    # (a run directory is replaced whole by the commands that write it).
    where, run = output.resolve(), Path(args.run).resolve()
    relation = "is" if where == run else "is inside" if run in where.parents else "holds" if where in run.parents \
        else None
    if relation:
        raise BertclfError(f"--output {output} {relation} the run being exported ({args.run}); name a directory "
                           "outside it")
    check_output_directory(output, args.overwrite)
    classifier = TextClassifier.load(args.run, runtime="torch")
    info = classifier.export(output, quantize=args.quantize, check_data=args.check_data, overwrite=args.overwrite)
    check = info["check"]
    network = classifier.model_
    encoder = network.encoder if isinstance(network, PooledClassifier) else network  # a pooled network has no config
    layers = getattr(encoder.config, "num_hidden_layers", None) or "?"
    lines = [f"exported {args.run} to {output} (ONNX, {args.quantize or 'fp32'})",
             f"  graph: {describe_fusion(info['fused_operators'], layers)}",
             f"  check on {check['texts']} texts: labels agree {100 * check['agreement']:.2f}%, largest probability "
             f"difference {check['max_probability_difference']:.2g}"]
    if "metric" in check:
        lines.append(f"  {check['metric']}: torch {check['torch']:.4f}, export {check['export']:.4f}")
    emit("\n".join(lines) + "\n")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the message (tests and callers may swap it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(quiet: bool) -> None:
    """The command line shows the library's progress on stderr; the library itself configures no handler."""
    if not any(isinstance(handler, _StderrHandler) for handler in log.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.propagate = False
    # The other processes of a distributed run would repeat every line of the first.
    log.setLevel(logging.ERROR if not is_main_process() else logging.WARNING if quiet else logging.INFO)


def _raise_interrupted(signum: int, _frame: Any) -> None:
    # Further signals are ignored so that the clean-up this exception starts (removing staging files) can finish.
    for other in STOP_SIGNALS:
        signal.signal(other, signal.SIG_IGN)
    raise Interrupted(signum)


def signals_raise_interrupted() -> StopSignalHandler:
    """SIGINT and SIGTERM become :class:`Interrupted`, so every ``finally`` and clean-up runs before the exit."""
    return StopSignalHandler(_raise_interrupted)


def _quiet_broken_pipe() -> int:
    """The reader of our output went away (``| head``): stop quietly, as Unix tools do, without a flush error."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    args = None
    with signals_raise_interrupted():
        try:
            args = build_parser().parse_args(argv)
            configure_logging(getattr(args, "quiet", False))
            if args.command == "train" and args.resume:
                run_train(*resumed_config(args))
            elif args.command == "train":
                run_train(config_from_args(args))
            elif args.command == "tune":
                run_tune(args)
            elif args.command == "demo":
                from bertclf.data import demo_dataset_path

                run_demo(config_from_args(args, train=str(demo_dataset_path()), text_column=["text"],
                                          label_column="label",
                                          output=f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}"))
            elif args.command == "evaluate":
                run_evaluate(args)
            elif args.command == "inspect":
                run_inspect(config_from_args(args), args.data)
            elif args.command == "report":
                run_report(args)
            elif args.command == "export":
                run_export(args)
            elif args.command == "serve":
                run_serve(args)
            else:
                run_predict(args)
            emit("")
        except BertclfError as error:
            print(f"bertclf: error: {error}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except BrokenPipeError:
            return _quiet_broken_pipe()
        except OSError as error:  # the file system refused something no check could foresee (a race, a quota)
            where = f" ({error.filename})" if error.filename else ""
            print(f"bertclf: error: {error.strerror or error}{where}", file=sys.stderr)
            return EXIT_BAD_INPUT
        except KeyboardInterrupt as interrupt:
            number = interrupt.signal_number if isinstance(interrupt, Interrupted) else signal.SIGINT
            checkpoint = interrupt.checkpoint if isinstance(interrupt, Interrupted) else None
            resume = f"; a checkpoint is saved: resume with  bertclf train --resume {checkpoint}" if checkpoint else ""
            if getattr(args, "command", None) == "tune":
                resume = "; the study is kept: the same command continues it"
            print(f"bertclf: interrupted ({signal.Signals(number).name}){resume}", file=sys.stderr)
            return 128 + number
    return 0


if __name__ == "__main__":
    sys.exit(main())
