"""Configs that Helion itself fails, in a real Pallas-on-CPU tuning run.

The kernel adds a tunable ``fault`` to a vector add, as ``fault_injection_gpu.py`` does on a GPU:
``fault`` 0 is correct (the default) and every other value gives wrong results, which Helion's
accuracy check (against the default config's output) catches. The faulty values are seed
configs, so the test knows they are measured. The search must record each as a failure that
costs ``inf`` and never pick one.
"""

from __future__ import annotations

import math
from pathlib import Path

import helion.language as hl
from oe_util import FAST
from oe_util import evaluations
from oe_util import fast_pallas  # noqa: F401 (fixture)
from oe_util import read_record
import pytest
from standin_llm import StandinLLM
import torch

import helion
from helion.autotuner import EnumFragment
from helion.autotuner.openevolve_tuner import OpenEvolveSearch

pytestmark = pytest.mark.usefixtures("fast_pallas")

WRONG = (1, 2)  # the ``fault`` values whose results are wrong
#: Helion 1.5 reports an accuracy mismatch as "accuracy_error", or as "error" from its benchmark
#: subprocess; either is a failure, never "ok".
FAILED = {"accuracy_error", "error"}


def faulty_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    fault = hl.register_tunable("fault", EnumFragment(choices=(0, 1, 2)))  # literals: a global would be traced
    for tile in hl.tile(x.size(0)):
        out[tile] = x[tile] + y[tile] + fault * 1.0
    return out


def test_configs_helion_fails_cost_inf_and_are_never_picked(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    x, y = torch.randn(1024), torch.randn(1024)
    default = dict(helion.kernel(faulty_add).bind((x, y)).config_spec.default_config().config)
    assert default["fault"] == 0
    seeds = [{**default, "fault": f} for f in WRONG]
    kernel = helion.kernel(faulty_add, autotune_seed_configs=seeds)  # type: ignore[call-overload]
    bound = kernel.bind((x, y))
    with StandinLLM(mode="neighbors", latency_s=0.05, seed=1).start() as llm:
        search = OpenEvolveSearch(
            bound,
            (x, y),
            record_path=str(record),
            api_base=llm.url,
            api_key="test-key",
            **{**FAST, "max_evaluations": 6, "max_seconds": 60},
        )
        config = search.autotune()
    lines = read_record(record)
    faulty = [line for line in evaluations(lines) if line["config"]["fault"] in WRONG]  # type: ignore[index]
    # each seeded faulty config was measured, and every faulty measurement is a failure costing inf
    assert {line["config"]["fault"] for line in faulty} == set(WRONG), faulty  # type: ignore[index]
    assert all(line["status"] in FAILED for line in faulty), faulty
    assert all(line["cost"] is None or math.isinf(line["cost"]) for line in faulty), faulty  # type: ignore[arg-type]
    assert all(isinstance(line["reason"], str) and line["reason"] for line in faulty), faulty
    failed = [line for line in evaluations(lines) if line["status"] in FAILED]
    assert search.summary["failed"] == len(failed) >= len(WRONG)
    # the pick is a correct config that was measured ok, and the tuned kernel computes x + y
    assert config.config["fault"] == 0
    assert search.summary["best_config"] == dict(config.config)
    assert math.isfinite(search.summary["best_cost"])  # type: ignore[arg-type]
    assert dict(config.config) in [line["config"] for line in evaluations(lines, status="ok")]
    assert all(line["config"]["fault"] == 0 for line in evaluations(lines, status="ok"))  # type: ignore[index]
    torch.testing.assert_close(kernel.bind((x, y)).compile_config(config)(x, y), x + y)


def test_configs_that_crash_or_time_out_in_helion_cost_inf_and_are_never_picked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statuses Helion's benchmark path gives a config that crashes (``error``) or whose
    compile times out (``timeout``): on the CPU no config can be made to crash alone, so
    Helion's results for those seeds are replaced by what it returns on a GPU (see
    ``test_gpu_faults.py``). Each is a failure with its reason, costs inf, and is never picked."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)  # no LLM: the statuses are what is under test
    record = tmp_path / "record.jsonl"
    x, y = torch.randn(1024), torch.randn(1024)
    default = dict(helion.kernel(faulty_add).bind((x, y)).config_spec.default_config().config)
    status_of = {1: "error", 2: "timeout"}
    seeds = [{**default, "fault": f} for f in status_of]
    kernel = helion.kernel(faulty_add, autotune_seed_configs=seeds)  # type: ignore[call-overload]
    search = OpenEvolveSearch(kernel.bind((x, y)), (x, y), record_path=str(record), **{**FAST, "max_evaluations": 6})
    benchmark_batch = search.benchmark_batch

    def crashing(configs: list[helion.Config], **kw: object) -> list[object]:
        results = benchmark_batch(configs, **kw)  # type: ignore[arg-type]
        return [
            r._replace(status=status_of[c.config["fault"]], perf=math.inf) if c.config["fault"] in status_of else r
            for c, r in zip(configs, results, strict=True)
        ]

    monkeypatch.setattr(search, "benchmark_batch", crashing)
    config = search.autotune()
    lines = read_record(record)
    faulty = [line for line in evaluations(lines) if line["config"]["fault"] in status_of]  # type: ignore[index]
    assert {line["config"]["fault"]: line["status"] for line in faulty} == status_of, faulty  # type: ignore[index]
    assert all(line["cost"] is None or math.isinf(line["cost"]) for line in faulty), faulty  # type: ignore[arg-type]
    reasons = {line["status"]: line["reason"] for line in faulty}
    assert "compile timed out" in str(reasons["timeout"]) and "failed to compile or run" in str(reasons["error"])
    assert search.summary["failed"] >= len(status_of)
    assert config.config["fault"] == 0
    torch.testing.assert_close(kernel.bind((x, y)).compile_config(config)(x, y), x + y)
