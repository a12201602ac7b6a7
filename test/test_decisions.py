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
import time

import pytest
from standin_llm import StandinLLM
from test_config_space import no_key  # noqa: F401 (autouse fixture: no key, no endpoint)
from test_config_space import quiet

from helion.autotuner.openevolve.driver import NOTHING_FASTER
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
    """A timing that starts once the LLM answered for the first time: a first batch that takes
    longer than one LLM latency, as compiling a GPU kernel's seed configs does."""

    def __init__(self, seed: int, llm: StandinLLM) -> None:
        super().__init__(seed)
        self.llm = llm

    def __call__(self, config: dict[str, object]) -> float:
        if self.calls == 1:  # after the default, before refinement
            for _ in range(3000):
                if self.llm.responses:
                    break
                time.sleep(0.01)
        time.sleep(0.001)  # a timing takes time: the LLM's program reaches the search meanwhile
        return super().__call__(config)


@pytest.mark.parametrize("seed", SEEDS)
def test_an_llm_that_answers_the_optimum_makes_the_search_return_it_in_half_the_configs(
    seed: int, tmp_path: Path
) -> None:
    blind = tune_config_space(SPACE, Timing(seed), minimize=True, max_evaluations=240, seed=seed, log=quiet)
    record = tmp_path / "run.jsonl"
    with StandinLLM(mode="knowing", known_configs=[OPTIMUM], latency_s=0.0, seed=seed).start() as llm:
        told = tune_config_space(
            SPACE,
            AfterFirstAnswer(seed, llm),
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
    assert credits[0]["better"] and credits[0]["config"] == OPTIMUM


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
