"""Measuring for the driver through Helion: a Helion kernel's configs, validated by its space
and timed by :class:`.search.OpenEvolveSearch` (any Helion ``PopulationBasedSearch``) through Helion's ``benchmark_batch`` (parallel
precompile, compile timeouts, accuracy check, subprocess isolation when enabled), with the
configs a decision rests on timed again by Helion's ``rebenchmark``, together, in one round."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..loop.result import Measurement
from . import helion_api
from .helion_api import PATTERN_SEARCH_DEFAULTS
from .helion_api import PopulationMember
from .space import InvalidCandidate

if TYPE_CHECKING:
    from collections.abc import Hashable
    import random

    import helion

    from .helion_api import PopulationBasedSearch
    from .space import HelionSpace


class HelionBackend:
    """Driver backend: Helion configs, validated by the space, measured by the search."""

    def __init__(self, search: PopulationBasedSearch, space: HelionSpace, round_ms: float) -> None:
        self.search = search
        self.space = space
        #: Helion's ``rebenchmark`` time per config in one re-timing round (its ``target_ms``)
        self.round_ms = round_ms
        self.members: dict[helion.Config, PopulationMember] = {}

    def key(self, candidate: helion.Config) -> Hashable:
        return candidate

    def validate(self, raw: dict[str, object]) -> helion.Config:
        config = self.space.validate(raw)
        if not helion_api.backend_config_is_viable(self.search, config):
            raise InvalidCandidate("the backend rules this config out for this kernel and device")
        return config

    def as_dict(self, candidate: helion.Config) -> dict[str, object]:
        return self.space.to_plain(candidate)

    def random(self, rng: random.Random) -> helion.Config:
        del rng  # Helion's ConfigGeneration draws from its own seeded generator
        return self.space.random()

    def neighbors(self, candidate: helion.Config) -> list[helion.Config]:
        return self.space.neighbors(candidate)

    def measure(self, candidates: list[helion.Config], desc: str) -> list[Measurement]:
        results = self.search.benchmark_batch(candidates, desc=desc, raise_if_no_viable_config=False)
        first = not self.members
        out: list[Measurement] = []
        for candidate, r in zip(candidates, results, strict=True):
            member = PopulationMember(
                fn=r.fn,
                perfs=[r.perf],
                flat_values=self.space.config_gen.flatten(r.config),
                config=r.config,
                status=r.status,
                compile_time=r.compile_time,
            )
            helion_api.record_benchmarked_member(self.search, member)
            self.members[candidate] = member
            ok = r.status == "ok" and math.isfinite(r.perf)
            reason = "" if ok else failure_reason(r.status)
            out.append(Measurement(r.perf if ok else math.inf, "ok" if ok else r.status, reason, r.compile_time))
        if first:  # as PatternSearch does after its first population (when adaptive timeouts are on)
            self.search.set_adaptive_compile_timeout(
                list(self.members.values()),
                min_seconds=PATTERN_SEARCH_DEFAULTS.compile_timeout_lower_bound,
                quantile=PATTERN_SEARCH_DEFAULTS.compile_timeout_quantile,
            )
        return out

    def retime(self, candidates: list[helion.Config]) -> list[float] | None:
        """PatternSearch's "verifying top configs" for the configs a decision rests on: timed
        again together by Helion's ``rebenchmark`` (interleaved, or each in its own window where
        Helion isolates benchmarks); a config listed twice is timed twice (a throwaway copy of
        its member). None where Helion's effort turns re-timing off
        (``autotune_rebenchmark_threshold`` below 1, as at ``quick``)."""
        if self.search.settings.get_rebenchmark_threshold() < 1.0:
            return None
        members: list[PopulationMember] = []
        for config in candidates:
            m = self.members[config]
            if any(x is m for x in members):  # its twin: the same compiled kernel, timed again
                m = PopulationMember(fn=m.fn, perfs=[m.perf], flat_values=m.flat_values, config=m.config)
            members.append(m)
        counts = [len(m.perfs) for m in members]
        self.search.rebenchmark(members, desc="verifying top configs", target_ms=self.round_ms)
        # a config whose timing failed keeps its earlier cost (Helion's rebenchmark does the same)
        return [m.perf if len(m.perfs) > n else math.nan for m, n in zip(members, counts, strict=True)]


def failure_reason(status: str) -> str:
    return {
        # Helion 1.5's benchmark subprocess also reports a crash (e.g. an illegal memory access)
        # and an accuracy mismatch as "error"; its log names which one it was.
        "error": "failed to compile or run, or gave wrong results (Helion's log says which)",
        "timeout": "compile timed out",
        "accuracy_error": "wrong results (Helion's accuracy check against the default config)",
        "filtered": "filtered out by the user's config filter or the backend",
    }.get(status, status)
