"""The run record: one JSON line per evaluation, and the summary of where the time went.

Every candidate the search measured or rejected is written as it happens (config, where it
came from, latency or failure reason, time since the start), so a run that is interrupted
still leaves its record. :class:`TimeSplit` accumulates wall time by activity; the summary
line and the final ``summary`` record are derived from it and the counters here.
:func:`read_record` and :func:`last_line` read a record back (examples, scripts, tests).
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
import gzip
import json
import math
from pathlib import Path
import time
from typing import IO
from typing import Literal

Source = Literal["default", "seed", "history", "llm", "refine", "random", "fallback"]


@dataclass
class TimeSplit:
    """Wall seconds by activity in the user's process (they add up to the search's wall)."""

    measure_s: float = 0.0  # inside Helion's benchmark path: compile + run (GPU busy)
    verify_s: float = 0.0  # the part of measure_s spent timing configs again (Helion's rebenchmark)
    first_batch_s: float = 0.0  # the part of measure_s spent on the default and seed configs
    llm_wait_s: float = 0.0  # idle, waiting for an LLM proposal with nothing else to measure
    startup_s: float = 0.0  # starting the OpenEvolve process and the evaluation server
    finalize_s: float = 0.0  # Helion's final rebenchmark and finishing rounds
    compile_sum_s: float = 0.0  # per-config compile times summed (they overlap in parallel)


@dataclass
class Counters:
    evaluations: int = 0
    failed: int = 0
    invalid: int = 0
    llm_calls: int = 0
    llm_errors: int = 0
    llm_answers_used: int = 0  # LLM answers (evolved programs) the search validated and answered
    prompt_tokens: int = 0
    completion_tokens: int = 0
    by_source: dict[str, int] = field(default_factory=dict)


class RunRecord:
    """JSON-lines writer plus the counters and time split of one search."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.start = time.perf_counter()
        self.time = TimeSplit()
        self.counters = Counters()
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a")  # noqa: SIM115 (closed in close())

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def write(self, kind: str, **fields: object) -> None:
        if self._file is None:
            return
        line = {"kind": kind, "t": round(self.elapsed(), 4), **fields}
        self._file.write(json.dumps(line, default=str) + "\n")
        self._file.flush()

    def evaluation(
        self,
        *,
        source: Source,
        config: dict[str, object] | None,
        origin: Source | None = None,
        status: str,
        cost: float | None,
        reason: str = "",
        compile_s: float | None = None,
        first: float | None = None,
    ) -> None:
        """One candidate measured (or refused): ``cost`` is its latest cost, ``first`` the
        timing of its batch where it was timed again since."""
        c = self.counters
        if status == "invalid":
            c.invalid += 1
        else:
            c.evaluations += 1
            c.by_source[source] = c.by_source.get(source, 0) + 1
            c.failed += status != "ok"
        finite = cost is not None and math.isfinite(cost)
        self.write(
            "evaluation",
            source=source,
            origin=origin or source,
            status=status,
            cost=cost if finite else None,
            reason=reason[:500],
            compile_s=compile_s,
            config=config,
            **({"first": first} if first is not None and math.isfinite(first) else {}),
        )

    def summary(self, **extra: object) -> dict[str, object]:
        wall = self.elapsed()
        t = self.time
        other = max(0.0, wall - t.measure_s - t.llm_wait_s - t.startup_s - t.finalize_s)
        data: dict[str, object] = {
            "wall_s": round(wall, 3),
            **{k: round(v, 3) for k, v in asdict(t).items()},
            "other_s": round(other, 3),
            # Helion's finalisation rebenchmarks on the device too, so it counts as busy.
            "busy_share": round((t.measure_s + t.finalize_s) / wall, 4) if wall > 0 else 0.0,
            "evaluations_per_s": round(self.counters.evaluations / wall, 4) if wall > 0 else 0.0,
            **asdict(self.counters),
            **extra,
        }
        self.write("summary", **data)
        return data

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_record(path: str | Path) -> list[dict[str, object]]:
    """The lines of a run record (``.gz`` decompressed), oldest first; none if it does not
    exist. A last line cut off by an interrupted run is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        texts = f.read().splitlines()
    lines: list[dict[str, object]] = []
    for text in texts:
        try:
            line = json.loads(text) if text.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def last_line(lines: list[dict[str, object]], kind: str) -> dict[str, object] | None:
    """The last line of ``kind`` (``summary``, ``fallback``, ``stop``...), or None."""
    return next((line for line in reversed(lines) if line.get("kind") == kind), None)
