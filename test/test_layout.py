"""The package's layout keeps the architecture: no import cycle, and each folder imports only
what its process may.

Every import statement of every module counts, also those under ``TYPE_CHECKING`` and inside
functions: a cycle among them still ties the modules together for a reader and a type checker.
The modules are read as text (``ast``), from the form of the plugin under test.
"""

from __future__ import annotations

import ast
from pathlib import Path

import helion.autotuner.openevolve as package

PREFIX = "helion.autotuner.openevolve"
ROOT = Path(package.__path__[0])


def _modules() -> dict[str, Path]:
    """Dotted name (relative to the package, ``""`` for it) -> file."""
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports (a package's module, where one is named)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    base = here if is_package else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parent = base[: len(base) - (node.level - 1)]
                module = ".".join(parent + ([node.module] if node.module else []))
            elif node.module and (node.module == PREFIX or node.module.startswith(PREFIX + ".")):
                module = node.module[len(PREFIX) + 1 :]
            else:
                continue
            targets = [f"{module}.{a.name}".strip(".") for a in node.names] + [module]
        elif isinstance(node, ast.Import):
            targets = [a.name[len(PREFIX) + 1 :] for a in node.names if a.name.startswith(PREFIX + ".")]
        for target in targets:
            if target in modules and target != name:
                found.add(target)
                break
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_import_cycle() -> None:
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(m or "(package)" for m in cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _folder(module: str) -> str:
    """The subpackage a module is in (or is), ``""`` for the package's own modules."""
    first = module.split(".")[0]
    return first if (ROOT / first).is_dir() else ""


def test_each_folder_imports_only_what_its_process_may() -> None:
    """engine/ (OpenEvolve's process) imports only itself; loop/ (Helion-free) imports engine/
    and itself, never the Helion adapters; nothing imports the command line's modules."""
    graph = _graph()
    allowed = {"engine": {"engine"}, "loop": {"engine", "loop"}, "adapters": {"engine", "loop", "adapters"}}
    for module, targets in graph.items():
        folder = _folder(module)
        for target in targets:
            if folder in allowed:
                assert _folder(target) in allowed[folder], f"{module} imports {target}"
    assert {"engine", "loop", "adapters"} <= {_folder(m) for m in graph}


def test_helion_free_folders_import_neither_helion_nor_torch() -> None:
    for name, path in _modules().items():
        if _folder(name) not in ("engine", "loop"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            for imported in names:
                assert imported.split(".")[0] not in ("helion", "torch"), f"{name} imports {imported}"
