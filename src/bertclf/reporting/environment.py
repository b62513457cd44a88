"""The machine a run trained on: versions and hardware, recorded in ``metrics.json`` and in the benchmarks' results."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers

from bertclf import __version__


def environment(device: str) -> dict[str, Any]:
    """Versions and hardware of the machine a run trained on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):  # no /proc/cpuinfo: the plain description
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "finished": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": sys.version.split()[0], "bertclf": __version__, "torch": torch.__version__,
        "transformers": transformers.__version__, "platform": platform.platform(),
        "cpu": cpu, "cpu_cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
