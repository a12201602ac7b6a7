"""The one comparison rule behind every decision of a search: is config ``a`` faster than ``b``?

Timings are noisy, so a single timing of each says little: the fastest of many first timings
of configs within a few percent of each other is fast by chance as often as not. A decision
(a path's move, the best so far, the LLM's credit, the stop, the finalists) therefore rests on
*paired* timings: both configs timed again in the same round, interleaved, so that what drifts
between rounds (clocks, temperature, other load) moves both alike. Each round gives one
relative difference; their mean over the rounds ``a`` and ``b`` share is the measured gain.

The noise those differences carry is measured in the same run, from the first round on: every
re-timing round times one config twice (its *twin*), and the relative difference between the
two timings of one config is exactly what a paired difference between two equally fast configs
looks like. :class:`Noise` keeps those differences; their root mean square is the noise of one
paired round.

The rule (:func:`verdict`): ``a`` beats ``b`` when its mean paired gain exceeds both the
caller's floor (``min_improvement``) and :data:`Z` times the noise of the mean (``noise /
sqrt(rounds)``). Anything less is a tie, and a tie is a tie: a path whose neighbours only tie it
has converged, an answer that ties the best earns no credit, a config that ties the best does
not take its place. A gain of :data:`Z` times the noise is taken after one round; a smaller one
needs more rounds to show: while a pair's rounds tell neither way, it is timed again
(:func:`needs_more_rounds`), up to the caller's limit.

The open rounds are looked at after the first round, after every fourfold count below the limit
(4, 16, ...) and at the limit (:func:`looks`): a clear gain decides at the first look that shows
it, not at the limit, and a pair that truly ties runs to the limit. Every look is one more chance
to decide on noise, so the looks between the first and the last ask for :data:`Z_INTERIM` noise
widths instead of :data:`Z` (a group-sequential boundary: together they decide on noise about as
rarely as the first and last look alone).

A relative difference is ``(a - b) / max(|a|, |b|)``: close to ``a / b - 1`` for latencies, and
defined for the zero and negative costs of a maximised objective (minimised as ``-score``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
import math

#: How many noise widths a gain must clear: a gain of twice the noise is always taken.
Z = 2.0
#: How many noise widths a gain must clear at a look between the first and the last (:func:`looks`).
Z_INTERIM = 2.5
#: The factor between two looks at a pair's open rounds.
LOOK_STEP = 4


def relative_difference(a: float, b: float) -> float:
    """``(a - b) / max(|a|, |b|)``; 0 when both are 0, -inf/inf where only one is finite."""
    if not math.isfinite(a) or not math.isfinite(b):
        if math.isfinite(a) == math.isfinite(b):
            return 0.0
        return -math.inf if math.isfinite(a) else math.inf
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0.0 else (a - b) / scale


@dataclass
class Noise:
    """This run's timing noise: the relative differences between two timings of one config in
    one round (its twin), gathered from the first re-timing round on."""

    samples: list[float] = field(default_factory=list)

    def add(self, first: float, second: float) -> None:
        if math.isfinite(first) and math.isfinite(second):
            self.samples.append(relative_difference(second, first))

    @property
    def value(self) -> float:
        """The noise of one paired round (relative): the root mean square of the twins'
        differences; 0 before any twin was timed (and for an objective that is exact)."""
        if not self.samples:
            return 0.0
        return math.sqrt(sum(x * x for x in self.samples) / len(self.samples))


@dataclass(frozen=True)
class Verdict:
    """The comparison of ``a`` with ``b``: the measured gain, the rounds behind it, the margin
    it had to clear, and whether it did (``a`` is faster)."""

    gain: float  # mean relative difference (a - b), negative where a is faster
    rounds: int  # paired rounds behind it; 0 where a and b were never timed together
    margin: float  # the relative gain a had to exceed
    better: bool

    @property
    def worse(self) -> bool:
        """``a`` is slower than ``b`` beyond the noise (the mirror of ``better``)."""
        return self.gain > self.margin

    def record(self) -> dict[str, object]:
        """The verdict as plain data for the run record."""
        return {
            "gain": round(-self.gain, 5) if math.isfinite(self.gain) else None,
            "rounds": self.rounds,
            "margin": round(self.margin, 5),
            "better": self.better,
        }


def paired_gain(a: Mapping[int, float], b: Mapping[int, float]) -> tuple[float, int]:
    """Mean relative difference of ``a`` and ``b`` over the rounds (keys) both were timed in,
    and how many; ``(nan, 0)`` where they share none."""
    shared = [relative_difference(a[r], b[r]) for r in a.keys() & b.keys()]
    shared = [d for d in shared if not math.isnan(d)]
    if not shared:
        return math.nan, 0
    return sum(shared) / len(shared), len(shared)


def margin(noise: float, rounds: int, floor: float) -> float:
    """The gain a comparison over ``rounds`` paired rounds must exceed (see the module docstring)."""
    return max(floor, Z * noise / math.sqrt(max(1, rounds)))


def verdict(
    a_cost: float,
    b_cost: float,
    *,
    a_rounds: Mapping[int, float],
    b_rounds: Mapping[int, float],
    noise: float,
    floor: float,
) -> Verdict:
    """Is ``a`` faster than ``b`` beyond the noise? Over their shared rounds where they have
    any, else their costs as they stand (one unpaired comparison)."""
    gain, rounds = paired_gain(a_rounds, b_rounds)
    if rounds == 0:
        gain = relative_difference(a_cost, b_cost)
    if not math.isfinite(a_cost):
        gain = math.inf
    need = margin(noise, rounds, floor)
    return Verdict(gain, rounds, need, gain < -need)


def looks(limit: int) -> tuple[int, ...]:
    """The round counts after which a pair's open rounds are looked at: 1, every fourfold count
    below ``limit`` (4, 16, ...), and ``limit``."""
    out, n = [1], LOOK_STEP
    while n < limit:
        out.append(n)
        n *= LOOK_STEP
    return tuple(dict.fromkeys([*out, max(1, limit)]))


def look_z(rounds: int, limit: int) -> float:
    """The noise widths a gain must clear at the look after ``rounds`` of at most ``limit``:
    :data:`Z` at the first and the last, :data:`Z_INTERIM` between them."""
    return Z if rounds <= 1 or rounds >= limit else Z_INTERIM


def needs_more_rounds(v: Verdict, *, noise: float, floor: float, z: float = Z) -> bool:
    """The rounds so far tell neither way (the gain is within ``z`` noise widths of its mean,
    either side) and more rounds could still tell: the noise of the mean is still above the
    floor (below it, the floor decides and more rounds change nothing)."""
    if not math.isfinite(v.gain):
        return False
    width = z * noise / math.sqrt(max(1, v.rounds))
    return width > floor and abs(v.gain) <= width
