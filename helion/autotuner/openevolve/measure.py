"""Measuring: the backend interface and the table of everything measured in one search.

The driver hands candidates to a :class:`Backend` (a Helion kernel through Helion's benchmark
path, or a plain dict space with a Python objective) in batches. :class:`Results` keeps one
:class:`Result` per distinct candidate (its :class:`Measurement` and where it came from), writes
each to the run record as it happens, and knows the evaluation budget. Costs are lower-is-better
(a latency in ms for Helion); a failure costs ``inf`` and is never chosen. A backend that times
configs again (Helion's rebenchmark of the configs near the best) replaces a first cost with the
second before anything decides on it.
"""

from __future__ import annotations

from collections.abc import Hashable
from collections.abc import Iterable
from dataclasses import dataclass
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

    ``verify`` takes the candidates just measured and the ones measured before that they compete
    with (the best, the refinement paths' incumbents), times again the ones worth it, together,
    and returns their new costs by key; ``{}`` where nothing is timed again (a deterministic
    objective, or Helion's effort leaves it off).
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

    def measure(self, items: list[tuple[C, Source]], desc: str, rivals: Iterable[Hashable] = ()) -> list[Result[C]]:
        """Measure the new candidates of ``items`` in one batch (within the budget), then let the
        backend verify them against the best and ``rivals`` (keys measured before); the entries
        of every item measured now or before, in order. The first source given for a candidate wins."""
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
        retimed = self._verify(new, rivals)
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
        pool = (
            self.ok_entries()
            if retimed
            else [*([self._best] if self._best else []), *(r for r in new if r.measurement.ok)]
        )
        self._best = min(pool, key=lambda e: e.cost, default=None)
        return [self.entries[k] for k in (self.backend.key(c) for c, _ in items) if k in self.entries]

    def _verify(self, new: list[Result[C]], rivals: Iterable[Hashable]) -> bool:
        """The backend's second timing of ``new`` against the best before them and ``rivals``:
        the costs it returns replace the first ones (a line ``verified`` in the record); whether
        any did."""
        fresh = [r.candidate for r in new if r.measurement.ok]
        if not fresh:
            return False
        keys = [*rivals, *([self.backend.key(self._best.candidate)] if self._best else [])]
        earlier = [self.entries[k].candidate for k in dict.fromkeys(keys) if self.entries[k].measurement.ok]
        t0 = time.perf_counter()
        retimed = self.backend.verify(fresh, earlier)
        self.record.time.verify_s += time.perf_counter() - t0
        changes = []
        for key, cost in retimed.items():
            entry = self.entries[key]
            changes.append({"config": self.backend.as_dict(entry.candidate), "first": entry.cost, "cost": cost})
            entry.measurement = replace(entry.measurement, cost=cost)
        if changes:
            self.record.write("verified", fresh=len(fresh), earlier=len(earlier), changes=changes)
        return bool(changes)


def describe_batch(items: list[tuple[object, Source]]) -> str:
    """A batch's progress-bar label: how many configs of each source ("3 refining + 1 random")."""
    counts: dict[str, int] = {}
    for _, source in items:
        counts[source] = counts.get(source, 0) + 1
    names = {"refine": "refining", "fallback": "random (no LLM)", "random": "random"}
    return " + ".join(f"{n} {names.get(s, s)}" for s, n in counts.items())
