"""The parent's side of a measured job: run it in a worker process of its own and read its peak memory.

The job is written to ``JOB.json``; ``python -m benchmarks.worker JOB.json`` runs it and writes ``JOB.result.json``;
its log goes to ``JOB.log``, whose tail is shown if it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.results import ROOT


def run_job(job: dict[str, Any], job_path: Path) -> dict[str, Any]:
    """Run one worker process; add its wall time and peak RSS (from ``wait4``) to its result."""
    job_path.write_text(json.dumps(job, default=str))
    log_path = job_path.with_suffix(".log")
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    with log_path.open("w") as log:
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.worker", str(job_path)], cwd=ROOT,
                                   stdout=log, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-15:])
        raise RuntimeError(f"benchmark job {job_path.name} failed:\n{tail}")
    result = json.loads(job_path.with_suffix(".result.json").read_text())
    return {**result, "wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024}
