"""Helpers shared by the OpenEvolve search tests (real Pallas-on-CPU tuning runs)."""

from __future__ import annotations

import os
from pathlib import Path
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import torch

import helion
from helion.autotuner.openevolve.loop.record import read_record  # noqa: F401 (the tests' record reader)

if TYPE_CHECKING:
    from helion.runtime.kernel import BoundKernel

TEST_DIR = Path(__file__).resolve().parent

#: Small budgets: each run measures a handful of configs and talks to the LLM quickly. A fixed
#: seed: the random config of the first batch is the same in every run (Helion's own default seed
#: is drawn from the clock).
FAST = {
    "seed": 1,
    "max_evaluations": 8,
    "max_seconds": 90,
    "max_llm_failures": 2,
    "llm_retries": 0,
    "llm_timeout_s": 5,
    "initial_random": 1,
    "refinement": False,
}


def evaluations(lines: list[dict[str, object]], **match: object) -> list[dict[str, object]]:
    return [line for line in lines if line["kind"] == "evaluation" and all(line.get(k) == v for k, v in match.items())]


def measured_ok_configs(lines: list[dict[str, object]]) -> list[dict[str, object]]:
    return [line["config"] for line in evaluations(lines, status="ok")]  # type: ignore[misc]


def matmul_args() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(128, 128), torch.randn(128, 128)


def fresh_matmul(**settings: object) -> helion.Kernel:
    """A new kernel object (its settings read the environment now, e.g. the Pallas backend)."""
    import kernels

    return helion.kernel(kernels.matmul.fn, **settings)


def bind_matmul(**settings: object) -> tuple[BoundKernel, tuple[torch.Tensor, torch.Tensor]]:
    args = matmul_args()
    return fresh_matmul(**settings).bind(args), args


#: A config of the 128x128 matmul (``matmul_args``) that Helion's Pallas backend compiles and
#: runs on the CPU. Many of its neighbours do not (an ``emit_pipeline`` group size above 1 fails
#: to compile), so a stand-in answering neighbours of a random parent may send only failures: a
#: test that needs an LLM config measured ``ok`` has the stand-in answer this one first.
COMPILES = {"block_sizes": [32, 128, 128], "pallas_loop_type": "fori_loop"}


def llm_measured_compiles(lines: list[dict[str, object]]) -> bool:
    """Whether the record holds the LLM's ``COMPILES`` measured ``ok``."""
    return any(
        all(line["config"][k] == v for k, v in COMPILES.items())  # type: ignore[index]
        for line in evaluations(lines, source="llm", status="ok")
    )


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def run_script(script: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", script],
        env=full,
        cwd=str(TEST_DIR),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def fast_pallas(pallas_cpu: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Pallas interpret mode on the CPU, a private autotune cache, no final top-k rebenchmark.

    Helion's final verification re-times the best configs several times, which on this CPU
    costs more than the search itself; the search under test is unchanged without it.
    """
    monkeypatch.setenv("HELION_AUTOTUNE_FINAL_REBENCHMARK_TOP_K", "0")
    monkeypatch.setenv("HELION_CACHE_DIR", str(tmp_path / "helion-cache"))
    monkeypatch.delenv("HELION_AUTOTUNER", raising=False)
    for var in [v for v in os.environ if v.startswith("HELION_OPENEVOLVE_")]:
        monkeypatch.delenv(var)
