"""The device a process computes on: its mixed precision, and how the C library keeps freed memory on the CPU.

Training and inference both read these settings, so they live below both.
"""

from __future__ import annotations

import ctypes
import functools
import sys

import torch

HEAP_LIMIT = 32 << 20  # bytes: glibc's largest dynamic mmap threshold; bigger tensors are mapped and unmapped


@functools.cache
def keep_freed_memory() -> None:
    """On glibc, serve activation-sized tensors from the heap and keep freed memory for the next step (CPU only).

    By default glibc maps every allocation above a threshold (128 KB, rising to at most 32 MB) afresh and
    unmaps it on free, so each step faults its activation memory in again, page by page, in the kernel, time a
    training step on the CPU spends outside the model. Allocations above ``HEAP_LIMIT`` still get their own
    mapping: with none at all, the varying batch shapes of long texts fragment the heap until the process runs
    out of memory. The setting is process-wide.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # another C library (e.g. musl): leave it alone
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt parameter numbers from glibc's malloc.h
    libc.mallopt(m_mmap_threshold, HEAP_LIMIT)
    libc.mallopt(m_trim_threshold, 1 << 30)


def resolve_precision(setting: str) -> str:
    """'auto' means bf16 on a GPU that has it, fp16 on an older GPU, full precision on the CPU."""
    if setting != "auto":
        return setting
    if not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
