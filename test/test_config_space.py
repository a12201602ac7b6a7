"""tune_config_space: a plain dict space and a Python objective on the same engine."""

from __future__ import annotations

from collections.abc import Callable
import json
import math
from pathlib import Path
import threading
import time

import pytest
from standin_llm import StandinLLM

from helion.autotuner.openevolve.engine.feedback import Reply
from helion.autotuner.openevolve_tuner import OpenEvolveUnavailable
from helion.autotuner.openevolve_tuner import TuneResult
from helion.autotuner.openevolve_tuner import tune_config_space

SPACE = {"block_size": [16, 32, 64, 128, 256, 512], "num_warps": [1, 2, 4, 8, 16], "unroll": [False, True]}
OPTIMUM = {"block_size": 128, "num_warps": 4, "unroll": True}


def score(config: dict[str, object]) -> float:
    """Known optimum at OPTIMUM (score 0); block_size 16 crashes, 512 gives NaN."""
    if config["block_size"] == 16:
        raise RuntimeError("this config crashes")
    if config["block_size"] == 512:
        return math.nan
    return (
        -abs(int(config["block_size"]) - 128) / 64
        - abs(int(config["num_warps"]) - 4)
        - (0.0 if config["unroll"] else 0.5)
    )


def quiet(_: str) -> None:
    pass


@pytest.fixture(autouse=True)
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for var in ("API_KEY", "API_BASE", "MAX_EVALUATIONS", "RECORD_PATH", "STRICT"):
        monkeypatch.delenv(f"HELION_OPENEVOLVE_{var}", raising=False)


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({}, "non-empty dict"),
        ({"a": []}, "has no choices"),
        ({"a": 3}, "must be a list"),
        ({"a": [[1, 2], [3]]}, "not hashable"),
        ({"a": [1, 1]}, "twice"),
        ({"not an identifier": [1]}, "identifier"),
    ],
)
def test_bad_space_is_refused_up_front(space: object, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        tune_config_space(space, score, log=quiet)  # type: ignore[arg-type]


def test_fallback_finds_the_optimum_and_survives_objective_failures(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    result = tune_config_space(SPACE, score, max_evaluations=60, seed=0, record_path=str(record), log=quiet)
    assert result.mode == "fallback"
    assert "API key" in (result.fallback_reason or "")
    assert result.best_config == OPTIMUM
    assert result.best_score == 0.0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    failed = [x for x in lines if x["kind"] == "evaluation" and x["status"] == "error"]
    assert any("crashes" in x["reason"] for x in failed)  # the default (block_size 16) raises
    # a default whose score is NaN is a failed evaluation too, and the search still finds the
    # optimum (seeds 1, 59 and 73 missed it while pruned paths kept their unmeasured neighbours)
    nan_default = {"block_size": 512, "num_warps": 1, "unroll": False}
    for seed in (1, 59, 73):
        record.unlink()
        result = tune_config_space(
            SPACE, score, max_evaluations=60, default=nan_default, seed=seed, record_path=str(record), log=quiet
        )
        assert result.best_config == OPTIMUM, seed
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert any("non-finite" in x["reason"] for x in lines if x["kind"] == "evaluation" and x["status"] == "error")


def test_minimize_finds_the_lowest_cost() -> None:
    def cost(c: dict[str, object]) -> float:
        return 1.0 + abs(int(c["block_size"]) - 64) + abs(int(c["num_warps"]) - 2)

    result = tune_config_space(SPACE, cost, max_evaluations=60, minimize=True, seed=0, log=quiet)
    assert result.best_config["block_size"] == 64
    assert result.best_config["num_warps"] == 2
    assert result.best_score == 1.0


def test_evolution_with_the_standin_llm_finds_the_optimum(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    with StandinLLM(mode="neighbors", latency_s=0.05, seed=3).start() as llm:
        result = tune_config_space(
            SPACE,
            score,
            # 40 valid configs in all; with 40 evaluations the stand-in's neighbour proposals
            # missed the last move 2 times in 25, with 55 never in 30 runs
            max_evaluations=55,
            seed=3,
            api_base=llm.url,
            api_key="test-key",
            refinement=False,
            record_path=str(record),
            log=quiet,
        )
        assert llm.requests > 0
    assert result.mode == "openevolve"
    assert result.best_config == OPTIMUM
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    llm_ok = [x for x in lines if x["kind"] == "evaluation" and x["source"] == "llm" and x["status"] == "ok"]
    assert llm_ok, "no LLM-proposed config was measured"
    best = max(
        llm_ok + [x for x in lines if x["kind"] == "evaluation" and x["status"] == "ok"], key=lambda x: -x["cost"]
    )
    assert best["config"] == OPTIMUM


def test_strict_raises_instead_of_falling_back() -> None:
    with pytest.raises(OpenEvolveUnavailable, match="API key"):
        tune_config_space(SPACE, score, max_evaluations=5, strict=True, seed=0, log=quiet)


def test_strict_raises_when_the_llm_dies_mid_run() -> None:
    """The LLM answers once, then every request fails: with ``strict`` the search raises instead
    of going on without it (refinement off: the search waits for the LLM, whatever the timing)."""
    with StandinLLM(mode="fail_after:1", latency_s=0.05, seed=1).start() as llm:
        # Requests leave in parallel: one failing after a later one can lengthen the run past 2.
        with pytest.raises(OpenEvolveUnavailable, match=r"failed ([2-9]|\d\d+) requests in a row"):
            tune_config_space(
                SPACE,
                score,
                max_evaluations=100,
                seed=0,
                strict=True,
                refinement=False,
                api_base=llm.url,
                api_key="test-key",
                max_llm_failures=2,
                llm_retries=0,
                log=quiet,
            )
        assert llm.requests >= 3  # the answer and the two failures: the server counted them


def test_default_config_is_measured_first_and_checked(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    start = {"block_size": 64, "num_warps": 8}
    result = tune_config_space(
        SPACE, score, max_evaluations=5, default=start, seed=0, record_path=str(record), log=quiet
    )
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    first = next(x for x in lines if x["kind"] == "evaluation")
    assert first["source"] == "default"
    assert first["config"] == {"block_size": 64, "num_warps": 8, "unroll": False}
    assert result.evaluations == 5
    with pytest.raises(ValueError, match="default config is not in config_space: num_warps=3"):
        tune_config_space(SPACE, score, default={"num_warps": 3}, log=quiet)
    with pytest.raises(ValueError, match="unknown field 'warps'"):
        tune_config_space(SPACE, score, default={"warps": 4}, log=quiet)


# -- a knowing LLM leads ------------------------------------------------------------------------

WIDE = {"block_size": [16, 32, 64, 128, 256, 512], "num_warps": [1, 2, 4, 8, 16], "unroll": [False, True]}
FAR = {"block_size": 16, "num_warps": 1, "unroll": False}  # six moves from OPTIMUM


@pytest.fixture
def program_arrived(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once the LLM's first program has reached the search (queued at its evaluation server)."""
    from helion.autotuner.openevolve.loop import server

    arrived = threading.Event()

    class Seen(server.Answer):
        def wait(self, stop: threading.Event) -> Reply:  # called once the proposal is queued
            arrived.set()
            return super().wait(stop)

    monkeypatch.setattr(server, "Answer", Seen)
    return arrived


def slow_start_cost(first: threading.Event | None, slope: float = 1.0) -> Callable[[dict[str, object]], float]:
    """A cost with its minimum 1.0 at OPTIMUM, rising by ``slope`` per move away from it; the
    first call lasts until ``first`` is set (at most a minute), as a Helion search's first batch
    lasts while the first LLM round is answered (compile and benchmark start-up); the others 10 ms."""
    calls: list[None] = []

    def cost(config: dict[str, object]) -> float:
        if not calls and first is not None:
            first.wait(60)
        time.sleep(0.01)  # a timing takes time: the LLM's answers reach the search meanwhile
        calls.append(None)
        moves = (
            abs(math.log2(int(config["block_size"])) - 7)  # type: ignore[call-overload]
            + abs(math.log2(int(config["num_warps"])) - 2)  # type: ignore[call-overload]
            + (0.0 if config["unroll"] else 0.5)
        )
        return 1.0 + slope * moves

    return cost


def batches(record: Path) -> list[list[dict[str, object]]]:
    """The run record's evaluations grouped by batch (a batch's lines are written together)."""
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    out: list[list[dict[str, object]]] = []
    last = -1.0
    for line in (x for x in lines if x["kind"] == "evaluation"):
        if not out or float(line["t"]) - last > 0.005:
            out.append([])
        out[-1].append(line)
        last = float(line["t"])
    return out


def tune_from_far(tmp_path: Path, mode: str, slope: float, arrived: threading.Event) -> tuple[TuneResult, Path]:
    """tune_config_space from FAR with the stand-in in ``mode`` (``knowing`` knows OPTIMUM) on
    :func:`slow_start_cost`; the result and the run record's path."""
    record = tmp_path / f"{mode}.jsonl"
    known = [OPTIMUM] if mode == "knowing" else []
    with StandinLLM(mode=mode, latency_s=0.1, seed=1, known_configs=known).start() as llm:
        result = tune_config_space(
            WIDE,
            slow_start_cost(arrived, slope=slope),
            seed=1,
            minimize=True,
            default=FAR,
            max_evaluations=60,
            api_base=llm.url,
            api_key="test-key",
            record_path=str(record),
            log=quiet,
        )
    return result, record


def test_a_knowing_llm_is_measured_first_and_shortens_the_search(
    tmp_path: Path, program_arrived: threading.Event
) -> None:
    """Issue 15 on the CPU: with an LLM that knows the optimum, the optimum is measured in the
    first batch after the default (the first LLM round is asked while the default is measured)
    and the search measures fewer configs than with a blind LLM (neighbours of the best)."""
    knowing, knowing_record = tune_from_far(tmp_path, "knowing", 1.0, program_arrived)
    program_arrived.clear()
    blind, _ = tune_from_far(tmp_path, "neighbors", 1.0, program_arrived)
    knowing_batches = batches(knowing_record)
    assert knowing.mode == "openevolve" and blind.mode == "openevolve"
    assert knowing.best_config == OPTIMUM and knowing.best_score == 1.0
    assert [x["source"] for x in knowing_batches[0]] == ["default"]
    second = knowing_batches[1]
    assert {"source": "llm", "config": OPTIMUM} in [{"source": x["source"], "config": x["config"]} for x in second]
    assert knowing.evaluations < blind.evaluations, (knowing.evaluations, blind.evaluations)


def test_on_a_flat_landscape_paths_behind_a_settled_llm_best_end(
    tmp_path: Path, program_arrived: threading.Event
) -> None:
    """Every config within 4% of the optimum: no path is ever clearly behind (5%), so without
    an LLM the default's path walks all the way. With the knowing LLM, once its config's
    neighbourhood confirmed it and two more answers brought nothing better, that path ends."""
    knowing, record = tune_from_far(tmp_path, "knowing", 0.006, program_arrived)
    alone = tune_config_space(WIDE, slow_start_cost(None, slope=0.006), seed=1, minimize=True, default=FAR, log=quiet)
    assert alone.mode == "fallback" and alone.best_config == OPTIMUM  # no API key: refinement alone
    assert knowing.mode == "openevolve" and knowing.best_config == OPTIMUM
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    ended = [x for x in lines if x["kind"] == "paths_ended"]
    assert len(ended) == 1 and ended[0]["paths"] >= 1, ended
    assert "the LLM's best config is settled" in ended[0]["reason"]
    assert knowing.evaluations < alone.evaluations, (knowing.evaluations, alone.evaluations)


def test_a_settled_pick_of_an_earlier_search_ends_the_paths_behind_it_without_an_llm(tmp_path: Path) -> None:
    """Issue 17 on the CPU: the flat landscape above, no LLM, the optimum known from an earlier
    search. Once its neighbourhood confirmed it, the default's path ends (it would walk all the
    way otherwise) and the search measures fewer configs; a config outside the space is refused."""
    record = tmp_path / "warm.jsonl"
    cost = slow_start_cost(None, slope=0.006)
    warm = tune_config_space(
        WIDE, cost, minimize=True, default=FAR, known_configs=[OPTIMUM], seed=1, record_path=str(record), log=quiet
    )
    alone = tune_config_space(WIDE, cost, minimize=True, default=FAR, seed=1, log=quiet)
    assert warm.mode == alone.mode == "fallback"  # no API key: no LLM
    assert warm.best_config == alone.best_config == OPTIMUM
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [x["source"] for x in batches(record)[0]] == ["default", "history"]
    (ended,) = [x for x in lines if x["kind"] == "paths_ended"]
    assert (
        str(ended["reason"]).startswith("the best config, an earlier search's pick, is settled") and ended["paths"] >= 1
    )
    assert warm.evaluations < alone.evaluations, (warm.evaluations, alone.evaluations)
    with pytest.raises(ValueError, match="a known config is not in config_space: unknown field 'nope'"):
        tune_config_space(WIDE, cost, known_configs=[{"nope": 1}], log=quiet)


def test_history_that_picked_the_default_counts_as_knowledge(tmp_path: Path) -> None:
    """A rerun whose earlier pick is the default config itself: once the default is settled,
    the paths from the random first configs end, as for any pick of an earlier search."""
    record = tmp_path / "rerun.jsonl"
    cost = slow_start_cost(None, slope=0.006)
    kw = {"minimize": True, "default": OPTIMUM, "initial_random": 4, "seed": 3, "log": quiet}
    rerun = tune_config_space(WIDE, cost, known_configs=[OPTIMUM], record_path=str(record), **kw)
    alone = tune_config_space(WIDE, cost, **kw)
    assert rerun.best_config == alone.best_config == OPTIMUM
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    default = next(x for x in lines if x["kind"] == "evaluation")
    assert (default["source"], default["origin"], default["config"]) == ("default", "history", OPTIMUM)
    (ended,) = [x for x in lines if x["kind"] == "paths_ended"]
    assert (
        str(ended["reason"]).startswith("the best config, an earlier search's pick, is settled") and ended["paths"] >= 1
    )
    assert rerun.evaluations < alone.evaluations, (rerun.evaluations, alone.evaluations)
