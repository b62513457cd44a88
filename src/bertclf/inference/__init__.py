"""Inference: runtimes that turn padded batches into logits, and the one predictor every consumer uses.

- :mod:`~bertclf.inference.predictor`: :class:`Predictor` (length-sorted batches, windows of chunked texts,
  probabilities, decisions, input order).
- :mod:`~bertclf.inference.runtimes`: the :class:`Runtime` protocol, :class:`TorchRuntime`, :class:`OnnxRuntime`,
  and what an export directory holds.
- :mod:`~bertclf.inference.quantization`: int8 Linear layers and int8 ONNX graphs, outlier channels kept in fp32.
- :mod:`~bertclf.inference.export`: ONNX graphs of a network and the export directory's own files [onnx].
- :mod:`~bertclf.inference.scoring`: the predictor under a run's options, and scores of its predictions.
- :mod:`~bertclf.inference.opening`: :func:`open_runtime`, a runtime by name on a network or an export.
"""

from bertclf.inference.export import describe_fusion, export_graphs, raise_if_unavailable, write_export_files
from bertclf.inference.opening import open_runtime
from bertclf.inference.predictor import Predictor
from bertclf.inference.runtimes import OnnxRuntime, Runtime, TorchRuntime, read_export_info, resolve_runtime
from bertclf.inference.scoring import make_predictor, predict_and_score, score_probabilities, thresholds_in_force

__all__ = [
    "OnnxRuntime",
    "Predictor",
    "Runtime",
    "TorchRuntime",
    "describe_fusion",
    "export_graphs",
    "make_predictor",
    "open_runtime",
    "predict_and_score",
    "raise_if_unavailable",
    "read_export_info",
    "resolve_runtime",
    "score_probabilities",
    "thresholds_in_force",
    "write_export_files",
]
