"""How the runtimes suite times each runtime: the settings its worker processes use, which BENCHMARKS.md states.

Shared by :mod:`benchmarks.suites.runtimes`, which measures with them, and :mod:`benchmarks.markdown`, which
describes the method; neither imports the other.
"""

from __future__ import annotations

RUNTIMES = ("torch", "torch-int8", "onnx", "onnx-int8")
ROWS = ("pipeline", *RUNTIMES)
INT8 = ("torch-int8", "onnx-int8")
BATCH_SIZE = 64  # throughput batch, the pipeline's best setting in the other suites too
LATENCY_TEXTS = 200  # texts sent one at a time for the latency percentiles
LATENCY_WARMUP = 5
QUIET_WAIT_S = 30  # longest wait, before each timing job, for other processes to leave the CPU
QUIET_SHARE = 0.15
PASSES = 3  # timed passes over the test slice; the median is reported (one pass is at the mercy of a stall)
MAX_PASSES = 8  # passes made at most when other processes take the CPU during some of them
MAX_LATENCY_ROUNDS = 3  # rounds of the latency texts made at most, likewise
CLEAN_SHARE = 0.10  # a measurement during which other processes took less of the CPU than this counts as clean
