"""Opening a runtime by name on a PyTorch network or an export directory.

This sits above the runtimes, int8 quantization and export, and is the one place that combines them: an ONNX
runtime on a network exports it on the fly, an int8 one on an fp32 export quantizes its graph on the fly.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig

from bertclf import rundir
from bertclf.device import resolve_precision
from bertclf.errors import BertclfError
from bertclf.inference.export import check_graph_runs, export_graphs, onnx_failures
from bertclf.inference.quantization import quantize_graphs, quantize_linear_layers
from bertclf.inference.runtimes import OnnxRuntime, Runtime, TorchRuntime, read_export_info


def open_runtime(source: nn.Module | Path, name: str, tokenizer: Any, precision: str = "auto",
                 threads: int | None = None) -> Runtime:
    """The runtime ``name`` (one of ``bertclf.config.RUNTIMES`` but 'auto') on ``source``: a PyTorch network (as
    itself, its int8 version, or its ONNX graphs exported into a temporary folder; ``bertclf export`` keeps them),
    or an export directory (its graphs, int8 copies made on the fly if asked for). ``tokenizer`` calibrates int8;
    ``precision`` is the network's mixed precision, ``threads`` the CPU threads (default: the library's choice)."""
    if isinstance(source, Path):
        return _export_runtime(source, name, tokenizer, threads)
    if threads:
        torch.set_num_threads(threads)
    if name == "torch":
        return TorchRuntime(source.to("cuda" if torch.cuda.is_available() else "cpu"), resolve_precision(precision))
    if name == "torch-int8":
        return TorchRuntime(quantize_linear_layers(source, tokenizer), name=name)
    graphs = export_graphs(source, _scratch_folder(), tokenizer if name == "onnx-int8" else None)
    return OnnxRuntime(graphs.graph, graphs.head, name, threads)


def _export_runtime(directory: Path, name: str, tokenizer: Any, threads: int | None) -> Runtime:
    export = read_export_info(directory)
    if export is None:
        raise BertclfError(f"{directory} is not an export directory (no {rundir.EXPORT_FILE})")
    graph, head = rundir.onnx_graphs(directory, export)
    if name == "onnx-int8" and export.get("quantize") != "int8":
        config = _export_config(directory)
        with onnx_failures(config, name):
            graph, head = quantize_graphs(graph, head, _scratch_folder(), tokenizer)
        check_graph_runs(graph, config, name)
    return OnnxRuntime(graph, head, name, threads)


def _export_config(directory: Path) -> Any:
    """The encoder configuration an export keeps beside its graphs (what names its architecture), if readable."""
    try:
        return AutoConfig.from_pretrained(directory)
    except Exception:  # an export without a readable config.json: the errors then name no architecture
        return None


_scratch_folders: list[tempfile.TemporaryDirectory] = []


def _scratch_folder() -> Path:
    """A fresh folder for graphs exported or quantized on the fly, removed when the process exits."""
    folder = tempfile.TemporaryDirectory(prefix="bertclf-onnx-")
    _scratch_folders.append(folder)
    return Path(folder.name)
