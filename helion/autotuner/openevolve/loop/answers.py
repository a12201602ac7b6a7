"""LLM answers in the user's process: validated, measured beside refinement, replied to.

Each evolved program that reaches the loop is an LLM answer (the seed program is answered by
the server itself, see :func:`first_reply`). :class:`AnswerDesk` validates its candidates
against the space (an invalid one is answered with its reason and recorded), decides which are
new, and answers each program with per-candidate outcomes once they are measured. A program
with nothing new (an answer of duplicates or invalid configs) is answered before the batch
runs, so its OpenEvolve worker starts its next LLM request at once. Each measured answer is
credited to :class:`.stop_rule.AnswerCredit`: it beat the best config measured before it by the
one comparison rule (:mod:`.compare`), or not.

An LLM that brings nothing costs nothing: the share of a batch its answers get follows their
yield. Each answer in a row that brought nothing better halves the new candidates measured of
the next ones (at least one; an answer that beats the best restores them all), and until one
answer has beaten the best, the answers that arrive together share one batch's room; the rest
are answered ``skipped`` with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic
from typing import TypeVar

from ..engine.feedback import Outcome
from ..engine.feedback import Reply
from .measure import Results
from .record import Source
from .result import Result
from .server import Answer
from .stop_rule import AnswerCredit

C = TypeVar("C")


def first_reply(count: int, *, ratio: bool) -> Reply:
    """The answer to OpenEvolve's evaluation of the seed program: its configs are the seeds,
    measured by the search in its first batch, so their times come with later feedback."""
    why = "measured in the search's first batch; its time shows in later feedback"
    return Reply([Outcome(i, "queued", why) for i in range(count)], ratio=ratio)


@dataclass
class _Candidate(Generic[C]):
    """One candidate of an answer: new, measured before (duplicate) or invalid (with why)."""

    status: str  # "new", "duplicate", "invalid" or "over_quota" (beyond the yield quota)
    candidate: C | None
    reason: str = ""


@dataclass
class _CheckedAnswer(Generic[C]):
    """An :class:`.server.Answer` and its candidates, validated against the space."""

    proposal: Answer
    candidates: list[_Candidate[C]]

    @property
    def new(self) -> bool:
        return any(item.status == "new" for item in self.candidates)


class AnswerDesk(Generic[C]):
    """Validates, measures and answers the LLM's programs (see the module docstring)."""

    def __init__(self, measured: Results[C], credit: AnswerCredit, *, ratio_scores: bool, per_answer: int = 6) -> None:
        self.measured = measured
        self.credit = credit
        self.ratio_scores = ratio_scores
        self.per_answer = per_answer  # new candidates measured per answer while the LLM yields
        self.record = measured.record

    @property
    def quota(self) -> int:
        """New candidates measured per answer now (see the module docstring)."""
        return max(1, self.per_answer >> self.credit.stagnant)

    def serve(
        self,
        proposals: list[Answer],
        fill: list[tuple[C, Source]],
        measure: Callable[[list[tuple[C, Source]], str], object],
        batch_size: int,
    ) -> None:
        """Measure the proposals' new candidates in one batch, filled up to ``batch_size`` with
        ``fill`` (refinement, random draws), and answer every proposal."""
        answers = [self._validate(p) for p in proposals]
        new: dict[Hashable, C] = {}
        quota = self.quota
        # until an answer has beaten the best, the answers of one batch share one batch's room
        room = max(self.per_answer, batch_size) if self.credit.improved == 0 else len(answers) * quota
        for answer in answers:
            taken = 0
            for item in answer.candidates:
                if item.status == "new" and item.candidate is not None:
                    if taken >= quota or len(new) >= room:
                        item.status = "over_quota"
                        continue
                    taken += 1
                    new.setdefault(self.measured.backend.key(item.candidate), item.candidate)
        best_before = self.measured.best
        for answer in answers:
            if not answer.new:
                self._answer(answer, best_before)
        room = max(0, batch_size - len(new))
        items: list[tuple[C, Source]] = [(c, "llm") for c in new.values()] + fill[:room]
        if items:
            desc = f"{len(new)} LLM-proposed configs" + (
                f" + {len(items) - len(new)} more" if len(items) > len(new) else ""
            )
            measure(items, desc)
        for answer in answers:
            if answer.new:
                best_before = self._answer(answer, best_before)

    def _validate(self, proposal: Answer) -> _CheckedAnswer[C]:
        """The answer's candidates, validated against the space; invalid ones are recorded."""
        self.record.counters.llm_answers_used += 1
        candidates: list[_Candidate[C]] = []
        for raw in proposal.candidates:
            try:
                candidate = self.measured.backend.validate(raw)
            except ValueError as e:
                self.record.evaluation(source="llm", config=raw, status="invalid", cost=None, reason=str(e))
                candidates.append(_Candidate("invalid", None, str(e)))
                continue
            known = self.measured.backend.key(candidate) in self.measured
            candidates.append(_Candidate("duplicate" if known else "new", candidate))
        for _, reason in proposal.rejected:
            self.record.evaluation(source="llm", config=None, status="invalid", cost=None, reason=reason)
        if proposal.program_error:
            self.record.evaluation(
                source="llm", config=None, status="invalid", cost=None, reason=proposal.program_error
            )
        return _CheckedAnswer(proposal, candidates)

    def _answer(self, answer: _CheckedAnswer[C], best_before: Result[C] | None) -> Result[C] | None:
        """Reply to one program and credit it; the best after it (for the next one)."""
        entries = [self._entry(item) for item in answer.candidates]
        trusted = [e for e in entries if e is not None and self.measured.trusted(e)]
        answer_best = min(trusted, key=lambda e: e.cost, default=None)
        rival = best_before if best_before is not None and best_before.measurement.ok else None
        v = self.measured.compare(answer_best, rival) if answer_best is not None and rival is not None else None
        better = v.better if v is not None else answer_best is not None
        self.credit.credit(better)
        if answer_best is not None:
            self.measured.write_decision("credit", answer_best, rival, v)
        best = self.measured.best
        answer.proposal.reply(
            Reply(
                [
                    self._outcome(i, item, entry)
                    for i, (item, entry) in enumerate(zip(answer.candidates, entries, strict=True))
                ],
                self.measured.backend.as_dict(best.candidate) if best else None,
                self._score(best),
                ratio=self.ratio_scores,
            )
        )
        return answer_best if better else best_before

    def _entry(self, item: _Candidate[C]) -> Result[C] | None:
        if item.candidate is None:
            return None
        return self.measured.entries.get(self.measured.backend.key(item.candidate))

    def _outcome(self, index: int, item: _Candidate[C], entry: Result[C] | None) -> Outcome:
        if item.candidate is None:
            return Outcome(index, "invalid", item.reason)
        plain = self.measured.backend.as_dict(item.candidate)
        if item.status == "over_quota":
            why = (
                f"not measured: the LLM's answers brought nothing better {self.credit.stagnant} times in a row "
                f"({self.credit.improved} improved the best), so only some candidates of each answer are"
            )
            return Outcome(index, "skipped", why, plain)
        if entry is None:
            return Outcome(index, "skipped", "the evaluation budget was spent", plain)
        m = entry.measurement
        if not m.ok:
            return Outcome(index, "failed", f"{m.status}: {m.reason}"[:400], plain)
        status = "duplicate" if item.status == "duplicate" else "ok"
        return Outcome(index, status, "", plain, m.cost, self._score(entry))

    def _score(self, entry: Result[C] | None) -> float | None:
        """What OpenEvolve maximises: the speedup over the default, or ``-cost``."""
        if entry is not None and not self.ratio_scores:
            return -entry.cost if entry.measurement.ok else None
        return self.measured.speedup(entry)
