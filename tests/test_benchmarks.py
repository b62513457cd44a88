"""The benchmark harness's bookkeeping: summaries over seeds, configurations, the results file and the rendered
report, and the shape of the harness itself (no import cycles, a renderer that needs no suite). None of it imports
torch, transformers or bertclf."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.data_specs import LONG_TEXT_STRATEGIES, SUITES, configurations_of, missing
from benchmarks.markdown import is_recipes_suite, recipe_verdict, render, report_page_section, write_report
from benchmarks.results import REPORT, RESULTS, load_results, merge_rerun, save_suite
from benchmarks.suites.training import summarise

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def save(results: dict, results_path: Path, report_path: Path, rerun_of: dict | None = None,
         partial_datasets: bool = False) -> None:
    """What ``benchmarks.run`` does after every dataset: merge a partial rerun, save the suite, render the report."""
    figures = results if rerun_of is None else merge_rerun(rerun_of, results, partial_datasets)
    write_report(save_suite(results["suite"], figures, results_path), report_path)


def figures(samples_per_s: float, accuracy: float, **extra: float) -> dict:
    return {"train_samples_per_s": {"mean": samples_per_s, "std": 0.0}, "train_seconds": {"mean": 600 / samples_per_s,
            "std": 0.0}, "wall_s": {"mean": 100.0, "std": 0.0}, "peak_rss_mb": {"mean": 900.0, "std": 0.0},
            "metrics": {name: {"mean": accuracy, "std": 0.01} for name in ("accuracy", "f1_macro", "mcc")},
            **{name: {"mean": value, "std": 0.0} for name, value in extra.items()}}


def suite(datasets: dict) -> dict:
    return {"command": "python -m benchmarks.run", "date": "2026-11-23", "total_minutes": 3.0, "precision": "fp32",
            "machine": {"cpu": "test cpu", "cores": 2, "torch_threads": 2, "gpu": None, "python": "3.12",
                        "torch": "2", "transformers": "5", "bertclf": "0"},
            "matmul": {"flops_per_s": 1e11, "dtype": "fp32", "size": 2048}, "datasets": datasets, "skipped": {}}


def test_summarise_gives_mean_and_std_over_seeds():
    summary = summarise([{"wall_s": 1.0, "metrics": {"mcc": 0.2}}, {"wall_s": 3.0, "metrics": {"mcc": 0.4}}])
    assert summary["wall_s"] == {"mean": 2.0, "std": 2**0.5}
    assert abs(summary["metrics"]["mcc"]["mean"] - 0.3) < 1e-12


def test_long_suite_runs_each_strategy_through_bertclf():
    spec = next(spec for spec in SUITES["long"] if spec.name == "bbc_news")
    configurations = configurations_of(spec)
    assert list(configurations) == list(LONG_TEXT_STRATEGIES)
    assert {c["side"] for c in configurations.values()} == {"bertclf"}
    assert configurations["chunks-attention"]["bertclf_options"] == {"long_text": "chunks",
                                                                     "chunk_pooling": "attention"}
    assert list(configurations_of(SUITES["quick"][0])) == ["trainer-default", "trainer-tuned", "bertclf"]


def toy_dataset(sides: dict) -> dict:
    return {"description": "toy", "metric": "accuracy", "multilabel": False,
            "sizes": {"train": 100, "val": 10, "test": 10}, "mean_train_tokens": 30.0, "seeds": [0],
            "settings": {"max_length": 64, "epochs": 2, "batch_size": 32, "eval_batch_size": 64,
                         "learning_rate": 1e-4, "warmup_ratio": 0.1, "weight_decay": 0.01},
            "bertclf_options": {}, "configurations": sides,
            "inference": {"texts": {"mean": 10.0, "std": 0.0}, "pipeline_padding_share": {"mean": 0.3, "std": 0.0},
                          "bertclf_texts_per_s": {"mean": 40.0, "std": 0.0},
                          "pipeline_texts_per_s": {"mean": 20.0, "std": 0.0},
                          "bertclf_peak_fraction": {"mean": 0.1, "std": 0.0},
                          "pipeline_peak_fraction": {"mean": 0.05, "std": 0.0},
                          "agreement": {"mean": 1.0, "std": 0.0}}}


def test_report_shows_every_suite_with_verdicts(tmp_path):
    sides = {"trainer-default": figures(10.0, 0.80, train_peak_fraction=0.1),
             "trainer-tuned": figures(20.0, 0.80, train_peak_fraction=0.2),
             "bertclf": figures(18.0, 0.85, train_peak_fraction=0.18)}
    quick = toy_dataset(sides)
    strategies = {"head": figures(20.0, 0.90, predict_texts_per_s=50.0),
                  "chunks-mean": figures(4.0, 0.95, predict_texts_per_s=12.0)}
    for name, options in (("head", {"long_text": "head"}), ("chunks-mean", {"long_text": "chunks"})):
        strategies[name]["options"] = options
    long = {**quick, "configurations": strategies, "mean_train_tokens_untruncated": 500.0}
    del long["inference"]
    report = tmp_path / "BENCHMARKS.md"

    write_report({"quick": suite({"toy": quick}), "long": suite({"toy": long})}, report)

    text = report.read_text()
    assert text.index("## Suite `long`") < text.index("## Suite `quick`")
    assert "1.80x (met, target ≥ 1.5x)" in text  # bertclf / Trainer-default
    assert "0.90x (MISSED, target ≥ 1x)" in text  # bertclf / Trainer-tuned, with its reason below
    assert "Training vs Trainer-tuned 0.90x" in text
    assert "| chunks-mean | long_text=chunks | 4.0 | 150 | 5.00x |" in text
    assert "- chunks-mean: accuracy 0.9500 vs 0.9000 (met), training time 5.00x (MISSED)" in text


def test_save_replaces_its_own_suite_and_names_the_datasets_not_yet_run(tmp_path):
    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    results.write_text(json.dumps({"suites": {"long": suite({}), "full": {**suite({}), "date": "old"}}}))

    save({**suite({}), "suite": "full", "unfinished": ["cola", "rutweetcorp"]}, results, report)

    suites = json.loads(results.read_text())["suites"]
    assert set(suites) == {"long", "full"} and suites["full"]["date"] == "2026-11-23"
    assert "(3 minutes; stopped before cola, rutweetcorp)" in report.read_text()


def test_a_missed_accuracy_target_counts_the_runs_that_predicted_one_class(tmp_path):
    sides = {side: figures(20.0, accuracy, train_peak_fraction=0.2)
             for side, accuracy in (("trainer-default", 0.55), ("trainer-tuned", 0.70), ("bertclf", 0.55))}
    for side, scores in (("trainer-default", (0.0, 0.1)), ("trainer-tuned", (0.2, 0.3)), ("bertclf", (0.0, 0.0))):
        sides[side]["runs"] = [{"metrics": {"mcc": mcc}} for mcc in scores]
    report = tmp_path / "BENCHMARKS.md"

    write_report({"quick": suite({"toy": toy_dataset(sides)})}, report)

    text = report.read_text()
    assert "accuracy 0.5500 ± 0.0100 vs Trainer, tuned 0.7000 ± 0.0100 (MISSED)" in text
    assert "scores: bertclf 2 of 2, Trainer-tuned 0 of 2, Trainer-default 1 of 2." in text
    assert ("bertclf's mean accuracy is 0.1500 below Trainer-tuned's, and the two Trainer configurations, which "
            "differ in their batches only, are 0.1500 apart from each other on the 10 test texts.") in text


def test_accuracy_answers_to_the_better_trainer_configuration(tmp_path):
    sides = {side: figures(20.0, accuracy, train_peak_fraction=0.2)
             for side, accuracy in (("trainer-default", 0.90), ("trainer-tuned", 0.80), ("bertclf", 0.85))}
    for side in sides:
        sides[side]["runs"] = [{"metrics": {"mcc": 0.5}}]
    report = tmp_path / "BENCHMARKS.md"
    write_report({"quick": suite({"toy": toy_dataset(sides)})}, report)
    assert "accuracy 0.8500 ± 0.0100 vs Trainer, default 0.9000 ± 0.0100 (MISSED)" in report.read_text()


def test_recipes_are_judged_against_the_defaults_by_one_standard_deviation(tmp_path):
    recipes = {"defaults": figures(20.0, 0.80), "layer decay 0.95": figures(18.0, 0.82),
               "frozen encoder": figures(200.0, 0.70), "focal loss": figures(20.0, 0.805)}
    for name, options in (("defaults", {}), ("layer decay 0.95", {"layer_decay": 0.95}),
                          ("frozen encoder", {"freeze_encoder": True}), ("focal loss", {"loss": "focal"})):
        recipes[name]["options"] = options
    dataset = {**toy_dataset(recipes), "configurations": recipes}
    del dataset["inference"]
    report = tmp_path / "BENCHMARKS.md"
    other = {**dataset, "configurations": {name: {**figures(20.0, 0.80), "options": recipes[name]["options"]}
                                           for name in recipes}}
    write_report({"recipes-long": suite({"other": other}), "recipes-short": suite({"toy": dataset})}, report)
    text = report.read_text()
    # one table for every recipes suite, before the first of them, a column per dataset in the suites' order
    summary = text[text.index("## Recipes across the datasets"):text.index("## Suite `recipes-short`")]
    assert "The recipes suites below (recipes-short, recipes-long) together." in summary
    assert "| configuration | toy | other |" in summary
    assert "| layer decay 0.95 | helps | no effect |" in summary and "| frozen encoder | hurts | no effect |" in summary
    assert "| focal loss | no effect | no effect |" in summary
    assert "| frozen encoder | freeze_encoder=True | 200.0 | 3 | 10.00x |" in text
    assert "- toy: the frozen encoder trains at 10.0x the defaults' samples/s, computing the features included" in text


def test_the_recipes_run_in_a_suite_per_kind_of_data():
    recipes_suites = {name: specs for name, specs in SUITES.items() if name.startswith("recipes")}
    assert len(recipes_suites) > 1
    seen: list[str] = []
    for name, specs in recipes_suites.items():
        assert specs and all("defaults" in (spec.strategies or {}) for spec in specs)  # recipes against the defaults
        # one kind of data per suite: the multilabel suite's datasets are all multilabel, the others' none
        assert {spec.multilabel for spec in specs} == {name == "recipes-multilabel"}
        seen += [spec.name for spec in specs]
    assert len(seen) == len(set(seen))  # each dataset in one recipes suite only


def test_only_suites_of_bertclf_configurations_against_its_defaults_are_recipes_suites():
    assert is_recipes_suite({"datasets": {"toy": {"configurations": {"defaults": {}, "frozen encoder": {}}}}})
    assert not is_recipes_suite({"datasets": {"toy": {"configurations": {"head": {}, "chunks-mean": {}}}}})
    assert not is_recipes_suite({"datasets": {"toy": {"runtimes": {}}}})  # the inference suite's layout
    assert not is_recipes_suite({"clients": 200, "runtimes": {}})  # the serve suite's: no datasets at all


def test_recipes_are_also_judged_against_the_better_trainer_run_beside_them(tmp_path):
    configurations = {"trainer-default": figures(10.0, 0.79), "trainer-tuned": figures(15.0, 0.75),
                      "defaults": figures(20.0, 0.795), "layer decay 0.95": figures(18.0, 0.81),
                      "frozen encoder": figures(200.0, 0.70)}
    for name, figures_of in configurations.items():
        figures_of["options"] = {"layer_decay": 0.95} if name == "layer decay 0.95" else {}
    dataset = {**toy_dataset(configurations), "configurations": configurations}
    del dataset["inference"]
    report = tmp_path / "BENCHMARKS.md"
    write_report({"recipes-short": suite({"toy": dataset})}, report)
    text = report.read_text()
    # the better Trainer is the default one, 0.79 ± 0.01: 0.81 beats it, 0.795 is within one std, 0.70 below
    assert "The better Trainer configuration here: Trainer, default (pad to max_length)." in text
    assert "| Trainer, default (pad to max_length) | - | 10.0 | 60 | 0.50x |" in text
    assert "| layer decay 0.95 | layer_decay=0.95 | 18.0 | 33 | 0.90x | 0.8100 ± 0.0100 |" in text
    summary = text[text.index("against the better Trainer configuration of the same dataset"):]
    assert "| defaults | within one std |" in summary and "| layer decay 0.95 | beats |" in summary
    assert "| frozen encoder | below |" in summary
    spec = next(spec for spec in SUITES["recipes-short"] if spec.name == "trec")
    assert list(configurations_of(spec))[:3] == ["trainer-default", "trainer-tuned", "defaults"]


def test_a_rerun_of_some_configurations_replaces_theirs_and_keeps_the_rest(tmp_path):
    results, report = tmp_path / "results.json", tmp_path / "BENCHMARKS.md"
    recipes = {name: {**figures(speed, 0.8), "options": {}} for name, speed in (("defaults", 20.0),
                                                                                ("frozen encoder", 60.0))}
    earlier = {**suite({"toy": {**toy_dataset(recipes), "configurations": recipes}}), "suite": "recipes",
               "unfinished": ["other"]}
    del earlier["datasets"]["toy"]["inference"]
    results.write_text(json.dumps({"suites": {"recipes": earlier}}))
    faster = {"frozen encoder": {**figures(200.0, 0.9), "options": {"freeze_encoder": True}}}
    rerun = {**suite({"toy": {**earlier["datasets"]["toy"], "configurations": faster}}), "suite": "recipes",
             "command": "python -m benchmarks.run --configurations 'frozen encoder'", "date": "2026-12-01",
             "unfinished": []}

    save(rerun, results, report, rerun_of=earlier, partial_datasets=True)

    merged = json.loads(results.read_text())["suites"]["recipes"]
    configurations = merged["datasets"]["toy"]["configurations"]
    assert list(configurations) == ["defaults", "frozen encoder"]  # the earlier order, the new figures
    assert configurations["defaults"]["train_samples_per_s"]["mean"] == 20.0
    assert configurations["frozen encoder"]["train_samples_per_s"]["mean"] == 200.0
    assert merged["date"] == "2026-11-23" and merged["unfinished"] == ["other"]
    text = report.read_text()
    assert ("- rerun on 2026-12-01: `python -m benchmarks.run --configurations 'frozen encoder'` (3 minutes), whose "
            "figures replace the earlier run's for toy (frozen encoder)") in text
    assert "| frozen encoder | freeze_encoder=True | 200.0 | 3 | 10.00x (other run) |" in text
    assert "- toy: the frozen encoder trains at 10.0x the defaults' samples/s, computing the features included " \
           "(the two measured in different runs)" in text


def test_a_rerun_of_some_configurations_on_other_texts_or_seeds_is_refused(tmp_path):
    recipes = {"defaults": {**figures(20.0, 0.8), "options": {}}}
    earlier = {**suite({"toy": {**toy_dataset(recipes), "configurations": recipes}}), "suite": "recipes"}
    rerun = {**suite({"toy": {**earlier["datasets"]["toy"], "seeds": [0, 1, 2]}}), "suite": "recipes",
             "unfinished": []}
    with pytest.raises(ValueError, match="toy: the rerun's seeds differ from the earlier run's"):
        save(rerun, tmp_path / "results.json", tmp_path / "BENCHMARKS.md", rerun_of=earlier, partial_datasets=True)
    assert not (tmp_path / "results.json").exists()


def test_a_suite_note_on_where_its_figures_came_from_is_shown_under_its_header(tmp_path):
    recipes = {"defaults": {**figures(20.0, 0.8), "options": {}}}
    dataset = {**toy_dataset(recipes), "configurations": recipes}
    del dataset["inference"]
    report = tmp_path / "BENCHMARKS.md"
    write_report({"recipes": {**suite({"toy": dataset}), "note": "other moved to recipes-long"}}, report)
    assert "- note: other moved to recipes-long\n\n" in report.read_text()


def test_a_verdict_needs_more_than_the_larger_standard_deviation_of_the_two():
    one_class = {"metrics": {"f1_macro": {"mean": 0.3548, "std": 0.0}}}  # every seed gave every text one class
    assert recipe_verdict({"metrics": {"f1_macro": {"mean": 0.3562, "std": 0.0023}}}, one_class, "f1_macro") \
        == "no effect"
    assert recipe_verdict({"metrics": {"f1_macro": {"mean": 0.4650, "std": 0.0314}}}, one_class, "f1_macro") == "helps"


def test_a_report_page_run_timed_by_bertclf_renders_as_one_timed_by_the_benchmark():
    host = {"cpu": "test cpu", "cores": 2, "bertclf": "0"}
    page = {"sections": ["run"], "all_sections": True, "images": 6, "baseline_row": True, "bytes": 4096}
    run = {"description": "toy", "wall_seconds": 100.0, "train_seconds": 90.0, "report_share": 0.0278, "page": page}
    by_bertclf = {"inspect_data": 0.34, "tfidf_baseline": 1.92, "write_report": 1.27}  # metrics.json's report_seconds
    by_the_benchmark = {"inspect_data": 0.34, "tfidf_baseline": 1.92, "save_inputs": 0.02, "write_report": 1.25}
    lines = [report_page_section({"command": "c", "minutes": 2.0, "date": "d", "machine": host, "inspect": {},
                                  "runs": {"bbc_news": {**run, "report_seconds": seconds}}})
             for seconds in (by_bertclf, by_the_benchmark)]
    assert lines[0] == lines[1]
    assert "| 0.34 | 1.92 | 1.27 | 2.8% (met) |" in "\n".join(lines[0])


def own_sources() -> list[Path]:
    """The benchmarks' own modules (not the scratch folder's: the SetFit virtualenv lives there)."""
    return [path for path in BENCHMARKS.rglob("*.py") if "work" not in path.relative_to(BENCHMARKS).parts]


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(BENCHMARKS.parent).with_suffix("").parts).removesuffix(".__init__")


def benchmark_imports(path: Path) -> set[str]:
    """The benchmarks modules a file imports, at the top or inside functions alike."""
    modules = {module_name(source) for source in own_sources()}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules and name != module_name(path)}


def test_the_benchmarks_have_no_import_cycles_and_nothing_imports_the_driver():
    graph = {module_name(path): benchmark_imports(path) for path in own_sources()}
    assert "benchmarks.suites.runtimes" in graph and "benchmarks.markdown" in graph

    def cycle_from(start: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for imported in sorted(graph[start]):
            if imported in path:
                return (*path[path.index(imported):], imported)
            found = cycle_from(imported, (*path, imported))
            if found:
                return found
        return None

    cycles = [cycle for module in graph if (cycle := cycle_from(module, (module,)))]
    assert not cycles, f"import cycle: {' -> '.join(cycles[0])}"
    assert not [module for module, imported in graph.items() if "benchmarks.run" in imported]


def test_the_markdown_renderer_needs_no_suite_and_no_library():
    imported = benchmark_imports(BENCHMARKS / "markdown.py")
    assert imported <= {"benchmarks.results", "benchmarks.runtime_timing"}
    script = ("import json, sys; from benchmarks.markdown import render; "
              f"render(json.loads(open({str(RESULTS)!r}).read())['suites']); "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'bertclf') "
              "or m.startswith('benchmarks.suites') "
              "or m in ('benchmarks.run', 'benchmarks.worker', 'benchmarks.jobs', 'benchmarks.hf_trainer')))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=BENCHMARKS.parent)
    assert loaded.stdout.strip() == "[]"


def test_benchmarks_md_is_the_rendering_of_results_json():
    assert render(load_results(RESULTS)) == REPORT.read_text()


def test_the_bookkeeping_imports_neither_torch_nor_bertclf():
    script = ("import sys; import benchmarks.results, benchmarks.data_specs, benchmarks.markdown, "
              "benchmarks.suites.training, benchmarks.suites.serving, benchmarks.suites.file_prediction, "
              "benchmarks.suites.report_page, benchmarks.suites.runtimes; "
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'bertclf')))")
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=BENCHMARKS.parent)
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize("path", ["run.py", "suites/serving.py", "suites/file_prediction.py",
                                  "suites/report_page.py", "suites/fewshot.py", "suites/tune.py"])
def test_every_entry_point_saves_its_suite_and_rewrites_benchmarks_md(path):
    tree = ast.parse((BENCHMARKS / path).read_text())
    main = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "main")
    called = {node.func.id for node in ast.walk(main) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert {"save_suite", "write_report"} <= called


def test_a_suite_whose_model_is_not_installed_is_skipped_with_how_to_install_it(tmp_path):
    spec = dataclasses.replace(SUITES["inference-mpnet"][0], files=(), model_folder=tmp_path / "absent")
    assert missing(spec, tmp_path) == (f"the model {tmp_path / 'absent'} is not installed (install it with "
                                       "../shared/models/install-all-mpnet-base-v2)")
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "config.json").write_text("{}")
    assert missing(spec, tmp_path) is None
    assert missing(dataclasses.replace(spec, files=("sst2/dev.tsv",)), tmp_path) == f"missing under {tmp_path}: " \
        "sst2/dev.tsv"


def _fewshot_cell(ours: tuple[float, float, float], setfit: tuple[float, float, float]) -> dict:
    def method(mean, std, seconds):
        return {"mean": mean, "std": std, "mean_train_seconds": seconds}

    others = {name: method(0.5, 0.0, 1.0) for name in ("fine-tune", "frozen-lr", "tfidf")}
    return {"metric": "accuracy", "test_texts": 500, "run": 0,
            "methods": {"bertclf": method(*ours), "setfit": method(*setfit), **others}}


@pytest.mark.parametrize(("ours", "setfit", "verdict"), [
    ((0.70, 0.02, 20.0), (0.66, 0.03, 10.0), "+0.040: above by more than 1 std; time 2.00x (met)"),
    ((0.67, 0.02, 30.0), (0.66, 0.03, 10.0), "+0.010: at least its mean; time 3.00x (MISSED)"),
    ((0.60, 0.02, 5.0), (0.66, 0.03, 10.0), "-0.060: BELOW its mean; time 0.50x (met)")])
def test_the_fewshot_verdict_weighs_bertclf_against_setfit_by_the_larger_spread_and_the_time(ours, setfit, verdict):
    from benchmarks.markdown import fewshot_section, fewshot_verdict

    cell = _fewshot_cell(ours, setfit)
    assert fewshot_verdict(cell) == verdict
    machine = {"cpu": "cpu", "cores": 2, "bertclf": "0.1.0"}
    lines = fewshot_section({"runs": [{"command": "c", "minutes": 3, "date": "d", "machine": machine}],
                             "descriptions": {"sst2": "SST-2"}, "cells": {"sst2": {"8": cell}}})
    assert "### 8 texts per class" in lines and any(line.startswith("| sst2 (accuracy, 500) |") and verdict in line
                                                    for line in lines)


@pytest.mark.parametrize(("modes", "fine_tune", "low_label", "verdict"), [
    (["on"] * 3, (0.62, 0.02), None, "low-label chosen, +0.080 vs fine-tune (met)"),  # the default is the mode
    (["off"] * 3, None, (0.72, 0.01), "fine-tune chosen, -0.020 vs low-label (MISSED)"),  # worse by > 1 std
    (["off"] * 3, None, (0.69, 0.03), "fine-tune chosen, +0.010 vs low-label (met)"),
    (["off"] * 3, None, None, "n/a")])
def test_the_crossover_verdict_weighs_the_rules_choice_against_the_other_mode(modes, fine_tune, low_label, verdict):
    from benchmarks.markdown import crossover_verdict, fewshot_section

    cell = _fewshot_cell((0.70, 0.005, 20.0), (0.66, 0.03, 10.0))
    del cell["methods"]["fine-tune"], cell["methods"]["setfit"]
    for name, figures in (("fine-tune", fine_tune), ("low-label", low_label)):
        if figures is not None:
            cell["methods"][name] = {"mean": figures[0], "std": figures[1], "mean_train_seconds": 1.0}
    cell["low_label"] = modes
    assert crossover_verdict(cell) == verdict
    assert crossover_verdict({**cell, "methods": {k: v for k, v in cell["methods"].items() if k != "bertclf"}}) == "n/a"
    machine = {"cpu": "cpu", "cores": 2, "bertclf": "0.1.0"}
    lines = fewshot_section({"runs": [{"command": "c", "minutes": 3, "date": "d", "machine": machine}],
                             "descriptions": {"sst2": "SST-2"}, "cells": {"sst2": {"128": cell}}})
    row = next(line for line in lines if line.startswith("| sst2 (accuracy, 500) |"))
    assert verdict in row and "| not run |" in row  # SetFit's column


def test_a_run_of_some_fewshot_methods_replaces_their_figures_and_keeps_the_others():
    from benchmarks.markdown import fewshot_section
    from benchmarks.suites.fewshot import merged

    old = {**_fewshot_cell((0.70, 0.01, 20.0), (0.66, 0.03, 10.0)), "low_label": ["on"] * 3}  # one run's cell
    new = {"metric": "accuracy", "test_texts": 500, "low_label": [], "setfit_iterations": None,
           "methods": {"fine-tune": {"mean": 0.6, "std": 0.01, "mean_train_seconds": 9.0},
                       "low-label": {"mean": 0.7, "std": 0.01, "mean_train_seconds": 9.0}}}
    cell = merged(old, new, 3)
    assert cell["methods"]["fine-tune"]["mean"] == 0.6 and cell["methods"]["setfit"] == old["methods"]["setfit"]
    assert cell["runs"] == {"bertclf": 0, "setfit": 0, "fine-tune": 3, "frozen-lr": 0, "tfidf": 0, "low-label": 3}
    assert cell["low_label"] == ["on"] * 3 and "run" not in cell  # bertclf's mode follows the run that measured it
    machine = {"cpu": "cpu", "cores": 2, "bertclf": "0.1.0"}
    lines = fewshot_section({"runs": [{"command": "c", "minutes": 3, "date": "d", "machine": machine}] * 4,
                             "descriptions": {"sst2": "SST-2"}, "cells": {"sst2": {"64": cell}}})
    assert any(line.endswith("| 0, 3 |") for line in lines)
    assert "- sst2: SetFit (defaults), bertclf (default), frozen + LR, TF-IDF + LR from run 0; `--low-label off`, " \
        "`--low-label on` from run 3" in lines


def test_a_fewshot_draw_takes_the_texts_per_class_and_follows_its_seed():
    import pandas as pd

    from benchmarks.suites.fewshot import GOEMOTIONS_LABELS, draw

    pool = pd.DataFrame({"text": [f"t{i}" for i in range(60)], "label": [i % 3 for i in range(60)]})
    drawn = draw(pool, 8, seed=1, multilabel=False)
    assert drawn["label"].value_counts().to_dict() == {0: 8, 1: 8, 2: 8}
    assert drawn.equals(draw(pool, 8, seed=1, multilabel=False)) and not drawn.equals(draw(pool, 8, 2, False))
    labels = [json.dumps([GOEMOTIONS_LABELS[i % 5]] + ([GOEMOTIONS_LABELS[0]] if i % 7 == 0 else []))
              for i in range(200)]
    multilabel = draw(pd.DataFrame({"text": [f"t{i}" for i in range(200)], "label": labels}), 8, 0, True)
    counts = {name: sum(name in json.loads(cell) for cell in multilabel["label"]) for name in GOEMOTIONS_LABELS}
    assert all(count >= 8 for count in counts.values()) and len(multilabel) <= 40


def _tuned_dataset(defaults: tuple[float, float], tuned: tuple[float, float]) -> dict:
    def configuration(mean: float, std: float, options: dict) -> dict:
        return {**figures(100.0, mean), "options": options,
                "metrics": {name: {"mean": mean, "std": std} for name in ("accuracy", "f1_macro", "mcc")}}

    return {"description": "d", "metric": "accuracy", "sizes": {"train": 10, "val": 5, "test": 5},
            "settings": {"max_length": 24, "batch_size": 32, "learning_rate": 1e-4, "epochs": 3}, "seeds": [0, 1, 2],
            "configurations": {"trainer-default": configuration(0.80, 0.01, {}),
                               "trainer-tuned": configuration(0.82, 0.01, {}),
                               "defaults": configuration(*defaults, {"min_steps": 150}),
                               "tuned": configuration(*tuned, {"min_steps": 150, "learning_rate": 3.14159e-05})},
            "search": {"minutes": 12.3, "trials": {"COMPLETE": 14, "PRUNED": 6}, "metric": "accuracy",
                       "best_value": 0.9, "best_trial": 7, "best_options": {"learning_rate": 3.14159e-05}}}


@pytest.mark.parametrize(("second", "helped", "hurt"), [
    ((0.85, 0.01), "met (a)", "met (none)"),  # within one std of the larger spread: no effect
    ((0.80, 0.02), "met (a)", "MISSED (b)"),
])
def test_the_tune_targets_need_a_gain_beyond_one_std_somewhere_and_a_loss_beyond_it_nowhere(second, helped, hurt):
    from benchmarks.markdown import tune_section

    results = {**suite({"a": _tuned_dataset((0.84, 0.01), (0.88, 0.01)), "b": _tuned_dataset((0.84, 0.01), second)}),
               "suite": "tune"}
    text = "\n".join(tune_section(results))
    assert f"on at least one dataset: {helped}" in text
    assert f"on none: {hurt}" in text
    assert "| a (accuracy) | 14 complete, 6 pruned | 12 | 0.8400 ± 0.0100 | 0.8800 ± 0.0100 | 0.8200 ± 0.0100 " \
           "| +0.0400 (helps) | beats |" in text
    assert "learning_rate=3.14e-05" in text  # searched floats to 3 digits
    assert "## Recipes across the datasets" not in render({"tune": results})  # the tuned row is no recipe
