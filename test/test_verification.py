"""Re-timing: what is timed again, paired, and what may decide, against a dict space whose first
timings are wrong in known ways (an outlier, noise on a flat landscape) and whose re-timings are
set by the test. The search's loop and Helion's ``rebenchmark`` are exercised by ``test_e2e``;
the rule (:mod:`.compare`) is checked here on decisions it changes.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import random

from test_refinement import SPACE
from test_refinement import bowl
from test_refinement import refine

from helion.autotuner.openevolve.adapters.config_space import _DictBackend
from helion.autotuner.openevolve.loop.compare import Noise
from helion.autotuner.openevolve.loop.compare import Z
from helion.autotuner.openevolve.loop.compare import looks
from helion.autotuner.openevolve.loop.compare import verdict
from helion.autotuner.openevolve.loop.measure import Results
from helion.autotuner.openevolve.loop.paths import RefinementPaths
from helion.autotuner.openevolve.loop.record import RunRecord
from helion.autotuner.openevolve.loop.retiming import FIRST_TWINS
from helion.autotuner.openevolve.loop.retiming import VERIFY_PER_RIVAL

Config = dict[str, int]


class Retiming(_DictBackend):
    """First timings from ``first``; re-timings from ``true`` times ``1 + noise()``; it keeps
    every round it was asked to time."""

    def __init__(
        self,
        first: Callable[[Config], float],
        true: Callable[[Config], float] = bowl,
        noise: Callable[[], float] = lambda: 0.0,
    ) -> None:
        super().__init__(SPACE, first, minimize=True)  # type: ignore[arg-type]
        self.true = true
        self.noise = noise
        self.asked: list[list[Config]] = []

    def retime(self, candidates: list[Config]) -> list[float]:  # type: ignore[override]
        self.asked.append([dict(c) for c in candidates])
        return [self.true(c) * (1.0 + self.noise()) for c in candidates]


def results(backend: _DictBackend, *, rounds: int = 3, lines: list[dict[str, object]] | None = None) -> Results:
    record = RunRecord(None)
    if lines is not None:
        record.write = lambda kind, **fields: lines.append({"kind": kind, **fields})  # type: ignore[method-assign]
    return Results(backend, record, max_evaluations=1000, min_improvement=0.001, decision_rounds=rounds)


def walk(backend: _DictBackend, start: Config, lines: list[dict[str, object]] | None = None) -> tuple[Results, int]:
    """One refinement path from ``start`` to convergence; the results and its batches."""
    measured = results(backend, lines=lines)
    paths = RefinementPaths(starts=1, steps=20, min_improvement=0.001, prune_ratio=math.inf)
    measured.measure([(dict(start), "default")], "default")
    return measured, refine(measured, paths)


TRAP = {"a": 1, "b": 7, "c": 1}  # first timed faster than the optimum (an outlier); bowl 15


def optimistic(c: Config) -> float:
    return 0.5 if c == TRAP else bowl(c)


def test_a_config_timed_fast_once_is_timed_again_before_a_path_moves_to_it() -> None:
    """The re-timing replaces the first timing before refinement decides: an outlier neighbour
    does not become the incumbent or the best, and the record says what changed. Each round
    times the fastest few fresh configs with the incumbent they would replace and one twin."""
    start = {"a": 0, "b": 7, "c": 1}  # TRAP is a neighbour
    backend = Retiming(optimistic)
    lines: list[dict[str, object]] = []
    measured, _ = walk(backend, start, lines)
    assert measured.best is not None and measured.best.candidate == {"a": 5, "b": 2, "c": 6}
    assert measured[backend.key(TRAP)].cost == bowl(TRAP) and measured[backend.key(TRAP)].first == 0.5
    trap = next(c for line in lines if line["kind"] == "verified" for c in line["changes"] if c["config"] == TRAP)
    assert (trap["first"], trap["cost"]) == (0.5, 15.0)
    evaluation = next(line for line in lines if line["kind"] == "evaluation" and line["config"] == TRAP)
    assert (evaluation["cost"], evaluation["first"]) == (15.0, 0.5)  # the latest cost, and the batch's
    for asked in backend.asked[1:]:
        distinct = {repr(sorted(c.items())) for c in asked}
        assert len(asked) == len(distinct) + 1  # one twin a round
        assert len(distinct) <= VERIFY_PER_RIVAL + 1  # the contenders and their one rival (the best)


def test_the_noise_is_measured_from_the_first_batch_by_twins() -> None:
    """The first round times the default ``FIRST_TWINS`` more times: the noise exists before
    any path moves, as the root mean square of the twins' relative differences."""
    cycle = iter([0.0, 0.02, -0.02, 0.0] + [0.0] * 100)
    backend = Retiming(bowl, noise=lambda: next(cycle))
    measured = results(backend)
    default = {"a": 0, "b": 0, "c": 0}
    measured.measure([(default, "default"), ({"a": 5, "b": 2, "c": 6}, "seed")], "first batch")
    (first_round,) = backend.asked
    assert first_round.count(default) == 1 + FIRST_TWINS
    samples = measured.timing_noise.samples
    assert len(samples) == FIRST_TWINS and measured.noise > 0.015
    assert math.isclose(measured.noise, math.sqrt(sum(x * x for x in samples) / len(samples)))


def test_a_gain_within_the_noise_is_a_tie_and_twice_the_noise_is_taken_at_once() -> None:
    """The decision the margin changes: with 2% noise a 1% gain after one round is a tie, a gain
    of twice the noise wins after one round, and a 1% gain shows after enough rounds."""
    a_rounds = {1: 0.99}
    b_rounds = {1: 1.0}
    assert not verdict(0.99, 1.0, a_rounds=a_rounds, b_rounds=b_rounds, noise=0.02, floor=0.001).better
    assert verdict(0.99, 1.0, a_rounds=a_rounds, b_rounds=b_rounds, noise=0.0, floor=0.001).better
    assert verdict(0.955, 1.0, a_rounds={1: 0.955}, b_rounds=b_rounds, noise=0.02, floor=0.001).better
    many = {r: 0.99 for r in range(1, 65)}
    ones = {r: 1.0 for r in range(1, 65)}
    v = verdict(0.99, 1.0, a_rounds=many, b_rounds=ones, noise=0.02, floor=0.001)
    assert v.better and v.rounds == 64 and math.isclose(v.margin, Z * 0.02 / 8)


def test_pairs_still_undecided_are_timed_again_up_to_the_rounds_allowed() -> None:
    """A neighbour truly 1.5% faster, timed with 2% noise: one round cannot tell, so the pair is
    timed again, and with enough rounds the path moves; with one round allowed it ties."""
    start = {"a": 4, "b": 2, "c": 6}  # one step from the optimum

    def slope(c: Config) -> float:
        return 1.015 ** (bowl(c) - 1.0)

    moved = []
    for rounds in (1, 64):
        rng = random.Random(5)
        backend = Retiming(slope, true=slope, noise=lambda rng=rng: rng.gauss(0.0, 0.02))
        measured = results(backend, rounds=rounds)
        paths = RefinementPaths(starts=1, steps=20, min_improvement=0.001, prune_ratio=math.inf)
        measured.measure([(dict(start), "default")], "default")
        refine(measured, paths)
        moved.append(measured.best is not None and measured.best.candidate == {"a": 5, "b": 2, "c": 6})
    assert moved == [False, True]


def test_a_clear_gain_decides_at_the_first_look_that_shows_it_and_a_tie_runs_to_the_limit() -> None:
    """With 64 rounds allowed, a pair's open rounds are looked at after 1, 4, 16 and 64 rounds,
    the looks between the first and the last at ``Z_INTERIM`` noise widths. The noise is 2% (the
    rival and its twin drift 1% either way, in turn): a 2.2% gain, open after one round, stays
    open at 4 (it clears ``Z`` widths there, not ``Z_INTERIM``) and decides at 16; a tie runs 64."""
    assert looks(64) == (1, 4, 16, 64) and looks(3) == (1, 3) and looks(1) == (1,)
    a, b = {"a": 4, "b": 2, "c": 6}, {"a": 6, "b": 2, "c": 6}

    class Drifting(Retiming):
        on, k = False, 0

        def retime(self, candidates: list[Config]) -> list[float] | None:  # type: ignore[override]
            if not self.on:
                return None  # the first batch: first timings only
            self.k += 1
            s = 0.01 if self.k % 2 else -0.01
            x, rival, twin = candidates
            return [self.true(x), self.true(rival) * (1 + s), self.true(twin) * (1 - s)]

    for gain, rounds, better in ((0.022, 16, True), (0.0, 64, False)):
        backend = Drifting(bowl, true=lambda c, g=gain: 1.0 - g if c == a else 1.0)
        measured = results(backend, rounds=64)
        rival, x = measured.measure([(b, "default"), (a, "seed")], "first batch")
        for _ in range(4):
            measured.timing_noise.add(1.01, 0.99)  # this run's noise so far: 2%
        backend.on = True
        v = measured.decide(x, rival)
        assert (v.rounds, v.better) == (rounds, better), v


def jitter(c: Config) -> float:
    """A flat landscape (every config costs 1.0) timed up to 3% fast at random, once per config;
    the start (3, 3, 3) is timed right."""
    u = random.Random(repr(sorted(c.items()))).random()
    return 1.0 if c == {"a": 3, "b": 3, "c": 3} else 1.0 - 0.03 * u


def test_a_path_does_not_walk_on_timing_noise_once_configs_are_timed_again() -> None:
    """The fastest of a neighbourhood's first timings is fast by chance on a flat landscape: a
    path that moves on first timings walks on; one that decides on re-timings ends at the first
    neighbourhood, and first timings nobody re-timed never become the best."""
    start = {"a": 3, "b": 3, "c": 3}
    first_only, first_batches = walk(_DictBackend(SPACE, jitter, minimize=True, exact=True), start)  # type: ignore[arg-type]
    assert first_batches > 1  # moved on noise
    backend = Retiming(jitter, true=lambda c: 1.0)
    measured, batches = walk(backend, start)
    assert batches == 1 and len(measured.entries) == 1 + len(backend.neighbors(start))
    assert len(measured.entries) < len(first_only.entries)
    assert measured.best is not None and measured.best.candidate == start  # a tie keeps the start
    untrusted = [e for e in measured.entries.values() if not e.verified]
    assert untrusted and all(not measured.trusted(e) and e.cost < 1.0 for e in untrusted)


def test_nothing_is_timed_again_when_the_objective_is_exact() -> None:
    measured = results(_DictBackend(SPACE, bowl, minimize=True, exact=True))  # type: ignore[arg-type]
    paths = RefinementPaths(starts=1, steps=20, min_improvement=0.001, prune_ratio=math.inf)
    measured.measure([({"a": 0, "b": 7, "c": 0}, "default")], "default")
    refine(measured, paths)
    assert not measured.verifying and measured.rounds == 0 and measured.noise == 0.0
    assert measured.best is not None and measured.best.candidate == {"a": 5, "b": 2, "c": 6}


def test_an_earlier_best_timed_again_slower_gives_up_the_lead() -> None:
    """The next config timed faster is timed again with the best; the best's re-timing loses."""
    faster = {"a": 4, "b": 2, "c": 6}  # first 0.4, true 2.0
    backend = Retiming(lambda c: 0.4 if c == faster else optimistic(c))
    measured = results(backend)
    measured.measure([(dict(TRAP), "default")], "default")
    assert measured.best is not None and measured.best.cost == 15.0  # its first round: the twins
    measured.measure([(faster, "seed")], "seed")
    assert measured.best.candidate == faster and measured.best.cost == 2.0


def test_noise_ignores_failed_timings() -> None:
    noise = Noise()
    noise.add(1.0, math.inf)
    noise.add(1.0, 1.01)
    assert len(noise.samples) == 1 and math.isclose(noise.value, 0.01 / 1.01)


def test_a_pair_whose_re_timings_fail_is_decided_on_what_it_has() -> None:
    """A re-timing that fails (nan) keeps the earlier costs, and a decision that cannot get more
    rounds is taken on the rounds it has, never waited on."""
    failing = {"on": False}

    class Failing(Retiming):
        def retime(self, candidates: list[Config]) -> list[float]:  # type: ignore[override]
            if failing["on"]:
                self.asked.append([dict(c) for c in candidates])
                return [math.nan] * len(candidates)
            return super().retime(candidates)

    rng = random.Random(3)
    backend = Failing(bowl, noise=lambda: rng.gauss(0.0, 0.05))
    measured = results(backend, rounds=64)
    a, b = {"a": 4, "b": 2, "c": 6}, {"a": 6, "b": 2, "c": 6}  # both cost 2: undecided
    first = measured.measure([(a, "default"), (b, "seed")], "first batch")
    costs = [e.cost for e in first]
    failing["on"] = True
    assert measured.compare(first[1], first[0]).rounds == 1
    asked = len(backend.asked)
    v = measured.decide(first[1], first[0])
    assert [e.cost for e in first] == costs  # a failed timing changes nothing
    assert len(backend.asked) == asked + 1  # one round tried, no more: nothing to wait for
    assert not v.better and v.rounds == 1
