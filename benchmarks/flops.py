"""How far from the hardware limit a run is: model FLOPs against the measured matrix-multiply rate."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from transformers import PretrainedConfig


def measure_matmul_rate(bf16: bool, size: int = 2048, repeats: int = 30) -> dict[str, float | str]:
    """FLOP/s of a large square ``torch.matmul`` (fp32 on the CPU, bf16 on a GPU), after a warm-up.

    The fastest of ``repeats`` timed multiplies: the rate the hardware reaches, which a brief stall on a shared
    machine would pull down if the multiplies were timed together.
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if bf16 else torch.float32
    size = 8192 if device == "cuda" else size
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    fastest = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        fastest = min(fastest, time.perf_counter() - started)
    return {"flops_per_s": 2 * size**3 / fastest, "dtype": str(dtype).removeprefix("torch."), "size": size}


def non_embedding_parameters(config: PretrainedConfig) -> int:
    """Weights of the transformer layers (embedding lookups cost no multiply-adds)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    intermediate = getattr(config, "intermediate_size", 4 * hidden)
    return layers * (4 * hidden * hidden + 2 * hidden * intermediate)


def forward_flops(config: PretrainedConfig, length: int) -> float:
    """Forward FLOPs of one text of ``length`` tokens: 2 per weight per token, plus attention scores and mixing."""
    attention = 4 * config.num_hidden_layers * length * length * config.hidden_size
    return 2 * non_embedding_parameters(config) * length + attention


def training_flops(config: PretrainedConfig, lengths: Sequence[int]) -> float:
    """One epoch over texts of these (real, unpadded) lengths: forward + backward = 3x forward."""
    return 3 * sum(forward_flops(config, length) for length in lengths)


def inference_flops(config: PretrainedConfig, lengths: Sequence[int]) -> float:
    return sum(forward_flops(config, length) for length in lengths)
