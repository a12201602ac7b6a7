"""Re-timing rounds: the configs a decision rests on, timed again, paired, after each batch.

After each batch, the fresh configs that could take the place of a config measured before (the
best, or their refinement path's incumbent: their *rival*; at most :data:`VERIFY_PER_RIVAL` per
rival, the fastest first) are timed again together with their rivals in one interleaved round,
and one config of the round twice (its twin: the noise sample, :class:`.compare.Noise`). While a
pair's rounds tell neither way (:func:`.compare.needs_more_rounds`), it is timed again for
``decision_rounds`` rounds at most, and looked at after the rounds :func:`.compare.looks` names
(1, 4, 16, ... and the last): a clear gain ends its pair's rounds early, and the looks between
the first and the last ask for more noise widths, since every look at noisy data is one more
chance to decide on noise. Timing every config
twice would double a search's measuring time for configs that decide nothing. A backend that
does not time again (an exact objective, or Helion's effort leaves re-timing off) leaves first
timings to decide with ``min_improvement`` alone.

These functions read and update a :class:`.measure.Results` table: its entries' rounds and
costs, its noise and round count, and its run record.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from dataclasses import replace
import itertools
import math
import time
from typing import TYPE_CHECKING
from typing import Protocol
from typing import TypeVar

from .compare import Z
from .compare import look_z
from .compare import looks
from .compare import needs_more_rounds
from .compare import relative_difference

if TYPE_CHECKING:
    from .compare import Noise
    from .compare import Verdict
    from .record import RunRecord
    from .result import Backend
    from .result import Result

C = TypeVar("C")


class Results(Protocol[C]):
    """What re-timing reads and updates of the search's table (:class:`.measure.Results`); a
    protocol, so that the table can call these functions without the two modules importing each
    other."""

    backend: Backend[C]
    record: RunRecord
    entries: dict[Hashable, Result[C]]
    timing_noise: Noise
    decision_rounds: int
    min_improvement: float
    rounds: int
    verifying: bool

    @property
    def best(self) -> Result[C] | None: ...
    @property
    def noise(self) -> float: ...
    def compare(self, a: Result[C], b: Result[C], floor: float | None = None) -> Verdict: ...


#: fresh configs verified per rival in one batch, the fastest first: the one a decision picks,
#: and the next ones in case its re-timing loses (the fastest of many first timings is an
#: optimistic pick)
VERIFY_PER_RIVAL = 3
#: copies of the default config in the first re-timing round: the noise estimate exists from the
#: first batch on, from three twin samples
FIRST_TWINS = 3


def contenders(
    results: Results[C], new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]
) -> dict[Hashable | None, list[Result[C]]]:
    """The configs of ``new`` a decision rests on, grouped by their rival measured before.
    A fresh config contends with the best and with its ``rival_of`` config when its first
    timing is not above the rival's first or latest one by :data:`.compare.Z` times the noise
    (it could take the rival's place: one timing each says no more); per rival, the
    :data:`VERIFY_PER_RIVAL` fastest contend. In the first batch (no best yet) its fastest
    configs and the default (every speedup's baseline) contend with each other (group None)."""
    key = results.backend.key
    best = results.best
    groups: dict[Hashable | None, list[Result[C]]] = {}
    for r in sorted((r for r in new if r.measurement.ok), key=lambda r: r.first):
        if best is None:
            rivals: list[Hashable | None] = [None]
        else:
            rivals = [k for k in dict.fromkeys([rival_of(key(r.candidate)), key(best.candidate)]) if k is not None]
        for rival in rivals:
            old = results.entries[rival] if rival is not None else None
            if old is not None and not relative_difference(r.first, max(old.first, old.cost)) < Z * results.noise:
                continue  # not faster than the rival, even allowing for the noise
            group = groups.setdefault(rival, [])
            if len(group) < VERIFY_PER_RIVAL or r.source == "default":  # the speedups' baseline
                group.append(r)
    return groups


def retime_contenders(
    results: Results[C], new: list[Result[C]], rival_of: Callable[[Hashable], Hashable | None]
) -> bool:
    """Time the contenders among ``new`` again beside their rivals (see the module
    docstring), round after round while a pair is still open; whether any round ran."""
    groups = contenders(results, new, rival_of)
    pairs = [(c, results.entries[r]) for r, group in groups.items() if r is not None for c in group]
    group = list({id(e): e for e in [*(c for g in groups.values() for c in g), *(r for _, r in pairs)]}.values())
    if not group:
        return False
    # the twin: the default in the first batch (every speedup's baseline), else a rival
    twin = next((e for e in group if e.source == "default"), None)
    twin = twin or (pairs[0][1] if pairs else min(group, key=lambda e: e.cost))
    copies = FIRST_TWINS if not results.timing_noise.samples else 1
    t0 = time.perf_counter()
    ran, changes = 0, {id(e): (e, e.cost) for e in group}
    limit = results.decision_rounds
    schedule = looks(limit)
    while group and ran < limit:
        if not timing_round(results, group, twin, copies):
            break
        ran, copies = ran + 1, 1
        if ran not in schedule:
            continue  # each look is one more chance to decide on noise
        z = look_z(ran, limit)
        open_pairs = [
            (c, r)
            for c, r in pairs
            if needs_more_rounds(results.compare(c, r), noise=results.noise, floor=results.min_improvement, z=z)
        ]
        group = list({id(e): e for pair in open_pairs for e in pair}.values())
        twin = open_pairs[0][1] if open_pairs else twin
    results.record.time.verify_s += time.perf_counter() - t0
    if ran:
        results.record.write(
            "verified",
            batch=sum(r.measurement.ok for r in new),
            rounds=ran,
            noise=round(results.noise, 5),
            twins=len(results.timing_noise.samples),
            changes=[
                {"config": results.backend.as_dict(e.candidate), "first": e.first, "before": before, "cost": e.cost}
                for e, before in changes.values()
            ],
        )
    return ran > 0


def timing_round(results: Results[C], group: list[Result[C]], twin: Result[C], copies: int) -> bool:
    """One re-timing round of ``group`` and ``copies`` more timings of ``twin`` (in the
    group); whether the backend timed them."""
    costs = results.backend.retime([e.candidate for e in group] + [twin.candidate] * copies)
    if costs is None:
        return False
    results.rounds += 1
    cost_of = dict(zip((id(e) for e in group), costs, strict=False))
    twins = [cost_of[id(twin)], *costs[len(group) :]]
    for first, second in itertools.pairwise(twins):
        results.timing_noise.add(first, second)
    for entry in group:
        cost = cost_of[id(entry)]
        if math.isfinite(cost):  # a failed re-timing keeps the earlier cost
            entry.rounds[results.rounds] = cost
            entry.measurement = replace(entry.measurement, cost=sum(entry.rounds.values()) / len(entry.rounds))
    results.verifying = True
    return True
