import base64
import html.parser
import io
import shutil

import numpy as np
import pytest
from PIL import Image

from bertclf import BertclfError, TextClassifier, rundir
from bertclf.reporting import Evaluation, ReportInputs, load_inputs, rebuild
from bertclf.reporting.figures import calibration, mistakes
from tests.helpers import make_multilabel_texts, make_tail_texts, make_texts, run_cli

EVERY_RUN = ("run", "data", "learning-curves", "test-metrics", "confusion-matrix", "pr-roc", "calibration", "mistakes",
             "baseline")


class _Page(html.parser.HTMLParser):
    """The section ids, the images and the text of a report page."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.images: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.sections.append(attributes["id"])
        if tag == "img":
            self.images.append(attributes["src"])
        for name in ("src", "href"):
            value = attributes.get(name) or ""
            if tag in ("img", "script", "link") and value and not value.startswith("data:"):
                self.external.append(value)

    def handle_data(self, data):
        self.text.append(data)


def read_page(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def check_images(page: _Page) -> None:
    """Every image is embedded, decodes as a PNG and has a readable size."""
    assert page.images and not page.external
    for source in page.images:
        assert source.startswith("data:image/png;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1], validate=True)))
        image.verify()
        assert image.format == "PNG" and image.size[0] >= 300 and image.size[1] >= 150


def test_a_multiclass_run_writes_every_section_with_the_baseline(tiny_options, text_files, tmp_path):
    classifier = TextClassifier(**tiny_options).fit(text_files["train"], val=text_files["val"],
                                                    test=text_files["test"])
    run = classifier.save(tmp_path / "run")
    page = read_page(run / rundir.REPORT_FILE)
    assert page.sections == list(EVERY_RUN)
    # label distribution, token lengths, learning curves, confusion matrix, PR and ROC, reliability diagram
    assert len(page.images) == 6
    check_images(page)
    text = " ".join(page.text)
    assert "TF-IDF + logistic regression" in text and "Expected calibration error" in text
    baseline = rundir.read_json(run / rundir.BASELINE_FILE)
    assert baseline["metrics"]["n"] == 30 and 0 <= baseline["metrics"]["accuracy"] <= 1
    history = classifier.metrics_["training"]
    assert history["log"] and history["log"][-1]["step"] == history["history"][-1]["step"]
    # the report's costs as bertclf timed them; writing the page is timed by save, which leaves the classifier as it was
    report_seconds = rundir.read_json(run / rundir.METRICS_FILE)["training"]["report_seconds"]
    assert set(report_seconds) == {"inspect_data", "tfidf_baseline", "write_report"}
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in report_seconds.values())
    assert "write_report" not in history["report_seconds"]


def test_a_multilabel_run_adds_the_threshold_sweep(tiny_options, tmp_path):
    classifier = TextClassifier(**{**tiny_options, "epochs": 4}, task="multilabel").fit(
        make_multilabel_texts(150, 1), val=make_multilabel_texts(40, 2), test=make_multilabel_texts(40, 3))
    run = classifier.save(tmp_path / "run")
    page = read_page(run / rundir.REPORT_FILE)
    assert page.sections == [*EVERY_RUN[:6], "calibration", "thresholds", "mistakes", "baseline"]
    assert len(page.images) == 7
    check_images(page)
    assert "labels per text" in " ".join(page.text)


def test_a_chunked_run_reports_its_windows(tiny_options, tmp_path):
    classifier = TextClassifier(**{**tiny_options, "epochs": 2}, long_text="chunks", max_length=24,
                                max_chunks=4).fit(make_tail_texts(90, 1), val=make_tail_texts(30, 2),
                                                  test=make_tail_texts(30, 3))
    run = classifier.save(tmp_path / "run")
    page = read_page(run / rundir.REPORT_FILE)
    assert page.sections == list(EVERY_RUN)
    check_images(page)
    assert "longer than one window of 24 tokens" in " ".join(page.text)


def test_a_report_rebuilds_and_draws_a_new_labelled_file(tiny_options, text_files, tmp_path):
    run = TextClassifier(**{**tiny_options, "epochs": 2}).fit(text_files["train"], val=text_files["val"],
                                                              test=text_files["test"]).save(tmp_path / "run")
    (run / rundir.REPORT_FILE).unlink()
    classifier = TextClassifier.load(run)
    inputs = classifier.report_inputs(run.name, *load_inputs(run))
    rebuild(run, inputs)
    assert read_page(run / rundir.REPORT_FILE).sections == list(EVERY_RUN)
    new = tmp_path / "new.csv"
    make_texts(45, seed=9).to_csv(new, index=False)
    rebuild(run, inputs, classifier.evaluation_of(str(new)))
    page = read_page(run / rundir.REPORT_FILE)
    assert page.sections == list(EVERY_RUN)
    assert "Test metrics (new.csv, 45 texts)" in " ".join(page.text)
    # without the training file the baseline cannot be retrained for the new file: the page says nothing of it
    text_files["train"].unlink()
    rebuild(run, inputs, classifier.evaluation_of(str(new)))
    assert "baseline" not in read_page(run / rundir.REPORT_FILE).sections


def test_a_damaged_prediction_file_is_a_one_line_error(tiny_options, text_files, tmp_path):
    run = TextClassifier(**{**tiny_options, "epochs": 1}).fit(text_files["train"], val=text_files["val"],
                                                              test=text_files["test"]).save(tmp_path / "run")
    (run / rundir.TEST_PREDICTIONS_FILE).write_bytes(b"PAR1 not really")
    with pytest.raises(BertclfError, match=r"test_predictions\.parquet is corrupt"):
        load_inputs(run)


def test_a_page_rebuilds_from_values_alone(tmp_path):
    """No classifier: the inputs are plain values, and the decision rule any function of the probabilities."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 40)
    probabilities = rng.dirichlet(np.ones(3), 40)
    metrics = {"test": {"n": 40, "accuracy": float((probabilities.argmax(axis=1) == labels).mean())}}
    inputs = ReportInputs("values", {"model": "none", "metric": "accuracy"}, ["a", "b", "c"], False, metrics,
                          None, 0, lambda rows: rows.argmax(axis=1), None,
                          Evaluation("test", [f"text {i}" for i in range(40)], labels, probabilities), None)
    page = read_page(rebuild(tmp_path, inputs))
    assert page.sections == ["run", "test-metrics", "confusion-matrix", "pr-roc", "calibration", "mistakes"]
    check_images(page)
    assert "Test metrics (test, 40 texts)" in " ".join(page.text)


def test_calibration_error_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 20_000)
    right = rng.uniform(size=20_000) < confidence  # right exactly as often as it claims
    labels = np.where(right, 0, 1)
    probabilities = np.stack([confidence, 1 - confidence], axis=1)
    assert calibration(Evaluation("t", [""] * 20_000, labels, probabilities), multilabel=False)["ece"] < 0.02
    sure = np.stack([np.full(20_000, 0.99), np.full(20_000, 0.01)], axis=1)
    assert calibration(Evaluation("t", [""] * 20_000, labels, sure), multilabel=False)["ece"] == pytest.approx(
        0.99 - right.mean(), abs=1e-9)


def test_mistakes_are_the_surest_wrong_texts_first():
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]])
    evaluation = Evaluation("t", ["a", "b", "c", "d"], np.array([1, 1, 1, 0]), probabilities)
    rows = mistakes(evaluation, ["x", "y"], probabilities.argmax(axis=1), multilabel=False)
    assert [row["text"] for row in rows] == ["a", "d", "b"]
    assert rows[0] == {"text": "a", "true": "y", "predicted": "x", "confidence": 0.9}


def test_a_report_without_the_test_predictions_says_so_and_how_to_draw_them(shared_run, tmp_path):
    run = shutil.copytree(shared_run, tmp_path / "run")
    (run / rundir.TEST_PREDICTIONS_FILE).unlink()
    code, out, err = run_cli(["report", run])
    assert code == 0 and out == f"report written to {run / rundir.REPORT_FILE}\n"
    assert err.splitlines() == [f"warning: {run} has no {rundir.TEST_PREDICTIONS_FILE}: the report has no test "
                                "sections (scores, confusion matrix, curves, mistakes); pass --data FILE to draw "
                                "them for a labelled file"]
    assert "test-metrics" not in read_page(run / rundir.REPORT_FILE).sections
