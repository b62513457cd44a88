"""Exports: a trained network as ONNX graphs (fp32 or int8) that ONNX Runtime serves without PyTorch weights.

The encoder graph takes padded ``input_ids`` and ``attention_mask`` (batch and sequence axes dynamic) and returns
logits, or for chunked texts one vector per window; chunked texts get a second small graph, ``windows`` and
``mask`` to logits, so that grouping windows into documents (which depends on the data) stays outside both.
The encoder is exported with eager attention, whose pattern ONNX Runtime's transformer optimizer fuses into
its own attention kernels; int8 is ONNX Runtime's dynamic quantization of matrix products, with the few input
channels that carry outliers computed apart in fp32 (:func:`quantize_graph`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bertclf import rundir
from bertclf.errors import BertclfError
from bertclf.inference import (
    CALIBRATION_BATCH,
    ONNX_EXTRA,
    calibration_rows,
    import_onnxruntime,
    outlier_channels,
    pad,
)

log = logging.getLogger("bertclf")

OPSET = 17
DYNAMIC_ROWS = {0: "rows", 1: "tokens"}


class _RowsGraph(nn.Module):
    """What the encoder graph computes: logits per text, or a vector per window of a chunked text."""

    def __init__(self, model: nn.Module, chunked: bool):
        super().__init__()
        self.model, self.chunked = model, chunked

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if self.chunked:
            return self.model.row_vectors(input_ids, attention_mask)
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class _DocumentHeadGraph(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, windows: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.document_logits(windows, mask)


def _encoder_config(model: nn.Module) -> Any:
    from bertclf.modeling import PooledClassifier

    return (model.encoder if isinstance(model, PooledClassifier) else model).config


@contextlib.contextmanager
def _eager_attention(model: nn.Module):
    """Eager attention while exporting: its MatMul/Softmax pattern is the one ONNX Runtime fuses."""
    config = _encoder_config(model)
    previous = config._attn_implementation
    setter = getattr(model, "set_attn_implementation", None) or model.encoder.set_attn_implementation
    setter("eager")
    try:
        yield
    finally:
        setter(previous)


def _export(module: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], axes: dict, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=["output"],
                          dynamic_axes={**axes, "output": {0: "rows"}}, opset_version=OPSET, dynamo=False)


def _optimize(path: Path, config: Any) -> dict[str, int]:
    """ONNX Runtime's transformer optimizer, in place; returns the fused operators it produced."""
    from onnxruntime.transformers.optimizer import optimize_model

    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        optimized = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        optimized.save_model_to_file(str(path))
    return {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}


def _weighted_products(model: Any) -> list[Any]:
    """The graph's MatMul nodes whose second input is a weight matrix (not an activation)."""
    weights = {tensor.name for tensor in model.graph.initializer if len(tensor.dims) == 2}
    return [node for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def _input_channel_peaks(model: Any, products: list[Any], rows: list[list[int]], pad_token_id: int) -> list[Any]:
    """The largest magnitude of each input channel of each product over ``rows`` (the graph run in fp32)."""
    import numpy as np
    import onnx

    ort = import_onnxruntime()
    probe = copy.deepcopy(model)
    probe.graph.output.extend(onnx.helper.make_tensor_value_info(node.input[0], onnx.TensorProto.FLOAT, None)
                              for node in products)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    peaks = [0.0] * len(products)
    for start in range(0, len(rows), CALIBRATION_BATCH):
        input_ids, attention_mask = pad(rows[start : start + CALIBRATION_BATCH], pad_token_id)
        inputs = session.run([node.input[0] for node in products],
                             {"input_ids": input_ids, "attention_mask": attention_mask})
        for index, values in enumerate(inputs):
            peaks[index] = np.maximum(peaks[index], np.abs(values.reshape(-1, values.shape[-1])).max(axis=0))
    return peaks


def _split_outlier_channels(model: Any, products: list[Any], peaks: list[Any]) -> list[str]:
    """Rewrite each product X·W whose input has outlier channels as (X·mask)·W + X[..., outliers]·W[outliers]:
    the first is then quantized over a range the outliers no longer set, the second (a few channels) stays fp32.
    Returns the names of the products to keep in fp32."""
    import numpy as np
    from onnx import helper, numpy_helper

    weights = {tensor.name: tensor for tensor in model.graph.initializer}
    rewritten, kept = {}, []
    for node, peak in zip(products, peaks, strict=True):
        outliers = outlier_channels(peak)
        if not len(outliers):
            continue
        name, (source, weight_name), output = node.name, node.input, node.output[0]
        mask = np.ones(weights[weight_name].dims[0], dtype=np.float32)
        mask[outliers] = 0
        model.graph.initializer.extend([
            numpy_helper.from_array(mask, f"{name}/inlier_mask"),
            numpy_helper.from_array(outliers.astype(np.int64), f"{name}/outlier_channels"),
            numpy_helper.from_array(numpy_helper.to_array(weights[weight_name])[outliers], f"{name}/outlier_weight"),
        ])
        rewritten[output] = [
            helper.make_node("Mul", [source, f"{name}/inlier_mask"], [f"{name}/inliers"], name=f"{name}/inliers"),
            helper.make_node("MatMul", [f"{name}/inliers", weight_name], [f"{name}/inlier_product"], name=name),
            helper.make_node("Gather", [source, f"{name}/outlier_channels"], [f"{name}/outliers"], axis=-1,
                             name=f"{name}/outliers"),
            helper.make_node("MatMul", [f"{name}/outliers", f"{name}/outlier_weight"], [f"{name}/outlier_product"],
                             name=f"{name}/outlier_product"),
            helper.make_node("Add", [f"{name}/inlier_product", f"{name}/outlier_product"], [output],
                             name=f"{name}/sum"),
        ]
        kept.append(f"{name}/outlier_product")
    nodes = [replacement for node in model.graph.node for replacement in rewritten.get(node.output[0], [node])]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return kept


def quantize_graph(source: Path, target: Path, tokenizer: Any) -> None:
    """Int8 weights (one scale per output channel) for the graph's matrix products, activations quantized on the fly,
    with each product's outlier input channels (:func:`~bertclf.inference.outlier_channels`, found on
    :func:`~bertclf.inference.calibration_rows`) computed apart in fp32, and the embedding tables int8 by row."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    products = _weighted_products(model)
    peaks = _input_channel_peaks(model, products, calibration_rows(tokenizer), tokenizer.pad_token_id or 0)
    fp32 = _split_outlier_channels(model, products, peaks)
    split = target.with_name(f"{target.stem}.split.onnx")
    onnx.save(model, str(split))
    # The quantizer logs advice through the root logger, which would install a handler on the application's root
    # logger (logging.basicConfig) and print it: a NullHandler there for the duration keeps it quiet and harmless.
    root, quiet = logging.getLogger(), logging.NullHandler()
    root.addHandler(quiet)
    with warnings.catch_warnings(), _root_level(logging.ERROR):
        warnings.simplefilter("ignore")
        try:
            # One scale per output channel: a single scale per matrix let the largest channel set everyone's
            # resolution. MatMul nodes only: the fused attention's query/key/value product has no outlier split and,
            # quantized, moved labels on CoLA and SST-2, and the embedding lookup is _int8_rows's. Fused operators
            # come from ONNX Runtime's own domain, whose outputs shape inference cannot type: float.
            quantize_dynamic(str(split), str(target), weight_type=QuantType.QInt8, per_channel=True,
                             nodes_to_exclude=fp32, op_types_to_quantize=["MatMul"],
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            root.removeHandler(quiet)
            split.unlink(missing_ok=True)
    quantized = onnx.load(str(target))
    _int8_rows(quantized, len(tokenizer) // 2)
    onnx.save(quantized, str(target))


def _int8_rows(model: Any, rows: int) -> None:
    """Store each embedding table (a float matrix of at least ``rows`` rows: the vocabulary) as int8 with one scale
    per row, dequantized by two nodes that ONNX Runtime folds into a constant when the session starts. The quantizer's
    own embedding lookup has one scale for the whole table, too coarse for the rare tokens' small vectors."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    for tensor in [tensor for tensor in model.graph.initializer
                   if len(tensor.dims) == 2 and tensor.dims[0] >= rows and tensor.data_type == TensorProto.FLOAT]:
        table = numpy_helper.to_array(tensor)
        scale = np.abs(table).max(axis=1, keepdims=True) / 127
        scale[scale == 0] = 1
        name = tensor.name
        model.graph.initializer.remove(tensor)
        model.graph.initializer.extend([
            numpy_helper.from_array(np.round(table / scale).astype(np.int8), f"{name}/int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{name}/row_scale"),
        ])
        model.graph.node.insert(0, helper.make_node("Mul", [f"{name}/float", f"{name}/row_scale"], [name],
                                                    name=f"{name}/dequantize"))
        model.graph.node.insert(0, helper.make_node("Cast", [f"{name}/int8"], [f"{name}/float"],
                                                    to=TensorProto.FLOAT, name=f"{name}/cast"))


@contextlib.contextmanager
def _root_level(level: int):
    root = logging.getLogger()
    previous = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(previous)


def quantize_graphs(graph: Path, head: Path | None, folder: Path, tokenizer: Any) -> tuple[Path, Path | None]:
    """Int8 copies of an export's graphs in ``folder``."""
    quantized = folder / rundir.ONNX_GRAPH
    quantize_graph(graph, quantized, tokenizer)
    return quantized, head  # the document head is a few small products: int8 would cost accuracy for nothing


def export_graphs(model: nn.Module, folder: Path,
                  quantize_with: Any = None) -> tuple[Path, Path | None, dict[str, Any]]:
    """Write the model's ONNX graphs into ``folder``, int8 if given the tokenizer to calibrate with (see
    :func:`quantize_graph`); returns their paths and what the optimizer fused."""
    raise_if_unavailable()
    from bertclf.modeling import PooledClassifier, first_token_last_layer

    model = copy.deepcopy(model).cpu().eval()  # the caller's model keeps its device, mode and attention
    chunked = isinstance(model, PooledClassifier) and model.chunk_pooling is not None
    config = _encoder_config(model)
    graph = folder / rundir.ONNX_GRAPH
    sample_ids = torch.full((2, 8), 100, dtype=torch.long)
    sample_mask = torch.ones_like(sample_ids)
    sample_mask[1, 5:] = 0
    with _eager_attention(model), first_token_last_layer(model), torch.no_grad():
        _export(_RowsGraph(model, chunked), (sample_ids, sample_mask), ["input_ids", "attention_mask"],
                {"input_ids": DYNAMIC_ROWS, "attention_mask": DYNAMIC_ROWS}, graph)
    try:
        fused = _optimize(graph, config)
    except Exception as error:  # an architecture the optimizer does not know: the plain graph still runs
        log.warning("warning: ONNX Runtime's optimizer could not fuse this model (%s); exported unfused",
                    str(error).splitlines()[0] if str(error) else type(error).__name__)
        fused = {}
    head = None
    if chunked:
        head = folder / rundir.ONNX_DOCUMENT_HEAD
        windows = torch.zeros((2, 3, config.hidden_size))
        mask = torch.tensor([[True, True, True], [True, False, False]])
        with torch.no_grad():
            _export(_DocumentHeadGraph(model), (windows, mask), ["windows", "mask"],
                    {"windows": {0: "rows", 1: "windows"}, "mask": {0: "rows", 1: "windows"}}, head)
    if quantize_with is not None:
        fp32 = graph.with_name("model.fp32.onnx")
        graph.rename(fp32)
        quantize_graph(fp32, graph, quantize_with)
        fp32.unlink()
    return graph, head, {"fused_operators": fused, "chunked": chunked}


def describe_fusion(fused: dict[str, int], layers: int) -> str:
    attention = fused.get("Attention", 0) + fused.get("MultiHeadAttention", 0)
    parts = ", ".join(f"{name} {count}" for name, count in sorted(fused.items())) or "nothing"
    return f"fused {parts} (attention in {attention} of {layers} layers)"


def raise_if_unavailable() -> None:
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise BertclfError(f"exporting needs onnx and onnxruntime: {ONNX_EXTRA}") from None
    import_onnxruntime()


def check_examples(classifier: Any, check_data: Any) -> tuple[list[str], Any]:
    """Texts (and labels where there are any) to compare the export with PyTorch on: ``check_data``, or the run's
    validation texts, rebuilt from its data files and seed exactly as training split them."""
    import dataclasses

    from bertclf.data import as_frame, encode_labels, load_examples, make_splits

    config = dataclasses.replace(classifier.config, task=classifier.task_)
    if check_data is None:
        if config.train is None or not Path(config.train).exists():
            raise BertclfError(f"the run's training data ({config.train}) is not here to rebuild its validation texts; "
                               "pass --check-data FILE")
        examples = make_splits(config, config.train, config.val, config.test).val
    else:
        frame, name = as_frame(check_data, config)
        label_columns = config.label_columns or [config.label_column]
        labelled = all(column in frame.columns for column in label_columns)
        examples = load_examples(frame, config, labelled=labelled)
        examples.name = name
    labels = encode_labels(examples, classifier.classes_) if examples.labels is not None else None
    return examples.texts, labels


def compare(classifier: Any, runtime: Any, texts: list[str], labels: Any) -> dict[str, Any]:
    """How the export's predictions differ from PyTorch's on the same texts."""
    import numpy as np

    from bertclf.batching import EncodedTexts
    from bertclf.inference import TorchRuntime, resolve_precision

    token_ids = classifier.encode(texts)
    reference = TorchRuntime(classifier.model_, resolve_precision(classifier.config.mixed_precision))
    torch_probabilities = classifier.predictor(reference).predict_proba(token_ids)
    export_probabilities = classifier.predictor(runtime).predict_proba(token_ids)
    decide = classifier.predictor(runtime).decisions
    torch_labels, export_labels = decide(torch_probabilities), decide(export_probabilities)
    same = (torch_labels == export_labels).all(axis=1) if torch_labels.ndim == 2 else torch_labels == export_labels
    result = {"texts": len(texts), "agreement": float(same.mean()),
              "max_probability_difference": float(np.abs(torch_probabilities - export_probabilities).max())}
    if labels is not None:
        metric = classifier.config.metric
        result["metric"] = metric
        for name, candidate in (("torch", reference), ("export", runtime)):
            result[name] = float(classifier._score(candidate, EncodedTexts(token_ids, labels))[metric])
    return result


MIN_FP32_AGREEMENT = 0.99


def export_classifier(classifier: Any, output: Path, quantize: str | None, check_data: Any,
                      overwrite: bool) -> dict[str, Any]:
    """Export a fitted classifier into ``output``: graphs, tokenizer, classes, thresholds, long-text settings,
    resolved options and a model card, checked against PyTorch first; nothing is written if the check fails."""
    from bertclf import __version__
    from bertclf.inference import OnnxRuntime
    from bertclf.modeling import save_tokenizer, vocabulary_rows

    raise_if_unavailable()
    if quantize not in (None, "int8"):
        raise BertclfError(f"unknown quantization {quantize!r}; the one offered is int8")
    rundir.check_output_directory(output, overwrite)
    texts, labels = check_examples(classifier, check_data)
    if not texts:
        raise BertclfError("no texts to check the export on")
    with rundir.atomic_directory(output) as staging:
        graph, head, graphs = export_graphs(classifier.model_, staging,
                                             classifier.tokenizer_ if quantize == "int8" else None)
        runtime = OnnxRuntime(graph, head, "onnx-int8" if quantize else "onnx")
        check = compare(classifier, runtime, texts, labels)
        if quantize is None and check["agreement"] < MIN_FP32_AGREEMENT:
            raise BertclfError(f"the export agrees with PyTorch on only {100 * check['agreement']:.2f}% of "
                               f"{check['texts']} labels (at least {100 * MIN_FP32_AGREEMENT:.0f}% needed); nothing "
                               "was written")
        save_tokenizer(classifier.tokenizer_, staging, classifier.max_length_)
        _encoder_config(classifier.model_).save_pretrained(staging)  # the architecture, for tools that read it
        info = {"format": "onnx", "quantize": quantize, "opset": OPSET, "chunked": graphs["chunked"],
                "fused_operators": graphs["fused_operators"], "vocabulary_rows": vocabulary_rows(classifier.model_),
                "check": check, "bertclf_version": __version__}
        rundir.write_json_into(staging / rundir.EXPORT_FILE, info)
        classifier.write_description(staging, output.name, info)
    return info
