"""Exports: a trained network as ONNX graphs (fp32 or int8) that ONNX Runtime serves without PyTorch weights.

The encoder graph takes padded ``input_ids`` and ``attention_mask`` (batch and sequence axes dynamic) and returns
logits, or for chunked texts one vector per window; chunked texts get a second small graph, ``windows`` and
``mask`` to logits, so that grouping windows into documents (which depends on the data) stays outside both.
The encoder is exported with eager attention, whose pattern ONNX Runtime's transformer optimizer fuses into
its own attention kernels; int8 is ONNX Runtime's dynamic quantization of matrix products, with the few input
channels that carry outliers computed apart in fp32 (:func:`~bertclf.inference.quantization.quantize_graph`).
What an export must agree with is checked by its caller (:meth:`bertclf.TextClassifier.export`) before
:func:`write_export_files` completes the directory.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bertclf import rundir
from bertclf.errors import BertclfError, first_line
from bertclf.inference.quantization import quantize_graph
from bertclf.inference.runtimes import ONNX_EXTRA, import_onnxruntime
from bertclf.modeling import PooledClassifier, first_token_last_layer, save_tokenizer, vocabulary_rows

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
    from onnxruntime.transformers.optimizer import optimize_model  # optional: [onnx]

    with warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")
        optimized = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                                   hidden_size=config.hidden_size)
        optimized.save_model_to_file(str(path))
    return {name: count for name, count in optimized.get_fused_operator_statistics().items() if count}


@dataclass
class ExportedGraphs:
    """The graph files written by :func:`export_graphs` and what the optimizer made of them."""

    graph: Path
    head: Path | None  # the document head of chunked texts
    quantize: str | None  # "int8" or None (fp32)
    fused_operators: dict[str, int]

    @property
    def chunked(self) -> bool:
        return self.head is not None


def export_graphs(model: nn.Module, folder: Path, quantize_with: Any = None) -> ExportedGraphs:
    """Write the model's ONNX graphs into ``folder``, int8 if given the tokenizer to calibrate with (see
    :func:`~bertclf.inference.quantization.quantize_graph`)."""
    raise_if_unavailable()
    model = copy.deepcopy(model).cpu().eval()  # the caller's model keeps its device, mode and attention
    chunked = isinstance(model, PooledClassifier) and model.chunk_pooling is not None
    config = _encoder_config(model)
    graph = folder / rundir.ONNX_GRAPH
    sample_ids = torch.full((2, 8), 100, dtype=torch.long)
    sample_mask = torch.ones_like(sample_ids)
    sample_mask[1, 5:] = 0
    with _eager_attention(model), first_token_last_layer(model), torch.no_grad(), \
            onnx_failures(config, "onnx-int8" if quantize_with is not None else "onnx"):
        _export(_RowsGraph(model, chunked), (sample_ids, sample_mask), ["input_ids", "attention_mask"],
                {"input_ids": DYNAMIC_ROWS, "attention_mask": DYNAMIC_ROWS}, graph)
    try:
        fused = _optimize(graph, config)
    except Exception as error:  # an architecture the optimizer does not know: the plain graph still runs
        log.warning("warning: ONNX Runtime's optimizer could not fuse this model (%s); exported unfused",
                    first_line(error))
        fused = {}
    head = None
    if chunked:
        head = folder / rundir.ONNX_DOCUMENT_HEAD
        windows = torch.zeros((2, 3, config.hidden_size))
        mask = torch.tensor([[True, True, True], [True, False, False]])
        with torch.no_grad():
            _export(_DocumentHeadGraph(model), (windows, mask), ["windows", "mask"],
                    {"windows": {0: "rows", 1: "windows"}, "mask": {0: "rows", 1: "windows"}}, head)
    runtime = "onnx-int8" if quantize_with is not None else "onnx"
    if quantize_with is not None:
        fp32 = graph.with_name("model.fp32.onnx")
        graph.rename(fp32)
        with onnx_failures(config, runtime):
            quantize_graph(fp32, graph, quantize_with)
        fp32.unlink()
    check_graph_runs(graph, config, runtime)
    return ExportedGraphs(graph, head, "int8" if quantize_with is not None else None, fused)


@contextlib.contextmanager
def onnx_failures(config: Any, runtime: str):
    """A graph that ONNX Runtime cannot build, quantize or run for this architecture ends in one line naming the
    architecture and the runtime (the torch runtime still serves it)."""
    try:
        yield
    except BertclfError:
        raise
    except Exception as error:  # onnxruntime and onnx raise many types, from their C++ side as much as Python
        model_type = getattr(config, "model_type", None) or "this"
        raise BertclfError(f"the {runtime} runtime cannot serve {model_type} encoders: ONNX Runtime fails on the "
                           f"graph ({first_line(error)}); the torch runtime serves it") from None


def check_graph_runs(graph: Path, config: Any, runtime: str) -> None:
    """Open the encoder graph and run it on two padded rows of lengths other than the traced ones, so that an
    architecture whose graph ONNX Runtime cannot serve fails here, in one line (:func:`onnx_failures`)."""
    ort = import_onnxruntime()
    input_ids = np.full((2, 21), 100, dtype=np.int64)
    attention_mask = np.ones_like(input_ids)
    attention_mask[1, 9:] = 0
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure is reported once, as the error below, not also in ONNX Runtime's log
    with onnx_failures(config, runtime):
        session = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
        session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})


def write_export_files(folder: Path, graphs: ExportedGraphs, model: nn.Module, tokenizer: Any, max_length: int,
                       check: dict[str, Any], version: str) -> dict[str, Any]:
    """Beside the graphs: the tokenizer, the encoder's configuration (the architecture, for tools that read it) and
    export.json, which says what the directory holds and how the export compared with PyTorch (``check``);
    returns export.json's content."""
    save_tokenizer(tokenizer, folder, max_length)
    _encoder_config(model).save_pretrained(folder)
    info = {"format": "onnx", "quantize": graphs.quantize, "opset": OPSET, "chunked": graphs.chunked,
            "fused_operators": graphs.fused_operators, "vocabulary_rows": vocabulary_rows(model), "check": check,
            "bertclf_version": version}
    rundir.write_json_into(folder / rundir.EXPORT_FILE, info)
    return info


def describe_fusion(fused: dict[str, int], layers: int) -> str:
    attention = fused.get("Attention", 0) + fused.get("MultiHeadAttention", 0)
    parts = ", ".join(f"{name} {count}" for name, count in sorted(fused.items())) or "nothing"
    return f"fused {parts} (attention in {attention} of {layers} layers)"


def raise_if_unavailable() -> None:
    try:
        import onnx  # noqa: F401  # optional: [onnx]
    except ImportError:
        raise BertclfError(f"exporting needs onnx and onnxruntime: {ONNX_EXTRA}") from None
    import_onnxruntime()


