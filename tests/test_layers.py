"""observe_sdk's modules import one way: down the layers written here, with no cycle.

Every import counts, including those inside functions and under ``TYPE_CHECKING``
(a cycle hidden there is still a cycle for a reader).  The layers, top to bottom;
a module imports only from its own layer or the ones below it:
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "observe_sdk"

LAYERS: list[tuple[str, list[str]]] = [
    ("entry points", ["observe_sdk", "observe_sdk.__main__", "observe_sdk.cli", "observe_sdk.bench", "observe_sdk.demo",
                      "observe_sdk.instrument.__main__", "observe_sdk.instrument.cli"]),
    ("sinks: the adapters", ["observe_sdk.adapters"]),
    ("views of a Trace (chrome-trace, folded stacks, html)", ["observe_sdk.views"]),
    ("the host of components (wasi:otel)", ["observe_sdk.component"]),
    ("what every sink shares: attribute names, the host's trace", ["observe_sdk.adapters.common",
                                                                   "observe_sdk.adapters.traceinfo"]),
    ("the host: linking a module, finishing its traces", ["observe_sdk.host.context", "observe_sdk.host.linking"]),
    ("raw log -> Trace", ["observe_sdk.assemble"]),
    ("recorders and the raw log", ["observe_sdk.host"]),
    ("the instrumenting compiler", ["observe_sdk.instrument"]),
    ("reading modules", ["observe_sdk.names"]),
    ("data and contracts", ["observe_sdk.sink", "observe_sdk.trace", "observe_sdk.options", "observe_sdk.abi",
                            "observe_sdk.errors", "observe_sdk.version", "observe_sdk.gcpause"]),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """The observe_sdk modules ``name`` imports, anywhere in its source."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in MODULES]
            found.update(subs or [target])
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int:
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if name == prefix or (name.startswith(prefix + ".") and prefix != "observe_sdk"):
                if best is None or len(prefix) > best[1]:
                    best = (index, len(prefix))
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best[0]


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down_the_layers(name: str) -> None:
    upward = sorted(m for m in GRAPH[name] if layer_of(m) < layer_of(name))
    assert not upward, f"{name} ({LAYERS[layer_of(name)][0]}) imports from a layer above it: {upward}"


def test_no_import_cycles() -> None:
    """Tarjan's strongly connected components: each must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    assert not cycles, f"import cycles: {cycles}"
