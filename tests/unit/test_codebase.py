"""The shape of the code: imports go one way, no import cycles, small modules and functions (issue 12)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "wanwu"

# Lower layers first. A module may import only from its own component or from a lower rank, so the
# core (up to ``evaluate``) never imports the CLI or the service, and engines never import precision.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "cpu", "version", "threadnames"),
    ("models", "labels", "store"),
    ("weights",),
    ("sources", "datasets", "preprocess"),
    ("imagefolder",),
    ("trained",),
    ("ranking", "benchmark"),
    ("categories",),
    ("engines",),
    ("precision",),
    ("loader",),
    ("classifier",),
    ("evaluate",),
    ("training",),
    ("tagging",),
    ("__init__",),
    ("service",),
    ("cli",),
]
RANK = {component: rank for rank, names in enumerate(LAYERS) for component in names}
MAX_FUNCTION_LINES = 50
MAX_MODULE_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """Every ``wanwu`` module this file imports, at the top or inside a function (a lazy import is still a dependency)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("wanwu")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("wanwu") and node.level == 0:
            found.add(node.module)
    return found


GRAPH = {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def test_every_component_has_a_layer() -> None:
    assert {_component(m) for m in GRAPH} <= set(RANK), "add the new component to LAYERS"


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_one_way(module: str) -> None:
    mine = _component(module)
    upward = [dep for dep in GRAPH[module] if _component(dep) != mine and RANK[_component(dep)] >= RANK[mine]]
    assert not upward, f"{module} (layer {RANK[mine]}) imports {upward}: a lower layer never imports a higher one"


def test_no_import_cycles() -> None:
    modules = set(GRAPH)
    edges = {m: {d for d in deps if d in modules and d != m} for m, deps in GRAPH.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep] if dep in path else [node, dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name} has {len(text.splitlines())} lines"
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{path.name}: {', '.join(long)}"


def test_the_layer_check_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "engine.py"
    bad.write_text("def f():\n    from wanwu.service.app import create_app\n")
    assert _imports(bad) == {"wanwu.service.app"}
    assert RANK[_component("wanwu.service.app")] > RANK["engines"]


# Only the loader opens engines, so "which model file runs, at which precision, on how many threads" has one answer.
# The INT8 and bf16 calibrations are the exception: they compare a model file not yet in the store with fp32.
ENGINE_OPENERS = {"create_engine", "engine_timer", "choose_precision"}  # below the loader
MAY_OPEN_ENGINES = {"wanwu.loader", "wanwu.engines", "wanwu.precision.int8", "wanwu.precision.bf16", "wanwu.precision.auto"}


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_loader_opens_engines(path: Path) -> None:
    module = _module_name(path)
    if module in MAY_OPEN_ENGINES or module.startswith("wanwu.engines."):
        return
    called = _calls(path) & ENGINE_OPENERS
    assert not called, f"{module} calls {sorted(called)}: open models through wanwu.loader (load, or open_runner from it)"


def test_the_opener_rule_sees_a_call(tmp_path: Path) -> None:
    bad = tmp_path / "rogue.py"
    bad.write_text("from wanwu.engines import create_engine\ncreate_engine('openvino', None)\n")
    assert _calls(bad) & ENGINE_OPENERS == {"create_engine"}
