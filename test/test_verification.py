"""Verification: the second timing of the configs a decision rests on, against a dict space whose
first timings are wrong in known ways (an outlier, noise on a flat landscape) and whose second
timing is the true cost. The search's loop and Helion's ``rebenchmark`` are exercised by
``test_e2e``; here the rule of what is timed again, and what may decide, is checked exactly.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import random

import pytest
from test_refinement import SPACE
from test_refinement import bowl
from test_refinement import refine
from test_refinement import refine_from

from helion.autotuner.openevolve import measure
from helion.autotuner.openevolve.config_space import _DictBackend
from helion.autotuner.openevolve.measure import NOISE_CAP
from helion.autotuner.openevolve.measure import NOISE_MIN_REPEATS
from helion.autotuner.openevolve.measure import VERIFY_PER_RIVAL
from helion.autotuner.openevolve.measure import Results
from helion.autotuner.openevolve.paths import RefinementPaths
from helion.autotuner.openevolve.record import RunRecord

Config = dict[str, int]


class Retiming(_DictBackend):
    """A backend whose first timing is ``first`` and whose second one, when the search verifies
    configs, is ``true``; it keeps what it was asked to verify."""

    def __init__(self, first: Callable[[Config], float], true: Callable[[Config], float] = bowl) -> None:
        super().__init__(SPACE, first, minimize=True)  # type: ignore[arg-type]
        self.true = true
        self.asked: list[tuple[list[Config], list[Config]]] = []

    def verify(self, fresh: list[Config], rivals: list[Config]) -> dict[object, float]:
        self.asked.append(([dict(c) for c in fresh], [dict(c) for c in rivals]))
        return {self.key(c): self.true(c) for c in [*fresh, *rivals]}


def walk(backend: _DictBackend, start: Config, lines: list[dict[str, object]] | None = None) -> tuple[Results, int]:
    """One refinement path from ``start`` to convergence, verifying as the driver does; the
    results and how many batches it measured."""
    record = RunRecord(None)
    if lines is not None:
        record.write = lambda kind, **fields: lines.append({"kind": kind, **fields})  # type: ignore[method-assign]
    measured = Results(backend, record, max_evaluations=1000)
    paths = RefinementPaths(starts=1, steps=20, min_improvement=0.001, prune_ratio=math.inf)
    measured.measure([(dict(start), "default")], "default")
    return measured, refine(measured, paths)


TRAP = {"a": 1, "b": 7, "c": 1}  # first timed faster than the optimum (an outlier); bowl 15


def optimistic(c: Config) -> float:
    return 0.5 if c == TRAP else bowl(c)


def test_a_config_timed_fast_once_is_verified_before_a_path_moves_to_it() -> None:
    """The backend's second timing replaces the first before refinement decides: an outlier
    neighbour does not become the incumbent and the best, and the record says what changed.
    Each time, the fastest few fresh configs are timed again with the incumbent they would
    replace, never more than ``VERIFY_PER_RIVAL`` per rival."""
    start = {"a": 0, "b": 7, "c": 1}  # TRAP is a neighbour
    unverified, _ = refine_from(optimistic, start)
    assert unverified.best is not None and unverified.best.candidate == TRAP  # the outlier won
    backend = Retiming(optimistic)
    lines: list[dict[str, object]] = []
    measured, batches = walk(backend, start, lines)
    assert measured.best is not None and measured.best.candidate == {"a": 5, "b": 2, "c": 6}
    assert measured[backend.key(TRAP)].cost == bowl(TRAP)
    trap = next(c for line in lines if line["kind"] == "verified" for c in line["changes"] if c["config"] == TRAP)
    assert (trap["first"], trap["cost"]) == (0.5, 15.0)
    evaluation = next(line for line in lines if line["kind"] == "evaluation" and line["config"] == TRAP)
    assert evaluation["cost"] == 15.0  # the record's evaluation line carries the verified cost
    assert len(backend.asked) == batches - 1  # each neighbourhood had a faster config, but the optimum's
    for fresh, rivals in backend.asked:
        assert len(rivals) == 1 and 1 <= len(fresh) <= VERIFY_PER_RIVAL  # one path: its incumbent is the best
        assert all(optimistic(c) < bowl(rivals[0]) for c in fresh)  # each would have replaced it


def test_an_earlier_best_timed_again_slower_gives_up_the_lead() -> None:
    """A config alone in its batch is not verified (no rival); the next config timed faster is,
    together with it, and the earlier best's second timing loses the lead."""
    faster = {"a": 4, "b": 2, "c": 6}  # first 0.4, true 2.0
    backend = Retiming(lambda c: 0.4 if c == faster else optimistic(c))
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    measured.measure([(dict(TRAP), "default")], "default")
    assert backend.asked == [] and measured.best is not None and measured.best.cost == 0.5
    measured.measure([(faster, "seed")], "seed")
    assert backend.asked == [([faster], [TRAP])]
    assert measured.best.candidate == faster and measured.best.cost == 2.0


def test_a_config_slower_than_its_rivals_at_first_is_not_timed_again() -> None:
    backend = Retiming(bowl)
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    optimum, near = {"a": 5, "b": 2, "c": 6}, {"a": 4, "b": 2, "c": 6}
    measured.measure([(optimum, "default"), (near, "seed")], "first batch")
    assert backend.asked == [([optimum, near], [])]  # the first batch's fastest, with each other
    measured.measure([({"a": 0, "b": 0, "c": 0}, "llm")], "slower")
    assert len(backend.asked) == 1  # it would replace nothing: no second timing
    assert measured.best is not None and measured.best.candidate == optimum


def test_the_first_batch_verifies_its_fastest_configs_and_the_default() -> None:
    """No best yet: the first batch's fastest ``VERIFY_PER_RIVAL`` configs are timed again with
    each other, and the default with them however slow (every speedup is against it)."""
    backend = Retiming(bowl)
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    default = {"a": 0, "b": 0, "c": 0}
    seeds = [{"a": 5, "b": 2, "c": c} for c in range(7)]
    measured.measure([(default, "default"), *((c, "seed") for c in seeds)], "first batch")
    ((fresh, rivals),) = backend.asked
    fastest = sorted(seeds, key=bowl)[:VERIFY_PER_RIVAL]
    assert rivals == [] and sorted(map(repr, fresh)) == sorted(map(repr, [*fastest, default]))
    assert measured[backend.key(default)].verified


def jitter(c: Config) -> float:
    """A flat landscape (every config costs 1.0) timed up to 3% fast at random, once per config;
    the start (3, 3, 3) is timed right."""
    u = random.Random(repr(sorted(c.items()))).random()
    return 1.0 if c == {"a": 3, "b": 3, "c": 3} else 1.0 - 0.03 * u


def test_a_path_does_not_walk_on_timing_noise_once_configs_are_verified() -> None:
    """The fastest of a neighbourhood's first timings is fast by chance on a flat landscape: a
    path that moves on it walks on (PatternSearch's 0.1% floor is below the noise), a path
    that moves only on a second timing beside its incumbent ends at the first neighbourhood.
    Unverified first timings never become the best either."""
    start = {"a": 3, "b": 3, "c": 3}
    first_only, first_batches = walk(_DictBackend(SPACE, jitter, minimize=True), start)  # type: ignore[arg-type]
    assert first_batches > 1  # moved on noise
    backend = Retiming(jitter, true=lambda c: 1.0)
    measured, batches = walk(backend, start)
    assert batches == 1 and len(measured.entries) == 1 + len(backend.neighbors(start))
    assert len(measured.entries) < len(first_only.entries)
    assert measured.best is not None and measured.best.cost == 1.0 and measured.best.verified
    fastest_first = min(measured.entries.values(), key=lambda e: e.first)
    assert fastest_first.verified  # the fastest first timing was verified, and lost its lead
    untrusted = [e for e in measured.entries.values() if not e.verified]
    assert untrusted and all(not measured.trusted(e) and e.cost < 1.0 for e in untrusted)


def test_nothing_is_verified_when_the_backend_times_once() -> None:
    measured, _ = refine_from(bowl, {"a": 0, "b": 7, "c": 0})
    assert measured._verify(list(measured.entries.values()), lambda key: None) is False
    assert not measured.verifying and all(measured.trusted(e) for e in measured.entries.values())


class NoisyRetiming(Retiming):
    """Second timings off the true cost by a fixed cycle of up to +-2%, one step per config timed
    (repeated second timings of one config on an H200 moved by -1.5%..+2.7%, p10-p90)."""

    CYCLE = (0.0, 0.02, -0.015, 0.01, -0.02, 0.015, -0.01, 0.005)

    def __init__(self, first: Callable[[Config], float], true: Callable[[Config], float] = bowl) -> None:
        super().__init__(first, true)
        self.timed = 0

    def verify(self, fresh: list[Config], rivals: list[Config]) -> dict[object, float]:
        exact = super().verify(fresh, rivals)
        out = {}
        for key, cost in exact.items():
            out[key] = cost * (1.0 + self.CYCLE[self.timed % len(self.CYCLE)])
            self.timed += 1
        return out


STARTS = [{"a": 3, "b": 3, "c": 3}, {"a": 1, "b": 6, "c": 2}, {"a": 6, "b": 1, "c": 5}]


def walk_from(backend: Retiming, starts: list[Config]) -> tuple[Results, int]:
    """Refinement paths from ``starts`` (the first the default, as the driver's first batch) to
    convergence; the results and how many refinement batches it measured."""
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    paths = RefinementPaths(starts=len(starts), steps=20, min_improvement=0.001, prune_ratio=math.inf)
    measured.measure([(dict(c), "default" if i == 0 else "seed") for i, c in enumerate(starts)], "first batch")
    return measured, refine(measured, paths)


def test_the_timing_noise_is_the_spread_of_the_rivals_repeated_second_timings() -> None:
    """Each batch times the best and the paths' incumbents again beside its contenders: their
    repeated second timings (never a first timing against a second: those differ systematically)
    give the noise, once there are enough of them, at most ``NOISE_CAP``."""
    backend = NoisyRetiming(jitter, true=lambda c: 1.0)
    measured, _ = walk_from(backend, STARTS)
    repeats = measured.repeats
    assert len(repeats) >= NOISE_MIN_REPEATS
    assert all(abs(r) <= 0.042 for r in repeats)  # two timings each within 2% of the true cost
    spread = sorted(abs(r) for r in repeats)
    assert measured.noise == min(NOISE_CAP, spread[math.ceil(0.9 * len(spread)) - 1]) > 0.01
    assert measured.margin(0.001) == measured.noise and measured.margin(0.5) == 0.5
    early = Results(backend, RunRecord(None), max_evaluations=10)
    early.repeats = repeats[: NOISE_MIN_REPEATS - 1]
    assert early.noise == 0.0  # too few repeats: min_improvement alone decides


def test_a_path_moves_only_on_a_gain_above_the_timing_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a flat landscape whose second timings move by up to 2%, paths that move on any gain
    above PatternSearch's 0.1% walk on the noise of the second timings; paths that need a gain
    above the noise measured end soon after it is known. A real slope (the bowl: each step a
    gain of 10% or more) is still walked to its optimum."""
    monkeypatch.setattr(measure, "NOISE_MIN_REPEATS", 10**9)  # never trust a measured noise
    walked, walked_batches = walk_from(NoisyRetiming(jitter, true=lambda c: 1.0), STARTS)
    monkeypatch.undo()
    measured, batches = walk_from(NoisyRetiming(jitter, true=lambda c: 1.0), STARTS)
    assert measured.noise > 0.01
    assert batches < walked_batches and len(measured.entries) < len(walked.entries)
    sloped, _ = walk_from(NoisyRetiming(bowl), STARTS)
    assert sloped.noise > 0.01
    assert sloped.best is not None and sloped.best.candidate == {"a": 5, "b": 2, "c": 6}
