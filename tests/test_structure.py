"""The shape of the package (issue "One home per concept"): imports point down, no argparse outside
the CLI, no function-level imports of lipkit modules without a stated reason, short functions.

The import graph is read from the source (module-level ``import``/``from`` statements, the parent
packages each one runs), so a cycle is found without importing anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "lipkit"
MAX_FUNCTION_LINES = 60
LAZY_REASONS = ("start-up time", "optional")  # what a comment must say beside a function-level lipkit import


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _targets(node: ast.AST, here: str) -> list[str]:
    """The lipkit modules an import statement loads (with their parent packages)."""
    names: list[str] = []
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module:
        base = node.module
        names = [base] + [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    out = []
    for name in names:
        parts = name.split(".")
        out += [".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in MODULES]
    ancestors = {".".join(here.split(".")[:i]) for i in range(1, here.count(".") + 1)}
    return [t for t in out if t != here and t not in ancestors]  # a package is loaded before its modules


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        edges: set[str] = set()
        for node in tree.body:  # module level only; `if TYPE_CHECKING:` blocks do not run
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                edges.update(_targets(node, name))
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert graph["lipkit.training.loop"] >= {"lipkit.evaluate", "lipkit.training.build"}  # the reader sees real edges
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_argparse_lives_in_the_cli_only():
    users = [name for name, path in MODULES.items()
             if name != "lipkit.cli" and "argparse" in path.read_text()]
    assert users == []


def test_function_level_lipkit_imports_say_why():
    unexplained = []
    for name, path in MODULES.items():
        if name == "lipkit.cli":  # every command imports its modules on use; the module docstring says why
            continue
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)) and _targets(inner, name):
                    if not any(r in lines[inner.lineno - 1] for r in LAZY_REASONS):
                        unexplained.append(f"{path.name}:{inner.lineno} {lines[inner.lineno - 1].strip()}")
    assert unexplained == []


def function_lengths() -> list[tuple[int, str]]:
    rows = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                rows.append((node.end_lineno - node.lineno + 1, f"{name}.{node.name} (line {node.lineno})"))
    return sorted(rows, reverse=True)


def test_functions_are_at_most_60_lines():
    long = [f"{where}: {n} lines" for n, where in function_lengths() if n > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("name", ["lipkit.cli", "lipkit.training", "lipkit.evaluate", "lipkit.metrics"])
def test_each_module_says_what_it_owns(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text()))
    assert doc and len(doc.split()) >= 8
