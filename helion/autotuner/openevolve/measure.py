"""Measuring: the backend interface and the table of everything measured in one search.

The driver hands candidates to a :class:`Backend` (a Helion kernel through Helion's benchmark
path, or a plain dict space with a Python objective) in batches. :class:`Results` keeps one
:class:`Result` per distinct candidate (its :class:`Measurement` and where it came from), writes
each to the run record as it happens, and knows the evaluation budget. Costs are lower-is-better
(a latency in ms for Helion); a failure costs ``inf`` and is never chosen.

Decisions rest on re-timing, not on first timings (:mod:`.compare` holds the rule). After each
batch, the fresh configs that would take the place of a config measured before (the best, or
their refinement path's incumbent: their *rival*; at most :data:`VERIFY_PER_RIVAL` per rival,
the fastest first) are timed again together with their rivals in one interleaved round, and
one config of the round twice (its twin: the noise sample). While a pair's rounds tell neither
way, it is timed again for ``decision_rounds`` rounds in all; the rounds are looked at after
the first and after the last only, since every look at noisy data is one more chance to decide
on noise. Timing every config twice would double a search's measuring time for configs that
decide nothing; a first timing that no decision needed stays untrusted. A backend that does not
time again (an exact objective, or Helion's effort leaves re-timing off) decides on first
timings with ``min_improvement`` alone.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import itertools
import math
import random
import time
from typing import Generic
from typing import Protocol
from typing import TypeVar

from .compare import Noise
from .compare import Verdict
from .compare import Z
from .compare import needs_more_rounds
from .compare import relative_difference
from .compare import verdict
from .record import RunRecord
from .record import Source

C = TypeVar("C")

#: fresh configs verified per rival in one batch, the fastest first: the one a decision picks,
#: and the next ones in case its re-timing loses (the fastest of many first timings is an
#: optimistic pick)
VERIFY_PER_RIVAL = 3
#: copies of the default config in the first re-timing round: the noise estimate exists from the
#: first batch on, from three twin samples
FIRST_TWINS = 3


@dataclass(frozen=True)
class Measurement:
    """One candidate's result from the backend: ``cost`` is lower-is-better, inf on failure."""

    cost: float
    status: str = "ok"
    reason: str = ""
    compile_s: float | None = None

    @property
    def ok(self) -> bool:
        return math.isfinite(self.cost)


class Backend(Protocol[C]):
    """What the driver needs from the thing being tuned (a Helion kernel, a dict space...).

    ``retime`` times the candidates again, together, in one interleaved round (a candidate
    listed twice is timed twice) and returns their new costs in order (``nan`` where a timing
    failed: the config keeps its earlier cost); ``None`` where it does not time again (an exact
    objective, or Helion's effort leaves re-timing off).
    """

    def key(self, candidate: C) -> Hashable: ...
    def validate(self, raw: dict[str, object]) -> C: ...  # ValueError with a reason if invalid
    def as_dict(self, candidate: C) -> dict[str, object]: ...
    def measure(self, candidates: list[C], desc: str) -> list[Measurement]: ...
    def retime(self, candidates: list[C]) -> list[float] | None: ...
    def random(self, rng: random.Random) -> C: ...
    def neighbors(self, candidate: C) -> list[C]: ...


@dataclass
class Result(Generic[C]):
    """A measured candidate, its result and where it came from."""

    candidate: C
    measurement: Measurement
    source: Source
    #: for a refinement find, the source of the config its path started from (the default, a
    #: seed, an LLM proposal, a random draw); ``history`` for a default an earlier search
    #: picked; otherwise its own source
    origin: Source
    #: the cost from the batch it was measured in (``cost`` is the mean of its re-timings)
    first: float = field(init=False)
    #: its re-timings: round number -> cost (rounds shared with another config pair them)
    rounds: dict[int, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.first = self.measurement.cost

    @property
    def cost(self) -> float:
        return self.measurement.cost

    @property
    def verified(self) -> bool:
        """The backend timed it again (its cost is the mean of its re-timings)."""
        return bool(self.rounds)


class Results(Generic[C]):
    """Every candidate measured in one search, keyed by the backend's key, and the budget."""

    def __init__(
        self,
        backend: Backend[C],
        record: RunRecord,
        max_evaluations: int,
        *,
        min_improvement: float = 0.0,
        decision_rounds: int = 3,
    ) -> None:
        self.backend = backend
        self.record = record
        self.max_evaluations = max_evaluations
        #: the smallest relative gain any decision takes (``refine_min_improvement``)
        self.min_improvement = min_improvement
        #: re-timing rounds at most behind one decision
        self.decision_rounds = decision_rounds
        self.entries: dict[Hashable, Result[C]] = {}
        self._best: Result[C] | None = None  # kept as results come in: the loop asks often
        self.default: Result[C] | None = None
        #: refinement's claimed neighbours -> their path's origin; the default -> ``history``
        #: when an earlier search picked it
        self.origins: dict[Hashable, Source] = {}
        #: the backend times configs again: from then on only re-timed costs decide
        self.verifying = False
        #: this run's timing noise, from the twins of every re-timing round
        self.timing_noise = Noise()
        self._round = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def __getitem__(self, key: Hashable) -> Result[C]:
        return self.entries[key]

    @property
    def remaining(self) -> int:
        return max(0, self.max_evaluations - self.record.counters.evaluations)

    @property
    def best(self) -> Result[C] | None:
        """The config every later one must beat: it changes only for one that beats it beyond
        the noise (:meth:`compare`), so a tie keeps the config that was there first."""
        return self._best

    @property
    def rounds(self) -> int:
        """Re-timing rounds so far."""
        return self._round

    def ok_entries(self) -> list[Result[C]]:
        return [e for e in self.entries.values() if e.measurement.ok]

    def trusted(self, entry: Result[C]) -> bool:
        """``entry``'s cost may decide (become the best, an incumbent, an answer's credit): it
        worked, and the backend does not time configs again or timed this one again."""
        return entry.measurement.ok and (entry.verified or not self.verifying)

    @property
    def noise(self) -> float:
        """The noise of one paired re-timing round (relative), measured in this run."""
        return self.timing_noise.value

    def compare(self, a: Result[C], b: Result[C], floor: float | None = None) -> Verdict:
        """Is ``a`` faster than ``b`` beyond the noise (:func:`.compare.verdict`), by more than
        ``floor`` (default ``min_improvement``)?"""
        return verdict(
            a.cost,
            b.cost,
            a_rounds=a.rounds,
            b_rounds=b.rounds,
            noise=self.noise,
            floor=self.min_improvement if floor is None else floor,
        )

    def decide(self, a: Result[C], b: Result[C], floor: float | None = None) -> Verdict:
        """:meth:`compare`, after timing ``a`` and ``b`` again, paired, while their rounds tell
        neither way and more could tell: once, then up to ``decision_rounds`` shared rounds (the
        same two looks as :meth:`_verify`)."""
        floor = self.min_improvement if floor is None else floor
        v = self.compare(a, b, floor)
        t0 = time.perf_counter()
        while (
            self.trusted(a)
            and self.trusted(b)
            and v.rounds < self.decision_rounds
            and needs_more_rounds(v, noise=self.noise, floor=floor)
        ):
            target = 1 if v.rounds == 0 else self.decision_rounds
            stalled = False
            while v.rounds < target and not stalled:
                before = v.rounds
                stalled = not self._round_of([a, b], b, 1)
                v = self.compare(a, b, floor)
                stalled = stalled or v.rounds == before  # nothing timed, or it failed: decide now
            if stalled:
                break
        self.record.time.verify_s += time.perf_counter() - t0
        return v

    def beats(self, a: Result[C] | None, b: Result[C] | None) -> bool:
        """``a`` is faster than ``b`` beyond the noise; any working config beats none."""
        if a is None or not self.trusted(a):
            return False
        return b is None or not b.measurement.ok or self.compare(a, b).better

    def ties_best(self, entry: Result[C]) -> bool:
        """``entry`` worked and the best does not beat it beyond the noise."""
        best = self._best
        return entry.measurement.ok and (best is None or entry is best or not self.compare(best, entry).better)

    def speedup(self, entry: Result[C] | None) -> float | None:
        """``entry``'s speedup over the default config (None where either failed)."""
        base = self.default.cost if self.default else math.nan
        if entry is None or not math.isfinite(base) or not entry.measurement.ok or entry.cost <= 0:
            return None
        return base / entry.cost

    def unseen(self, candidates: Iterable[C], limit: int) -> list[C]:
        """Up to ``limit`` distinct candidates that have not been measured yet."""
        out: list[C] = []
        keys: set[Hashable] = set()
        for candidate in candidates:
            if len(out) >= limit:
                break
            key = self.backend.key(candidate)
            if key not in self.entries and key not in keys:
                keys.add(key)
                out.append(candidate)
        return out

    def measure(
        self,
        items: list[tuple[C, Source]],
        desc: str,
        rival_of: Callable[[Hashable], Hashable | None] = lambda key: None,
    ) -> list[Result[C]]:
        """Measure the new candidates of ``items`` in one batch (within the budget), then time
        again the ones that would take a rival's place (the best, and the config ``rival_of``
        names for a key: its refinement path's incumbent) beside their rivals; the entries of
        every item measured now or before, in order. The first source given for a candidate wins."""
        sources = {self.backend.key(c): src for c, src in reversed(items)}
        fresh = [(c, sources[self.backend.key(c)]) for c in self.unseen((c for c, _ in items), max(1, self.remaining))]
        t0 = time.perf_counter()
        measurements = self.backend.measure([c for c, _ in fresh], desc) if fresh else []
        new: list[Result[C]] = []
        for (candidate, source), m in zip(fresh, measurements, strict=True):
            key = self.backend.key(candidate)
            origin = self.origins.get(key, source) if source in ("refine", "default") else source
            new.append(result := Result(candidate, m, source, origin))
            self.entries[key] = result
        retimed = self._verify(new, rival_of)
        self.record.time.measure_s += time.perf_counter() - t0
        for result in new:
            m = result.measurement
            self.record.time.compile_sum_s += m.compile_s or 0.0
            self.record.evaluation(
                source=result.source,
                origin=result.origin,
                config=self.backend.as_dict(result.candidate),
                status=m.status,
                cost=m.cost,
                **({"first": result.first} if result.verified else {}),
                reason=m.reason,
                compile_s=m.compile_s,
            )
        # an earlier best timed again may have lost its lead: then every entry competes
        self._update_best(list(self.entries.values()) if retimed else new)
        return [self.entries[k] for k in (self.backend.key(c) for c, _ in items) if k in self.entries]

    def _update_best(self, pool: list[Result[C]]) -> None:
        """The fastest trusted entry of ``pool`` that beats the best takes its place; of the
        :data:`VERIFY_PER_RIVAL` fastest, each not already shown slower is decided in turn."""
        challengers = sorted((e for e in pool if self.trusted(e) and e is not self._best), key=lambda e: e.cost)
        best = self._best
        if not challengers:
            return
        if best is None or not self.trusted(best):
            self._best = challengers[0]
            return
        for challenger in challengers[:VERIFY_PER_RIVAL]:
            if self.compare(challenger, best).worse or not (v := self.decide(challenger, best)).better:
                continue
            self._best = challenger
            self.record.write(
                "decision",
                what="best",
                config=self.backend.as_dict(challenger.candidate),
                cost=challenger.cost,
                before=best.cost,
                **v.record(),
            )
            return

    def _contenders(
        self, new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]
    ) -> dict[Hashable | None, list[Result[C]]]:
        """The configs of ``new`` a decision rests on, grouped by their rival measured before.
        A fresh config contends with the best measured before and with its ``rival_of`` config
        when its first timing is below the rival's first or latest one by less than :data:`.compare.Z`
        times the noise (it could take the rival's place: one timing each says no more); per rival, the :data:`VERIFY_PER_RIVAL` fastest contend. In the first
        batch (no best yet) its fastest configs and the default (every speedup's baseline)
        contend with each other (group ``None``)."""
        key = self.backend.key
        best = self._best
        groups: dict[Hashable | None, list[Result[C]]] = {}
        for r in sorted((r for r in new if r.measurement.ok), key=lambda r: r.first):
            if best is None:
                rivals: list[Hashable | None] = [None]
            else:
                rivals = [k for k in dict.fromkeys([rival_of(key(r.candidate)), key(best.candidate)]) if k is not None]
            for rival in rivals:
                old = self.entries[rival] if rival is not None else None
                if old is not None and not relative_difference(r.first, max(old.first, old.cost)) < Z * self.noise:
                    continue  # not faster than the rival, even allowing for the noise
                group = groups.setdefault(rival, [])
                if len(group) < VERIFY_PER_RIVAL or r.source == "default":  # the speedups' baseline
                    group.append(r)
        return groups

    def _verify(self, new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]) -> bool:
        """Time the contenders among ``new`` again beside their rivals (see the module
        docstring), round after round while a pair is still open; whether any round ran."""
        groups = self._contenders(new, rival_of)
        pairs = [(c, self.entries[r]) for r, group in groups.items() if r is not None for c in group]
        group = list({id(e): e for e in [*(c for g in groups.values() for c in g), *(r for _, r in pairs)]}.values())
        if not group:
            return False
        # the twin: the default in the first batch (every speedup's baseline), else a rival
        twin = next((e for e in group if e.source == "default"), None)
        twin = twin or (pairs[0][1] if pairs else min(group, key=lambda e: e.cost))
        copies = FIRST_TWINS if not self.timing_noise.samples else 1
        t0 = time.perf_counter()
        ran, changes = 0, {id(e): (e, e.cost) for e in group}
        while group and ran < self.decision_rounds:
            if not self._round_of(group, twin, copies):
                break
            ran, copies = ran + 1, 1
            if 1 < ran < self.decision_rounds:
                continue  # look after the first round and the last only: each look is a chance to decide on noise
            open_pairs = [
                (c, r)
                for c, r in pairs
                if needs_more_rounds(self.compare(c, r), noise=self.noise, floor=self.min_improvement)
            ]
            group = list({id(e): e for pair in open_pairs for e in pair}.values())
            twin = open_pairs[0][1] if open_pairs else twin
        self.record.time.verify_s += time.perf_counter() - t0
        if ran:
            self.record.write(
                "verified",
                batch=sum(r.measurement.ok for r in new),
                rounds=ran,
                noise=round(self.noise, 5),
                twins=len(self.timing_noise.samples),
                changes=[
                    {"config": self.backend.as_dict(e.candidate), "first": e.first, "before": before, "cost": e.cost}
                    for e, before in changes.values()
                ],
            )
        return ran > 0

    def _round_of(self, group: list[Result[C]], twin: Result[C], copies: int) -> bool:
        """One re-timing round of ``group`` and ``copies`` more timings of ``twin`` (in the
        group); whether the backend timed them."""
        costs = self.backend.retime([e.candidate for e in group] + [twin.candidate] * copies)
        if costs is None:
            return False
        self._round += 1
        cost_of = dict(zip((id(e) for e in group), costs, strict=False))
        twins = [cost_of[id(twin)], *costs[len(group) :]]
        for first, second in itertools.pairwise(twins):
            self.timing_noise.add(first, second)
        for entry in group:
            cost = cost_of[id(entry)]
            if math.isfinite(cost):  # a failed re-timing keeps the earlier cost
                entry.rounds[self._round] = cost
                entry.measurement = replace(entry.measurement, cost=sum(entry.rounds.values()) / len(entry.rounds))
        self.verifying = True
        return True


def describe_batch(items: list[tuple[object, Source]]) -> str:
    """A batch's progress-bar label: how many configs of each source ("3 refining + 1 random")."""
    counts: dict[str, int] = {}
    for _, source in items:
        counts[source] = counts.get(source, 0) + 1
    names = {"refine": "refining", "fallback": "random (no LLM)", "random": "random"}
    return " + ".join(f"{n} {names.get(s, s)}" for s, n in counts.items())
