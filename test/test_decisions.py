"""Decisions on real differences: synthetic costs with timing noise as large as the gaps between
neighbours, decided by paired re-timing (``tune_config_space`` calls the objective again).

Each objective's noise comes from its own seeded generator, and the searches run without an LLM
(no key) or with the stand-in LLM answering a known config, so the outcomes are set by the test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
import random
import threading
import time

import pytest
from standin_llm import StandinLLM
from test_config_space import no_key  # noqa: F401 (autouse fixture: no key, no endpoint)
from test_config_space import quiet

from helion.autotuner.openevolve.loop import server
from helion.autotuner.openevolve.loop.driver import NOTHING_FASTER
from helion.autotuner.openevolve_tuner import tune_config_space

#: four parameters of seven choices; the optimum is three steps from the default in each (twelve
#: steps in all), each step 1.5-3% faster than the one before
SPACE = {f"p{i}": list(range(7)) for i in range(4)}
GAPS = (0.015, 0.02, 0.025, 0.03)
OPTIMUM = {f"p{i}": 3 for i in range(4)}
NOISE = 0.02  # relative timing noise of one call (log-normal), as large as a gap
SEEDS = (0, 1, 2, 3, 4)


def true_cost(config: dict[str, object]) -> float:
    return math.prod((1 + g) ** abs(int(config[f"p{i}"]) - 3) for i, g in enumerate(GAPS))  # type: ignore[call-overload]


class Timing:
    """``true_cost`` times log-normal noise from a seeded generator; counts its calls."""

    def __init__(self, seed: int, noise: float = NOISE, cost=true_cost) -> None:  # type: ignore[no-untyped-def]
        self.rng = random.Random(seed)
        self.noise = noise
        self.cost = cost
        self.calls = 0

    def __call__(self, config: dict[str, object]) -> float:
        self.calls += 1
        return self.cost(config) * math.exp(self.rng.gauss(0.0, self.noise))


def lines(record: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sloped_landscape_ends_within_two_percent_of_the_optimum(seed: int, tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    result = tune_config_space(
        SPACE, Timing(seed), minimize=True, max_evaluations=240, seed=seed, record_path=str(record), log=quiet
    )
    assert result.mode == "fallback"
    assert true_cost(result.best_config) <= 1.02, result.best_config
    assert result.evaluations < 240  # it converged, it did not run out of budget
    moves = [x for x in lines(record) if x["kind"] == "decision" and x["what"] == "move"]
    assert moves and all(x["better"] and x["gain"] > x["margin"] for x in moves)  # each move beat the noise


@pytest.mark.parametrize("seed", SEEDS)
def test_a_flat_landscape_settles_within_a_few_dozen_configs(seed: int, tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    timing = Timing(seed, cost=lambda config: 1.0)
    result = tune_config_space(
        SPACE, timing, minimize=True, max_evaluations=240, seed=seed, record_path=str(record), log=quiet
    )
    assert result.evaluations <= 36
    stop = next(x for x in lines(record) if x["kind"] == "stop")
    assert "nothing left to measure" in str(stop["reason"])
    ended = [x for x in lines(record) if x["kind"] == "decision" and x["what"] == "converged"]
    assert ended and not any(x["better"] for x in ended)  # the paths ended on ties


@pytest.mark.parametrize("seed", SEEDS)
def test_a_blind_llm_on_a_flat_landscape_costs_only_its_own_answers(seed: int) -> None:
    """Every config ties: the LLM's answers (the stand-in proposes configs a few steps from the
    best) bring nothing, and the search measures them and no neighbourhood for their sake
    (half a neighbourhood of slack, for an answer that looks faster by chance)."""
    flat = lambda config: 1.0  # noqa: E731
    none = tune_config_space(SPACE, Timing(seed, cost=flat), minimize=True, max_evaluations=240, seed=seed, log=quiet)
    with StandinLLM(mode="neighbors", latency_s=0.0, seed=seed).start() as llm:
        blind = tune_config_space(
            SPACE, Timing(seed, cost=flat), minimize=True, max_evaluations=240, seed=seed,
            api_base=llm.url, api_key="test-key", log=quiet,
        )  # fmt: skip
    assert blind.mode == "openevolve" and blind.summary["llm_answers_used"] >= 1
    refined = blind.summary["by_source"].get("refine", 0)
    assert refined <= none.summary["by_source"].get("refine", 0) + len(SPACE), blind.summary["by_source"]
    assert blind.evaluations <= none.evaluations + blind.summary["by_source"].get("llm", 0) + len(SPACE)


def test_pure_noise_ends_with_a_clear_summary_line() -> None:
    said: list[str] = []
    rng = random.Random(7)
    result = tune_config_space(
        SPACE, lambda config: rng.uniform(1.0, 2.0), minimize=True, max_evaluations=240, seed=7, log=said.append
    )
    assert result.evaluations < 60
    assert any(NOTHING_FASTER in line for line in said), said
    assert result.summary["timing_noise"] > 0.1


def test_an_exact_objective_is_called_once_per_config() -> None:
    calls: list[dict[str, object]] = []

    def cost(config: dict[str, object]) -> float:
        calls.append(config)
        return true_cost(config)

    result = tune_config_space(SPACE, cost, minimize=True, max_evaluations=240, seed=0, exact=True, log=quiet)
    assert result.best_config == OPTIMUM
    assert len(calls) == result.evaluations
    assert result.summary["retiming_rounds"] == 0


class AfterFirstAnswer(Timing):
    """A timing that starts once the LLM's first answer reached the search (an answer is queued
    in the user's process): a first batch that takes longer than one LLM latency, as compiling a
    GPU kernel's seed configs does."""

    def __init__(self, seed: int, arrived: threading.Event) -> None:
        super().__init__(seed)
        self.arrived = arrived

    def __call__(self, config: dict[str, object]) -> float:
        if self.calls == 1:  # after the default, before refinement
            assert self.arrived.wait(60), "no LLM answer reached the search"
        time.sleep(0.001)  # a timing takes time: the LLM's later programs reach the search meanwhile
        return super().__call__(config)


def answers_arriving(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An event set when the first LLM answer reaches the user's process (the server queues it)."""
    arrived = threading.Event()

    class Arriving(server.Answer):
        def __init__(self, message: dict[str, object]) -> None:
            super().__init__(message)
            arrived.set()

    monkeypatch.setattr(server, "Answer", Arriving)
    return arrived


@pytest.mark.parametrize("seed", SEEDS)
def test_an_llm_that_answers_the_optimum_makes_the_search_return_it_in_half_the_configs(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blind = tune_config_space(SPACE, Timing(seed), minimize=True, max_evaluations=240, seed=seed, log=quiet)
    record = tmp_path / "run.jsonl"
    arrived = answers_arriving(monkeypatch)
    with StandinLLM(mode="knowing", known_configs=[OPTIMUM], latency_s=0.0, seed=seed).start() as llm:
        told = tune_config_space(
            SPACE,
            AfterFirstAnswer(seed, arrived),
            minimize=True,
            max_evaluations=240,
            seed=seed,
            api_base=llm.url,
            api_key="test-key",
            record_path=str(record),
            log=quiet,
        )
    assert told.mode == "openevolve"
    assert told.best_config == OPTIMUM
    assert told.evaluations <= blind.evaluations / 2, (told.evaluations, blind.evaluations)
    assert "LLM's best config is settled" in str(told.summary["stop_reason"])
    credits = [x for x in lines(record) if x["kind"] == "decision" and x["what"] == "credit"]
    # the optimum earns credit (another answer of the same batch, near it, may earn credit first)
    assert any(c["better"] and c["config"] == OPTIMUM for c in credits), credits


@pytest.mark.parametrize("seed", SEEDS)
def test_an_earlier_pick_of_the_optimum_ends_the_search_after_one_neighbourhood(seed: int) -> None:
    blind = tune_config_space(SPACE, Timing(seed), minimize=True, max_evaluations=240, seed=seed, log=quiet)
    told = tune_config_space(
        SPACE, Timing(seed), minimize=True, max_evaluations=240, seed=seed, known_configs=[OPTIMUM], log=quiet
    )
    assert told.best_config == OPTIMUM
    assert told.evaluations <= 2 + 2 * len(SPACE)  # the default, the pick and its neighbours
    assert told.evaluations <= blind.evaluations / 2
    assert "earlier search's pick, is settled" in str(told.summary["stop_reason"])


#: a second basin, as deep as the first (``OPTIMUM``): the best level has two configs, far apart
OTHER_OPTIMUM = {"p0": 6, "p1": 0, "p2": 6, "p3": 0}


def two_basins(config: dict[str, object]) -> float:
    def bowl(center: dict[str, int]) -> float:
        return math.prod(
            (1 + g) ** abs(int(config[f"p{i}"]) - center[f"p{i}"])  # type: ignore[call-overload]
            for i, g in enumerate(GAPS)
        )

    return min(bowl(OPTIMUM), bowl(OTHER_OPTIMUM))


class AnswerAfterOptimum:
    """An exact cost that holds its first timing of ``OPTIMUM`` until the LLM has answered:
    refinement reaches the best level before the LLM's answer is measured."""

    def __init__(self, llm: StandinLLM, cost=two_basins) -> None:  # type: ignore[no-untyped-def]
        self.llm, self.cost, self.held = llm, cost, False

    def __call__(self, config: dict[str, object]) -> float:
        if config == OPTIMUM and not self.held:
            self.held = True
            deadline = time.monotonic() + 30
            while not self.llm.responses and time.monotonic() < deadline:
                time.sleep(0.01)
        return self.cost(config)


def _told_late(answer: dict[str, int], cost=two_basins, record: Path | None = None):  # type: ignore[no-untyped-def]
    with StandinLLM(mode="knowing", known_configs=[answer], latency_s=0.0, seed=0).start() as llm:
        return tune_config_space(
            SPACE,
            AnswerAfterOptimum(llm, cost),
            minimize=True,
            max_evaluations=240,
            seed=0,
            exact=True,
            default={f"p{i}": 1 for i in range(4)},
            api_base=llm.url,
            api_key="test-key",
            record_path=str(record) if record else None,
            log=quiet,
        )


def _decisions(record: Path, what: str, field: str) -> list[object]:
    return [x[field] for x in lines(record) if x["kind"] == "decision" and x["what"] == what]


def test_an_llm_answer_that_ties_the_best_with_no_path_behind_it_costs_no_neighbourhood(tmp_path: Path) -> None:
    """Refinement reached the best level first; the LLM's answer, in the other basin, only ties
    it, and no path walks behind it: confirming it could end no path, so nothing starts at it (a blind LLM proposing configs level with the best would
    otherwise pay a neighbourhood per answer); the search stops as refinement converged."""
    record = tmp_path / "run.jsonl"
    told = _told_late(OTHER_OPTIMUM, record=record)
    assert told.mode == "openevolve"
    assert two_basins(told.best_config) == 1.0
    assert "ties the best" not in str(told.summary["stop_reason"])
    assert _decisions(record, "knowledge_ties_best", "config") == [OTHER_OPTIMUM]
    assert OTHER_OPTIMUM not in _decisions(record, "converged", "incumbent")
    measured = [x["config"] for x in lines(record) if x["kind"] == "evaluation" and x["source"] == "refine"]
    around = [c for c in measured if sum(c[k] != v for k, v in OTHER_OPTIMUM.items()) == 1]  # type: ignore[index]
    assert not around, around  # refinement measured no neighbour of the answer


def test_a_known_config_one_step_from_the_best_is_no_knowledge() -> None:
    """A known config next to the best that ties it (as an LLM editing the config it was shown
    would propose) ends nothing: refinement measures it anyway. One from afar does."""

    def plateau(config: dict[str, object]) -> float:  # p3 = 3 or 4 cost the same near the optimum
        return two_basins({**config, "p3": 3} if config["p3"] in (3, 4) else config)

    def tune(cost, known: dict[str, int]):  # type: ignore[no-untyped-def]
        return tune_config_space(
            SPACE, cost, minimize=True, max_evaluations=240, seed=0, exact=True, default=OPTIMUM,
            known_configs=[known], log=quiet,
        )  # fmt: skip

    near = tune(plateau, {**OPTIMUM, "p3": 4})
    assert "ties the best" not in str(near.summary["stop_reason"])
    far = tune(two_basins, OTHER_OPTIMUM)
    assert "an earlier search's pick ties the best config and is settled" in str(far.summary["stop_reason"])
