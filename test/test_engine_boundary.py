"""The process boundary in the layout: what OpenEvolve's process runs imports neither helion nor torch.

The engine subpackage is imported the way the engine process imports it: the launcher's import
folder (only the subpackage, under its private name) on ``PYTHONPATH``, in a fresh interpreter
in which importing ``helion`` or ``torch`` raises.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys

from helion.autotuner.openevolve.engine.main import PACKAGE
from helion.autotuner.openevolve.loop import launcher

#: Run in the child: block helion and torch, import every module of the engine subpackage, build
#: OpenEvolve's Config from a job as the engine does, and report what was imported.
_CHILD = """
import importlib, importlib.abc, json, pkgutil, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("helion", "torch"):
            raise ImportError(f"the engine imported {name}")
        return None

sys.meta_path.insert(0, Blocked())
package = importlib.import_module(PACKAGE)
names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
for name in names:
    importlib.import_module(f"{PACKAGE}.{name}")
job_module = importlib.import_module(f"{PACKAGE}.job")
main = importlib.import_module(f"{PACKAGE}.main")
job, link = job_module.from_wire(json.loads(sys.argv[1]))
config = main.build_config(job, link)
print(json.dumps({
    "modules": names,
    "file": package.__file__,
    "model": config.llm.models[0].name,
    "islands": config.database.num_islands,
    "outside": sorted(m for m in sys.modules if m.startswith(("helion", "torch"))),
}))
"""


def _wire(tmp_path: Path) -> str:
    from helion.autotuner.openevolve.engine.job import EngineJob
    from helion.autotuner.openevolve.engine.job import LLMSettings
    from helion.autotuner.openevolve.engine.job import ServerLink
    from helion.autotuner.openevolve.engine.job import to_wire

    llm = LLMSettings(
        model="some-model",
        api_base="http://localhost:1/v1",
        api_key="k",
        config_path=None,
        temperature=0.7,
        llm_timeout_s=10,
        llm_retries=1,
        parallel_llm_calls=2,
        islands=4,
        seed=1,
        diff_based=False,
        max_llm_calls=3,
    )
    job = EngineJob(llm=llm, system_message="s", initial_program="p", objective_timeout_s=5.0, max_candidates=8)
    link = ServerLink(str(tmp_path / "x.sock"), "00", str(tmp_path), str(tmp_path), "")
    return json.dumps(to_wire(job, link))


def test_engine_subpackage_imports_without_helion_and_torch(tmp_path: Path) -> None:
    import_path = launcher.engine_import_path(tmp_path)
    assert sorted(p.name for p in import_path.iterdir()) == [PACKAGE]
    env = {**os.environ, "PYTHONPATH": str(import_path)}
    proc = subprocess.run(
        [sys.executable, "-c", f"PACKAGE = {PACKAGE!r}\n{_CHILD}", _wire(tmp_path)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"main", "job", "objective", "program", "feedback", "llm_channel", "llm_faults"} <= set(out["modules"])
    assert out["outside"] == []
    assert out["model"] == "some-model" and out["islands"] == 4
    # the engine's path holds the engine subpackage and nothing else of this package
    assert Path(out["file"]).resolve().parent.name == "engine"
    assert not (import_path / PACKAGE / "loop").exists()


def test_engine_job_round_trips_through_its_wire_form(tmp_path: Path) -> None:
    from helion.autotuner.openevolve.engine.job import from_wire
    from helion.autotuner.openevolve.engine.job import to_wire

    job, link = from_wire(json.loads(_wire(tmp_path)))
    assert from_wire(json.loads(json.dumps(to_wire(job, link)))) == (job, link)
    assert job.llm.endpoint() == ("http://localhost:1/v1", "some-model", "k")
