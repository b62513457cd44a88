"""ONNX exports: every task, head, pooling and long-text strategy round-trips; a failed check writes nothing."""

import json
import sys

import numpy as np
import pytest

from bertclf import BertclfError, TextClassifier
from bertclf import classifier as classifier_module
from bertclf.inference import open_runtime
from bertclf.inference import quantization as quantization_module
from tests.helpers import make_multilabel_texts, make_tail_texts, make_texts

CASES = {
    "multiclass": ({}, make_texts),
    "multilabel": ({"task": "multilabel", "threshold_strategy": "per-label"}, make_multilabel_texts),
    "mlp_head": ({"head": "mlp"}, make_texts),
    "mean_pooling": ({"pooling": "mean"}, make_texts),
    "chunked": ({"long_text": "chunks", "max_length": 16, "max_chunks": 4, "chunk_pooling": "attention"},
                make_tail_texts),
}


@pytest.fixture(scope="module")
def fitted_cases(tiny_model):
    base = {"model": tiny_model, "epochs": 3, "batch_size": 8, "learning_rate": 5e-3, "seed": 7}
    return {name: TextClassifier(**base, **options).fit(make(90, seed=1), val=make(30, seed=2))
            for name, (options, make) in CASES.items()}


@pytest.mark.parametrize("quantize", [None, pytest.param("int8", marks=pytest.mark.slow)])
@pytest.mark.parametrize("case", list(CASES))
def test_export_load_predict_round_trip(fitted_cases, tmp_path, case, quantize):
    classifier = fitted_cases[case]
    texts = CASES[case][1](20, seed=3)
    info = classifier.export(tmp_path / "export", quantize=quantize, check_data=texts)
    check = info["check"]
    assert check["texts"] == 20
    # A tiny random model's probabilities are close together, so int8 may flip labels: its probabilities must hold.
    assert check["agreement"] == 1.0 if quantize is None else check["max_probability_difference"] < 0.1
    assert info["chunked"] == (case == "chunked")
    files = {path.name for path in (tmp_path / "export").iterdir()}
    assert "model.onnx" in files and not any(name.endswith(".safetensors") for name in files)
    assert ("document_head.onnx" in files) == (case == "chunked")

    loaded = TextClassifier.load(tmp_path / "export")
    assert loaded.runtime_.name == ("onnx-int8" if quantize else "onnx") and loaded.model_ is None
    text_list = texts["text"].tolist()
    if quantize is None:
        np.testing.assert_allclose(loaded.predict_proba(text_list), classifier.predict_proba(text_list), atol=1e-4)
        assert loaded.predict(text_list) == classifier.predict(text_list)  # thresholds, long-text settings and all
    if case == "multilabel":
        assert loaded.thresholds_.tolist() == pytest.approx(classifier.thresholds_.tolist())
    card = (tmp_path / "export" / "README.md").read_text()
    assert "ONNX export" in card and "labels agree on" in card


def test_a_failed_check_writes_nothing(fitted_cases, tmp_path, monkeypatch):
    monkeypatch.setattr(classifier_module, "compare_with_export", lambda *args: {"texts": 10, "agreement": 0.9,
                                                                             "max_probability_difference": 0.5})
    with pytest.raises(BertclfError, match=r"agrees with PyTorch on only 90\.00% of 10 labels"):
        fitted_cases["multiclass"].export(tmp_path / "out" / "export", check_data=make_texts(10, seed=3))
    assert not (tmp_path / "out").exists()


def test_an_export_does_not_replace_a_run_directory(fitted_cases, tmp_path):
    run = fitted_cases["multiclass"].save(tmp_path / "run")
    kept = sorted(path.name for path in run.iterdir())
    with pytest.raises(BertclfError, match=r"run is a run directory \(its PyTorch weights and report\): an export "
                                           "never replaces a run; name another directory"):
        fitted_cases["multiclass"].export(run, check_data=make_texts(10, seed=3), overwrite=True)
    assert sorted(path.name for path in run.iterdir()) == kept


def test_without_check_data_the_runs_validation_texts_are_rebuilt(fitted_cases, tmp_path, tiny_model):
    make_texts(60, seed=1).to_csv(tmp_path / "train.csv", index=False)
    classifier = TextClassifier(model=tiny_model, epochs=1, seed=3).fit(str(tmp_path / "train.csv"))
    info = classifier.export(tmp_path / "export")
    assert info["check"]["texts"] == classifier.metrics_["val"]["n"]
    missing = TextClassifier(model=tiny_model, epochs=1).fit(make_texts(60, seed=1))  # trained from a DataFrame
    with pytest.raises(BertclfError, match="pass --check-data FILE"):
        missing.export(tmp_path / "other")


@pytest.fixture
def export_dir(fitted_cases, tmp_path):
    fitted_cases["multiclass"].export(tmp_path / "export", check_data=make_texts(10, seed=3))
    return tmp_path / "export"


@pytest.mark.parametrize(("damage", "fragment"), [
    ("missing_graph", "not a complete export (missing model.onnx)"),
    ("truncated_graph", "cannot load"),
    ("garbage_export_json", "export.json is corrupt"),
    ("foreign_export_json", "export.json is corrupt (no export format)"),
])
def test_a_damaged_export_is_one_error(export_dir, damage, fragment):
    graph, info = export_dir / "model.onnx", export_dir / "export.json"
    if damage == "missing_graph":
        graph.unlink()
    elif damage == "truncated_graph":
        graph.write_bytes(graph.read_bytes()[:1000])
    elif damage == "garbage_export_json":
        info.write_text("{")
    else:
        info.write_text(json.dumps({"format": "tensorrt"}))
    with pytest.raises(BertclfError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        TextClassifier.load(export_dir)


def test_an_export_runs_only_on_onnx(export_dir):
    with pytest.raises(BertclfError, match="holds an onnx export, which cannot run as torch"):
        TextClassifier.load(export_dir, runtime="torch")
    assert TextClassifier.load(export_dir, runtime="onnx-int8").runtime_.name == "onnx-int8"  # quantized on load
    with pytest.raises(BertclfError, match="without its PyTorch weights"):
        TextClassifier.load(export_dir).save(export_dir.parent / "run")


@pytest.mark.parametrize("package", ["onnx", "onnxruntime"])
def test_without_the_onnx_extra_the_error_names_the_install(fitted_cases, tmp_path, monkeypatch, package):
    monkeypatch.setitem(sys.modules, package, None)  # as if not installed: importing it raises ImportError
    with pytest.raises(BertclfError, match=r"pip install 'bertclf\[onnx\]'"):
        fitted_cases["multiclass"].export(tmp_path / "export", check_data=make_texts(10, seed=3))
    with pytest.raises(BertclfError, match=r"pip install 'bertclf\[onnx\]'"):
        open_runtime(fitted_cases["multiclass"].model_, "onnx", fitted_cases["multiclass"].tokenizer_)
    assert not (tmp_path / "export").exists()


def _product_graph(weight: np.ndarray):
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="product")], "product",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", weight.shape[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", weight.shape[1]])],
        [numpy_helper.from_array(weight, "w")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_outlier_channels_are_split_off_exactly_and_make_int8_closer(tmp_path):
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    random = np.random.default_rng(0)
    weight = random.normal(0, 0.05, (64, 32)).astype(np.float32)
    x = random.normal(0, 1, (200, 64)).astype(np.float32)
    x[:, 7] *= 40  # one channel a BERT LayerNorm keeps large
    model = _product_graph(weight)
    peaks = [np.abs(x).max(axis=0)]
    split = _product_graph(weight)
    kept = quantization_module._split_outlier_channels(split, quantization_module._weighted_products(split), peaks)
    assert kept == ["product/outlier_product"]
    np.testing.assert_allclose(_run(split, x), _run(model, x), rtol=1e-5, atol=1e-5)  # the same function in fp32

    errors = {}
    for name, graph, exclude in (("plain", model, []), ("split", split, kept)):
        onnx.save(graph, tmp_path / f"{name}.onnx")
        quantize_dynamic(tmp_path / f"{name}.onnx", tmp_path / f"{name}.int8.onnx", weight_type=QuantType.QInt8,
                         per_channel=True, nodes_to_exclude=exclude)
        quantized = onnx.load(tmp_path / f"{name}.int8.onnx")
        errors[name] = np.abs(_run(quantized, x) - x @ weight).mean()
    assert errors["split"] < errors["plain"] / 5


def test_a_product_without_outliers_is_left_alone():
    weight = np.ones((16, 4), dtype=np.float32)
    model = _product_graph(weight)
    kept = quantization_module._split_outlier_channels(model, quantization_module._weighted_products(model),
                                                    [np.ones(16, dtype=np.float32)])
    assert kept == [] and [node.op_type for node in model.graph.node] == ["MatMul"]


def test_embedding_tables_are_stored_int8_by_row_and_looked_up_almost_exactly():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    random = np.random.default_rng(0)
    table = random.normal(0, 0.05, (300, 16)).astype(np.float32)
    table[5] *= 40  # one row far larger than the rest: one scale for the table would erase the small rows
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["y"], name="lookup")], "lookup",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, [None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 16])],
        [numpy_helper.from_array(table, "table"), numpy_helper.from_array(np.ones((4, 4), np.float32), "small")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    quantization_module._int8_rows(model, 100)
    stored = {tensor.name: tensor for tensor in model.graph.initializer}
    assert stored["table/int8"].data_type == TensorProto.INT8 and "table" not in stored
    assert stored["small"].data_type == TensorProto.FLOAT  # fewer rows than a vocabulary: left alone
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    ids = np.arange(300)
    looked_up = session.run(None, {"ids": ids})[0]
    step = np.abs(table).max(axis=1, keepdims=True) / 127  # one int8 step of each row
    assert (np.abs(looked_up - table) <= step / 2 + 1e-7).all()
    onnx.checker.check_model(model)
