"""Int8: calibration rows, outlier channels, and the quantization of PyTorch Linear layers and of ONNX graphs.

Both int8 forms quantize weights to int8 (one scale per output channel) and activations on the fly, and keep each
matrix product's few outlier input channels in fp32, found on :func:`calibration_rows`: BERT-family encoders keep
a few channels large whatever the text, and one int8 scale per activation tensor would otherwise be set by them.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.ao import quantization

from bertclf import rundir
from bertclf.batching import pad
from bertclf.inference.runtimes import TorchRuntime, import_onnxruntime
from bertclf.tokenization import special_tokens

# An input channel of a matrix product whose largest magnitude is over OUTLIER_FACTOR times the median channel's
# stays fp32 (at most MAX_OUTLIER_CHANNELS per product): one int8 scale per activation tensor is otherwise set by a
# few channels, which BERT-family encoders keep large whatever the text, and coarsens every other channel.
OUTLIER_FACTOR = 3.0
MAX_OUTLIER_CHANNELS = 32
CALIBRATION_ROWS, CALIBRATION_TOKENS, CALIBRATION_BATCH = 256, 32, 64


def calibration_rows(tokenizer: Any) -> list[list[int]]:
    """Random vocabulary ids between the special tokens the tokenizer puts around a text: enough to see which input
    channels of each product carry outliers, a property of the model rather than of any text, so no data is needed."""
    prefix, suffix = special_tokens(tokenizer)
    special = set(tokenizer.all_special_ids)
    vocabulary = np.array([index for index in range(len(tokenizer)) if index not in special])
    random = np.random.default_rng(0)
    return [prefix + random.choice(vocabulary, CALIBRATION_TOKENS).tolist() + suffix for _ in range(CALIBRATION_ROWS)]


def outlier_channels(peaks: np.ndarray) -> np.ndarray:
    """Positions of the input channels to keep in fp32, from each channel's largest magnitude, in order."""
    largest = np.argsort(peaks)[::-1][:MAX_OUTLIER_CHANNELS]
    return np.sort(largest[peaks[largest] > OUTLIER_FACTOR * np.median(peaks)])


# --- PyTorch: int8 Linear layers ------------------------------------------------------------------------------


class OutlierSplitLinear(nn.Module):
    """A Linear layer computed as the product of its inlier input channels (an ``nn.Linear`` that dynamic
    quantization turns int8) plus that of its few outlier channels, in fp32."""

    def __init__(self, linear: nn.Linear, outliers: np.ndarray):
        super().__init__()
        channels = torch.as_tensor(outliers, dtype=torch.long)
        mask = torch.ones(linear.in_features)
        mask[channels] = 0
        self.inliers = nn.Linear(linear.in_features, linear.out_features, bias=linear.bias is not None)
        with torch.no_grad():
            self.inliers.weight.copy_(linear.weight * mask)  # zero columns leave the per-channel scales to the rest
            if linear.bias is not None:
                self.inliers.bias.copy_(linear.bias)
        self.register_buffer("inlier_mask", mask)
        self.register_buffer("outlier_channels", channels)
        self.register_buffer("outlier_weight", linear.weight.detach()[:, channels].t().contiguous())

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.inliers(inputs * self.inlier_mask) + inputs.index_select(-1, self.outlier_channels) @ \
            self.outlier_weight


@torch.no_grad()
def _input_peaks(model: nn.Module, rows: list[list[int]], pad_token_id: int,
                 padding_side: str = "right") -> dict[nn.Linear, np.ndarray]:
    """Each Linear layer's largest input magnitude per channel while the encoder reads ``rows``."""
    peaks: dict[nn.Linear, np.ndarray] = {}

    def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        values = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0).numpy()
        peaks[layer] = np.maximum(peaks.get(layer, 0), values)

    hooks = [layer.register_forward_pre_hook(record) for layer in model.modules() if isinstance(layer, nn.Linear)]
    try:
        runtime = TorchRuntime(model)
        for start in range(0, len(rows), CALIBRATION_BATCH):
            runtime.rows(*pad(rows[start : start + CALIBRATION_BATCH], pad_token_id, padding_side))
    finally:
        for hook in hooks:
            hook.remove()
    return peaks


@functools.cache
def _int8_dot_products() -> bool:
    """Whether the CPU multiplies 8-bit integers into 32-bit sums (VNNI). Without it, fbgemm's 8-bit kernels add
    pairs of products in 16 bits, which full-range activations can overflow."""
    if torch.backends.quantized.engine not in ("fbgemm", "x86"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_vnni" in flags or " avx_vnni" in flags


class FullRangeDynamicLinear(torch.ao.nn.quantized.dynamic.Linear):
    """torch's dynamic int8 Linear quantizes activations to 7 bits (``reduce_range``) to stay clear of that
    overflow; on a CPU with VNNI the eighth bit is free and halves the rounding error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(x, self._packed_params._packed_params,
                                                  reduce_range=False).to(x.dtype)


def quantize_linear_layers(model: nn.Module, tokenizer: Any) -> nn.Module:
    """Int8 weights for the Linear layers, one scale per output channel, activations quantized on the fly
    (dynamic quantization, CPU only; 8-bit activations where the CPU has VNNI, else torch's 7); each layer's outlier
    input channels, found on :func:`calibration_rows`, stay fp32 (:class:`OutlierSplitLinear`)."""
    model = model.cpu().eval()
    peaks = _input_peaks(model, calibration_rows(tokenizer), tokenizer.pad_token_id or 0, tokenizer.padding_side)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and child in peaks and len(outliers := outlier_channels(peaks[child])):
                setattr(parent, name, OutlierSplitLinear(child, outliers))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao, slower on CPUs
        return quantization.quantize_dynamic(model, {nn.Linear: quantization.per_channel_dynamic_qconfig},
                                             dtype=torch.qint8,
                                             mapping={nn.Linear: FullRangeDynamicLinear} if _int8_dot_products()
                                             else None)


# --- ONNX: int8 graphs ----------------------------------------------------------------------------------------


def _weighted_products(model: Any) -> list[Any]:
    """The graph's MatMul nodes whose second input is a weight matrix (not an activation)."""
    weights = {tensor.name for tensor in model.graph.initializer if len(tensor.dims) == 2}
    return [node for node in model.graph.node if node.op_type == "MatMul" and node.input[1] in weights]


def _input_channel_peaks(model: Any, products: list[Any], rows: list[list[int]], pad_token_id: int) -> list[Any]:
    """The largest magnitude of each input channel of each product over ``rows`` (the graph run in fp32)."""
    import onnx  # optional: [onnx]

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
    from onnx import helper, numpy_helper  # optional: [onnx]

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
    with each product's outlier input channels (:func:`outlier_channels`, found on :func:`calibration_rows`)
    computed apart in fp32, and the embedding tables int8 by row."""
    import onnx  # optional: [onnx]
    from onnx import TensorProto  # optional: [onnx]
    from onnxruntime.quantization import QuantType, quantize_dynamic  # optional: [onnx]

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
            # quantized, changes predicted labels; the embedding lookup is _int8_rows's. Fused operators come from
            # ONNX Runtime's own domain, whose outputs shape inference cannot type: float.
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
    from onnx import TensorProto, helper, numpy_helper  # optional: [onnx]

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
