"""The packages' import graph has no cycle, and ``reflector`` is a leaf below ``rib``.

Every ``import`` and ``from ... import`` of the five packages counts, those under
``TYPE_CHECKING`` and inside functions too: a cycle there is still two modules that each need
the other to be understood (issue 16: ``bgpd.daemon`` <-> ``control_api`` / ``metrics`` was one).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("bgpd", "speaker", "rib", "reflector", "kernel_sync")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    modules = {
        module_name(path): path for package in PACKAGES for path in (REPO / package).glob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def test_no_import_cycles() -> None:
    graph = imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_reflector_imports_nothing_of_rib_bgpd_or_kernel_sync() -> None:
    graph = imports()
    for name, targets in graph.items():
        if name.startswith("reflector"):
            assert not {t for t in targets if t.split(".")[0] in ("rib", "bgpd", "kernel_sync")}
