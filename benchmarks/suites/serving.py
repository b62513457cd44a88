"""``bertclf serve`` under load: many concurrent clients, every answer checked against offline prediction.

``python -m benchmarks.suites.serving [--clients 200] [--requests 5] [--runtime onnx]`` trains (or takes with
``--run``) a RuTweetCorp model, predicts the texts offline with the same runtime (texts/s and the expected labels),
then starts ``bertclf serve`` on a free loopback port, once with micro-batching and once without (``--max-batch-size
1``), and lets ``clients`` asynchronous httpx clients send ``requests`` requests each of 1 to 8 texts. It records
requests/s, texts/s, latency percentiles, errors, answers that differ from offline prediction, and served texts/s
as a share of offline texts/s. The client is bounded in requests and in time, talks to 127.0.0.1 only, and stops
the server with SIGTERM (which must exit 0). The figures go to ``benchmarks/results.json`` (suite ``serve``) and
BENCHMARKS.md is rendered again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.markdown import write_report
from benchmarks.results import DATASETS, REPORT, RESULTS, described_run, save_suite

TIME_LIMIT_S = 600.0  # the whole load of one server configuration stops after this, whatever is left


def train_run(datasets: Path, folder: Path) -> Path:
    """The default model tuned for one epoch on 2,000 RuTweetCorp tweets (what is served matters, not its score)."""
    from bertclf import TextClassifier

    frame = pd.read_csv(datasets / "rutweetcorp" / "valid.csv").sample(n=2000, random_state=0)
    classifier = TextClassifier(epochs=1, max_length=64, test_size=0).fit(frame)
    return classifier.save(folder / "run")


def request_texts(texts: list[str], clients: int, requests: int, seed: int = 0) -> list[list[list[str]]]:
    """Per client, per request, 1 to 8 texts."""
    rng = random.Random(seed)
    return [[rng.sample(texts, rng.randint(1, 8)) for _ in range(requests)] for _ in range(clients)]


def offline(run: Path, runtime: str, texts: list[str]) -> tuple[dict[str, str], float]:
    """Expected label of every distinct text, and texts/s of offline prediction at batch 64."""
    from bertclf import TextClassifier

    classifier = TextClassifier.load(run, runtime=runtime)
    classifier.predict_proba(texts[:64])  # warm-up
    started = time.perf_counter()
    labels = classifier.predict(texts)
    seconds = time.perf_counter() - started
    return {text: str(label) for text, label in zip(texts, labels, strict=True)}, len(texts) / seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def load(port: int, plan: list[list[list[str]]], expected: dict[str, str]) -> dict[str, Any]:
    import httpx

    latencies, errors, mismatches, texts_done = [], 0, 0, 0
    deadline = time.monotonic() + TIME_LIMIT_S
    limits = httpx.Limits(max_connections=len(plan), max_keepalive_connections=len(plan))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=120) as client:

        async def one_client(requests: list[list[str]]) -> None:
            nonlocal errors, mismatches, texts_done
            for texts in requests:
                if time.monotonic() > deadline:
                    return
                started = time.perf_counter()
                try:
                    answer = await client.post("/predict", json={"texts": texts})
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    errors += 1
                    continue
                labels = [str(prediction["label"]) for prediction in answer.json()["predictions"]]
                mismatches += sum(label != expected[text] for label, text in zip(labels, texts, strict=True))
                mismatches += abs(len(labels) - len(texts))
                texts_done += len(texts)

        started = time.perf_counter()
        await asyncio.gather(*(one_client(requests) for requests in plan))
        seconds = time.perf_counter() - started
    return {"requests": len(latencies), "errors": errors, "mismatches": mismatches, "texts": texts_done,
            "seconds": round(seconds, 2), "requests_per_s": round(len(latencies) / seconds, 1),
            "texts_per_s": round(texts_done / seconds, 1),
            **{f"latency_p{q}_ms": round(1000 * float(np.percentile(latencies, q)), 1) for q in (50, 95, 99)}}


def serve_and_load(run: Path, runtime: str, batch_size: int, plan: list[list[list[str]]],
                   expected: dict[str, str]) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "bertclf", "-q", "serve", str(run), "--runtime", runtime, "--port", str(port),
               "--max-batch-size", str(batch_size)]
    server = subprocess.Popen(command)
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("the server never became ready")
        result = asyncio.run(load(port, plan, expected))
        server.send_signal(signal.SIGTERM)
        result["exit_code_on_sigterm"] = server.wait(timeout=60)
        return result
    finally:
        if server.poll() is None:
            server.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5, help="Requests per client.")
    parser.add_argument("--runtime", default="onnx,torch",
                        help="Runtimes of the server and of offline prediction, comma-separated.")
    parser.add_argument("--run", type=Path, help="A run directory to serve (default: train one).")
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bertclf-serve-") as scratch:
        run = args.run or train_run(args.datasets, Path(scratch))
        texts = pd.read_csv(args.datasets / "rutweetcorp" / "test.csv")["text"].drop_duplicates().tolist()
        plan = request_texts(texts, args.clients, args.requests)
        sent = [text for requests in plan for request in requests for text in request]
        model = (f"the run directory {args.run}" if args.run else
                 "the default encoder tuned here for one epoch on 2,000 RuTweetCorp tweets at 64 tokens")
        figures: dict[str, Any] = {"model": model, "clients": args.clients, "requests_per_client": args.requests,
                                   "texts_sent": len(sent), "runtimes": {}}
        for runtime in args.runtime.split(","):
            expected, offline_texts_per_s = offline(run, runtime, list(dict.fromkeys(sent)))
            measured: dict[str, Any] = {"offline_texts_per_s": round(offline_texts_per_s, 1)}
            for name, batch_size in (("batching", 64), ("no_batching", 1)):
                result = serve_and_load(run, runtime, batch_size, plan, expected)
                result["share_of_offline"] = round(result["texts_per_s"] / offline_texts_per_s, 3)
                measured[name] = result
                print(f"{runtime} {name}: {result}", flush=True)
            figures["runtimes"][runtime] = measured
    command = (f"python -m benchmarks.suites.serving --clients {args.clients} --requests {args.requests} "
               f"--runtime {args.runtime}")
    figures.update(described_run(command + (f" --run {args.run}" if args.run else ""), started))
    print(json.dumps(figures, indent=2))
    write_report(save_suite("serve", figures, args.results), args.report)


if __name__ == "__main__":
    main()
