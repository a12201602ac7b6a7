"""Test setup: which form of the plugin is under test, CPU backends, the stand-in LLM.

By default the tests use the installed package (what ``.ci/run`` installs with ``pip install .``)
when it is installed, else this source tree, whose ``helion/autotuner`` folder is put on the
installed Helion's ``helion.autotuner.__path__``. ``HELION_OPENEVOLVE_TEST_SOURCE=1`` forces the
source tree in the test process; scripts the tests run in subprocesses import the installed copy
(reinstall with ``pip install --no-deps .`` after a change). ``examples/`` (the stand-in LLM and the kernels, shared with the example scripts)
is on ``sys.path`` and, for the scripts tests run in subprocesses, on ``PYTHONPATH``. Every test
checks that it left no child process behind.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import sys
import time

import pytest

try:
    import psutil
except ImportError as e:  # never run without the leftover-process check: it would pass silently
    raise ImportError(
        "the tests need psutil (pip install '.[test]'): every test checks that it left no child process behind"
    ) from e

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "examples"))


def _use_source_tree() -> bool:
    if os.environ.get("HELION_OPENEVOLVE_TEST_SOURCE") == "1":
        return True
    return importlib.util.find_spec("_helion_openevolve_hook") is None


if _use_source_tree():
    import helion.autotuner

    helion.autotuner.__path__.insert(0, str(ROOT / "helion" / "autotuner"))
    # an installed copy may already be imported (its startup hook registers it with Helion's
    # import): drop it, so this process runs the source tree, and register the source's class
    for name in [
        m for m in sys.modules if m.startswith(("helion.autotuner.openevolve", "helion.autotuner.openevolve_tuner"))
    ]:
        del sys.modules[name]
    from helion.autotuner import search_algorithms
    from helion.autotuner.openevolve_tuner import OpenEvolveSearch

    search_algorithms["OpenEvolveTuner"] = search_algorithms["OpenEvolveSearch"] = OpenEvolveSearch
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "test"), os.environ.get("PYTHONPATH")]))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "examples"), os.environ.get("PYTHONPATH")]))


def _children() -> list[int]:
    return [p.pid for p in psutil.Process().children(recursive=True)]


@pytest.fixture(scope="session", autouse=True)
def private_helion_cache(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Helion's cache folder, and the search's history store inside it, private to this test
    session: a run of the tests neither reads nor leaves picks in the user's cache (nor in the
    next CI pass's). Tests that need their own set HELION_CACHE_DIR again."""
    old = os.environ.get("HELION_CACHE_DIR")
    os.environ["HELION_CACHE_DIR"] = str(tmp_path_factory.mktemp("helion-cache"))
    yield
    if old is None:
        os.environ.pop("HELION_CACHE_DIR", None)
    else:
        os.environ["HELION_CACHE_DIR"] = old


@pytest.fixture(autouse=True)
def no_leftover_processes() -> object:
    before = set(_children())
    yield
    cmdlines: dict[int, str] = {}  # read while readable: a zombie has no command line any more
    deadline = time.monotonic() + 10
    while True:
        left = set(_children()) - before
        for pid in left:
            cmdlines[pid] = _cmdline(pid) or cmdlines.get(pid, "?")
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    assert not left, f"child processes left behind: {[_describe(pid, cmdlines[pid]) for pid in sorted(left)]}"


def _cmdline(pid: int) -> str | None:
    try:
        return " ".join(psutil.Process(pid).cmdline())[:300]
    except psutil.Error:  # gone, or a zombie
        return None


def _describe(pid: int, cmdline: str) -> str:
    """A process's pid, state, parent, group and command line (what a leak report needs)."""
    try:
        p = psutil.Process(pid)
        return f"{pid} [{p.status()}, parent {p.ppid()}, group {os.getpgid(pid)}]: {cmdline}"
    except (psutil.Error, OSError):
        return f"{pid} (gone): {cmdline}"


@pytest.fixture
def standin() -> object:
    from standin_llm import StandinLLM

    with StandinLLM(mode="neighbors", latency_s=0.05, seed=1).start() as llm:
        yield llm


@pytest.fixture
def pallas_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Helion's Pallas backend in interpret mode: real autotuning on the CPU."""
    monkeypatch.setenv("HELION_BACKEND", "pallas")
    monkeypatch.setenv("HELION_PALLAS_INTERPRET", "1")
    monkeypatch.setenv("HELION_AUTOTUNE_EFFORT", "quick")
