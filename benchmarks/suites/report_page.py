"""What the run report costs, whether it holds every section, and whether the vocabulary check warns where it should.

``python -m benchmarks.suites.report_page`` runs ``bertclf train`` (in this process, through ``bertclf.cli.main``)
on BBC News as the ``full`` suite trains it (the whole set, 80/10/10, 128 tokens, 2 epochs) and on the GoEmotions
slice of the ``inference`` suite (8,000 / 1,000 / 1,000 rows, 1 epoch). The report's own work is timed by bertclf
where it happens and recorded in the run's metrics.json (``training.report_seconds``): the data check before
training (``inspect_data``), the TF-IDF baseline (``tfidf_baseline``), and writing the page and the files it is
drawn from (``write_report``); its share is that time over the rest of the command's wall time. Each page is then
parsed: every section, every embedded image decoded, the baseline row. Last, ``bertclf inspect`` runs on RuTweetCorp
and BBC News with the default model. The figures go to ``benchmarks/results.json`` (suite ``report``) and
BENCHMARKS.md is rendered again.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.data_specs import SUITES, prepare
from benchmarks.markdown import write_report
from benchmarks.results import DATASETS, REPORT, RESULTS, described_run, save_suite

SECTIONS = {"multiclass": ["run", "data", "learning-curves", "test-metrics", "confusion-matrix", "pr-roc",
                           "calibration", "mistakes", "baseline"]}
SECTIONS["multilabel"] = [*SECTIONS["multiclass"][:7], "thresholds", *SECTIONS["multiclass"][7:]]


def train_with_report(spec_name: str, suite: str, folder: Path) -> dict[str, Any]:
    """``bertclf train`` on one dataset with its report; the report's cost as bertclf timed it, and its page."""
    from bertclf.cli import main

    spec = next(spec for spec in SUITES[suite] if spec.name == spec_name)
    paths = prepare(spec, DATASETS, folder / "data")
    options = {**spec.options, "metric": spec.metric, "seed": 0}
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    output = folder / "run"
    started = time.perf_counter()
    code = main(["-q", "train", "--train", str(paths["train"]), "--val", str(paths["val"]), "--test",
                 str(paths["test"]), "--output", str(output), *flags])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"bertclf train failed on {spec_name}")
    training = json.loads((output / "metrics.json").read_text())["training"]
    seconds = training["report_seconds"]  # inspect_data, tfidf_baseline, write_report (the report's inputs included)
    added = sum(seconds.values())
    page = check_page(output / "report.html", "multilabel" if spec.multilabel else "multiclass")
    return {"description": spec.description, "options": options, "wall_seconds": round(wall, 1),
            "report_seconds": {name: round(value, 2) for name, value in seconds.items()},
            "report_share": round(added / (wall - added), 4),
            "train_seconds": training["train_seconds"], "page": page}


def check_page(path: Path, task: str) -> dict[str, Any]:
    """The sections found, the images decoded and the baseline's row, as a reader of the page would see them."""
    from PIL import Image

    text = path.read_text(encoding="utf-8")
    sections = re.findall(r'<section id="([^"]+)"', text)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    sizes = []
    for encoded in images:
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        image.load()
        sizes.append(list(image.size))
    external = re.findall(r'<(?:img|script|link)[^>]+(?:src|href)="(?!data:)', text)
    return {"sections": sections, "expected": SECTIONS[task], "all_sections": sections == SECTIONS[task],
            "images": len(images), "image_sizes": sizes, "external_resources": len(external),
            "baseline_row": "TF-IDF + logistic regression" in text and '<section id="baseline">' in text,
            "bytes": path.stat().st_size}


def inspect_output(files: list[str], options: list[str]) -> dict[str, Any]:
    from bertclf.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["inspect", *files, *options])
    lines = out.getvalue().splitlines()
    return {"exit": code, "coverage": next((line for line in lines if line.startswith("vocabulary coverage")), ""),
            "warning": next((line for line in lines if line.startswith("warning")), None)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--keep", type=Path, help="Copy each run's report.html here (as <dataset>.html) to look at.")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.getLogger("bertclf").setLevel(logging.WARNING)
    started = time.perf_counter()
    figures: dict[str, Any] = {"runs": {}}
    with tempfile.TemporaryDirectory(prefix="bertclf-report-") as scratch:
        for name, suite in (("bbc_news", "full"), ("goemotions", "inference")):
            figures["runs"][name] = train_with_report(name, suite, Path(scratch) / name)
            if args.keep:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(scratch) / name / "run" / "report.html", args.keep / f"{name}.html")
            print(name, json.dumps(figures["runs"][name]), flush=True)
    figures["inspect"] = {
        "rutweetcorp": inspect_output([str(DATASETS / "rutweetcorp" / "valid.csv")], []),
        "bbc_news": inspect_output([str(DATASETS / "bbc_news" / "bbc_news_train.csv")],
                                   ["--text-column", "Text", "--label-column", "Category"]),
    }
    print(json.dumps(figures["inspect"], indent=2), flush=True)
    figures.update(described_run("python -m benchmarks.suites.report_page", started))
    write_report(save_suite("report", figures, args.results), args.report)


if __name__ == "__main__":
    main()
