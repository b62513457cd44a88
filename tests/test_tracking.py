import importlib.util

import pytest

from bertclf import BertclfError, ClassifierConfig, TextClassifier, rundir
from bertclf.training import tracking as tracking_module


def test_tensorboard_receives_the_options_the_training_log_every_evaluation_and_the_test_metrics(
        tiny_options, text_files, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    classifier = TextClassifier(**{**tiny_options, "epochs": 2}, report_to=["tensorboard"], output=str(tmp_path / "r"))
    classifier.fit(text_files["train"], val=text_files["val"], test=text_files["test"],
                   checkpoint_dir=tmp_path / "staging")
    run = classifier.save(tmp_path / "r")
    events = sorted((run / rundir.TRACKING_DIR).rglob("events.out.tfevents.*"))
    assert events, "the tracker's files travel into the run directory"
    scalars: dict[str, list] = {}
    for path in events:
        accumulator = EventAccumulator(str(path))
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(accumulator.Scalars(tag))
    log = classifier.metrics_["training"]["log"]
    assert [event.step for event in scalars["train/loss"]] == [entry["step"] for entry in log]
    assert scalars["train/learning_rate"][0].value == pytest.approx(log[0]["learning_rate"])
    assert len(scalars["val/f1_macro"]) == 2  # one evaluation per epoch
    assert scalars["test/accuracy"][0].value == pytest.approx(classifier.metrics_["test"]["accuracy"])
    assert list((run / rundir.TRACKING_DIR).rglob("hparams.yml")), "the options are stored with the run"


def test_mlflow_without_a_server_writes_a_file_store_in_the_tracking_folder(tiny_options, text_files, tmp_path,
                                                                            monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "bertclf-test")
    folder = tmp_path / "tracking"
    TextClassifier(**{**tiny_options, "epochs": 1}, report_to=["mlflow"], tracking_dir=str(folder)).fit(
        text_files["train"], val=text_files["val"], test=text_files["test"])
    client = mlflow.MlflowClient(tracking_uri=(folder / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("bertclf-test")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.data.params["epochs"] == "1" and run.data.params["model"] == tiny_options["model"]
    assert {"train/loss", "train/learning_rate", "val/f1_macro", "test/accuracy"} <= set(run.data.metrics)


def test_an_unknown_tracker_or_a_missing_package_is_a_one_line_error(monkeypatch):
    with pytest.raises(BertclfError, match=r"invalid report_to .*'tensorbord'.*choose from aim"):
        ClassifierConfig(report_to="tensorbord")
    real = importlib.util.find_spec
    monkeypatch.setattr(tracking_module.importlib.util, "find_spec",
                        lambda name, *args: None if name == "wandb" else real(name, *args))
    with pytest.raises(BertclfError, match=r"--report-to wandb needs wandb: pip install wandb"):
        tracking_module.check_trackers(["tensorboard", "wandb"])
