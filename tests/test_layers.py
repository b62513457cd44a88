"""The package's dependencies point one way: no import cycle (imports inside functions count) and no import of a
higher layer (the README's "Architecture" section draws the same layers)."""

import ast
from pathlib import Path

import pytest

import bertclf

ROOT = Path(bertclf.__file__).parent

# Lowest first. A module may import from its own layer (without a cycle) and from the layers below it.
LAYERS = [
    {"errors", "config", "option_values", "option_checks", "rundir", "device", "processes", "signals", "progress",
     "thresholds", "metrics"},
    {"data", "tokenization", "batching"},
    {"modeling"},
    {"training", "inference"},
    {"reporting", "fewshot"},
    {"fitting", "prediction", "export_check"},
    {"tuning"},
    {"classifier"},
    {"cli", "serving", "integrations", "batch_prediction", "__main__"},
]


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.Module, known: set[str]) -> set[str]:
    """The package's modules that a module imports anywhere (inside functions too), ``TYPE_CHECKING`` blocks aside."""
    typing_only = {id(node) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", None) == "TYPE_CHECKING" for node in ast.walk(block)}
    targets = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            targets.add(node.module)
            targets |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
    return {target for target in targets if target in known}


def parsed_modules(root: Path) -> dict[str, ast.Module]:
    return {module_name(path, root): ast.parse(path.read_text(encoding="utf-8")) for path in root.rglob("*.py")}


def import_graph(root: Path) -> dict[str, set[str]]:
    trees = parsed_modules(root)
    return {name: imported_modules(tree, set(trees)) - {name} for name, tree in trees.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module):], module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            cycle = visit(target, [*path, module])
            if cycle:
                return cycle
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module, [])
        if cycle:
            return cycle
    return None


def layer_of(module: str) -> int | None:
    """The layer of a bertclf module (by its top-level name: ``bertclf.training.loop`` is in ``training``'s)."""
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package itself: its version and lazy public names, importable from anywhere
    return next((index for index, names in enumerate(LAYERS) if parts[1] in names), None)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} imports {target}" for module, targets in graph.items() for target in targets
                  if layer_of(target) is not None and layer_of(module) is not None
                  and layer_of(target) > layer_of(module))


def test_every_module_has_a_layer():
    unplaced = [module for module in import_graph(ROOT) if "." in module
                and not any(module.split(".")[1] in names for names in LAYERS)]
    assert not unplaced, f"add these to a layer in LAYERS and in the README's Architecture section: {unplaced}"


def test_bertclf_modules_import_each_other_without_cycles():
    assert find_cycle(import_graph(ROOT)) is None, " -> ".join(find_cycle(import_graph(ROOT)))


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports(import_graph(ROOT)) == []


def test_no_classifier_is_handed_down_to_a_lower_layer():
    """Lower modules take values, not the estimator to read back (or call back into)."""
    handed = [f"{name}.{node.name}" for name, tree in parsed_modules(ROOT).items()
              if layer_of(name) is not None and layer_of(name) < layer_of("bertclf.classifier")
              for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
              and any(arg.arg == "classifier" for arg in (*node.args.args, *node.args.kwonlyargs))]
    assert handed == []


@pytest.fixture
def package_with_a_cycle(tmp_path: Path) -> Path:
    root = tmp_path / "bertclf"
    (root / "training").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "config.py").write_text("")
    (root / "training" / "__init__.py").write_text("")
    (root / "training" / "loop.py").write_text("from bertclf.config import X\n")
    (root / "classifier.py").write_text("def fit():\n    from bertclf.training.loop import train\n")
    (root / "metrics.py").write_text("def score():\n    from bertclf import classifier\n")
    return root


def test_the_checks_see_a_cycle_and_an_upward_import_even_inside_functions(package_with_a_cycle: Path):
    graph = import_graph(package_with_a_cycle)
    assert find_cycle(graph) is None  # classifier -> training.loop -> config, and metrics -> classifier: no cycle
    assert upward_imports(graph) == ["bertclf.metrics imports bertclf.classifier"]
    (package_with_a_cycle / "config.py").write_text("def load():\n    import bertclf.metrics\n")
    assert find_cycle(import_graph(package_with_a_cycle)) == [
        "bertclf.classifier", "bertclf.training.loop", "bertclf.config", "bertclf.metrics", "bertclf.classifier"]
