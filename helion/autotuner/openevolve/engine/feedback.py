"""What the LLM learns of its proposals: per-candidate outcomes, the program's score, feedback text.

The user's process answers each evolved program with a :class:`Reply` (one :class:`Outcome` per
candidate, the best config so far); it crosses the process boundary as plain data
(:meth:`Reply.to_wire`). In OpenEvolve's worker, :func:`score_outcomes` turns it into the
program's metrics (``combined_score``: its best speedup over the default config, or its best
raw score for ``tune_config_space``) and the feedback text the LLM reads in
its next prompt. Nothing of Helion or torch is imported here.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
import json
from typing import Literal

#: combined_score of a program with no measured candidate when scores are raw objective values.
NO_SCORE = -1e30

#: ``queued``: measured by the search in its first batch (the seed program's configs), so the
#: time is not known when OpenEvolve scores the program; it shows in later feedback.
OutcomeStatus = Literal["ok", "invalid", "failed", "duplicate", "skipped", "queued"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one candidate of an evolved program (plain data)."""

    index: int
    status: OutcomeStatus
    reason: str = ""
    config: dict[str, object] | None = None
    cost: float | None = None  # what the search minimises (ms for a Helion kernel)
    score: float | None = None  # what OpenEvolve maximises: speedup over the default, or -cost


@dataclass(frozen=True)
class Reply:
    """The server's answer to one evaluation request."""

    outcomes: list[Outcome]
    best_config: dict[str, object] | None = None
    best_score: float | None = None
    finished: bool = False
    #: True: scores are speedups over the default config; False: raw objective scores.
    ratio: bool = True

    def to_wire(self) -> dict[str, object]:
        return asdict(self)

    @staticmethod
    def from_wire(data: dict[str, object]) -> Reply:
        raw = data.get("outcomes") or []
        assert isinstance(raw, list)
        return Reply(
            outcomes=[Outcome(**o) for o in raw],
            best_config=data.get("best_config"),  # type: ignore[arg-type]
            best_score=data.get("best_score"),  # type: ignore[arg-type]
            finished=bool(data.get("finished")),
            ratio=bool(data.get("ratio", True)),
        )


def score_outcomes(message: dict[str, object], reply: Reply) -> tuple[dict[str, float], dict[str, str]]:
    """OpenEvolve metrics (``combined_score`` = best speedup vs the default) and feedback text."""
    scores = [o.score for o in reply.outcomes if o.status in ("ok", "duplicate") and o.score is not None]
    n = max(1, len(reply.outcomes) + len(message.get("rejected") or []))  # type: ignore[arg-type]
    valid = sum(o.status in ("ok", "duplicate", "failed") for o in reply.outcomes)
    metrics = {
        # A program with nothing measured ranks below every measured one (raw scores can be < 0).
        "combined_score": max(scores) if scores else (0.0 if reply.ratio else NO_SCORE),
        "valid_fraction": valid / n,
        "measured": float(sum(o.status == "ok" for o in reply.outcomes)),
    }
    return metrics, {"feedback": feedback_text(message, reply)}


def feedback_text(message: dict[str, object], reply: Reply) -> str:
    """Per-candidate results the LLM reads in its next prompt."""
    lines: list[str] = []
    if error := message.get("program_error"):
        lines.append(f"The program was rejected: {error}")
    for index, reason in message.get("rejected") or []:  # type: ignore[union-attr]
        lines.append(f"candidate #{index}: rejected: {reason}")
    for o in reply.outcomes:
        if o.status in ("ok", "duplicate") and o.cost is not None:
            speed = "" if o.score is None else f" ({_score_text(o.score, reply.ratio)})"
            again = " [measured before]" if o.status == "duplicate" else ""
            lines.append(f"candidate #{o.index}: {o.cost:.5g}{speed}{again}")
        else:
            lines.append(f"candidate #{o.index}: {o.status}: {o.reason}")
    if reply.best_config is not None:
        lines.append(f"Best so far ({_score_text(reply.best_score or 0.0, reply.ratio)}):")
        lines.append("BEST_CONFIG_JSON: " + json.dumps(reply.best_config, sort_keys=True, default=str))
    if reply.finished:
        lines.append("The search has finished; this program was not measured.")
    return "\n".join(lines)


def _score_text(score: float, ratio: bool) -> str:
    return f"{score:.3f}x the default config" if ratio else f"score {score:.4g}, higher is better"
