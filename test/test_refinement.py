"""Local refinement in the driver: PatternSearch-style paths, without processes or an LLM.

The driver's loop is exercised by the end-to-end tests; here its refinement steps run on their
own against a dict space with a known cost landscape, so the path rules can be checked exactly.
"""

from __future__ import annotations

import math
import threading
import time

import pytest

from helion.autotuner.openevolve.config_space import _DictBackend
from helion.autotuner.openevolve.driver import DriverOptions
from helion.autotuner.openevolve.driver import Measurement
from helion.autotuner.openevolve.driver import SearchDriver
from helion.autotuner.openevolve.protocol import Proposal
from helion.autotuner.openevolve.record import RunRecord

LEVELS = list(range(8))
SPACE = {"a": LEVELS, "b": LEVELS, "c": LEVELS}


def options(**kw: object) -> DriverOptions:
    base = {
        "max_evaluations": 1000,
        "max_seconds": None,
        "candidates_per_program": 4,
        "initial_random": 0,
        "refinement": True,
        "refine_batch": 6,
        "max_llm_failures": 3,
        "strict": False,
        "seed": 0,
        "refine_starts": 1,
    }
    return DriverOptions(**{**base, **kw})  # type: ignore[arg-type]


def refine_until_converged(cost: object, start: dict[str, int], **kw: object) -> tuple[SearchDriver, int]:
    backend = _DictBackend(SPACE, cost, minimize=True)  # type: ignore[arg-type]
    driver = SearchDriver(backend, options(**kw), RunRecord(None), log=lambda _: None, warn=lambda _: None)
    driver._measure([(dict(start), "default")], "default")
    batches = 0
    while batch := driver._refinement_batch():
        driver._measure([(c, "refine") for c in batch], "refine")
        batches += 1
        assert batches < 500
    return driver, batches


def bowl(c: dict[str, int]) -> float:
    return 1.0 + abs(c["a"] - 5) + abs(c["b"] - 2) + abs(c["c"] - 6)


def test_a_path_walks_downhill_to_the_optimum_and_stops() -> None:
    driver, _ = refine_until_converged(bowl, {"a": 0, "b": 7, "c": 0})
    best = driver.best
    assert best is not None
    assert best.candidate == {"a": 5, "b": 2, "c": 6}
    assert best.measurement.cost == 1.0
    # one neighbourhood (at most 6 configs) per step on the way, far below the 512 configs
    assert driver.record.counters.evaluations <= 1 + 6 * 15
    assert driver._paths == []  # converged: every path ended


def test_a_path_ends_at_a_local_optimum_and_a_new_best_starts_another() -> None:
    def two_basins(c: dict[str, int]) -> float:
        # a local optimum at a=0 (cost 2) and the global one at a=7 (cost 0), a ridge between
        return {0: 2.0, 1: 3.0, 2: 4.0, 3: 5.0, 4: 5.0, 5: 4.0, 6: 3.0, 7: 0.0}[c["a"]] + c["b"] + c["c"]

    driver, _ = refine_until_converged(two_basins, {"a": 1, "b": 0, "c": 0})
    assert driver.best is not None
    assert driver.best.candidate == {"a": 0, "b": 0, "c": 0}  # stuck in the local optimum, as pattern search is
    evaluated = driver.record.counters.evaluations
    # an outside proposal (as the LLM's would be) that beats the best starts a new path from it
    driver._measure([({"a": 6, "b": 3, "c": 3}, "llm")], "llm")
    assert driver.best.candidate == {"a": 0, "b": 0, "c": 0}  # not better: no new path
    assert driver._refinement_batch() == []
    driver._measure([({"a": 7, "b": 1, "c": 0}, "llm")], "llm")
    while batch := driver._refinement_batch():
        driver._measure([(c, "refine") for c in batch], "refine")
    assert driver.best.candidate == {"a": 7, "b": 0, "c": 0}
    assert driver.record.counters.evaluations > evaluated + 2


def test_failed_neighbours_never_become_incumbents() -> None:
    def cost(c: dict[str, int]) -> float:
        if c["a"] == 4:
            return math.nan  # a crashing config right next to the start
        return bowl(c)

    driver, _ = refine_until_converged(cost, {"a": 3, "b": 2, "c": 6})
    assert driver.best is not None
    assert driver.best.candidate["a"] == 3
    failed = [e for e in driver.results.values() if not math.isfinite(e.measurement.cost)]
    assert failed
    assert all(e.candidate["a"] == 4 for e in failed)


def test_several_starts_refine_each_neighbourhood_once() -> None:
    driver, _ = refine_until_converged(bowl, {"a": 5, "b": 2, "c": 6}, refine_starts=3)
    # the start is already optimal: exactly its 6 neighbours are measured, then it stops
    assert driver.record.counters.evaluations == 1 + 6
    keys = [driver.backend.key(e.candidate) for e in driver.results.values()]
    assert len(keys) == len(set(keys))


def test_a_path_stops_after_refine_steps_neighbourhoods() -> None:
    driver, _ = refine_until_converged(bowl, {"a": 0, "b": 7, "c": 0}, refine_steps=2)
    assert driver.best is not None
    # the start's neighbourhood, one move downhill and that incumbent's neighbourhood (as
    # PatternSearch's max_generations counts generations): each neighbourhood's best is one unit
    # lower; then the path stops, far from the optimum (cost 1)
    assert driver.best.measurement.cost == bowl({"a": 0, "b": 7, "c": 0}) - 2


def test_a_path_moves_only_to_neighbours_it_claimed() -> None:
    def cost(c: dict[str, int]) -> float:  # a valley along a; every step in b or c costs 1
        return {0: 5.0, 1: 3.0, 2: 4.0}.get(c["a"], 9.0) + c["b"] + c["c"]

    backend = _DictBackend(SPACE, cost, minimize=True)
    driver = SearchDriver(backend, options(refine_starts=2), RunRecord(None), log=lambda _: None, warn=lambda _: None)
    first, second = {"a": 1, "b": 0, "c": 0}, {"a": 2, "b": 1, "c": 0}  # costs 3 and 5
    driver._measure([(first, "default"), (second, "seed")], "default and seed configs")
    batches = []
    while batch := driver._refinement_batch():
        driver._measure([(c, "refine") for c in batch], "refine")
        batches.append(batch)
    # The best start claims its 4 neighbours first, among them (2,0,0) and (1,1,0), which
    # neighbour the second start too; the second claims its 3 others. Its own are all worse
    # than it (cost 6 or more), so it ends, although (2,0,0) at cost 4 would have been a move:
    # as in PatternSearch, two paths that meet do not walk the same ground.
    first_claims = [backend.key(c) for c in driver._claimed[backend.key(first)]]
    second_claims = [backend.key(c) for c in driver._claimed[backend.key(second)]]
    assert len(first_claims) == 4 and len(second_claims) == 3
    assert not set(first_claims) & set(second_claims)
    assert driver.record.counters.evaluations == 2 + 4 + 3
    assert driver._paths == []
    assert driver.best is not None and driver.best.candidate == first


def test_a_path_does_not_move_on_a_gain_within_the_noise_floor() -> None:
    def shallow(c: dict[str, int]) -> float:  # each step downhill gains 0.05%, under the 0.1% floor
        return 1000.0 + 0.5 * (bowl(c) - 1.0)

    start = {"a": 0, "b": 7, "c": 0}
    driver, batches = refine_until_converged(shallow, start)
    assert driver.options.refine_min_improvement == 0.001
    # the start's neighbourhood is measured (one batch of at most 6), then the path ends
    assert batches == 1
    assert driver.best is not None
    assert driver.best.measurement.cost == shallow(start) - 0.5
    # without the floor the same landscape is walked down to the optimum
    driver, _ = refine_until_converged(shallow, start, refine_min_improvement=0.0)
    assert driver.best is not None
    assert driver.best.measurement.cost == 1000.0


def answers(driver: SearchDriver, now: list[float], at: list[float], served: float) -> list[Proposal]:
    """LLM answers (programs with no candidates) arriving at the times ``at``, served at ``served``."""
    proposals = []
    for t in at:
        now[0] = t
        proposals.append(Proposal({"candidates": []}))
    now[0] = served
    driver._serve(proposals, [])
    return proposals


def test_convergence_waits_for_llm_answers_only_once_the_llm_has_answered(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    driver, _ = refine_until_converged(bowl, {"a": 5, "b": 2, "c": 6}, converge_wait_s=60.0)
    driver._t0 = 0.0
    answers(driver, now, [10.0], served=10.0)  # the seed program: OpenEvolve's 3 requests start
    # 100 s searched with only the seed program answered: the LLM is slower than the whole search.
    now[0] = 100.0
    assert driver._converged()
    # Three answers came 10-12 s after their requests, and three more requests started at 22 s.
    driver._converged_since = None
    answers(driver, now, [20.0, 21.0, 22.0], served=22.0)
    # At 30 s the next answer is due in 3 s (22 + the median 11 s), within the 3 s wait
    # (a tenth of the time searched): the search waits ...
    now[0] = 30.0
    assert not driver._converged()
    now[0] = 32.0
    assert not driver._converged()
    # ... and ends as soon as llm_in_flight answers have arrived
    answers(driver, now, [33.0, 33.5, 34.0], served=34.0)
    assert driver._converged()


def test_convergence_does_not_wait_for_an_llm_answer_due_after_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    lines: list[dict[str, object]] = []
    driver, _ = refine_until_converged(bowl, {"a": 5, "b": 2, "c": 6}, converge_wait_s=60.0)
    driver.record.write = lambda kind, **kw: lines.append({"kind": kind, **kw})  # type: ignore[method-assign]
    driver._t0 = 0.0
    answers(driver, now, [10.0], served=10.0)
    answers(driver, now, [20.0, 21.0, 22.0], served=22.0)
    # At 25 s the wait would be 2.5 s, but the next answer is due at 33 s: stop at once.
    now[0] = 25.0
    assert driver._converged()
    assert lines[-1] == {"kind": "converged", "answered_after": 0, "next_answer_due_s": 8.0}


def test_a_proposal_with_nothing_new_is_answered_before_the_batch_is_measured() -> None:
    backend = _DictBackend(SPACE, bowl, minimize=True)
    driver = SearchDriver(backend, options(), RunRecord(None), log=lambda _: None, warn=lambda _: None)
    start = {"a": 0, "b": 0, "c": 0}
    driver._measure([(dict(start), "default")], "default")
    seed = Proposal({"candidates": [dict(start)]})  # measured already, as the seed program's configs are
    llm = Proposal({"candidates": [{"a": 7, "b": 7, "c": 7}]})
    answered_while_measuring: list[tuple[bool, bool]] = []
    measure = backend.measure

    def spy(candidates: list[dict[str, object]], desc: str) -> list[Measurement]:
        answered_while_measuring.append((seed._done.is_set(), llm._done.is_set()))
        return measure(candidates, desc)

    backend.measure = spy  # type: ignore[method-assign]
    driver._serve([seed, llm], driver._refinement_batch())
    # one batch (the LLM's config and refinement); the seed program was answered before it ran
    assert answered_while_measuring == [(True, False)]
    outcome = llm.wait(threading.Event()).outcomes[0]
    assert (outcome.status, outcome.perf) == ("ok", bowl({"a": 7, "b": 7, "c": 7}))
