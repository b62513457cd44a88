"""Runtimes and the predictor: batching by length, windows of chunked texts, input order, every runtime alike."""

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from bertclf import BertclfError, TextClassifier
from bertclf.batching import PadBatch, pad
from bertclf.config import ClassifierConfig
from bertclf.inference import OnnxRuntime, Predictor, TorchRuntime, open_runtime
from bertclf.inference.predictor import group_window_vectors, sorted_batches
from bertclf.inference.quantization import (
    CALIBRATION_ROWS,
    CALIBRATION_TOKENS,
    FullRangeDynamicLinear,
    OutlierSplitLinear,
    _int8_dot_products,
    calibration_rows,
    outlier_channels,
    quantize_linear_layers,
)
from bertclf.modeling import build_model
from tests.helpers import make_tail_texts


def test_batches_are_sorted_longest_first_and_padded_to_their_own_longest():
    assert [batch.tolist() for batch in sorted_batches([3, 9, 1, 7, 5], 2)] == [[1, 3], [4, 0], [2]]
    ids, mask = pad([[5, 6, 7], [8]], pad_token_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_window_vectors_are_grouped_per_text():
    vectors = np.arange(12, dtype=np.float32).reshape(6, 2)
    windows, mask = group_window_vectors(vectors, [2, 1, 3])
    assert windows.shape == (3, 3, 2) and mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert windows[1, 0].tolist() == [4, 5] and windows[1, 1].tolist() == [0, 0]


def random_ids(count, seed=0):
    rng = np.random.default_rng(seed)
    return [[101, *rng.integers(1000, 3000, size=int(rng.integers(1, 30))).tolist(), 102] for _ in range(count)]


def test_predictions_come_back_in_input_order(tiny_model):
    model = build_model(ClassifierConfig(model=tiny_model), [0, 1]).eval()
    token_ids = random_ids(37)
    batched = Predictor(TorchRuntime(model), pad_token_id=0, batch_size=5).logits(token_ids)
    with torch.no_grad():
        one_by_one = np.concatenate([model(input_ids=torch.tensor([ids])).logits.numpy() for ids in token_ids])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_chunked_texts_predict_as_the_training_forward_computes(tiny_model, pooling):
    """The predictor encodes windows in parts and pools them apart from the encoder; the sum must be the model."""
    config = ClassifierConfig(model=tiny_model, long_text="chunks", chunk_pooling=pooling)
    model = build_model(config, ["a", "b", "c"]).eval()
    rng = np.random.default_rng(1)
    documents = [[random_ids(1, seed=int(rng.integers(1000)))[0] for _ in range(int(rng.integers(1, 5)))]
                 for _ in range(9)]
    predicted = Predictor(TorchRuntime(model), pad_token_id=0, batch_size=3).logits(documents)
    batch = PadBatch(pad_token_id=0)([(document, None) for document in documents])
    with torch.no_grad():
        expected = model(**batch).logits.numpy()
    np.testing.assert_allclose(predicted, expected, atol=1e-5)


def test_threads_sharing_a_torch_runtime_get_exactly_one_threads_logits(tiny_model):
    """The runtime sets eval mode once and never flips it; the first-token shortcut of 'cls' pooling stays on while
    any thread's call runs and is off again after the last one."""
    model = build_model(ClassifierConfig(model=tiny_model, pooling="cls"), [0, 1])  # in train mode, as built
    predictor = Predictor(TorchRuntime(model), pad_token_id=0, batch_size=4)
    assert not model.training
    token_ids = random_ids(80)
    alone = predictor.logits(token_ids)
    with ThreadPoolExecutor(4) as pool:
        for logits in pool.map(lambda _: predictor.logits(token_ids), range(32)):
            np.testing.assert_array_equal(logits, alone)
    assert not model.training and not any("forward" in vars(layer) for layer in model.modules())


def test_an_empty_input_has_no_logits(tiny_model):
    model = build_model(ClassifierConfig(model=tiny_model), [0, 1])
    assert Predictor(TorchRuntime(model), pad_token_id=0, batch_size=4).logits([]).shape[0] == 0


@pytest.fixture(scope="module")
def chunked_classifier(tiny_model):
    options = {"model": tiny_model, "epochs": 2, "batch_size": 8, "learning_rate": 5e-3, "seed": 7,
               "long_text": "chunks", "max_length": 16, "max_chunks": 4, "chunk_pooling": "attention"}
    return TextClassifier(**options).fit(make_tail_texts(60, seed=1), val=make_tail_texts(20, seed=2))


@pytest.mark.parametrize("name", ["torch-int8", "onnx", "onnx-int8"])
def test_every_runtime_computes_what_torch_computes(chunked_classifier, name):
    texts = make_tail_texts(25, seed=3)["text"].tolist()
    token_ids = chunked_classifier.encode(texts)
    reference = chunked_classifier.predictor().predict_proba(token_ids)
    runtime = open_runtime(chunked_classifier.model_, name, chunked_classifier.tokenizer_)
    assert runtime.name == name and isinstance(runtime, OnnxRuntime) == name.startswith("onnx")
    probabilities = chunked_classifier.predictor(runtime).predict_proba(token_ids)
    tolerance = 1e-4 if name == "onnx" else 0.05  # int8 weights move probabilities a little
    np.testing.assert_allclose(probabilities, reference, atol=tolerance)


def test_unknown_runtime_is_named(tmp_path):
    with pytest.raises(BertclfError, match="unknown runtime 'tensorrt'"):
        TextClassifier.load(tmp_path, runtime="tensorrt")


def test_calibration_rows_are_vocabulary_ids_between_the_special_tokens(packaged_model_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(packaged_model_path)
    rows = calibration_rows(tokenizer)
    assert len(rows) == CALIBRATION_ROWS
    special = set(tokenizer.all_special_ids)
    for row in rows:
        assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
        assert len(row) == CALIBRATION_TOKENS + 2 and not special & set(row[1:-1])
    assert rows == calibration_rows(tokenizer)  # the same graph quantizes the same way


def test_an_outlier_split_linear_layer_computes_the_same_and_quantizes_closer():
    from torch.ao import quantization

    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32)
    inputs = torch.randn(200, 64)
    inputs[:, 7] *= 40  # one channel a BERT LayerNorm keeps large
    outliers = outlier_channels(inputs.abs().amax(dim=0).numpy())
    assert outliers.tolist() == [7]
    split = OutlierSplitLinear(linear, outliers)
    torch.testing.assert_close(split(inputs), linear(inputs), atol=1e-4, rtol=1e-5)  # the same function in fp32

    def int8(module):
        return quantization.quantize_dynamic(torch.nn.Sequential(module), {torch.nn.Linear}, dtype=torch.qint8)

    exact = linear(inputs).detach()
    plain_error = (int8(copy.deepcopy(linear))(inputs) - exact).abs().mean()
    split_error = (int8(split)(inputs) - exact).abs().mean()
    assert split_error < plain_error / 5


@pytest.mark.skipif(not _int8_dot_products(), reason="the CPU has no VNNI: torch keeps 7 bits")
def test_int8_linear_layers_use_the_full_eight_bits_where_the_cpu_allows(tiny_model):
    from torch.ao import quantization
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    model = build_model(ClassifierConfig(model=tiny_model), ["a", "b"], multilabel=False)
    quantized = quantize_linear_layers(copy.deepcopy(model), AutoTokenizer.from_pretrained(tiny_model))
    layers = [module for module in quantized.modules() if isinstance(module, torch.ao.nn.quantized.dynamic.Linear)]
    assert layers and all(isinstance(layer, FullRangeDynamicLinear) for layer in layers)
    linear = torch.nn.Linear(64, 32)
    inputs = torch.randn(200, 64)
    exact = linear(inputs).detach()
    seven = quantization.quantize_dynamic(torch.nn.Sequential(copy.deepcopy(linear)), {torch.nn.Linear},
                                          dtype=torch.qint8)
    eight = quantization.quantize_dynamic(torch.nn.Sequential(copy.deepcopy(linear)), {torch.nn.Linear},
                                          dtype=torch.qint8,
                                          mapping={torch.nn.Linear: FullRangeDynamicLinear})
    assert (eight(inputs) - exact).abs().mean() < 0.7 * (seven(inputs) - exact).abs().mean()
