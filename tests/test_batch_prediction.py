"""Batch prediction on a local Ray: the labels equal those of ``bertclf predict`` on the same file."""

import numpy as np
import pandas as pd
import pytest

from bertclf import batch_prediction
from bertclf.cli import main
from bertclf.integrations.ray import BatchPredictor
from tests.helpers import make_multilabel_texts, make_texts

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def trained(tmp_path, tiny_model, make, extra=()):
    make(90, seed=1).to_csv(tmp_path / "train.csv", index=False)
    assert main(["-q", "train", "--train", str(tmp_path / "train.csv"), "--model", tiny_model, "--epochs", "1",
                 "--batch-size", "8", "--output", str(tmp_path / "run"), *extra]) == 0
    return tmp_path / "run"


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_ray_data_labels_equal_bertclf_predict(local_ray, tiny_model, tmp_path, runtime):
    run = trained(tmp_path, tiny_model, make_texts)
    texts = make_texts(300, seed=4)
    texts.insert(0, "id", range(len(texts)))
    texts.to_csv(tmp_path / "new.csv", index=False)
    assert main(["-q", "predict", str(run), "--input", str(tmp_path / "new.csv"), "--runtime", runtime,
                 "--output", str(tmp_path / "cli.csv")]) == 0
    expected = pd.read_csv(tmp_path / "cli.csv")

    labelled = ray.data.read_csv(str(tmp_path / "new.csv")).map_batches(
        BatchPredictor, fn_constructor_kwargs={"model": str(run), "runtime": runtime}, batch_format="pandas",
        batch_size=64, concurrency=2, num_cpus=0.5).to_pandas()  # a CPU stays free for reading the file
    labelled = labelled.sort_values("id").reset_index(drop=True)  # workers finish in any order
    assert len(labelled) == 300 and list(labelled.columns) == list(expected.columns)
    assert labelled["predicted_label"].tolist() == expected["predicted_label"].tolist()
    probabilities = [column for column in expected.columns if column.startswith("proba_")]
    np.testing.assert_allclose(labelled[probabilities].to_numpy(float), expected[probabilities].to_numpy(float),
                               atol=1e-5)


def test_multilabel_rows_keep_their_labels_as_lists(tiny_model, tmp_path):
    run = trained(tmp_path, tiny_model, make_multilabel_texts, ["--task", "multilabel"])
    batch = make_multilabel_texts(12, seed=4)[["text"]].rename(columns={"text": "body"})
    result = batch_prediction.BatchPredictor(str(run), text_column="body")(batch)  # the name the README shows
    assert result["body"].tolist() == batch["body"].tolist()
    assert all(isinstance(labels, list) for labels in result["predicted_labels"])
