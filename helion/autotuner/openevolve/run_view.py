"""A run record read back for the report: its lines, its measured batches, the best cost over time.

:mod:`.cli` prints it and :mod:`.report_plot` draws it; the record comes from
:func:`.loop.record.read_record`. This module imports neither Helion nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
import json
import math
import re
from typing import TYPE_CHECKING

from .loop.record import read_record

if TYPE_CHECKING:
    from pathlib import Path

#: Evaluations written within this many seconds of the previous one belong to the same batch
#: (the search writes a batch's results one after another once the batch is measured).
BATCH_GAP_S = 0.05


def record_name(path: Path) -> str:
    """The record's file name without ``.record``, ``.jsonl`` and ``.gz``."""
    return re.sub(r"(\.record)?\.jsonl(\.gz)?$|\.gz$", "", path.name)


def _key(config: object) -> str:
    return json.dumps(config, sort_keys=True)


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


@dataclass
class Batch:
    """The evaluations one measured batch wrote (consecutive lines, see :data:`BATCH_GAP_S`)."""

    t: float
    evaluations: list[dict[str, object]] = field(default_factory=list)
    best_before: float | None = None  # the search's best cost before this batch

    def llm(self) -> list[dict[str, object]]:
        return [e for e in self.evaluations if e.get("source") == "llm"]


@dataclass
class Run:
    """One run record, read back: its lines, and the best cost over time."""

    name: str
    lines: list[dict[str, object]]
    batches: list[Batch] = field(default_factory=list)
    best_over_time: list[tuple[float, float]] = field(default_factory=list)  # (t, best cost so far)

    @classmethod
    def read(cls, path: Path) -> Run:
        run = cls(record_name(path), read_record(path))
        costs: dict[str, float] = {}  # config -> its latest cost (a second timing replaces the first)
        best: float | None = None
        for line in run.lines:
            t, kind = _num(line.get("t")) or 0.0, line.get("kind")
            if kind not in ("evaluation", "verified"):
                continue
            if not run.batches or t - run.batches[-1].t > BATCH_GAP_S:  # a batch's `verified` line comes first
                run.batches.append(Batch(t, best_before=best))
            run.batches[-1].t = t
            if kind == "evaluation":
                run.batches[-1].evaluations.append(line)
                updates = [(line.get("config"), _num(line.get("cost")))]
            else:
                changes = line.get("changes") or []
                updates = [(c.get("config"), _num(c.get("cost"))) for c in changes if isinstance(c, dict)]
            for config, cost in updates:
                if cost is not None:
                    costs[_key(config)] = cost
            if costs and min(costs.values()) != best:
                best = min(costs.values())
                run.best_over_time.append((t, best))
        return run

    def last(self, kind: str) -> dict[str, object]:
        return next((line for line in reversed(self.lines) if line.get("kind") == kind), {})

    def evaluations(self) -> list[dict[str, object]]:
        return [line for line in self.lines if line.get("kind") == "evaluation"]


def _ms(value: object) -> str:
    x = _num(value)
    return "-" if x is None else f"{x:.4f}"
