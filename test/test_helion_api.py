"""The Helion boundary: every Helion API the package uses beyond ``helion.Config`` and
``helion.exc`` comes from ``helion_api.py``, and the installed Helion has all of it.

A Helion release that renames a private method this search calls fails here by name, and one
that renames a hook the search overrides (which would otherwise be silently ignored) too.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from helion.autotuner.openevolve.adapters import helion_api
from helion.autotuner.openevolve.adapters.search import OpenEvolveSearch

PACKAGE = Path(__file__).resolve().parents[1] / "helion" / "autotuner"
# what any module may import from Helion itself: the public package and its exceptions
ALLOWED = {"helion", "helion.exc"}


def _helion_imports(path: Path) -> list[str]:
    """Every Helion module ``path`` imports (``from helion import exc`` counts as ``helion.exc``),
    leaving out this package's own modules."""
    out: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" if node.module == "helion" else node.module for a in node.names]
        else:
            continue
        out += [n for n in names if n.split(".")[0] == "helion" and not n.startswith("helion.autotuner.openevolve")]
    return out


def test_only_helion_api_imports_helion_internals() -> None:
    files = [*PACKAGE.joinpath("openevolve").rglob("*.py"), PACKAGE / "openevolve_tuner.py"]
    assert len(files) > 10
    stray = {
        f"{p.relative_to(PACKAGE)}: {name}"
        for p in files
        if p.name != "helion_api.py"
        for name in _helion_imports(p)
        if name not in ALLOWED
    }
    assert not stray, f"import these through helion_api.py (the one file a Helion upgrade reads): {sorted(stray)}"


def test_installed_helion_has_every_api_used() -> None:
    assert helion_api.missing() == []


def test_overridden_hooks_are_helions_and_listed() -> None:
    """Every private method OpenEvolveSearch defines that Helion's base also defines is a hook
    listed in OVERRIDDEN_HOOKS, and every listed hook is still Helion's."""
    base = helion_api.PopulationBasedSearch
    own = {n for n, v in vars(OpenEvolveSearch).items() if inspect.isfunction(v) and n[:1] == "_" and n[:2] != "__"}
    assert {n for n in own if hasattr(base, n)} == set(helion_api.OVERRIDDEN_HOOKS)
    assert all(hasattr(base, n) for n in helion_api.OVERRIDDEN_HOOKS)
