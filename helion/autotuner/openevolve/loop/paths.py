"""Refinement paths: PatternSearch's local search, started from the best configs of any source.

A *path* has an incumbent config. When a config becomes an incumbent, its path claims the
neighbours (``Backend.neighbors``) that nothing measured or claimed before, as PatternSearch's
paths share one ``visited`` set, so two paths that meet do not walk the same ground twice. The
driver measures the claimed neighbours of every live path in its batches; once they are
measured, a path moves to the best of them if that beats its incumbent by the one comparison
rule (:mod:`.compare`: by at least ``min_improvement``, PatternSearch's
``min_improvement_delta``, and beyond the timing noise measured in paired re-timings). A
neighbourhood that only ties the incumbent ends the path: it has converged. A path also ends
when it claimed nothing new, or when its steps are spent (PatternSearch's ``max_generations``).
Each move and each end is a ``decision`` line in the run record, with the verdict behind it.

Where paths start: at the ``starts`` best configs of the first batch (the default and seeds, as
PatternSearch's copies), then at every config that becomes the best measured without
refinement finding it (an LLM proposal, a random draw), and at a knowledge config that ties the
best from afar while a path walks clearly behind it (:meth:`RefinementPaths.add_peer`). At most
``starts`` paths live at once, the most promising kept; a path whose best is more than
``prune_ratio`` times slower than the best config measured has fallen clearly behind and ends. The steps an ended-early path had left
go to the leading path, and the neighbours it claimed but had not measured are given up, so a
path that reaches them later claims and measures them.

The best config is *settled* once the path it was found on ended at a local optimum (its
incumbent's whole claimed neighbourhood measured, none faster beyond the noise): nothing
around it is faster. The driver may then end the paths still walking behind it
(:meth:`RefinementPaths.end_behind`) when it came from knowledge, an LLM answer or an earlier
search's pick (:func:`.stop_rule.knowledge_first`).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
import heapq
import math
from typing import Generic
from typing import TypeVar

from .compare import Verdict
from .measure import Results
from .record import Source
from .result import Result
from .retiming import VERIFY_PER_RIVAL

C = TypeVar("C")


@dataclass
class RefinementPath:
    """One refinement path: its incumbent config and how far it has gone."""

    incumbent: Hashable
    moves: int  # neighbourhoods measured before the incumbent's
    steps: int  # neighbourhoods this path may measure in all
    origin: Source  # the source of the config the path started from


class RefinementPaths(Generic[C]):
    """The live paths and the neighbours they claimed (see the module docstring)."""

    def __init__(
        self,
        *,
        starts: int,
        steps: int,
        min_improvement: float,
        prune_ratio: float,
    ) -> None:
        self.starts = starts
        self.steps = steps
        self.min_improvement = min_improvement
        self.prune_ratio = prune_ratio
        self.live: list[RefinementPath] = []
        #: every config that was an incumbent -> the neighbours its path claimed
        self.claimed: dict[Hashable, list[C]] = {}
        #: each claimed neighbour -> the incumbent that claimed it
        self._claimer: dict[Hashable, Hashable] = {}
        #: incumbents whose path ended at a local optimum
        self._optima: set[Hashable] = set()
        #: knowledge configs that tied the best when measured (:meth:`add_peer`)
        self.peers: list[Hashable] = []

    @property
    def converged(self) -> bool:
        return not self.live

    def batch(self, measured: Results[C], want: int) -> list[C]:
        """Up to ``want`` unmeasured claimed neighbours, the best incumbent's first; empty once
        every path has ended (refinement has converged)."""
        self.update(measured)
        ranked = sorted(self.live, key=lambda p: measured[p.incumbent].cost)
        return measured.unseen((n for p in ranked for n in self.claimed[p.incumbent]), want)

    def update(self, measured: Results[C]) -> None:
        """Start paths at new top configs, move or end each path, drop those clearly behind."""
        best = measured.best
        if best is None:
            return
        # PatternSearch's starting points at first; later, a best config that no path will move
        # to: an LLM proposal, a random draw, or a path's find that beat the best while its own
        # path ended at a local optimum (the path compared it with its incumbent, the best with
        # the best, and the two comparisons can disagree within the noise)
        starts = [] if self.claimed else heapq.nsmallest(self.starts, measured.ok_entries(), key=lambda e: e.cost)
        for entry in starts:
            if entry.source != "refine":
                self._start(measured, measured.backend.key(entry.candidate))
        for key in self.peers:  # knowledge that ties the best: its neighbourhood confirms it
            if key not in self.claimed and self.clearly_behind(measured, measured[key]):
                self._start(measured, key)  # where that can end a path walking clearly behind it
        self.live = [p for p in (self._step(measured, p) for p in self.live) if p is not None]
        key = measured.backend.key(best.candidate)
        if key not in self.claimed and (best.source != "refine" or self._claimer.get(key) in self._optima):
            behind = [p for p in self.live if self.next_to(measured, key, p.incumbent)]
            self._start(measured, key)
            self._supersede(measured, behind)
        self._prune(measured, best.cost)

    def _step(self, measured: Results[C], path: RefinementPath) -> RefinementPath | None:
        """The path after its claimed neighbours were measured: moved, unchanged or ended."""
        claimed = [measured.backend.key(n) for n in self.claimed[path.incumbent]]
        if any(k not in measured for k in claimed):
            return path  # still being measured
        current = measured[path.incumbent]
        step, v = self._best_neighbor(measured, current, claimed)
        if step is None or v is None or not v.better:
            self._optima.add(path.incumbent)
            self._write(measured, "converged", current, step, v)
            return None  # a local optimum: no neighbour beats it beyond the noise
        self._write(measured, "move", current, step, v)
        if path.moves + 1 >= path.steps:
            return None  # the path's steps are spent
        key = measured.backend.key(step.candidate)
        if key in self.claimed:  # another path's incumbent already: the paths met
            return None
        self._claim(measured, key, path.origin)
        return RefinementPath(key, path.moves + 1, path.steps, path.origin)

    def _best_neighbor(
        self, measured: Results[C], current: Result[C], claimed: list[Hashable]
    ) -> tuple[Result[C] | None, Verdict | None]:
        """The fastest neighbour of ``current`` that beats it (:meth:`.measure.Results.decide`,
        which times the pair again while it is undecided), with its verdict; with none, the
        fastest neighbour that looked faster and its verdict (a tie). Neighbours measured
        before the path claimed them (another path's, the LLM's) count too: a path that ended
        beside a faster config it never compared with would stop short."""
        keys = dict.fromkeys(
            [*claimed, *(measured.backend.key(n) for n in measured.backend.neighbors(current.candidate))]
        )
        near = sorted(
            (measured[k] for k in keys if k in measured and measured.trusted(measured[k])), key=lambda e: e.cost
        )
        tie: tuple[Result[C] | None, Verdict | None] = (
            (near[0], measured.compare(near[0], current)) if near else (None, None)
        )
        # the ones not already shown slower: a faster one may have had the slower timings so far
        open_ = [e for e in near if not measured.compare(e, current, self.min_improvement).worse][:VERIFY_PER_RIVAL]
        for i, entry in enumerate(open_):
            v = measured.decide(entry, current, self.min_improvement)
            if v.better:
                return entry, v
            tie = (entry, v) if i == 0 else tie
        return tie

    @staticmethod
    def _write(measured: Results[C], what: str, current: Result[C], step: Result[C] | None, v: Verdict | None) -> None:
        """A path's decision in the run record: its incumbent, the best neighbour, the verdict."""
        measured.record.write(
            "decision",
            what=what,
            incumbent=measured.backend.as_dict(current.candidate),
            cost=current.cost,
            neighbor=measured.backend.as_dict(step.candidate) if step is not None else None,
            neighbor_cost=step.cost if step is not None else None,
            **(v.record() if v is not None else {}),
        )

    def _start(self, measured: Results[C], key: Hashable) -> None:
        if key not in self.claimed:
            origin = measured[key].origin
            self._claim(measured, key, origin)
            self.live.append(RefinementPath(key, 0, self.steps, origin))

    def next_to(self, measured: Results[C], key: Hashable, incumbent: Hashable) -> bool:
        """``key`` is ``incumbent``'s neighbour (claimed by it, or measured before it could be):
        one step from it, refinement at it measures ``key``."""
        if self._claimer.get(key) == incumbent:
            return True
        return any(measured.backend.key(n) == key for n in measured.backend.neighbors(measured[incumbent].candidate))

    def _supersede(self, measured: Results[C], behind: list[RefinementPath]) -> None:
        """End the live paths one step behind a new best that starts its own path: the new path
        walks on from where they would have moved, so they would only walk the same ground (an
        LLM that proposes the best's neighbours would otherwise double the paths)."""
        for path in self._end(measured, behind):
            measured.record.write(
                "decision", what="superseded", incumbent=measured.backend.as_dict(measured[path.incumbent].candidate)
            )

    def _claim(self, measured: Results[C], key: Hashable, origin: Source) -> None:
        """Claim the incumbent ``key``'s neighbours that nothing measured or claimed (again after
        a release: the ones given up since)."""
        claimed = self.claimed.setdefault(key, [])
        for neighbor in measured.backend.neighbors(measured[key].candidate):
            k = measured.backend.key(neighbor)
            if k not in measured and k not in self._claimer:
                self._claimer[k] = key
                measured.origins[k] = origin
                claimed.append(neighbor)

    def incumbent_of(self, key: Hashable) -> Hashable | None:
        """The incumbent whose path claimed the neighbour ``key``: the config it competes with
        (None for a config no path claimed)."""
        return self._claimer.get(key)

    def settled(self, measured: Results[C]) -> bool:
        """The best config measured is settled: it is, or is a claimed neighbour of, an
        incumbent whose path ended at a local optimum (see the module docstring)."""
        best = measured.best
        if best is None:
            return False
        key = measured.backend.key(best.candidate)
        return (key if key in self.claimed else self._claimer.get(key)) in self._optima

    def end_behind(self, measured: Results[C]) -> int:
        """End every live path once the best config is settled (they all walk behind it);
        how many ended."""
        return len(self._end(measured, self.live)) if self.settled(measured) else 0

    def add_peer(self, key: Hashable) -> bool:
        """A measured knowledge config that ties the best; whether it is new. A path starts at
        it (its neighbourhood confirms it) at an update where a live path walks
        :meth:`clearly_behind` it, so that confirming it can end that path. With none behind,
        a confirmation could end nothing and would only cost a neighbourhood: an LLM that
        proposes configs level with the best (a blind one, on a flat landscape) would pay one
        per answer."""
        if key in self.peers:
            return False
        self.peers.append(key)
        return True

    def at_optimum(self, key: Hashable) -> bool:
        """The path started at (or moved to) ``key`` ended there: no neighbour beats it."""
        return key in self._optima

    def clearly_behind(self, measured: Results[C], rival: Result[C]) -> list[RefinementPath]:
        """The live paths whose incumbent ``rival`` beats beyond the noise (the timings taken so
        far decide; nothing is timed again)."""
        return [p for p in self.live if measured.compare(rival, measured[p.incumbent]).better]

    def end_clearly_behind(self, measured: Results[C], rival: Result[C]) -> int:
        """End the live paths :meth:`clearly_behind` ``rival``; how many ended."""
        return len(self._end(measured, self.clearly_behind(measured, rival)))

    def _end(self, measured: Results[C], ended: list[RefinementPath]) -> list[RefinementPath]:
        """End the live paths ``ended`` early (their unmeasured claims are given up); them."""
        ended = list(ended)
        self.live = [p for p in self.live if p not in ended]
        self._release(measured, ended)
        return ended

    def _release(self, measured: Results[C], ended: list[RefinementPath]) -> int:
        """Give up the unmeasured neighbours that paths ending early had claimed, so a path that
        reaches them can claim and measure them (a claim is never measured otherwise); how many."""
        released = 0
        for path in ended:
            kept: list[C] = []
            for neighbor in self.claimed[path.incumbent]:
                if (k := measured.backend.key(neighbor)) in measured:
                    kept.append(neighbor)
                elif self._claimer.get(k) == path.incumbent:
                    del self._claimer[k]
                    measured.origins.pop(k, None)
                    released += 1
            self.claimed[path.incumbent] = kept
        return released

    def _prune(self, measured: Results[C], best_cost: float) -> None:
        """Keep the ``starts`` most promising paths within ``prune_ratio`` of the best; the
        leader inherits the steps the others had left. A path's promise is the best of its
        incumbent and the neighbours measured so far (it has not moved to them yet)."""
        promise = {id(p): self._promise(measured, p) for p in self.live}
        ranked = sorted(self.live, key=lambda p: promise[id(p)])
        limit = best_cost + (self.prune_ratio - 1.0) * abs(best_cost) if math.isfinite(best_cost) else math.inf
        keep = [p for p in ranked[: self.starts] if promise[id(p)] <= limit]
        dropped = [p for p in ranked if p not in keep]
        if keep and dropped:
            keep[0].steps += sum(max(0, p.steps - p.moves - 1) for p in dropped)
        self.live = keep
        if self._release(measured, dropped):
            for path in keep:  # a live path next to a given-up neighbour claims it now
                self._claim(measured, path.incumbent, path.origin)

    def _promise(self, measured: Results[C], path: RefinementPath) -> float:
        keys = [measured.backend.key(n) for n in self.claimed[path.incumbent]]
        return min([measured[path.incumbent].cost, *(measured[k].cost for k in keys if k in measured)])
