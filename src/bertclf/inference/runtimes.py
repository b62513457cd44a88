"""Runtimes: what turns padded batches of token ids into logits, and what an export directory asks to run on.

A *runtime* knows one way to run a trained network: PyTorch in full precision (bf16 on a GPU), PyTorch with int8
Linear layers (:mod:`~bertclf.inference.quantization`), or ONNX Runtime on an exported graph, in fp32 or int8.
It sees nothing but padded token ids; the :class:`~bertclf.inference.predictor.Predictor` does everything around it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from bertclf import rundir
from bertclf.device import keep_freed_memory
from bertclf.errors import BertclfError, first_line
from bertclf.modeling import PooledClassifier, first_token_last_layer

ONNX_EXTRA = "pip install 'bertclf[onnx]'"


class Runtime(Protocol):
    """Runs a network on padded batches. ``chunked`` runtimes return one vector per window from :meth:`rows` and
    turn each text's window vectors into logits in :meth:`documents`; the others return logits from :meth:`rows`."""

    name: str
    chunked: bool

    def rows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    def documents(self, windows: np.ndarray, mask: np.ndarray) -> np.ndarray: ...


class TorchRuntime:
    """The PyTorch network as trained (or with int8 Linear layers); bf16 autocast on a GPU unless told otherwise."""

    def __init__(self, model: nn.Module, precision: str = "no", name: str = "torch"):
        # A runtime predicts: the model goes into eval mode here, once, and the runtime never changes its mode
        # again, since other threads may be predicting with it at any time (a mode flipped around each call lets
        # one thread's call run another's in train mode, dropout on). Training puts its model back in train mode.
        self.model, self.name = model.eval(), name
        self.chunked = isinstance(model, PooledClassifier) and model.chunk_pooling is not None
        self.device = next(model.parameters(), torch.empty(0)).device
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = functools.partial(torch.autocast, self.device.type, dtype=dtype) if dtype else None
        if self.device.type == "cpu":
            keep_freed_memory()

    @contextlib.contextmanager
    def _running(self):
        autocast = self.autocast() if self.autocast else contextlib.nullcontext()
        with torch.inference_mode(), autocast, _shortcut_while_running(self.model):
            yield

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).to(self.device, non_blocking=True)

    def rows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        with self._running():
            ids, mask = self._tensor(input_ids), self._tensor(attention_mask)
            out = self.model.row_vectors(ids, mask) if self.chunked else self.model(input_ids=ids,
                                                                                     attention_mask=mask).logits
            return out.float().cpu().numpy()

    def documents(self, windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with self._running():
            return self.model.document_logits(self._tensor(windows), self._tensor(mask)).float().cpu().numpy()


_shortcut_lock = threading.Lock()
_shortcut_users: dict[int, tuple[int, contextlib.ExitStack]] = {}  # per model: the calls running, the shortcut


@contextlib.contextmanager
def _shortcut_while_running(model: nn.Module) -> Iterator[None]:
    """:func:`first_token_last_layer` while at least one call runs ``model``, whichever thread it is on: the
    first call in puts it on, the last one out takes it off (each call opening its own would let one thread take
    it off in the middle of another's call, or both take it off)."""
    key = id(model)
    with _shortcut_lock:
        calls, shortcut = _shortcut_users.get(key, (0, None))
        if shortcut is None:
            shortcut = contextlib.ExitStack()
            shortcut.enter_context(first_token_last_layer(model))
        _shortcut_users[key] = (calls + 1, shortcut)
    try:
        yield
    finally:
        with _shortcut_lock:
            calls, shortcut = _shortcut_users.pop(key)
            if calls > 1:
                _shortcut_users[key] = (calls - 1, shortcut)
            else:
                shortcut.close()


def import_onnxruntime() -> Any:
    try:
        import onnxruntime  # optional: [onnx]
    except ImportError:
        raise BertclfError(f"the ONNX runtimes need onnxruntime: {ONNX_EXTRA}") from None
    return onnxruntime


class OnnxRuntime:
    """ONNX Runtime on an exported graph (and, for chunked texts, the small graph of the document head)."""

    def __init__(self, graph: Path, head_graph: Path | None, name: str, threads: int | None = None):
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = [provider for provider in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if provider in ort.get_available_providers()]

        def session(path: Path) -> Any:
            try:
                return ort.InferenceSession(str(path), options, providers=providers)
            except Exception as error:  # onnxruntime raises its own types for a damaged or foreign file
                raise BertclfError(f"cannot load {path}: {first_line(error)}") from None

        self.name, self.chunked = name, head_graph is not None
        self.session = session(graph)
        self.head = session(head_graph) if head_graph is not None else None

    def rows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def documents(self, windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.head.run(None, {"windows": windows.astype(np.float32), "mask": mask})[0]


def read_export_info(directory: Path) -> dict[str, Any] | None:
    """What an export directory's export.json says (format, quantization, check), or None in a run directory."""
    path = directory / rundir.EXPORT_FILE
    if not path.exists():
        return None
    info = rundir.read_json(path)
    if not isinstance(info, dict) or info.get("format") != "onnx":
        raise BertclfError(f"{path} is corrupt (no export format)")
    return info


def resolve_runtime(directory: Path, export: dict[str, Any] | None, requested: str) -> str:
    """'auto' is what the directory holds: its export (``export``, from :func:`read_export_info`), or its torch
    weights."""
    holds = None if export is None else ("onnx-int8" if export.get("quantize") == "int8" else "onnx")
    if requested == "auto":
        return holds or "torch"
    if holds is not None and requested != holds and not (holds == "onnx" and requested == "onnx-int8"):
        raise BertclfError(f"{directory} holds an {holds} export, which cannot run as {requested} (it has no torch "
                           "weights); use --runtime auto, or the run directory it was exported from")
    return requested
