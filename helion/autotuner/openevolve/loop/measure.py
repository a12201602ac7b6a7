"""Measuring: the table of everything measured in one search.

The driver hands candidates to a :class:`.result.Backend` (a Helion kernel through Helion's
benchmark path, or a plain dict space with a Python objective) in batches. :class:`Results`
keeps one :class:`.result.Result` per distinct candidate (its measurement and where it came from), writes
each to the run record as it happens, and knows the evaluation budget. Costs are lower-is-better
(a latency in ms for Helion); a failure costs ``inf`` and is never chosen.

Decisions rest on re-timing, not on first timings: :mod:`.compare` holds the rule, and
:mod:`.retiming` the rounds that time the configs a decision rests on again after each batch
(:meth:`Results.decide` asks for more when a decision needs them). A first timing that no
decision needed stays untrusted.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
import math
import time
from typing import Generic
from typing import TypeVar

from .compare import Noise
from .compare import Verdict
from .compare import look_z
from .compare import looks
from .compare import needs_more_rounds
from .compare import verdict
from .record import RunRecord
from .record import Source
from .result import Backend
from .result import Result
from .retiming import VERIFY_PER_RIVAL
from .retiming import retime_contenders
from .retiming import timing_round

C = TypeVar("C")


class Results(Generic[C]):
    """Every candidate measured in one search, keyed by the backend's key, and the budget."""

    def __init__(
        self,
        backend: Backend[C],
        record: RunRecord,
        max_evaluations: int,
        *,
        min_improvement: float = 0.0,
        decision_rounds: int = 6,
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
        #: re-timing rounds so far
        self.rounds = 0

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
        neither way and more could tell, up to ``decision_rounds`` shared rounds, looked at after
        the rounds :func:`.compare.looks` names (as re-timing after a batch does)."""
        floor = self.min_improvement if floor is None else floor
        v = self.compare(a, b, floor)
        t0 = time.perf_counter()
        limit = self.decision_rounds
        while (
            self.trusted(a)
            and self.trusted(b)
            and v.rounds < limit
            and needs_more_rounds(v, noise=self.noise, floor=floor, z=look_z(v.rounds, limit))
        ):
            target = next(n for n in looks(limit) if n > v.rounds)
            stalled = False
            while v.rounds < target and not stalled:
                before = v.rounds
                stalled = not timing_round(self, [a, b], b, 1)
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
        retimed = retime_contenders(self, new, rival_of)
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
            self.write_decision("best", challenger, best, v)
            return

    def write_decision(self, what: str, entry: Result[C], before: Result[C] | None, v: Verdict | None) -> None:
        """A ``decision`` line: ``entry`` against the config it had to beat, and the verdict."""
        self.record.write(
            "decision",
            what=what,
            config=self.backend.as_dict(entry.candidate),
            cost=entry.cost,
            before=before.cost if before is not None else None,
            **(v.record() if v is not None else {"better": True}),  # no rival: any working config wins
        )


def describe_batch(items: list[tuple[object, Source]]) -> str:
    """A batch's progress-bar label: how many configs of each source ("3 refining + 1 random")."""
    counts: dict[str, int] = {}
    for _, source in items:
        counts[source] = counts.get(source, 0) + 1
    names = {"refine": "refining", "fallback": "random (no LLM)", "random": "random"}
    return " + ".join(f"{n} {names.get(s, s)}" for s, n in counts.items())
