"""The one place that decides when a search stops (and why), and whether to wait for the LLM.

:meth:`StopRule.decide` is asked each time the loop has nothing to measure. Its answer:

- ``stop`` on the caps: the evaluation budget is spent, the search's own ``max_seconds``, or the
  caller's budget (for a Helion kernel, Helion's own ``autotune_budget_seconds`` check, which
  keeps time back for its final selection).
- ``stop`` once the best config came from knowledge and is settled (knowledge first, below).
- ``stop`` once refinement has converged (every path ended, as PatternSearch stops) and the LLM
  can bring nothing more: it failed, OpenEvolve finished its iterations, or the last
  :data:`MAX_STAGNANT_ANSWERS` LLM answers brought nothing better (Helion's LLM search stops
  after two stagnant rounds too).
- ``wait`` for the LLM's first answer while none has been used, until ``first_answer_wait_s``
  after the start: the first round of requests leaves when the search starts, so its answers are
  due one LLM latency later, and a search that converged sooner (a small kernel, a fast device)
  would otherwise never hear what the LLM knows.
- ``wait`` for the LLM answers in flight otherwise, for at most a tenth of the time searched
  when refinement converged (never over ``llm_timeout_s``), and only while the next answer is due
  within that wait; ``stop`` after that.

Knowledge first (:func:`knowledge_first`): once the best config came from knowledge (an LLM
answer, or an earlier search's pick from the history store; or a path started at one) and is
settled (the path started at it measured its neighbourhood and none beat it beyond the noise),
the refinement paths still walking behind it end and the search stops at once: it does not wait
for more LLM answers. A search told the best config stops once one neighbourhood confirmed it,
however flat the landscape. Otherwise the paths run on, as PatternSearch's do.

A knowledge config that only *ties* the best (refinement reached the same level first) is
confirmed the same way where that can end work: while a refinement path walks clearly behind it,
a path starts at it, and once its neighbourhood is measured with none faster, the paths clearly
behind it end, and the search stops when the paths level with the best have ended too, without
waiting for more answers. A tie that no path walks behind starts nothing: its confirmation could
end no path and would only cost a neighbourhood, which an LLM proposing configs level with the
best (a blind one on a flat landscape) would pay once per answer. Only a config that is not one
step from the best counts (refinement measures those anyway, and an LLM that edits the best
config it was shown brings no knowledge by tying it).

:class:`AnswerCredit` keeps the count of stagnant answers: each LLM answer, once measured, either
beat the best config measured before it (by the one comparison rule, :mod:`.compare`) or not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import math
from typing import Literal

#: LLM answers in a row that brought nothing better before a converged search stops.
MAX_STAGNANT_ANSWERS = 2

#: Share of the time searched so far that a converged search may wait for LLM answers.
WAIT_SHARE = 0.1


@dataclass
class AnswerCredit:
    """Whether the LLM's answers still bring better configs."""

    stagnant: int = 0  # answers in a row that brought nothing better
    improved: int = 0  # answers that beat the best measured before them

    def credit(self, better: bool) -> bool:
        """Count one measured answer: ``better`` when its best config beat the best measured
        before it by the one comparison rule (:meth:`.measure.Results.beats`)."""
        if better:
            self.improved += 1
            self.stagnant = 0
        else:
            self.stagnant += 1
        return better


Decision = tuple[Literal["go", "wait", "stop"], str]


#: the sources whose configs are knowledge: an LLM answer, an earlier search's pick
KNOWLEDGE = ("llm", "history")


def knowledge_first(origin: str, *, tie: bool = False) -> str | None:
    """Why the search ends once a config from knowledge is settled (see the module docstring;
    :meth:`.paths.RefinementPaths.end_behind` checks that the best is), or None for a config
    from elsewhere. ``tie``: the settled config ties the best rather than being it."""
    if origin not in KNOWLEDGE:
        return None
    if tie:
        whose = "an LLM answer" if origin == "llm" else "an earlier search's pick"
        return f"{whose} ties the best config and is settled: no neighbour beats it beyond the noise"
    if origin == "llm":
        return "the LLM's best config is settled: no neighbour beats it beyond the noise"
    return "the best config, an earlier search's pick, is settled: no neighbour beats it beyond the noise"


@dataclass
class StopRule:
    """Answers "stop now?" for the loop (see the module docstring)."""

    llm_timeout_s: float  # the setting: one LLM request takes at most this, so no wait is longer
    first_answer_wait_s: float = 0.0  # from the start: how long to wait for the LLM's first answer
    deadline: float = math.inf  # this search's own ``max_seconds``
    #: the caller's budget check (Helion's ``autotune_budget_seconds``, with its final-selection reserve)
    budget_exceeded: Callable[[], bool] | None = None
    converged_at: float | None = None  # when refinement converged (reset when a path starts)
    waited_from: float | None = None

    def caps(self, *, now: float, remaining_evaluations: int) -> str | None:
        """Why the search must stop now whatever else holds, or None."""
        if remaining_evaluations <= 0:
            return "the evaluation budget is spent"
        if now >= self.deadline:
            return "the time budget (max_seconds) is spent"
        if self.budget_exceeded is not None and self.budget_exceeded():
            return "Helion's autotune budget is spent"
        return None

    def decide(
        self,
        *,
        now: float,
        elapsed: float,
        busy: bool,
        llm_live: bool,
        stagnant_answers: int,
        next_answer_due: float,
        answers_used: int = 1,
        knowledge_settled: str | None = None,
    ) -> Decision:
        """With nothing to measure: ``stop`` (and why) or ``wait`` for the LLM.

        ``busy``: the loop waits for LLM answers regardless of convergence (refinement is off
        and the LLM is live). The convergence clock starts at the first call of a quiet spell
        and is reset by :meth:`measured`, so any batch (proposals, refinement or both) restarts it.
        ``knowledge_settled``: why the best config, from knowledge, is settled (knowledge first).
        """
        if (cap := self.caps(now=now, remaining_evaluations=1)) is not None:
            return "stop", cap
        if knowledge_settled:
            return "stop", knowledge_settled
        if busy:
            return "wait", ""
        if self.converged_at is None:
            self.converged_at = elapsed
            self.waited_from = now
        if not llm_live:
            return "stop", "nothing left to measure and the LLM has nothing more to bring"
        if stagnant_answers >= MAX_STAGNANT_ANSWERS:
            return "stop", f"refinement converged and the last {stagnant_answers} LLM answers brought nothing better"
        if answers_used == 0:
            if elapsed < self.first_answer_wait_s:
                return "wait", ""
            return "stop", f"refinement converged and no LLM answer came within {self.first_answer_wait_s:.0f} s"
        assert self.waited_from is not None
        wait_until = self.waited_from + min(self.llm_timeout_s, WAIT_SHARE * self.converged_at)
        if now >= wait_until or next_answer_due > wait_until:
            return "stop", "refinement converged and no LLM answer is due within the wait"
        return "wait", ""

    def measured(self) -> None:
        """A batch was measured: the search is not idle, the convergence clock restarts."""
        self.converged_at = None
        self.waited_from = None
