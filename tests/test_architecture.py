"""The shape of the library (docs/ARCHITECTURE.md): subpackages, no import cycle, no re-export,
small modules, and no deep-learning framework loaded by the modules that must stay light."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from helpers import REPO_ROOT, ml_frameworks_loaded_by

PACKAGE = REPO_ROOT / "brats_utils"
#: Modules that sit flat in brats_utils/ (besides __init__ and __main__).
FLAT = {"conventions", "errors", "files", "provenance"}
#: Modules that must import without Keras, TensorFlow, JAX or torch: data, preprocessing,
#: evaluation, the CLI's start-up, and the settings and files a run is described by.
LIGHT_PACKAGES = ("data", "preprocessing", "evaluation", "viz", "study", "notebooks", "cli")
LIGHT_MODULES = (
    "brats_utils.conventions",
    "brats_utils.errors",
    "brats_utils.files",
    "brats_utils.provenance",
    "brats_utils.model.experiments",
    "brats_utils.model.settings",
    "brats_utils.training.settings",
    "brats_utils.training.run_folder",
    "brats_utils.training.recipes",
    "brats_utils.inference.run_config",
    "brats_utils.notebooks.runner",
    "brats_utils.notebooks.support",
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def _imports(name: str) -> set[str]:
    """brats_utils modules that ``name`` imports anywhere (module level or inside functions)."""
    found = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module in MODULES:
                found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names} & set(MODULES)
    found.discard(name)
    return found - {"brats_utils"}  # the root package only holds __version__


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return result


def test_the_import_graph_has_no_cycle():
    graph = {name: _imports(name) for name in MODULES}
    assert _cycles(graph) == []


def test_a_cycle_is_found_when_there_is_one():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _defined_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
            for t in node.targets:
                if isinstance(t, ast.Tuple):
                    names |= {e.id for e in t.elts if isinstance(e, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _exported(tree: ast.Module) -> list[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return [ast.literal_eval(e) for e in node.value.elts]
    return []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_a_module_exports_only_what_it_defines(name):
    """No re-exports: "where is X defined?" has one answer, the module that lists it."""
    tree = TREES[name]
    if name == "brats_utils":
        return
    foreign = sorted(set(_exported(tree)) - _defined_names(tree))
    assert foreign == [], f"{name} lists names in __all__ that it imports: {foreign}"


def test_a_handful_of_flat_modules_and_the_pipeline_as_subpackages():
    flat = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert flat == FLAT
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    expected = {"data", "preprocessing", "model", "training", "inference", "evaluation"}
    assert expected | {"viz", "study", "notebooks", "cli"} == subpackages
    assert not list(PACKAGE.glob("*/*/__init__.py")), "one level of subpackages"


#: The pipeline's layers, lowest first: a subpackage imports only the ones before it.
LAYERS = (
    "data",
    "preprocessing",
    "model",
    "evaluation",
    "training",
    "inference",
    "viz",
    "study",
    "notebooks",
    "cli",
)


def test_subpackages_import_only_lower_layers():
    upward = set()
    for name in MODULES:
        layer = name.split(".")[1] if name.count(".") >= 2 else None
        if layer is None:
            continue
        for target in _imports(name):
            other = target.split(".")[1] if target.count(".") >= 2 else None
            if other is not None and LAYERS.index(other) > LAYERS.index(layer):
                upward.add(f"{name} -> {target}")
    assert sorted(upward) == []


def test_flat_modules_import_no_subpackage():
    flat = [n for n in MODULES if n.count(".") == 1 and n != "brats_utils.__main__"]
    assert {n: sorted(i for i in _imports(n) if i.count(".") >= 2) for n in flat} == {
        n: [] for n in flat
    }


def test_subpackage_inits_hold_only_a_docstring():
    for path in PACKAGE.glob("*/__init__.py"):
        body = TREES[_module_name(path)].body
        assert len(body) == 1 and isinstance(body[0], ast.Expr), path


def test_no_module_is_longer_than_450_lines():
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lengths.items() if n > 450} == {}


def test_light_modules_load_no_deep_learning_framework():
    light = [n for n in MODULES if n.split(".")[1:2] and n.split(".")[1] in LIGHT_PACKAGES]
    light += [m for m in LIGHT_MODULES if m not in light]
    assert "brats_utils.cli.main" in light and "brats_utils.data.synth" in light
    assert ml_frameworks_loaded_by(*sorted(light)) == []
