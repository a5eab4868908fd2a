"""The package's layers: imports point down only, and no modules import each other in a circle.

Every import counts, wherever it is written: at the top, inside a function, or under
`TYPE_CHECKING` (a type-only import still ties the two modules together).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "sogni_intelligence"
SOURCE = Path(__file__).resolve().parents[2] / "src" / PACKAGE

#: Top to bottom; a module may import from its own layer and the layers below it. The bottom
#: layer is the package root (`__version__`), `config.py`, `errors.py`, `http_server.py` (the
#: uvicorn server every process runs) and `observability/` (metrics and logs, which every
#: layer reports into).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("cli", "agent_cli"),
    ("api",),
    ("runtime",),
    ("agent",),
    ("tools",),
    ("media",),
    ("llm",),
    ("store",),
    ("", "config", "errors", "http_server", "observability"),
)
_RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _module_name(path: Path) -> str:
    parts = (PACKAGE, *path.relative_to(SOURCE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(SOURCE.rglob("*.py"))}


def _is_package(module: str) -> bool:
    return module in MODULES and MODULES[module].name == "__init__.py"


def imports_of(module: str, source: str | None = None) -> set[str]:
    """The package's modules that `module` imports, anywhere in its source."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8") if source is None else source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if _is_package(module) else 0)]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found.update(name for name in names if name in MODULES and name != module)
    return found


GRAPH: dict[str, set[str]] = {module: imports_of(module) for module in MODULES}


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_module_is_in_a_layer() -> None:
    assert [m for m in MODULES if layer_of(m) not in _RANK] == []


def test_imports_point_down() -> None:
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _RANK[layer_of(target)] < _RANK[layer_of(module)]
    )
    assert upward == [], "imports from a lower layer to a higher one"


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(GRAPH) == [], "modules that import each other in a circle"


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], expected: list) -> None:
    assert cycles(graph) == expected


def test_imports_inside_functions_and_type_checking_count() -> None:
    source = """
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from sogni_intelligence.tools.base import Tool
def later():
    import sogni_intelligence.media.store
    from sogni_intelligence.tools import catalog
    from . import base
"""
    assert imports_of(f"{PACKAGE}.tools.plans_example", source) == {
        f"{PACKAGE}.tools",
        f"{PACKAGE}.tools.base",
        f"{PACKAGE}.tools.catalog",
        f"{PACKAGE}.media.store",
    }
