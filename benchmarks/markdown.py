"""BENCHMARKS.md from the results of a run: machine, command, one table per dataset, ratios and targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LABELS = {
    "trainer-default": "Trainer, default (pad to max_length)",
    "trainer-tuned": "Trainer, tuned (dynamic padding + group_by_length)",
    "bertclf": "bertclf (defaults)",
}
TARGETS = {"vs_default": 1.5, "vs_tuned": 1.0, "vs_pipeline": 1.5}
FROZEN_SPEED_TARGET = 5.0  # a frozen encoder's training samples/s over a full fine-tune's
LONG_TEXT_TIME_TARGET = 4.0  # chunked training may take at most this multiple of head truncation's time
SUITE_ORDER = ("full", "multilabel", "wide", "long", "recipes-short", "recipes-long", "recipes-multilabel",
               "recipes-russian", "quick", "inference", "serve", "streaming", "report")

SINGLE_LABEL_SCORES = ("accuracy", "f1_macro", "mcc")
MULTILABEL_SCORES = ("f1_micro", "f1_macro", "subset_accuracy")
METRIC_NAMES = {"accuracy": "accuracy", "f1_macro": "macro-F1", "mcc": "MCC", "f1_micro": "micro-F1",
                "subset_accuracy": "subset accuracy"}


def _pm(stats: dict[str, float], digits: int = 4) -> str:
    if stats["std"] == 0:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _verdict(value: float, target: float) -> str:
    return f"{value:.2f}x ({'met' if value >= target else 'MISSED'}, target ≥ {target:g}x)"


def ratios(dataset: dict[str, Any]) -> dict[str, float]:
    sides = dataset["configurations"]
    speed = {side: sides[side]["train_samples_per_s"]["mean"] for side in sides}
    inference = dataset["inference"]
    return {
        "vs_default": speed["bertclf"] / speed["trainer-default"],
        "vs_tuned": speed["bertclf"] / speed["trainer-tuned"],
        "vs_pipeline": inference["bertclf_texts_per_s"]["mean"] / inference["pipeline_texts_per_s"]["mean"],
    }


def better_trainer(dataset: dict[str, Any]) -> str:
    """The Trainer configuration with the higher mean test metric: the baseline bertclf's accuracy answers to."""
    metric = dataset["metric"]
    return max(("trainer-default", "trainer-tuned"),
               key=lambda side: dataset["configurations"][side]["metrics"][metric]["mean"])


def accuracy_met(dataset: dict[str, Any]) -> bool:
    """bertclf's mean metric must be within one standard deviation of the better Trainer configuration's, or
    better."""
    metric = dataset["metric"]
    ours = dataset["configurations"]["bertclf"]["metrics"][metric]
    theirs = dataset["configurations"][better_trainer(dataset)]["metrics"][metric]
    return ours["mean"] >= theirs["mean"] - theirs["std"]


def accuracy_verdict(dataset: dict[str, Any]) -> str:
    metric = dataset["metric"]
    side = better_trainer(dataset)
    ours = dataset["configurations"]["bertclf"]["metrics"][metric]
    theirs = dataset["configurations"][side]["metrics"][metric]
    return (f"{metric} {_pm(ours)} vs {LABELS[side].split(' (')[0]} {_pm(theirs)} "
            f"({'met' if accuracy_met(dataset) else 'MISSED'})")


def one_class_runs(dataset: dict[str, Any], side: str) -> str:
    """How many of a side's runs scored MCC 0 on the test texts, as giving every text one class does."""
    runs = dataset["configurations"][side]["runs"]
    return f"{sum(run['metrics'].get('mcc') == 0.0 for run in runs)} of {len(runs)}"


def missed_reasons(dataset: dict[str, Any], found: dict[str, float]) -> list[str]:
    """For each target this dataset misses, the measured figures that bound or explain the gap."""
    reasons = []
    length, budget = dataset["mean_train_tokens"], dataset["settings"]["max_length"]
    speed = {side: figures["train_samples_per_s"] for side, figures in dataset["configurations"].items()}
    if found["vs_default"] < TARGETS["vs_default"]:
        reasons.append(
            f"Training vs Trainer-default {found['vs_default']:.2f}x: texts average {length:.0f} real tokens of the "
            f"{budget}-token budget, so padding every text to the budget gives Trainer-default only "
            f"{budget / length - 1:.0%} more tokens to process than the texts hold; skipping padding cannot win "
            "more than that here, and the rest of bertclf's lead is the last layer's work on every position but the "
            "first, which 'cls' pooling never reads."
        )
    if found["vs_tuned"] < TARGETS["vs_tuned"]:
        spread = (speed["bertclf"]["std"] ** 2 + speed["trainer-tuned"]["std"] ** 2) ** 0.5
        gap = speed["trainer-tuned"]["mean"] - speed["bertclf"]["mean"]
        within = f"within the spread between seeds ({spread:.1f} samples/s)" if gap <= spread else (
            f"larger than the spread between seeds ({spread:.1f} samples/s)")
        reasons.append(
            f"Training vs Trainer-tuned {found['vs_tuned']:.2f}x: both pad per batch and group texts by length; "
            f"the gap of {gap:.1f} samples/s is {within}."
        )
    if found["vs_pipeline"] < TARGETS["vs_pipeline"]:
        waste = dataset["inference"]["pipeline_padding_share"]["mean"]
        reasons.append(
            f"Inference vs pipeline {found['vs_pipeline']:.2f}x: only {waste:.0%} of the tokens in the pipeline's "
            "input-order batches are padding here, so length-sorted batches have little to remove; beyond that both "
            "run the same fp32 model on the same tokens, bertclf without the last layer's work on every position "
            "but the first."
        )
    if not accuracy_met(dataset):
        metric, sides = dataset["metric"], dataset["configurations"]
        means = {side: sides[side]["metrics"][metric]["mean"] for side in LABELS}
        best = better_trainer(dataset)
        reason = (f"Accuracy vs the better Trainer configuration: bertclf's mean {metric} is "
                  f"{means[best] - means['bertclf']:.4f} below {best.replace('trainer', 'Trainer')}'s, and the two "
                  "Trainer configurations, which differ in their batches only, are "
                  f"{abs(means['trainer-default'] - means['trainer-tuned']):.4f} apart from each other on the "
                  f"{dataset['sizes']['test']} test texts.")
        if not dataset.get("multilabel"):
            reason += (" Runs that scored MCC 0, which is what predicting one class for every text scores: "
                       f"bertclf {one_class_runs(dataset, 'bertclf')}, "
                       f"Trainer-tuned {one_class_runs(dataset, 'trainer-tuned')}, "
                       f"Trainer-default {one_class_runs(dataset, 'trainer-default')}.")
        reasons.append(reason)
    return reasons


def dataset_section(name: str, dataset: dict[str, Any]) -> list[str]:
    scores_shown = MULTILABEL_SCORES if dataset.get("multilabel") else SINGLE_LABEL_SCORES
    settings = dataset["settings"]
    sizes = dataset["sizes"]
    metric = dataset["metric"]
    lines = [
        f"### {name}",
        "",
        f"{dataset['description']}. Texts: train {sizes['train']}, validation {sizes['val']}, test {sizes['test']}; "
        f"mean {dataset['mean_train_tokens']:.1f} training tokens after truncation.",
        f"Settings on every side: max length {settings['max_length']}, batch size {settings['batch_size']}, "
        f"learning rate {settings['learning_rate']:g}, {settings['epochs']} epochs, "
        f"warmup {settings['warmup_ratio']:g}, "
        f"weight decay {settings['weight_decay']:g}; best epoch by validation {metric}; "
        f"seeds {', '.join(map(str, dataset['seeds']))}."
        + (f" bertclf options: {dataset['bertclf_options']}." if dataset.get("bertclf_options") else ""),
        "",
        f"| configuration | train samples/s | train s | job wall s | peak RSS MB "
        f"| {' | '.join(METRIC_NAMES[name] for name in scores_shown)} | train FLOP/s vs matmul |",
        "|---" * (6 + len(scores_shown)) + "|",
    ]
    for side, label in LABELS.items():
        figures = dataset["configurations"][side]
        scores = " | ".join(_pm(figures["metrics"][name]) for name in scores_shown)
        lines.append(
            f"| {label} | {_pm(figures['train_samples_per_s'], 1)} | {_pm(figures['train_seconds'], 0)} "
            f"| {_pm(figures['wall_s'], 0)} | {_pm(figures['peak_rss_mb'], 0)} | {scores} "
            f"| {figures['train_peak_fraction']['mean']:.1%} |"
        )
    if dataset.get("multilabel"):
        ours = dataset["configurations"]["bertclf"]["metrics"]
        lines += ["", "bertclf's model deciding at 0.5 instead of its tuned thresholds: " + ", ".join(
            f"{METRIC_NAMES[name]} {_pm(ours[f'{name}_at_0.5'])}" for name in scores_shown) + "."]
    inference = dataset["inference"]
    found = ratios(dataset)
    accuracy = accuracy_verdict(dataset)
    lines += [
        "",
        f"Inference on the {inference['texts']['mean']:.0f} test texts (batch size {settings['eval_batch_size']}): "
        f"`pipeline` {_pm(inference['pipeline_texts_per_s'], 1)} texts/s "
        f"({inference['pipeline_peak_fraction']['mean']:.1%} of the matmul rate), `bertclf predict` "
        f"{_pm(inference['bertclf_texts_per_s'], 1)} texts/s ({inference['bertclf_peak_fraction']['mean']:.1%}); "
        f"the two give the same labels to {inference['agreement']['mean']:.2%} of the texts.",
        "",
        f"- training throughput, bertclf / Trainer-default: {_verdict(found['vs_default'], TARGETS['vs_default'])}",
        f"- training throughput, bertclf / Trainer-tuned: {_verdict(found['vs_tuned'], TARGETS['vs_tuned'])}",
        f"- inference, bertclf / pipeline: {_verdict(found['vs_pipeline'], TARGETS['vs_pipeline'])}",
        f"- accuracy, bertclf vs the better Trainer configuration (mean within one std or better): {accuracy}",
    ]
    reasons = missed_reasons(dataset, found)
    if reasons:
        lines += ["", "Why targets were missed here:", ""] + [f"- {reason}" for reason in reasons]
    return [*lines, ""]


def strategies_section(name: str, dataset: dict[str, Any]) -> list[str]:
    """bertclf's long-text strategies side by side, each judged against plain head truncation."""
    settings, sizes = dataset["settings"], dataset["sizes"]
    configurations = dataset["configurations"]
    head = configurations["head"]
    lines = [
        f"### {name}",
        "",
        f"{dataset['description']}. Texts: train {sizes['train']}, validation {sizes['val']}, test {sizes['test']}; "
        f"training texts hold {dataset['mean_train_tokens_untruncated']:.0f} tokens on average before truncation. "
        f"bertclf defaults otherwise: batch size {settings['batch_size']}, learning rate "
        f"{settings['learning_rate']:g}, {settings['epochs']} epochs, best epoch by validation {dataset['metric']}; "
        f"seeds {', '.join(map(str, dataset['seeds']))}.",
        "",
        "| strategy | options | train texts/s | train s | train time vs head | peak RSS MB "
        f"| {' | '.join(METRIC_NAMES[name] for name in SINGLE_LABEL_SCORES)} | predict texts/s |",
        "|---" * (7 + len(SINGLE_LABEL_SCORES)) + "|",
    ]
    for strategy, figures in configurations.items():
        options = ", ".join(f"{key}={value}" for key, value in figures["options"].items())
        scores = " | ".join(_pm(figures["metrics"][name]) for name in SINGLE_LABEL_SCORES)
        lines.append(
            f"| {strategy} | {options} | {_pm(figures['train_samples_per_s'], 1)} "
            f"| {_pm(figures['train_seconds'], 0)} "
            f"| {figures['train_seconds']['mean'] / head['train_seconds']['mean']:.2f}x "
            f"| {_pm(figures['peak_rss_mb'], 0)} | {scores} | {_pm(figures['predict_texts_per_s'], 1)} |"
        )
    metric = dataset["metric"]
    lines += ["", f"Against head truncation (targets: {metric} at least head's, training at most "
              f"{LONG_TEXT_TIME_TARGET:g}x its time):", ""]
    for strategy, figures in configurations.items():
        if strategy == "head":
            continue
        ours, theirs = figures["metrics"][metric]["mean"], head["metrics"][metric]["mean"]
        time_ratio = figures["train_seconds"]["mean"] / head["train_seconds"]["mean"]
        lines.append(f"- {strategy}: {metric} {ours:.4f} vs {theirs:.4f} "
                     f"({'met' if ours >= theirs else 'MISSED'}), training time {time_ratio:.2f}x "
                     f"({'met' if time_ratio <= LONG_TEXT_TIME_TARGET else 'MISSED'})")
    return [*lines, ""]


def recipe_verdict(figures: dict[str, Any], defaults: dict[str, Any], metric: str) -> str:
    """helps / hurts when the recipe's mean test metric is more than one standard deviation above / below the
    defaults'; no effect otherwise. The larger of the two standard deviations counts: a configuration whose seeds
    happen to agree (a model giving every text one class does) would otherwise make any difference a verdict."""
    ours, theirs = figures["metrics"][metric], defaults["metrics"][metric]
    spread = max(ours["std"], theirs["std"])
    if ours["mean"] > theirs["mean"] + spread:
        return "helps"
    if ours["mean"] < theirs["mean"] - spread:
        return "hurts"
    return "no effect"


def trainer_verdict(figures: dict[str, Any], dataset: dict[str, Any]) -> str:
    """A bertclf configuration against the better Trainer configuration, by one standard deviation (as
    :func:`recipe_verdict`): beats / within one std / below; '-' where the dataset ran no Trainer."""
    if "trainer-default" not in dataset["configurations"]:
        return "-"
    verdict = recipe_verdict(figures, dataset["configurations"][better_trainer(dataset)], dataset["metric"])
    return {"helps": "beats", "hurts": "below", "no effect": "within one std"}[verdict]


def measured_in(results: dict[str, Any], dataset: str) -> dict[str, int]:
    """Configuration -> the run of the suite that measured it: 0 the first, n its n-th partial rerun."""
    runs = {configuration: 0 for configuration in results["datasets"][dataset]["configurations"]}
    for number, rerun in enumerate(results.get("reruns", []), start=1):
        runs.update({configuration: number for configuration in rerun["datasets"].get(dataset, [])})
    return runs


def speed_ratio(figures: dict[str, Any], defaults: dict[str, Any], same_run: bool) -> str:
    """Training samples/s over the defaults', flagged where the two were measured in different runs (a partial
    rerun, on whatever machine ran it), whose speeds need not compare."""
    ratio = f"{figures['train_samples_per_s']['mean'] / defaults['train_samples_per_s']['mean']:.2f}x"
    return ratio if same_run else f"{ratio} (other run)"


def recipe_names(dataset: dict[str, Any]) -> list[str]:
    """The bertclf configurations of a recipes dataset (the Trainer's aside), the defaults first."""
    return [name for name in dataset["configurations"] if name not in LABELS]


def recipes_section(name: str, results: dict[str, Any]) -> list[str]:
    """Each recipe against bertclf's defaults on one dataset, and where the Trainer ran, against its better
    configuration."""
    dataset, runs = results["datasets"][name], measured_in(results, name)
    settings, sizes, metric = dataset["settings"], dataset["sizes"], dataset["metric"]
    configurations = dataset["configurations"]
    defaults = configurations["defaults"]
    scores = MULTILABEL_SCORES if dataset.get("multilabel") else SINGLE_LABEL_SCORES
    lines = [
        f"### {name}",
        "",
        f"{dataset['description']}. Texts: train {sizes['train']}, validation {sizes['val']}, test {sizes['test']}. "
        f"Settings on every side: max length {settings['max_length']}, batch size {settings['batch_size']}, "
        f"learning rate {settings['learning_rate']:g}, {settings['epochs']} epochs, best epoch by validation "
        f"{metric}; seeds {', '.join(map(str, dataset['seeds']))}.",
        "",
        f"| configuration | options | train texts/s | train s | speed vs defaults "
        f"| {' | '.join(METRIC_NAMES[score] for score in scores)} | vs defaults ({METRIC_NAMES[metric]}) "
        "| vs the better Trainer |",
        "|---" * (7 + len(scores)) + "|",
    ]
    trainers = [side for side in LABELS if side in configurations]
    for configuration in trainers + recipe_names(dataset):
        figures = configurations[configuration]
        options = ", ".join(f"{key}={value}" for key, value in figures["options"].items()) or "-"
        ours = configuration not in LABELS
        speed = speed_ratio(figures, defaults, same_run=runs[configuration] == runs["defaults"])
        verdict = recipe_verdict(figures, defaults, metric) if ours and configuration != "defaults" else "-"
        lines.append(
            f"| {LABELS.get(configuration, configuration)} | {options} | {_pm(figures['train_samples_per_s'], 1)} "
            f"| {_pm(figures['train_seconds'], 0)} | {speed} "
            f"| {' | '.join(_pm(figures['metrics'][score]) for score in scores)} | {verdict} "
            f"| {trainer_verdict(figures, dataset) if ours else '-'} |")
    if trainers:
        lines += ["", f"The better Trainer configuration here: {LABELS[better_trainer(dataset)]}."]
    return [*lines, ""]


def compares_recipes(dataset: dict[str, Any]) -> bool:
    """Whether a dataset's configurations are bertclf recipes against its defaults."""
    return "defaults" in dataset.get("configurations", {})


def is_recipes_suite(results: dict[str, Any]) -> bool:
    return any(compares_recipes(dataset) for dataset in results.get("datasets", {}).values())


def recipes_summary(recipe_suites: dict[str, dict[str, Any]]) -> list[str]:
    """Each recipe's verdicts on every dataset of the recipes suites (in report order), against the defaults and
    against the better Trainer configuration: one table across the kinds of data, which the suites split to fit an
    hour each."""
    datasets = {name: dataset for results in recipe_suites.values() for name, dataset in results["datasets"].items()
                if len(recipe_names(dataset)) > 2}
    recipes = list(dict.fromkeys(recipe for dataset in datasets.values() for recipe in recipe_names(dataset)))
    header = ["| configuration | " + " | ".join(datasets) + " |", "|---" * (1 + len(datasets)) + "|"]
    against_defaults, against_trainer = list(header), list(header)
    for recipe in recipes:
        figures = {name: dataset["configurations"].get(recipe) for name, dataset in datasets.items()}
        if recipe != "defaults":
            against_defaults.append(f"| {recipe} | " + " | ".join(
                "n/a" if figures[name] is None else recipe_verdict(figures[name], dataset["configurations"]["defaults"],
                                                                   dataset["metric"])
                for name, dataset in datasets.items()) + " |")
        against_trainer.append(f"| {recipe} | " + " | ".join(
            "n/a" if figures[name] is None else trainer_verdict(figures[name], dataset)
            for name, dataset in datasets.items()) + " |")
    return ["## Recipes across the datasets", "",
            f"The recipes suites below ({', '.join(recipe_suites)}) together. Each recipe's verdict against the "
            "defaults (test metric, mean of the seeds, more than one standard deviation away, the larger of the two "
            "configurations'):", "",
            *against_defaults, "", "Each configuration against the better Trainer configuration of the same dataset "
            "(beats / below: more than one standard deviation above / below its mean, as above):", "",
            *against_trainer, ""]


def frozen_encoder_speeds(results: dict[str, Any]) -> list[str]:
    """The frozen encoder's training speed over the defaults' on each dataset of a recipes suite."""
    lines = []
    for name, dataset in results["datasets"].items():
        configurations = dataset["configurations"]
        if "frozen encoder" in configurations:
            speed = (configurations["frozen encoder"]["train_samples_per_s"]["mean"]
                     / configurations["defaults"]["train_samples_per_s"]["mean"])
            verdict = (f" ({'met' if speed >= FROZEN_SPEED_TARGET else 'MISSED'}, target ≥ {FROZEN_SPEED_TARGET:g}x)"
                       if name == "cola" else "")
            runs = measured_in(results, name)
            if runs["frozen encoder"] != runs["defaults"]:
                verdict += " (the two measured in different runs)"
            lines.append(f"- {name}: the frozen encoder trains at {speed:.1f}x the defaults' samples/s, computing the "
                         f"features included{verdict}")
    return [*lines, ""] if lines else []


def suite_header(suite: str, results: dict[str, Any]) -> list[str]:
    """The lines every suite starts with: command, date, machine, software and matmul rate."""
    host = results["machine"]
    matmul = results["matmul"]
    return [
        f"## Suite `{suite}`",
        "",
        f"- command: `{results['command']}` ({results['total_minutes']:.0f} minutes"
        + (f"; stopped before {', '.join(results['unfinished'])}" if results.get("unfinished") else "") + ")",
        f"- date: {results['date']}",
        f"- machine: {host['cpu']}, {host['cores']} cores ({host['torch_threads']} torch threads)"
        + (f", GPU {host['gpu']}" if host["gpu"] else ", no GPU"),
        f"- software: Python {host['python']}, torch {host['torch']}, transformers {host['transformers']}, "
        f"bertclf {host['bertclf']}; precision {results['precision']}",
        f"- measured matrix-multiply rate: {matmul['flops_per_s'] / 1e9:.1f} GFLOP/s "
        f"({matmul['dtype']} `torch.matmul` of {matmul['size']}x{matmul['size']} matrices)",
        *(f"- rerun on {rerun['date']}: `{rerun['command']}` ({rerun['total_minutes']:.0f} minutes), whose figures "
          "replace the earlier run's for " + "; ".join(f"{name} ({', '.join(configurations)})"
                                                      for name, configurations in rerun["datasets"].items())
          for rerun in results.get("reruns", [])),
        *([f"- note: {results['note']}"] if results.get("note") else []),
        "",
    ]


def suite_section(suite: str, results: dict[str, Any]) -> list[str]:
    if suite in ("streaming", "serve", "report"):  # single-measurement suites of their own scripts and layouts
        from benchmarks import reporting, serve, streaming

        return {"streaming": streaming, "serve": serve, "report": reporting}[suite].section(results)
    if suite == "inference":  # runtimes against pipeline: a layout of its own
        from benchmarks import inference

        return inference.section(results, suite_header(suite, results))
    sides = {name: dataset for name, dataset in results["datasets"].items() if "inference" in dataset}
    lines = suite_header(suite, results)
    if sides or results["skipped"]:
        lines += [
            "| dataset | train vs Trainer-default | train vs Trainer-tuned | inference vs pipeline "
            "| accuracy vs the better Trainer |",
            "|---|---|---|---|---|",
        ]
        for name, dataset in sides.items():
            found = ratios(dataset)
            lines.append(f"| {name} | {_verdict(found['vs_default'], TARGETS['vs_default'])} "
                         f"| {_verdict(found['vs_tuned'], TARGETS['vs_tuned'])} "
                         f"| {_verdict(found['vs_pipeline'], TARGETS['vs_pipeline'])} "
                         f"| {accuracy_verdict(dataset)} |")
        for name, reason in results["skipped"].items():
            lines.append(f"| {name} | skipped: {reason} | | | |")
        lines.append("")
    if is_recipes_suite(results):
        lines += frozen_encoder_speeds(results)
    for name, dataset in results["datasets"].items():
        if name in sides:
            lines += dataset_section(name, dataset)
        elif compares_recipes(dataset):
            lines += recipes_section(name, results)
        else:
            lines += strategies_section(name, dataset)
    return lines


def write_report(suites: dict[str, dict[str, Any]], path: Path) -> None:
    """Render every suite's latest figures, in ``SUITE_ORDER``."""
    lines = [
        "# Benchmarks",
        "",
        "Written by `python -m benchmarks.run`; every figure below comes from the run its suite names. "
        "Do not edit by hand: run the command again. Each suite's run replaces that suite's figures only.",
        "",
    ]
    ordered = sorted(suites, key=lambda name: SUITE_ORDER.index(name) if name in SUITE_ORDER else 99)
    recipe_suites = {name: suites[name] for name in ordered if is_recipes_suite(suites[name])}
    first_recipes_suite = next(iter(recipe_suites), None)
    for suite in ordered:
        if suite == first_recipes_suite:  # the recipes suites' one table, before the first of them
            lines += recipes_summary(recipe_suites)
        lines += suite_section(suite, suites[suite])
    lines += [
        "## Method",
        "",
        "- Each configuration runs in its own process, one after another, on the same machine, model "
        "(the embedded all-MiniLM-L6-v2) and data files. Peak RSS is that process's maximum resident set.",
        "- *train samples/s* is training texts x epochs divided by the training call's time (bertclf's training loop, "
        "`Trainer.train()`), which on every side includes the per-epoch validation and keeping the best checkpoint. "
        "*job wall s* is the whole process: loading, tokenization, training, test scoring.",
        "- Test metrics use the same scikit-learn code for every side; the Trainer's predictions are compared with its "
        "own `label_ids`, since `group_by_length` reorders them.",
        "- FLOP/s counts useful work only: 2 FLOPs per non-embedding weight per real token, plus attention "
        "(4 x layers x length^2 x hidden), times 3 for training; padding tokens count as waste. The ratio to the "
        "measured matmul rate shows how far each side is from the hardware limit. The count is the same for every "
        "side, so it includes the last-layer work that bertclf skips ('cls' pooling reads the first position only, "
        "so its last layer computes only that one); bertclf's figure can therefore exceed 100%.",
        "- Inference times `TextClassifier.predict_proba` and `pipeline(..., batch_size, truncation=True)` on the same "
        "saved bertclf model and test texts after one warm-up batch; the saved tokenizer's maximum length is the "
        "trained one, so both truncate alike.",
        "- The `long` suite compares bertclf's long-text strategies with one another (the Trainer has no chunked "
        "documents); its *predict texts/s* is the first `predict_proba` call on the test texts, without warm-up.",
        "",
    ]
    path.write_text("\n".join(lines))
