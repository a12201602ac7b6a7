"""Measuring: the backend interface and the table of everything measured in one search.

The driver hands candidates to a :class:`Backend` (a Helion kernel through Helion's benchmark
path, or a plain dict space with a Python objective) in batches. :class:`Results` keeps one
:class:`Result` per distinct candidate (its :class:`Measurement` and where it came from), writes
each to the run record as it happens, and knows the evaluation budget. Costs are lower-is-better
(a latency in ms for Helion); a failure costs ``inf`` and is never chosen. A backend that times
configs again (Helion's rebenchmark) replaces a first cost with the second before anything
decides on it, for the configs a decision rests on: each fresh config whose first timing would
take the place of the best or of its path's incumbent (its *rival*), at most
:data:`VERIFY_PER_RIVAL` per rival, timed again together with the rivals. Verifying every config
near the best, as PatternSearch does, more than doubled a search's time measuring on a flat
landscape (an H200, rms_norm at ``full``: 258 s of 473 s, 1344 of 1381 configs timed twice),
and the second timing of a config that decides nothing changes nothing. The rivals' repeated
second timings measure the device's timing noise (:attr:`Results.noise`): a decision between two
verified costs needs a gain above it (:meth:`Results.margin`), since a gain within it is chance.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import math
import random
import time
from typing import Generic
from typing import Protocol
from typing import TypeVar

from .record import RunRecord
from .record import Source

C = TypeVar("C")

#: repeated second timings (of configs timed again before) the search gathers before it takes
#: their spread as its timing noise (:attr:`Results.noise`); until then ``min_improvement`` alone
NOISE_MIN_REPEATS = 6
#: the largest timing noise a decision allows for (relative): above it a path would pass over
#: real gains of a few percent; on a device noisier than this, paths move on noise again
NOISE_CAP = 0.03

#: fresh configs verified per rival in one batch, the fastest first: the one a decision picks,
#: and the next ones in case its second timing loses (timing noise of a few percent makes the
#: fastest of many first timings an optimistic pick)
VERIFY_PER_RIVAL = 3


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


def beats(cost: float, other: float, margin: float) -> bool:
    """``cost`` is lower than ``other`` by more than ``margin`` of ``other``'s size (costs may be
    negative: a maximised objective is minimised as ``-score``)."""
    if not math.isfinite(cost):
        return False
    if not math.isfinite(other):
        return True
    return cost < other - margin * abs(other)


class Backend(Protocol[C]):
    """What the driver needs from the thing being tuned (a Helion kernel, a dict space...).

    ``verify`` takes the candidates just measured that a decision rests on and the ones measured
    before that they compete with (the best, the refinement paths' incumbents), times them again,
    together, and returns their new costs by key; ``{}`` where nothing is timed again (a
    deterministic objective, or Helion's effort leaves it off).
    """

    def key(self, candidate: C) -> Hashable: ...
    def validate(self, raw: dict[str, object]) -> C: ...  # ValueError with a reason if invalid
    def as_dict(self, candidate: C) -> dict[str, object]: ...
    def measure(self, candidates: list[C], desc: str) -> list[Measurement]: ...
    def verify(self, fresh: list[C], rivals: list[C]) -> dict[Hashable, float]: ...
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
    #: the cost from the batch it was measured in (``cost`` is the latest: a second timing)
    first: float = field(init=False)
    #: the backend timed it again (its cost is a second timing, taken beside its rivals)
    verified: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.first = self.measurement.cost

    @property
    def cost(self) -> float:
        return self.measurement.cost


class Results(Generic[C]):
    """Every candidate measured in one search, keyed by the backend's key, and the budget."""

    def __init__(self, backend: Backend[C], record: RunRecord, max_evaluations: int) -> None:
        self.backend = backend
        self.record = record
        self.max_evaluations = max_evaluations
        self.entries: dict[Hashable, Result[C]] = {}
        self._best: Result[C] | None = None  # kept as results come in: the loop asks often
        self.default: Result[C] | None = None
        #: refinement's claimed neighbours -> their path's origin; the default -> ``history``
        #: when an earlier search picked it
        self.origins: dict[Hashable, Source] = {}
        #: the backend times configs again: from then on only verified costs decide
        self.verifying = False
        #: each second timing of a config timed again before, relative to the one before it
        #: (a rival timed beside each batch's contenders: the same config, timed the same way)
        self.repeats: list[float] = []

    def __contains__(self, key: Hashable) -> bool:
        return key in self.entries

    def __getitem__(self, key: Hashable) -> Result[C]:
        return self.entries[key]

    @property
    def remaining(self) -> int:
        return max(0, self.max_evaluations - self.record.counters.evaluations)

    @property
    def best(self) -> Result[C] | None:
        return self._best

    def ok_entries(self) -> list[Result[C]]:
        return [e for e in self.entries.values() if e.measurement.ok]

    def trusted(self, entry: Result[C]) -> bool:
        """``entry``'s cost may decide (become the best, an incumbent, an answer's credit): it
        worked, and the backend does not time configs again or timed this one again. A first
        timing that no decision needed stays untrusted: the fastest of many first timings of
        configs within a few percent of each other is fast by chance as often as not."""
        return entry.measurement.ok and (entry.verified or not self.verifying)

    @property
    def noise(self) -> float:
        """The timing noise measured so far (relative): the 90th percentile of how far a config's
        second timing moved from its previous one, once :data:`NOISE_MIN_REPEATS` were taken
        (at most :data:`NOISE_CAP`); 0 before, and where the backend times once. On an H200
        (rms_norm, ``full``) such repeats moved by -1.5%..+2.7% (p10-p90 of 1344) and by
        -7.6%..+4.5% (all 20 of three searches, the first ones the largest)."""
        if len(self.repeats) < NOISE_MIN_REPEATS:
            return 0.0
        spread = sorted(abs(r) for r in self.repeats)
        return min(NOISE_CAP, spread[math.ceil(0.9 * len(spread)) - 1])

    def margin(self, floor: float) -> float:
        """The gain (relative) a decision needs to tell two verified costs apart: ``floor``
        (``min_improvement``) or the timing noise measured, the larger."""
        return max(floor, self.noise)

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
        """Measure the new candidates of ``items`` in one batch (within the budget), then let the
        backend verify the ones that would take a rival's place (the best, and the config
        ``rival_of`` names for a key: its refinement path's incumbent); the entries of every item
        measured now or before, in order. The first source given for a candidate wins."""
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
                reason=m.reason,
                compile_s=m.compile_s,
            )
        # an earlier best timed again may have lost its lead: then every entry competes
        pool = list(self.entries.values()) if retimed else [*([self._best] if self._best else []), *new]
        self._best = min((e for e in pool if self.trusted(e)), key=lambda e: e.cost, default=None)
        return [self.entries[k] for k in (self.backend.key(c) for c, _ in items) if k in self.entries]

    def _contenders(
        self, new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]
    ) -> tuple[list[Result[C]], list[Result[C]]]:
        """The configs of ``new`` a decision rests on, and their rivals measured before. A fresh
        config contends with the best measured before and with its ``rival_of`` config when its
        first timing is below the rival's first or latest one (it would take the rival's place);
        per rival, the :data:`VERIFY_PER_RIVAL` fastest contend. In the first batch (no best yet)
        its fastest configs and the default (every speedup's baseline) contend with each other."""
        key = self.backend.key
        best = self._best
        groups: dict[Hashable | None, list[Result[C]]] = {}  # rival (None: the first batch) -> contenders
        for r in sorted((r for r in new if r.measurement.ok), key=lambda r: r.first):
            if best is None:
                rivals: list[Hashable | None] = [None]
            else:
                rivals = [k for k in dict.fromkeys([rival_of(key(r.candidate)), key(best.candidate)]) if k is not None]
            for rival in rivals:
                old = self.entries[rival] if rival is not None else None
                if old is not None and not r.first < max(old.first, old.cost):
                    continue  # it would not take the rival's place
                group = groups.setdefault(rival, [])
                if len(group) < VERIFY_PER_RIVAL or r.source == "default":  # the speedups' baseline
                    group.append(r)
        fresh = list({id(r): r for group in groups.values() for r in group}.values())
        rivals = [self.entries[k] for k in groups if k is not None]
        return (fresh, rivals) if len(fresh) + len(rivals) >= 2 else ([], [])  # one config alone: no rival

    def _verify(self, new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]) -> bool:
        """The backend's second timing of the contenders among ``new`` and their rivals (see
        :meth:`_contenders`): the costs it returns replace the first ones (a line ``verified`` in
        the record); whether any did."""
        fresh, rivals = self._contenders(new, rival_of)
        if not fresh:
            return False
        t0 = time.perf_counter()
        retimed = self.backend.verify([r.candidate for r in fresh], [r.candidate for r in rivals])
        self.record.time.verify_s += time.perf_counter() - t0
        changes = []
        for key, cost in retimed.items():
            entry = self.entries[key]
            if entry.verified and entry.cost != 0 and math.isfinite(entry.cost) and math.isfinite(cost):
                self.repeats.append(cost / entry.cost - 1.0)
            changes.append({"config": self.backend.as_dict(entry.candidate), "first": entry.cost, "cost": cost})
            entry.measurement = replace(entry.measurement, cost=cost)
            entry.verified = self.verifying = True
        if changes:
            n = sum(r.measurement.ok for r in new)
            self.record.write(
                "verified", batch=n, fresh=len(fresh), earlier=len(rivals), noise=round(self.noise, 5), changes=changes
            )
        return bool(changes)


def describe_batch(items: list[tuple[object, Source]]) -> str:
    """A batch's progress-bar label: how many configs of each source ("3 refining + 1 random")."""
    counts: dict[str, int] = {}
    for _, source in items:
        counts[source] = counts.get(source, 0) + 1
    names = {"refine": "refining", "fallback": "random (no LLM)", "random": "random"}
    return " + ".join(f"{n} {names.get(s, s)}" for s, n in counts.items())
