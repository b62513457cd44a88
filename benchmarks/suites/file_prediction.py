"""Peak memory of ``bertclf predict`` on a small and a large file: streaming must keep it flat.

``python -m benchmarks.suites.file_prediction [--large 200000] [--small 10000]`` writes CSV files of texts of about
2,000 characters, predicts each with ``bertclf predict`` in its own process and reports each process's peak RSS (from
wait4). The model is a 2-layer, 32-wide encoder with random weights on the packaged tokenizer, trained for one
epoch on a few texts: what is measured is how memory grows with the file, which does not depend on the encoder,
and a small encoder keeps the 400 MB run to minutes on 2 cores. The figures go to ``benchmarks/results.json``
(suite ``streaming``) and BENCHMARKS.md is rendered again.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.markdown import write_report
from benchmarks.results import REPORT, RESULTS, described_run, save_suite

WORDS = ["market", "government", "player", "season", "election", "software", "energy", "music", "village", "doctor",
         "river", "price", "weather", "school", "team", "court", "storm", "league", "coach", "chip", "bread", "soup",
         "network", "station", "budget"]


def write_texts(path: Path, count: int, seed: int = 0) -> None:
    """``count`` texts of about 2,000 characters, written in parts so the generator itself stays small."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("id,text\n")
        for start in range(0, count, 10_000):
            rows = [
                f'{i},"{" ".join(rng.choice(WORDS) for _ in range(300))[:2000]}"\n'
                for i in range(start, min(count, start + 10_000))
            ]
            handle.writelines(rows)


def build_run(folder: Path) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bertclf import TextClassifier
    from bertclf.config import DEFAULT_MODEL
    from bertclf.modeling import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(folder / "encoder")
    tokenizer.save_pretrained(folder / "encoder")
    texts = [" ".join(random.Random(i).choice(WORDS) for _ in range(40)) for i in range(60)]
    frame = pd.DataFrame({"text": texts, "label": ["a", "b", "c"] * 20})
    classifier = TextClassifier(model=str(folder / "encoder"), epochs=1, max_length=128, test_size=0).fit(frame)
    return classifier.save(folder / "run")


def peak_rss_of_predict(run: Path, source: Path, output: Path) -> tuple[float, float]:
    """Peak RSS (MB) and wall seconds of one ``bertclf predict`` process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bertclf", "-q", "predict", str(run), "--input", str(source), "--output", str(output)]
    )
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bertclf predict failed on {source}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bertclf-streaming-") as scratch:
        folder = Path(scratch)
        run = build_run(folder)
        figures = {}
        for name, count in (("small", args.small), ("large", args.large)):
            source = folder / f"{name}.csv"
            write_texts(source, count)
            peak, seconds = peak_rss_of_predict(run, source, folder / f"{name}.out.csv")
            figures[name] = {
                "texts": count,
                "file_mb": round(source.stat().st_size / 2**20, 1),
                "peak_rss_mb": round(peak, 1),
                "seconds": round(seconds, 1),
            }
            print(f"{name}: {figures[name]}", flush=True)
    figures["growth_mb"] = round(figures["large"]["peak_rss_mb"] - figures["small"]["peak_rss_mb"], 1)
    figures.update(described_run("python -m benchmarks.suites.file_prediction", started))
    print(json.dumps(figures, indent=2))
    write_report(save_suite("streaming", figures, args.results), args.report)


if __name__ == "__main__":
    main()
