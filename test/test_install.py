"""The installed form as a user gets it: what the wheel ships, the startup hook, uninstall.

These run against the installed distribution (``pip install .``, as ``.ci/run`` does).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path
import subprocess
import sys

import pytest


@pytest.fixture(autouse=True)
def installed() -> None:
    assert importlib.util.find_spec("_helion_openevolve_hook") is not None, "run `pip install .` first"


def _python(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_wheel_ships_only_our_files() -> None:
    # The installed distribution, not the egg-info a build leaves in the source tree.
    site = str(Path(importlib.util.find_spec("_helion_openevolve_hook").origin).parent)  # type: ignore[arg-type, union-attr]
    (dist,) = importlib.metadata.distributions(name="helion-openevolve", path=[site])
    files = {str(f) for f in dist.files or []}
    ours = {f for f in files if not f.startswith("helion_openevolve-") and "__pycache__" not in f}
    assert "helion_openevolve.pth" in ours
    assert "_helion_openevolve_hook.py" in ours
    assert "helion/autotuner/openevolve_tuner.py" in ours
    assert "helion/__init__.py" not in ours
    assert "helion/autotuner/__init__.py" not in ours
    others = {f for f in ours if f.startswith("helion/")} - {"helion/autotuner/openevolve_tuner.py"}
    assert others and all(f.startswith("helion/autotuner/openevolve/") for f in others), sorted(others)
    # the product only: no stand-in LLM, test or example support in a user's wheel
    assert not [f for f in ours if any(w in f for w in ("standin", "test", "example", "kernels"))], sorted(ours)


def test_startup_hook_imports_nothing_heavy() -> None:
    out = _python("import sys; print(sorted(m for m in ('torch', 'helion', 'openevolve') if m in sys.modules))")
    assert out == "[]"


def test_hook_registers_both_names_when_helion_autotuner_is_imported() -> None:
    out = _python(
        "from helion.autotuner import search_algorithms as s; "
        "print(s['OpenEvolveTuner'].__name__, s['OpenEvolveSearch'] is s['OpenEvolveTuner'])"
    )
    assert out == "OpenEvolveSearch True"


def test_helion_works_without_the_hook() -> None:
    """What ``pip uninstall`` leaves: Helion imports and its own searches stay registered."""
    out = _python(
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != '_Finder']; "
        "import helion, helion.autotuner as a; "
        "print('OpenEvolveTuner' in a.search_algorithms, 'PatternSearch' in a.search_algorithms)"
    )
    assert out == "False True"
