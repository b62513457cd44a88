"""Inference: runtimes that turn padded batches into logits, and the one predictor every consumer uses.

A *runtime* knows one way to run a trained network: PyTorch in full precision (bf16 on a GPU), PyTorch with int8
Linear layers, or ONNX Runtime on an exported graph, in fp32 or int8. It sees nothing but padded token ids.
Both int8 runtimes keep each product's few outlier input channels in fp32, found here on calibration rows.
The :class:`Predictor` does everything around it, once for all consumers (``predict``, ``evaluate``, the Python
API, the server, Ray workers, evaluation during training, shared among processes there): length-sorted batches,
windows of chunked texts and their pooling into documents, probabilities, multilabel thresholds, and results in
input order.
"""

from __future__ import annotations

import contextlib
import functools
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from bertclf import rundir
from bertclf.batching import window_parts
from bertclf.device import keep_freed_memory, resolve_precision
from bertclf.errors import BertclfError
from bertclf.thresholds import decide

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
        from bertclf.modeling import PooledClassifier

        self.model, self.name = model, name
        self.chunked = isinstance(model, PooledClassifier) and model.chunk_pooling is not None
        self.device = next(model.parameters(), torch.empty(0)).device
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.autocast = functools.partial(torch.autocast, self.device.type, dtype=dtype) if dtype else None
        if self.device.type == "cpu":
            keep_freed_memory()

    @contextlib.contextmanager
    def _running(self):
        from bertclf.modeling import first_token_last_layer

        was_training = self.model.training
        self.model.eval()
        autocast = self.autocast() if self.autocast else contextlib.nullcontext()
        try:
            with torch.inference_mode(), autocast, first_token_last_layer(self.model):
                yield
        finally:
            self.model.train(was_training)

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


# An input channel of a matrix product whose largest magnitude is over OUTLIER_FACTOR times the median channel's
# stays fp32 (at most MAX_OUTLIER_CHANNELS per product): one int8 scale per activation tensor is otherwise set by a
# few channels, which BERT-family encoders keep large whatever the text, and coarsens every other channel.
OUTLIER_FACTOR = 3.0
MAX_OUTLIER_CHANNELS = 32
CALIBRATION_ROWS, CALIBRATION_TOKENS, CALIBRATION_BATCH = 256, 32, 64


def calibration_rows(tokenizer: Any) -> list[list[int]]:
    """Random vocabulary ids between the special tokens the tokenizer puts around a text: enough to see which input
    channels of each product carry outliers, a property of the model rather than of any text, so no data is needed."""
    word = tokenizer("a", add_special_tokens=False)["input_ids"]
    wrapped = tokenizer("a")["input_ids"]
    at = next(index for index in range(len(wrapped)) if wrapped[index : index + len(word)] == word)
    prefix, suffix = wrapped[:at], wrapped[at + len(word) :]
    special = set(tokenizer.all_special_ids)
    vocabulary = np.array([index for index in range(len(tokenizer)) if index not in special])
    random = np.random.default_rng(0)
    return [prefix + random.choice(vocabulary, CALIBRATION_TOKENS).tolist() + suffix for _ in range(CALIBRATION_ROWS)]


def outlier_channels(peaks: np.ndarray) -> np.ndarray:
    """Positions of the input channels to keep in fp32, from each channel's largest magnitude, in order."""
    largest = np.argsort(peaks)[::-1][:MAX_OUTLIER_CHANNELS]
    return np.sort(largest[peaks[largest] > OUTLIER_FACTOR * np.median(peaks)])


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
def _input_peaks(model: nn.Module, rows: list[list[int]], pad_token_id: int) -> dict[nn.Linear, np.ndarray]:
    """Each Linear layer's largest input magnitude per channel while the encoder reads ``rows``."""
    peaks: dict[nn.Linear, np.ndarray] = {}

    def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        values = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(dim=0).numpy()
        peaks[layer] = np.maximum(peaks.get(layer, 0), values)

    hooks = [layer.register_forward_pre_hook(record) for layer in model.modules() if isinstance(layer, nn.Linear)]
    try:
        runtime = TorchRuntime(model)
        for start in range(0, len(rows), CALIBRATION_BATCH):
            runtime.rows(*pad(rows[start : start + CALIBRATION_BATCH], pad_token_id))
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
    import warnings

    from torch.ao import quantization

    model = model.cpu().eval()
    peaks = _input_peaks(model, calibration_rows(tokenizer), tokenizer.pad_token_id or 0)
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


def import_onnxruntime() -> Any:
    try:
        import onnxruntime
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
                reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise BertclfError(f"cannot load {path}: {reason}") from None

        self.name, self.chunked = name, head_graph is not None
        self.session = session(graph)
        self.head = session(head_graph) if head_graph is not None else None

    def rows(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})[0]

    def documents(self, windows: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return self.head.run(None, {"windows": windows.astype(np.float32), "mask": mask})[0]


def pad(rows: Sequence[Sequence[int]], pad_token_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest row, and the attention mask."""
    longest = max(len(ids) for ids in rows)
    input_ids = np.full((len(rows), longest), pad_token_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
    for row, ids in enumerate(rows):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask


def group_windows(vectors: np.ndarray, counts: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Window vectors, consecutive per text, as texts x most windows x hidden (zero padded) and the mask."""
    most = max(counts)
    windows = np.zeros((len(counts), most, vectors.shape[1]), dtype=vectors.dtype)
    mask = np.zeros((len(counts), most), dtype=bool)
    start = 0
    for text, count in enumerate(counts):
        windows[text, :count] = vectors[start : start + count]
        mask[text, :count] = True
        start += count
    return windows, mask


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Positions in batches over texts sorted longest first (an out-of-memory error shows at once, not at the end):
    each batch is padded only to its own longest text."""
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class Predictor:
    """Texts' token ids in, logits, probabilities and decisions out, in input order."""

    runtime: Runtime
    pad_token_id: int
    batch_size: int
    multilabel: bool = False
    thresholds: np.ndarray | None = None  # multilabel: one per class
    min_labels: int = 0
    # In a run of several processes (torchrun, accelerate launch), each predicts its share of the texts and all
    # receive all the logits: every process must then call with the same texts.
    across_processes: bool = False

    def logits(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        """Logits of every text (ids, or a list of windows of ids for chunked texts), in input order."""
        if not self.across_processes:
            return self._logits_here(token_ids)
        from accelerate import PartialState
        from accelerate.utils import gather_object

        state = PartialState()
        if state.num_processes == 1:
            return self._logits_here(token_ids)
        # Contiguous shares without padding, gathered in process order: every text once, in input order.
        with state.split_between_processes(list(range(len(token_ids)))) as mine:
            share = self._logits_here([token_ids[position] for position in mine])
        return np.concatenate([part for part in gather_object([share]) if len(part)])

    def _logits_here(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        chunked = self.runtime.chunked
        lengths = [sum(map(len, ids)) if chunked else len(ids) for ids in token_ids]
        results: np.ndarray | None = None
        for batch in sorted_batches(lengths, self.batch_size):
            if chunked:
                logits = self._documents([token_ids[position] for position in batch])
            else:
                logits = self.runtime.rows(*pad([token_ids[position] for position in batch], self.pad_token_id))
            if results is None:
                results = np.empty((len(token_ids), logits.shape[1]), dtype=np.float32)
            results[batch] = logits
        return results if results is not None else np.zeros((0, 0), dtype=np.float32)

    def _documents(self, documents: list[list[list[int]]]) -> np.ndarray:
        counts = [len(windows) for windows in documents]
        logits = []
        for first, last in window_parts(counts, self.batch_size):
            rows = [window for windows in documents[first:last] for window in windows]
            vectors = self.runtime.rows(*pad(rows, self.pad_token_id))
            logits.append(self.runtime.documents(*group_windows(vectors, counts[first:last])))
        return np.concatenate(logits)

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Each label's own probability (multilabel), or a distribution over the classes."""
        scores = torch.from_numpy(logits)
        return (torch.sigmoid(scores) if self.multilabel else torch.softmax(scores, dim=-1)).numpy()

    def predict_proba(self, token_ids: Sequence[Sequence]) -> np.ndarray:
        return self.probabilities(self.logits(token_ids))

    def decisions(self, probabilities: np.ndarray) -> np.ndarray:
        """Class positions (multiclass), or a 0/1 matrix of the labels each text receives (multilabel)."""
        if not self.multilabel:
            return probabilities.argmax(axis=1)
        return decide(probabilities, self.thresholds, self.min_labels)


# --- opening a runtime on a run directory or an export --------------------------------------------------------


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


def read_export_info(directory: Path) -> dict[str, Any] | None:
    path = directory / rundir.EXPORT_FILE
    if not path.exists():
        return None
    info = rundir.read_json(path)
    if not isinstance(info, dict) or info.get("format") != "onnx":
        raise BertclfError(f"{path} is corrupt (no export format)")
    return info


def export_runtime(directory: Path, export: dict[str, Any], name: str, tokenizer: Any,
                   threads: int | None = None) -> Runtime:
    """An ONNX runtime on the graphs of an export directory (int8 copies made on the fly if asked for)."""
    graph, head = rundir.onnx_graphs(directory, export)
    if name == "onnx-int8" and export.get("quantize") != "int8":
        from bertclf.inference.export import quantize_graphs

        graph, head = quantize_graphs(graph, head, _scratch_folder(), tokenizer)
    return OnnxRuntime(graph, head, name, threads)


def model_runtime(model: nn.Module, name: str, tokenizer: Any, precision: str = "auto",
                  threads: int | None = None) -> Runtime:
    """A runtime for a PyTorch network: itself, its int8 version, or its ONNX graphs exported into a temporary
    folder (``bertclf export`` keeps them); int8 graphs are calibrated with ``tokenizer``."""
    if threads:
        torch.set_num_threads(threads)
    if name == "torch":
        return TorchRuntime(model.to("cuda" if torch.cuda.is_available() else "cpu"), resolve_precision(precision))
    if name == "torch-int8":
        return TorchRuntime(quantize_linear_layers(model, tokenizer), name=name)
    from bertclf.inference.export import export_graphs

    graph, head, _ = export_graphs(model, _scratch_folder(), tokenizer if name == "onnx-int8" else None)
    return OnnxRuntime(graph, head, name, threads)


_scratch_folders: list[tempfile.TemporaryDirectory] = []


def _scratch_folder() -> Path:
    """A fresh folder for graphs exported or quantized on the fly, removed when the process exits."""
    folder = tempfile.TemporaryDirectory(prefix="bertclf-onnx-")
    _scratch_folders.append(folder)
    return Path(folder.name)
