"""The search loop in the user's process: ties measuring, proposals, refinement and the stop rule.

Flow of :meth:`SearchDriver.run` (the package docstring shows where each step lives):

1. Start the evaluation server and the OpenEvolve process (:mod:`.launcher`). The server
   answers OpenEvolve's evaluation of the seed program at once, so the first round of LLM
   requests leaves while the search measures the default and seed configs (its first batch).
2. Loop, each turn:
   a. read the engine's events (:class:`.llm_events.LLMState`): LLM requests, answers, errors;
      fall back when the LLM or OpenEvolve failed;
   b. take the LLM's programs that arrived and measure their new candidates in one batch,
      filled up with refinement neighbours (:mod:`.paths`) and, once the LLM has failed, random
      draws in place of its answers (:mod:`.answers`); with no program waiting, the batch is
      refinement (and draws) alone, so the device never idles while LLM requests are in flight;
   c. with nothing to measure, ask the stop rule (:mod:`.stop_rule`): stop, or wait briefly for
      the LLM answers in flight; it also says when the paths behind a settled best that the
      LLM or history brought end.
3. Stop the engine and the server (always, also on errors and Ctrl-C).

What is fatal and what is skipped: a candidate that fails validation is answered as
``invalid`` with its reason (the LLM reads it); a candidate that fails to compile or run is
``failed`` and never chosen. The LLM or OpenEvolve failing (no key, unreachable endpoint,
``max_llm_failures`` failed requests in a row, OpenEvolve dying) ends the LLM's part of the
search: one warning line says why, the run record gets a ``fallback`` line, and the search goes
on without the LLM, keeping everything measured: it is then the same search without an LLM,
refinement paths to convergence as PatternSearch's (random draws only until some config works
to start a path from), or random search for the rest of the budget when refinement is off. With ``strict`` set it raises :class:`OpenEvolveUnavailable` instead. The backend's own
exceptions propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
import math
import random
import time
from typing import Generic
from typing import TypeVar

from ..engine.job import EngineJob
from ..engine.program import render_program
from .answers import AnswerDesk
from .answers import first_reply
from .llm_events import LLMState
from .measure import Results
from .measure import describe_batch
from .options import DriverOptions
from .options import OpenEvolveUnavailable
from .paths import RefinementPaths
from .record import RunRecord
from .record import Source
from .result import Backend
from .result import Result
from .server import Answer
from .session import EngineSession
from .stop_rule import KNOWLEDGE
from .stop_rule import AnswerCredit
from .stop_rule import StopRule
from .stop_rule import knowledge_first

C = TypeVar("C")

#: The summary's word when the best config does not beat the default beyond the noise.
NOTHING_FASTER = "no config is measurably faster than the default"


class SearchDriver(Generic[C]):
    """Runs OpenEvolve against a backend with the asynchronous loop described above."""

    def __init__(
        self,
        backend: Backend[C],
        options: DriverOptions,
        record: RunRecord,
        log: Callable[[str], None],
        warn: Callable[[str], None],
    ) -> None:
        self.backend = backend
        self.options = options
        self.record = record
        self.log = log
        self.warn = warn
        self.rng = random.Random(options.seed)
        self.measured: Results[C] = Results(
            backend,
            record,
            options.max_evaluations,
            min_improvement=options.refine_min_improvement,
            decision_rounds=options.decision_rounds,
        )
        self.llm = LLMState(record, options.max_llm_failures, warn)
        self.credit = AnswerCredit()
        self.desk: AnswerDesk[C] = AnswerDesk(
            self.measured, self.credit, ratio_scores=options.ratio_scores, per_answer=options.candidates_per_program
        )
        self.paths: RefinementPaths[C] = RefinementPaths(
            starts=options.refine_starts,
            steps=options.refine_steps,
            min_improvement=options.refine_min_improvement,
            prune_ratio=options.refine_prune_ratio,
        )
        deadline = math.inf if options.max_seconds is None else time.perf_counter() + options.max_seconds
        self.stop = StopRule(options.llm_timeout_s, options.first_answer_wait_s, deadline, options.budget_exceeded)
        self.fallback_reason: str | None = None
        self.stop_reason: str | None = None
        self.session = EngineSession(options.keep_output_dir)

    @property
    def best(self) -> Result[C] | None:
        return self.measured.best

    @property
    def mode(self) -> str:
        """How the LLM took part, by one rule: ``fallback`` when the search went on without it
        (the verdict of :class:`.llm_events.LLMState`, or OpenEvolve not starting; the reason is
        ``fallback_reason``, and answers used before it are counted in the summary);
        ``openevolve`` when it never did and at least one LLM answer was used; ``no_llm_answer``
        when it never did and no answer was used. Failed requests that did not end the LLM's
        part (retried, or fewer than ``max_llm_failures`` in a row) and rate limits leave the
        mode ``openevolve``: the summary's ``llm_errors`` counts them."""
        if self.fallback_reason:
            return "fallback"
        return "openevolve" if self.record.counters.llm_answers_used > 0 else "no_llm_answer"

    def summary_fields(self, chosen: C | None = None) -> dict[str, object]:
        """What the run record's summary says of the LLM, of why the search stopped, and where
        the ``chosen`` config (default: the best measured) came from."""
        entry = self.measured.entries.get(self.backend.key(chosen)) if chosen is not None else self.best
        return {
            "winner_source": entry.source if entry else None,
            "winner_origin": entry.origin if entry else None,
            "mode": self.mode,
            "fallback_reason": self.fallback_reason,
            "stop_reason": self.stop_reason,
            "llm_answers_improved": self.credit.improved,
            "timing_noise": round(self.measured.noise, 5),
            "retiming_rounds": self.measured.rounds,
            "default_beaten": self.default_beaten(),
            "first_llm_request_s": self.llm.first_request_s,
            "first_llm_answer_s": self.llm.first_answer_s,
        }

    # -- start and stop ------------------------------------------------------------------------
    def run(self, default: C, seeds: list[C] | None = None, history: list[C] | None = None) -> None:
        """Search from ``default`` (the baseline of every speedup); ``seeds`` and ``history``
        (earlier searches' picks: knowledge, as the LLM's answers are) start the program."""
        key = self.backend.key
        known = {key(c) for c in history or []}
        if key(default) in known:  # an earlier search picked the default: knowledge, as the others
            self.measured.origins[key(default)] = "history"
        program = self._seed_program(
            [self.backend.as_dict(c) for c in [*(seeds or []), *(history or [])] if key(c) != key(default)]
        )
        try:
            self._start([plain for plain, _ in program])
            # The default and the seed program's configs are measured while the engine boots
            # and its first LLM requests are in flight: they start the refinement paths.
            first: list[tuple[C, Source]] = [(default, "default")]
            first += [(c, "history" if key(c) in known else "seed") for _, c in program]
            t0 = time.perf_counter()
            entries = self._measure(first, "default and seed configs")
            self.measured.default = entries[0]
            self.record.time.first_batch_s += time.perf_counter() - t0
            if not self.measured.default.measurement.ok:
                self.warn(
                    f"the default config failed ({self.measured.default.measurement.reason}); "
                    "the LLM sees latencies but no speedups"
                )
            self._loop()
            self._poll_llm()  # a failure at the very end is reported as such
        finally:
            for event in self.session.events():
                self.llm.on_event(event)  # the last token counts
            self.session.close()

    def _start(self, program: list[dict[str, object]]) -> None:
        t0 = time.perf_counter()
        job = EngineJob(
            llm=self.options.llm,
            system_message=self.options.system_message,
            initial_program=render_program(self.options.title, program),
            objective_timeout_s=self.options.objective_timeout_s,
            max_candidates=self.options.candidates_per_program * 4,
        )
        try:
            reason = self.session.start(job, first_reply(len(program), ratio=self.options.ratio_scores))
            if reason is not None:
                self._fall_back(reason)
        finally:
            self.record.time.startup_s += time.perf_counter() - t0

    def _seed_program(self, seeds: list[dict[str, object]]) -> list[tuple[dict[str, object], C]]:
        """The ``seeds`` (beside the default) and ``initial_random`` random configs, validated."""
        plains = [plain for i, plain in enumerate(seeds) if plain not in seeds[:i]]
        target = len(plains) + self.options.initial_random
        for candidate in self._draws(self.options.initial_random * 3):
            if len(plains) >= target:
                break
            if (plain := self.backend.as_dict(candidate)) not in plains:
                plains.append(plain)
        program: list[tuple[dict[str, object], C]] = []
        for plain in plains:
            try:
                program.append((plain, self.backend.validate(plain)))
            except ValueError:
                continue
        return program

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            self._poll_llm()
            cap = self.stop.caps(now=time.perf_counter(), remaining_evaluations=self.measured.remaining)
            if cap is not None:
                return self._end(cap)
            if (known := self._knowledge_settled()) is not None:  # knowledge first: no more answers
                self._end_paths_behind_knowledge()
                return self._end(known)
            proposals = self.session.take(0.0) if self._llm_live() else []
            fill = self._fill()
            if proposals:
                self._serve(proposals, fill)
            elif fill:
                self._measure(fill, describe_batch(fill))
            else:
                decision, why = self.stop.decide(
                    now=time.perf_counter(),
                    elapsed=self.record.elapsed(),
                    busy=not self.options.refinement and self._llm_live(),
                    llm_live=self._llm_live(),
                    stagnant_answers=self.credit.stagnant,
                    next_answer_due=self.llm.next_answer_due(),
                    answers_used=self.record.counters.llm_answers_used,
                    knowledge_settled=self._knowledge_settled(),
                )
                if decision == "stop":
                    return self._end(why)
                self._wait_for_llm()

    def _end(self, why: str) -> None:
        self.stop_reason = why
        self.record.write("stop", reason=why, llm_answers_used=self.record.counters.llm_answers_used)
        self.log(f"OpenEvolve search stops: {why}")

    def _llm_live(self) -> bool:
        return self.session.running and self.fallback_reason is None and not self.llm.engine_finished

    def _fill(self) -> list[tuple[C, Source]]:
        """Refinement neighbours; random draws where the LLM is not live and refinement has
        nothing to offer (refinement off, or no config has worked yet to start a path from)."""
        want = min(self.options.refine_batch, self.measured.remaining)
        refine = self.paths.batch(self.measured, want) if self.options.refinement else []
        if refine and self._end_paths_behind_knowledge():
            refine = []  # claimed by paths that just ended: nothing left to refine
        items: list[tuple[C, Source]] = [(c, "refine") for c in refine]
        if self._llm_live() or refine or (self.options.refinement and self.measured.best is not None):
            return items
        source: Source = "fallback" if self.fallback_reason else "random"
        return [(c, source) for c in self.measured.unseen(self._draws(want * 20), want)]

    def _settled_knowledge(self) -> tuple[Result[C], bool] | None:
        """The settled config from knowledge (knowledge first, :mod:`.stop_rule`) and whether it
        only ties the best: the best itself, or a knowledge config whose path ended at it and
        that still ties the best; or None."""
        best = self.measured.best
        if best is None or not self.options.refinement:
            return None
        if best.origin in KNOWLEDGE and self.paths.settled(self.measured):
            return best, False
        for key in self.paths.peers:
            entry = self.measured[key]
            if self.paths.at_optimum(key) and self.measured.ties_best(entry):
                return entry, True
        return None

    def _knowledge_settled(self) -> str | None:
        """Why the search ends now that knowledge is settled (a tie: once no path level with
        the best walks on either); or None."""
        settled = self._settled_knowledge()
        if settled is None or (settled[1] and not self.paths.converged):
            return None
        return knowledge_first(settled[0].origin, tie=settled[1])

    def _note_knowledge(self, entries: list[Result[C]]) -> None:
        """Note each LLM answer or earlier search's pick among ``entries`` that ties the best
        without being one step from it: a path starts at it where a path walks clearly behind
        it, its neighbourhood confirms it, and those paths end (knowledge first,
        :mod:`.stop_rule`; :meth:`.paths.RefinementPaths.add_peer`)."""
        best = self.measured.best
        if best is None or not self.options.refinement:
            return
        best_key = self.backend.key(best.candidate)
        for entry in entries:
            key = self.backend.key(entry.candidate)
            if (
                entry.origin in KNOWLEDGE
                and entry.source != "refine"
                and entry is not best
                and self.measured.trusted(entry)
                and self.measured.ties_best(entry)
                and not self.paths.next_to(self.measured, key, best_key)
                and self.paths.add_peer(key)
            ):
                self.measured.write_decision("knowledge_ties_best", entry, best, self.measured.compare(entry, best))

    def _end_paths_behind_knowledge(self) -> bool:
        """End the live refinement paths behind settled knowledge: every path behind a settled
        best, the paths clearly behind a settled config that ties it (knowledge first,
        :mod:`.stop_rule`); whether any ended."""
        if (settled := self._settled_knowledge()) is None:
            return False
        entry, tie = settled
        ended = self.paths.end_clearly_behind(self.measured, entry) if tie else self.paths.end_behind(self.measured)
        if not ended:
            return False
        why = knowledge_first(entry.origin, tie=tie)
        self.record.write("paths_ended", reason=why, paths=ended, best_cost=entry.cost)
        self.log(f"OpenEvolve search: {why}; {ended} refinement path(s) behind it end")
        return True

    def default_beaten(self) -> bool | None:
        """The best config beats the default beyond the noise (None where nothing worked)."""
        best, default = self.measured.best, self.measured.default
        if best is None:
            return None
        return best is not default and (default is None or self.measured.beats(best, default))

    def _draws(self, n: int) -> Iterator[C]:
        """Up to ``n`` random candidates; a draw the backend cannot build is skipped."""
        for _ in range(n):
            try:
                yield self.backend.random(self.rng)
            except (ValueError, RuntimeError):
                continue

    def _wait_for_llm(self) -> None:
        t0 = time.perf_counter()
        proposals = self.session.take(min(0.5, max(0.0, self.stop.deadline - t0)))
        self.record.time.llm_wait_s += time.perf_counter() - t0
        if proposals:
            self._serve(proposals, self._fill())

    def _serve(self, proposals: list[Answer], fill: list[tuple[C, Source]]) -> None:
        """The proposals' new candidates and ``fill`` in one batch; every proposal answered."""
        self.desk.serve(proposals, fill, self._measure, self.options.refine_batch)

    def _measure(self, items: list[tuple[C, Source]], desc: str) -> list[Result[C]]:
        self.stop.measured()  # the search is not idle: the convergence clock restarts
        entries = self.measured.measure(items, desc, rival_of=self.paths.incumbent_of)
        self._note_knowledge(entries)
        return entries

    # -- the LLM's health ----------------------------------------------------------------------
    def _poll_llm(self) -> None:
        """Read the engine's events; fall back once the LLM or OpenEvolve has failed. Once the
        search has stopped, the engine ends first: every request that left is then counted, and
        the engine's own end (or error) that the stop caused is no failure of the LLM."""
        if not self.session.running or self.fallback_reason:
            return
        stopped = self.stop_reason is not None
        if stopped:
            self.session.shut()
        for event in self.session.events():
            if stopped and event.get("event") == "engine_error":
                continue  # OpenEvolve ended because the search did: not the LLM's failure
            self.llm.on_event(event)
        if stopped:
            if self.llm.failure is not None:
                self._fall_back(self.llm.failure)
            return
        if not self.llm.engine_finished and (ended := self.session.ended_without_word()) is not None:
            for event in self.session.events():
                self.llm.on_event(event)
            self.llm.engine_ended(ended)
        if self.llm.failure is not None:
            self._fall_back(self.llm.failure)

    def _fall_back(self, reason: str) -> None:
        if self.fallback_reason is not None:
            return
        if self.options.strict:
            raise OpenEvolveUnavailable(f"OpenEvolve search cannot continue: {reason}")
        self.fallback_reason = reason
        c = self.record.counters
        counts = ("llm_calls", "llm_errors", "llm_answers_used", "evaluations")
        self.record.write("fallback", reason=reason, **{k: getattr(c, k) for k in counts})
        how = "refinement as PatternSearch's" if self.options.refinement else "random search"
        self.warn(
            f"OpenEvolve search: {reason}. Going on without the LLM ({how}), keeping the "
            f"{c.evaluations} configs measured and the {c.llm_answers_used} LLM answers used."
        )
        self.session.shut()
