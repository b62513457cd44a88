"""bertclf tune on the tiny model: the space and its config-file section, pruning, a study that kill -9 and a
restart continue and that two processes share, the best run directory used by predict, export and serve, and bad
input in one line."""

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess

import optuna
import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from bertclf import TextClassifier
from bertclf.errors import BertclfError
from bertclf.serving import ServeSettings, create_app
from bertclf.tuning import STUDY_FILE, TRIAL_FILE, TRIALS_CSV, TRIALS_DIR, TUNE_REPORT, SearchSettings
from bertclf.tuning.space import build_space, default_space, parse_space
from bertclf.tuning.study import make_pruner, open_study, storage_url
from tests.helpers import assert_one_line_error, bertclf_command, make_texts, run_cli, wait_until

# The tiny model learns the generated topics at 5e-3 and not at all at 1e-7: a space of the two makes a bad trial
# that the median pruner stops.
TWO_RATES = {"learning_rate": {"name": "CategoricalDistribution", "attributes": {"choices": [5e-3, 1e-7]}}}


ONE_THREAD = {**os.environ, "OMP_NUM_THREADS": "1"}  # processes beside each other on a small machine


def _only(entries):
    """A config file's search_space of ``entries`` alone (every default option left out)."""
    return {**dict.fromkeys(default_space(False, False, []), None), **entries}


@pytest.fixture
def tune_files(tmp_path, tiny_model):
    make_texts(240, seed=1).to_csv(tmp_path / "train.csv", index=False)
    options = {"model": tiny_model, "epochs": 4, "batch_size": 8, "seed": 11, "low_label": "off", "min_steps": 0,
               "head_learning_rate": 1e-2, "warmup_ratio": 0.0, "search_space": _only(TWO_RATES)}
    (tmp_path / "tune.yaml").write_text(yaml.safe_dump(options))
    return tmp_path


def _study(folder, name="bertclf"):
    return optuna.load_study(study_name=name, storage=storage_url(folder, None))


def _enqueue(folder, *rates, name="bertclf"):
    folder.mkdir(exist_ok=True)
    study = optuna.create_study(study_name=name, storage=storage_url(folder, None), direction="maximize",
                                load_if_exists=True)
    for rate in rates:
        study.enqueue_trial({"learning_rate": rate})


# --- the space ----------------------------------------------------------------------------------------------------

def test_the_default_space_follows_the_mode_the_task_and_the_text_lengths():
    fine_tune = default_space(False, False, [20] * 100)
    assert {"learning_rate", "layer_decay", "freeze_epochs", "label_smoothing"} <= set(fine_tune)
    assert "long_text" not in fine_tune
    assert "label_smoothing" not in default_space(False, True, [20] * 100)  # single-label data only
    assert {"long_text", "max_length"} <= set(default_space(False, False, [20] * 90 + [400] * 10))
    assert set(default_space(True, False, [])) == {"contrastive_learning_rate", "contrastive_steps", "batch_size",
                                                  "pooling"}


def test_a_config_file_space_overrides_removes_and_adds_options_in_optunas_distributions():
    overrides = parse_space({"learning-rate": {"name": "FloatDistribution",
                                               "attributes": {"low": 1e-5, "high": 1e-4, "log": True}},
                             "head": None}, "f.yaml")
    space = build_space(default_space(False, False, []), overrides, ["a", "b", "a"])
    assert space["learning_rate"] == FloatDistribution(1e-5, 1e-4, log=True)
    assert "head" not in space
    assert space["model"] == CategoricalDistribution(["a", "b", "a"])
    assert "model" not in build_space(default_space(False, False, []), {}, ["a"])  # one encoder is not a choice


@pytest.mark.parametrize(("entries", "fragment"), [
    ({"no_such_option": None}, "unknown option 'no_such_option'"),
    ({"epochs": {"name": "NormalDistribution", "attributes": {}}}, "'epochs' is not an Optuna distribution"),
    ({"epochs": [1, 2]}, "'epochs' is not an Optuna distribution"),
    ([1, 2], "must map option names"),
])
def test_a_bad_space_is_named(entries, fragment):
    with pytest.raises(BertclfError, match=fragment):
        parse_space(entries, "f.yaml")


def test_a_space_left_empty_is_refused():
    with pytest.raises(BertclfError, match="the search space is empty"):
        build_space({"head": CategoricalDistribution(["linear"])}, {"head": None}, [])


# --- a search -------------------------------------------------------------------------------------------------------

def test_a_search_prunes_the_bad_trial_records_every_trial_and_returns_the_best_fitted(tune_files, tiny_model):
    study_dir = tune_files / "study"
    _enqueue(study_dir, 5e-3, 1e-7, 5e-3)
    options = yaml.safe_load((tune_files / "tune.yaml").read_text())
    space = options.pop("search_space")
    base = TextClassifier(**options)
    tuned = base.tune(str(tune_files / "train.csv"), settings=SearchSettings(
        trials=3, study_dir=study_dir, pruner_startup_trials=1, search_space=space))
    trials = _study(study_dir).trials
    assert [trial.state for trial in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert max(trials[1].intermediate_values) < 4  # stopped before its last epoch
    # the best options trained into a new classifier, the one tuned left as it was
    assert tuned.config.learning_rate == 5e-3 and base.config.learning_rate == 1e-4
    summary = tuned.metrics_["tuning"]
    assert summary["best_trial"] in (0, 2) and summary["trials"] == {"complete": 2, "pruned": 1}
    assert summary["best_value"] == pytest.approx(tuned.metrics_["val"]["f1_macro"])  # the same run, retrained
    # every trial in its own folder, the table and the page
    records = [json.loads((study_dir / TRIALS_DIR / f"{number:04d}" / TRIAL_FILE).read_text()) for number in range(3)]
    assert [record["state"] for record in records] == ["complete", "pruned", "complete"]
    table = pd.read_csv(study_dir / TRIALS_CSV)
    assert list(table["state"]) == ["COMPLETE", "PRUNED", "COMPLETE"] and "learning_rate" in table
    page = (study_dir / TUNE_REPORT).read_text()
    assert page.count("data:image/png;base64,") >= 3 and "http://" not in page and "https://" not in page


def test_a_continued_study_runs_only_the_missing_trials_and_refuses_other_data(tune_files):
    options = yaml.safe_load((tune_files / "tune.yaml").read_text())
    space = options.pop("search_space")
    settings = {"study_dir": tune_files / "study", "pruner": "none", "search_space": space}
    TextClassifier(**options).tune(str(tune_files / "train.csv"), trials=1, **settings)
    TextClassifier(**options).tune(str(tune_files / "train.csv"), trials=2, **settings)
    assert len(_study(tune_files / "study").trials) == 2
    make_texts(240, seed=2).to_csv(tune_files / "other.csv", index=False)
    with pytest.raises(BertclfError, match="was started with other training data"):
        TextClassifier(**options).tune(str(tune_files / "other.csv"), trials=3, **settings)


def test_the_trials_of_a_dead_process_and_of_an_interrupt_are_queued_again_once(tmp_path):
    url = storage_url(tmp_path, None)
    study = optuna.create_study(study_name="s", storage=url)
    gone = subprocess.Popen(["true"])  # a process id that no longer runs
    gone.wait()
    killed = study.ask({"x": FloatDistribution(0, 1)})
    killed.set_user_attr("host", socket.gethostname())
    killed.set_user_attr("pid", gone.pid)
    alive = study.ask({"x": FloatDistribution(0, 1)})  # another live process's trial stays running
    alive.set_user_attr("host", socket.gethostname())
    alive.set_user_attr("pid", os.getppid())
    interrupted = study.ask({"x": FloatDistribution(0, 1)})
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=TrialState.FAIL)
    for _ in range(2):  # the second opening queues nothing more
        opened = open_study(url, "s", "minimize", make_pruner("none", 0), {})
    trials = opened.trials
    assert [trial.state for trial in trials[:3]] == [TrialState.FAIL, TrialState.RUNNING, TrialState.FAIL]
    waiting = [trial for trial in trials if trial.state == TrialState.WAITING]
    assert sorted(trial.system_attrs["failed_trial"] for trial in waiting) == [killed.number, interrupted.number]
    assert {trial.params["x"] for trial in waiting} == {trials[0].params["x"], trials[2].params["x"]}


# --- the command line -----------------------------------------------------------------------------------------------

def _tune_args(folder, *extra):
    return ["tune", "--train", folder / "train.csv", "--config", folder / "tune.yaml", "--study-dir",
            folder / "study", "--pruner-startup-trials", 1, *extra]


@pytest.mark.slow
def test_tune_killed_with_sigkill_and_run_again_continues_the_study(tune_files):
    study_dir = tune_files / "study"
    args = _tune_args(tune_files, "--trials", 3, "--epochs", 12, "--output", tune_files / "best")
    log = (tune_files / "log.txt").open("w")
    process = subprocess.Popen(bertclf_command(args), stdout=subprocess.DEVNULL, stderr=log, env=ONE_THREAD)
    try:
        def second_trial_running():  # read only: opening the storage here would race the command creating it
            if not (study_dir / STUDY_FILE).is_file():
                return False
            try:
                with contextlib.closing(sqlite3.connect(f"file:{study_dir / STUDY_FILE}?mode=ro", uri=True)) as db:
                    return db.execute("SELECT count(*) FROM trials JOIN trial_params USING (trial_id) WHERE "
                                      "number = 1 AND state = 'RUNNING'").fetchone()[0] > 0  # training
            except sqlite3.OperationalError:  # the tables are being created
                return False

        wait_until(second_trial_running, "the second trial", timeout=120)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    code, out, err = run_cli(args)
    assert code == 0, err
    trials = _study(study_dir).trials
    finished = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 3 and trials[0].state == TrialState.COMPLETE
    assert trials[1].state == TrialState.FAIL  # the killed one, given again once:
    retries = [trial for trial in trials if trial.system_attrs.get("failed_trial") == 1]
    assert len(retries) == 1 and retries[0].params == trials[1].params and retries[0] in finished
    assert not [trial for trial in trials if trial.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert "model saved to" in out


@pytest.mark.slow
def test_two_processes_share_one_study(tune_files):
    study_dir = tune_files / "study"
    _enqueue(study_dir)  # the study exists before they start
    logs = [tune_files / f"log{index}.txt" for index in range(2)]
    processes = [subprocess.Popen(bertclf_command(_tune_args(tune_files, "--trials", 4, "--epochs", 6, "--pruner",
                                                             "none", "--output", tune_files / f"best{index}")),
                                  stdout=subprocess.DEVNULL, stderr=log.open("w"), env=ONE_THREAD)
                 for index, log in enumerate(logs)]
    for process, log in zip(processes, logs, strict=True):
        assert process.wait(timeout=300) == 0, log.read_text()
    trials = _study(study_dir).trials
    assert len(trials) >= 4 and all(trial.state == TrialState.COMPLETE for trial in trials)
    assert len({trial.user_attrs["pid"] for trial in trials}) == 2  # both ran trials
    folders = sorted(path.name for path in (study_dir / TRIALS_DIR).iterdir())
    assert folders == [f"{trial.number:04d}" for trial in trials]  # one folder each, none shared


def test_the_best_run_directory_predicts_exports_and_serves(tune_files, tmp_path):
    _enqueue(tune_files / "study", 5e-3)
    code, out, err = run_cli(_tune_args(tune_files, "--trials", 1, "--output", tmp_path / "best"))
    assert code == 0, err
    assert "best of 1 trials: trial 0" in out
    code, out, err = run_cli(["predict", tmp_path / "best", "--input", "-"],
                             stdin="the match ended in a draw\nnew laptop with a fast chip\n")
    assert code == 0 and len(out.strip().splitlines()) == 3, err
    code, _, err = run_cli(["export", tmp_path / "best", "--output", tmp_path / "onnx", "--quantize", "int8"])
    assert code == 0, err
    with TestClient(create_app(TextClassifier.load(tmp_path / "best"), ServeSettings())) as client:
        answer = client.post("/predict", json={"texts": ["the match ended in a draw"]})
        assert answer.status_code == 200 and answer.json()["predictions"]
    metrics = json.loads((tmp_path / "best" / "metrics.json").read_text())
    assert metrics["tuning"]["best_options"] == {"learning_rate": 5e-3}


@pytest.mark.parametrize(("case", "fragment"), [
    ("no_trials", "argument --trials: expected a whole number of at least 1, got '0'"),
    ("missing_train", "file not found"),
    ("unknown_space_option", "search_space in the config file: unknown option 'nope'"),
    ("space_in_train", "'search_space' in"),
    ("every_trial_fails", "no trial completed; the last failed: invalid freeze_epochs"),
    ("bad_storage", "cannot open the study storage"),
    ("existing_output", "already exists"),
])
def test_bad_tune_input_is_one_line_and_exit_2(case, fragment, tune_files):
    options = yaml.safe_load((tune_files / "tune.yaml").read_text())
    args = _tune_args(tune_files, "--trials", 2)
    if case == "no_trials":
        args[-1] = 0
    elif case == "missing_train":
        args[2] = tune_files / "nope.csv"
    elif case == "unknown_space_option":
        options["search_space"]["nope"] = None
    elif case == "space_in_train":
        args = ["train", "--train", tune_files / "train.csv", "--config", tune_files / "tune.yaml"]
    elif case == "every_trial_fails":  # freeze_epochs must be below epochs
        options["search_space"] = _only({"freeze_epochs": {"name": "IntDistribution",
                                                           "attributes": {"low": 5, "high": 6}}})
    elif case == "bad_storage":
        args += ["--storage", "nosuchdb://x"]
    elif case == "existing_output":
        (tune_files / "study" / "best").mkdir(parents=True)
        (tune_files / "study" / "best" / "x").write_text("")
    (tune_files / "tune.yaml").write_text(yaml.safe_dump(options))
    code, _, err = run_cli(args)
    if case == "no_trials":  # a usage error, as argparse words it
        assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err
    else:
        assert_one_line_error(code, err, fragment)
    assert not (tune_files / "study" / "best" / "config.json").exists()


def test_tune_help_names_the_search_flags_and_the_training_options():
    code, out, _ = run_cli(["tune", "--help"])
    assert code == 0
    for flag in ("--trials", "--timeout", "--study-dir", "--storage", "--study-name", "--pruner",
                 "--pruner-startup-trials", "--model", "--learning-rate", "--output"):
        assert flag in out
