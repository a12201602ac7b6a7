"""Real Pallas-on-CPU tuning runs with an LLM that fails in the ways endpoints do.

Each case asserts what the user sees: one warning line saying the search goes on without the
LLM (and why), the run record's single ``fallback`` line, the summary's mode, a tuned kernel
that computes the right thing, and no process left behind (the autouse fixture in conftest).
The decisions rest on the search's own LLM events, never on a dependency's wording.
"""

from __future__ import annotations

from pathlib import Path

from oe_util import bind_matmul
from oe_util import closed_port_url
from oe_util import evaluations
from oe_util import fast_pallas  # noqa: F401 (fixture)
from oe_util import fresh_matmul
from oe_util import matmul_args
from oe_util import measured_ok_configs
from oe_util import read_record
import pytest
from standin_llm import StandinLLM
import torch

from helion.autotuner.openevolve_tuner import OpenEvolveSearch

pytestmark = pytest.mark.usefixtures("fast_pallas")

GOING_ON = "Going on without the LLM"

#: Small budgets with refinement on: the search after a failure is the one without an LLM.
SETTINGS = {
    "max_evaluations": 14,
    "max_seconds": 120,
    "max_llm_failures": 2,
    "llm_retries": 0,
    "llm_timeout_s": 5,
    "refine_starts": 1,
    "refine_steps": 3,
    "refine_batch": 6,
    "candidates_per_program": 2,
    "parallel_llm_calls": 2,
}


def _tune(tmp_path: Path, capfd: pytest.CaptureFixture[str], **kw: object) -> tuple[OpenEvolveSearch, list, str]:
    record = tmp_path / "record.jsonl"
    bound, args = bind_matmul()
    search = OpenEvolveSearch(bound, args, record_path=str(record), api_key="test-key", **{**SETTINGS, **kw})
    config = search.autotune()
    lines = read_record(record)
    out = capfd.readouterr()
    # the config returned was measured, and the kernel tuned with it computes a matmul
    assert dict(config.config) in measured_ok_configs(lines)
    x, y = matmul_args()
    torch.testing.assert_close(fresh_matmul(config=config)(x, y), x @ y, rtol=1e-4, atol=1e-4)
    return search, lines, out.out + out.err


def _check_fell_back(search: OpenEvolveSearch, lines: list, said: str, *needles: str) -> dict:
    warnings = [line for line in said.splitlines() if GOING_ON in line]
    assert len(warnings) == 1, said
    fallbacks = [line for line in lines if line["kind"] == "fallback"]
    assert len(fallbacks) == 1
    assert fallbacks[0]["reason"] == search.fallback_reason == search.summary["fallback_reason"]
    assert fallbacks[0]["reason"] in warnings[0]
    for needle in needles:
        assert needle in fallbacks[0]["reason"], fallbacks[0]["reason"]
    assert search.summary["mode"] == "fallback"
    summary = [line for line in lines if line["kind"] == "summary"]
    assert len(summary) == 1 and summary[0]["mode"] == "fallback"
    return fallbacks[0]


def test_endpoint_unreachable_from_the_start(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # refinement off: the search waits for the LLM, so the verdict lands before any budget ends
    search, lines, said = _tune(tmp_path, capfd, api_base=closed_port_url(), refinement=False)
    # at least max_llm_failures (2) in a row (outcomes that arrive together can join runs of
    # failures), or OpenEvolve giving up first: its workers' failures and its own error reach the
    # search on separate paths, so the error can be read after one failure, or none (seen under load)
    fallback = _check_fell_back(search, lines, said)
    assert "requests in a row" in fallback["reason"] or "the LLM never answered" in fallback["reason"]
    assert fallback["llm_answers_used"] == 0
    assert search.summary["llm_answers_used"] == 0
    if "requests in a row" in fallback["reason"]:
        assert search.summary["llm_errors"] >= 2
    errors = [line for line in lines if line["kind"] == "llm_error"]
    assert len(errors) == search.summary["llm_errors"]
    assert all(e["error_class"] and not e["timeout"] for e in errors)
    assert not evaluations(lines, source="llm")
    # each failed request read before the verdict was said too, one line each (all are recorded)
    assert said.count("an LLM request failed") <= len(errors)


def test_endpoint_that_answers_twice_then_fails(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # refinement off: until the verdict only the LLM's answers (2 x 2 configs) are measured, so
    # no budget can end the search first; after it, the search spends the rest on its own
    budget = 14
    with StandinLLM(mode="fail_after:2", latency_s=0.05, seed=1).start() as llm:
        search, lines, said = _tune(
            tmp_path, capfd, api_base=llm.url, model="standin", max_evaluations=budget, refinement=False
        )
        requests = llm.requests
    fallback = _check_fell_back(search, lines, said, "requests in a row", "500")
    # the two answers were used; every later request the endpoint got failed, and was counted
    assert fallback["llm_answers_used"] == 2 == search.summary["llm_answers_used"]
    assert requests == search.summary["llm_calls"] >= 2 + SETTINGS["max_llm_failures"]
    errors = [line for line in lines if line["kind"] == "llm_error"]
    assert len(errors) == search.summary["llm_errors"] >= SETTINGS["max_llm_failures"]
    assert len(errors) <= requests - 2
    assert len([e for e in errors if e["status"] == 500]) >= SETTINGS["max_llm_failures"], errors
    assert evaluations(lines, source="llm")
    # the search went on without the LLM after the verdict and spent its evaluation budget
    after = [line for line in evaluations(lines) if line["t"] > fallback["t"]]
    assert after and not [line for line in after if line["source"] == "llm"], after
    assert search.summary["evaluations"] == budget
    assert search.summary["stop_reason"] == "the evaluation budget is spent"


def test_endpoint_that_hangs_past_the_timeout(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with StandinLLM(mode="hang", latency_s=0.0, seed=1).start() as llm:
        # refinement off: the search waits for the LLM, so the time-outs land before any budget ends
        search, lines, said = _tune(
            tmp_path, capfd, api_base=llm.url, model="standin", llm_timeout_s=2, refinement=False
        )
        requests = llm.requests
    _check_fell_back(search, lines, said, "no answer within 2 s")
    errors = [line for line in lines if line["kind"] == "llm_error"]
    assert len(errors) == search.summary["llm_errors"] >= SETTINGS["max_llm_failures"]
    assert all(e["timeout"] for e in errors)
    # the endpoint got each request the record counts (the last ones cut off when the search ended)
    assert requests == search.summary["llm_calls"] >= len(errors)
    assert search.summary["llm_answers_used"] == 0
    assert not evaluations(lines, source="llm")
    assert search.summary["evaluations"] == SETTINGS["max_evaluations"]


def test_a_500_on_every_other_call_does_not_end_the_llms_part(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with StandinLLM(mode="error500_alternate", latency_s=0.2, seed=1).start() as llm:
        # the default max_llm_failures (3): two requests that left together can reach the
        # endpoint in either order, so two failures may sit side by side in the order they left;
        # refinement off: its neighbours, measured while the answers travel, would otherwise
        # take the configs the LLM proposes (neighbours of the best too) as often as not.
        # max_llm_calls 6: the endpoint fails 3 of them, as many as max_llm_failures; the
        # budget (the default, 3 answers of 2 configs, and one more) cannot end the LLM's part first
        search, lines, said = _tune(
            tmp_path,
            capfd,
            api_base=llm.url,
            model="standin",
            max_evaluations=8,
            max_llm_calls=6,
            max_llm_failures=3,
            refinement=False,
        )
        requests = llm.requests
    assert search.fallback_reason is None, search.fallback_reason
    assert GOING_ON not in said
    assert not [line for line in lines if line["kind"] == "fallback"]
    assert search.summary["mode"] == "openevolve"
    # as many failures in all as max_llm_failures (3), never 3 in a row: the LLM's part goes on
    assert requests == search.summary["llm_calls"] == 6, (requests, search.summary["llm_calls"])
    assert search.summary["llm_errors"] >= 3 and search.summary["llm_answers_used"] >= 1
    assert evaluations(lines, source="llm")


def test_helions_autotune_budget_ends_the_search(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``autotune_budget_seconds`` is checked by Helion's own budget check, as its searches do."""
    with StandinLLM(mode="neighbors", latency_s=0.05, seed=1).start() as llm:
        record = tmp_path / "record.jsonl"
        args = matmul_args()
        bound = fresh_matmul(autotune_budget_seconds=10).bind(args)
        search = OpenEvolveSearch(
            bound, args, record_path=str(record), api_key="k", api_base=llm.url, **{**SETTINGS, "max_evaluations": 200}
        )
        config = search.autotune()
    lines = read_record(record)
    assert search.summary["stop_reason"] == "Helion's autotune budget is spent"
    assert dict(config.config) in measured_ok_configs(lines)
