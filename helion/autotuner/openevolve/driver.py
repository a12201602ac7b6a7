"""The search loop in the user's process, independent of Helion's kernel objects.

Flow of :meth:`SearchDriver.run`:

1. Start the evaluation server and the OpenEvolve process (:mod:`.launcher`); measure the
   baseline (the default candidate) while it boots.
2. Loop until the evaluation or wall-clock budget is spent:
   a. read engine events (LLM errors, token counts); decide whether to fall back;
   b. take every proposal OpenEvolve's workers have sent and validate their candidates;
   c. measure the new candidates in one batch through the backend, filled up with local
      refinement (see below), and reply to each proposal with per-candidate outcomes; with no
      proposal waiting, the batch is refinement alone, so the device never idles while LLM
      requests are in flight;
   d. once refinement has converged, wait briefly for the LLM answers in flight (any that beats
      the best restarts refinement from it), then stop; stop at once if no LLM answer has
      arrived yet (a search shorter than one LLM answer does not wait for it), or if the next
      answer is not due within the wait (estimated from the answers so far);
   e. after a fallback, measure random candidates instead.

Local refinement follows Helion's PatternSearch: a *path* starts at each of the
``refine_starts`` best configs measured first (the default, the seeds). When a config becomes a
path's incumbent, the path claims its neighbours that nothing has measured or claimed before
(PatternSearch's ``visited`` set); each batch measures the claimed neighbours of every path;
a path whose claimed neighbours are measured moves to the best of them if that is faster than
its incumbent by at least ``refine_min_improvement`` (relative), and ends otherwise, when it
claimed nothing new, or after ``refine_steps`` neighbourhoods. A config from outside refinement
(an LLM proposal, typically) that becomes the best overall starts a path of its own.
3. Stop the engine and the server (always, also on errors and Ctrl-C).

What is fatal and what is skipped: a candidate that fails validation is answered as
``invalid`` with its reason (the LLM reads it); a candidate that fails to compile or run is
``failed`` and never chosen; OpenEvolve or the LLM failing (no key, unreachable endpoint,
repeated transport errors, the process dying) switches to random search for the remaining
budget and keeps every measurement, unless ``strict`` is set, in which case it raises
:class:`OpenEvolveUnavailable`. The backend's own exceptions propagate.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
import heapq
import importlib.util
import math
from pathlib import Path
import random
import shutil
import statistics
import tempfile
import time
from typing import Generic
from typing import Protocol
from typing import TypeVar

from .launcher import EngineProcess
from .program import render_program
from .protocol import EvaluationServer
from .protocol import Outcome
from .protocol import Proposal
from .protocol import Reply
from .record import RunRecord
from .record import Source

C = TypeVar("C")


class OpenEvolveUnavailable(RuntimeError):
    """OpenEvolve or its LLM failed and ``strict`` forbids falling back to random search."""


@dataclass(frozen=True)
class Measurement:
    """One candidate's result from the backend: ``cost`` is lower-is-better, inf on failure."""

    cost: float
    status: str = "ok"
    reason: str = ""
    compile_s: float | None = None


class Backend(Protocol[C]):
    """What the driver needs from the thing being tuned (a Helion kernel, a dict space...)."""

    def key(self, candidate: C) -> Hashable: ...
    def validate(self, raw: dict[str, object]) -> C: ...  # ValueError with a reason if invalid
    def plain(self, candidate: C) -> dict[str, object]: ...
    def measure(self, candidates: list[C], desc: str) -> list[Measurement]: ...
    def random(self, rng: random.Random) -> C: ...
    def neighbors(self, candidate: C, rng: random.Random) -> list[C]: ...


@dataclass(frozen=True)
class DriverOptions:
    """The subset of settings the loop itself uses (plain data)."""

    max_evaluations: int
    max_seconds: float | None
    candidates_per_program: int
    initial_random: int
    refinement: bool
    refine_batch: int
    max_llm_failures: int
    strict: bool
    seed: int
    engine_job: dict[str, object] = field(default_factory=dict)
    system_message: str = ""
    title: str = "Candidate configs"
    objective_timeout_s: float = 900.0
    keep_output_dir: str | None = None
    refine_starts: int = 3  # best configs whose neighbourhoods are refined (PatternSearch's copies)
    refine_steps: int = 20  # neighbourhoods one refinement path measures at most (PatternSearch's max_generations)
    refine_min_improvement: float = 0.001  # relative gain a move needs (PatternSearch's min_improvement_delta)
    llm_in_flight: int = 3  # LLM answers awaited after local refinement converged
    converge_wait_s: float = 120.0  # and at most this long
    #: True: costs are positive latencies and the LLM's score is default/cost (a speedup).
    #: False: the LLM's score is -cost (e.g. a maximised objective).
    ratio_scores: bool = True


@dataclass
class Entry(Generic[C]):
    candidate: C
    measurement: Measurement
    source: Source


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
        self.results: dict[Hashable, Entry[C]] = {}
        self.default: Entry[C] | None = None
        self.fallback_reason: str | None = None
        self.engine: EngineProcess | None = None
        self.server: EvaluationServer | None = None
        self._consecutive_llm_failures = 0
        self._converged_since: float | None = None
        # active refinement paths: (incumbent, neighbourhoods the path measured before this one)
        self._paths: list[tuple[Hashable, int]] = []
        # every config that was a path's incumbent -> the neighbours its path claimed to measure
        self._claimed: dict[Hashable, list[C]] = {}
        self._claimed_keys: set[Hashable] = set()  # every neighbour some path claimed
        self._t0 = time.perf_counter()
        self._proposals_at_convergence = 0
        # When each LLM request began and when each answer came back, as far as the loop can tell
        # (see _next_answer_due).
        self._llm_starts: list[float] = []
        self._llm_arrivals: list[float] = []
        self._engine_finished = False
        self._deadline = math.inf if options.max_seconds is None else time.perf_counter() + options.max_seconds

    # -- budget ------------------------------------------------------------------------------
    @property
    def remaining(self) -> int:
        return max(0, self.options.max_evaluations - self.record.counters.evaluations)

    def out_of_budget(self) -> bool:
        return self.remaining <= 0 or time.perf_counter() >= self._deadline

    @property
    def best(self) -> Entry[C] | None:
        ok = [e for e in self.results.values() if math.isfinite(e.measurement.cost)]
        return min(ok, key=lambda e: e.measurement.cost, default=None)

    @property
    def mode(self) -> str:
        """``openevolve`` only once the LLM has answered at least once; never for a fallback run."""
        if self.fallback_reason:
            return "fallback"
        c = self.record.counters
        return "openevolve" if c.llm_calls > c.llm_errors else "no LLM answer arrived (refinement and random only)"

    # -- entry point ---------------------------------------------------------------------------
    def run(self, default: C, seeds: list[C] | None = None) -> None:
        """Search from ``default`` (the baseline of every speedup); ``seeds`` start the program."""
        workdir = Path(tempfile.mkdtemp(prefix="helion-openevolve-"))
        program = self._seed_program(
            [self.backend.plain(c) for c in seeds or [] if self.backend.key(c) != self.backend.key(default)]
        )
        try:
            self._start(workdir, program)
            # The default and the seed program's configs are measured at once, while the engine
            # boots: they are the starting points of refinement, as PatternSearch's seeds are.
            first = [(default, "default"), *[(c, "seed") for _, c in program]]
            self.default = self._measure(first, "default and seed configs")[0]  # type: ignore[arg-type]
            if not math.isfinite(self.default.measurement.cost):
                self.warn(
                    f"the default config failed ({self.default.measurement.reason}); "
                    "the LLM sees latencies but no speedups"
                )
            self._loop()
            self._check_engine()  # a dead engine is reported as such, also once the budget is spent
        finally:
            self._stop(workdir)

    def _start(self, workdir: Path, program: list[tuple[dict[str, object], C]]) -> None:
        t0 = time.perf_counter()
        try:
            reason = self._precheck()
            if reason is None:
                reason = self._launch(workdir, [plain for plain, _ in program])
            if reason is not None:
                self._fall_back(reason)
        finally:
            self.record.time.startup_s += time.perf_counter() - t0

    def _launch(self, workdir: Path, program: list[dict[str, object]]) -> str | None:
        """Start the server and the engine; the reason they could not start, or None."""
        try:
            self.server = EvaluationServer(workdir)
            job = {
                **self.options.engine_job,
                "address": self.server.address,
                "authkey_hex": self.server.authkey.hex(),
                "objective_timeout_s": self.options.objective_timeout_s,
                "max_candidates": self.options.candidates_per_program * 4,
                "system_message": self.options.system_message,
                "initial_program": render_program(self.options.title, program),
                "output_dir": str(workdir),
            }
            self.engine = EngineProcess(job, workdir)
        except OSError as e:  # socket or process creation failed: fall back, keep going
            return f"could not start the OpenEvolve process: {type(e).__name__}: {e}"
        return None

    def _precheck(self) -> str | None:
        if importlib.util.find_spec("openevolve") is None:
            return "openevolve is not installed (pip install 'openevolve>=0.4,<0.5')"
        job = self.options.engine_job.get("openevolve") or {}
        if not job.get("api_key") and not job.get("yaml_path"):  # type: ignore[union-attr]
            return "no API key: set OPENAI_API_KEY or HELION_OPENEVOLVE_API_KEY (any value for a local server)"
        return None

    def _seed_program(self, seeds: list[dict[str, object]]) -> list[tuple[dict[str, object], C]]:
        """The ``seeds`` (beside the default) and ``initial_random`` random configs, validated."""
        plains: list[dict[str, object]] = []
        for plain in seeds:
            if plain not in plains:
                plains.append(plain)
        target = len(plains) + self.options.initial_random
        for _ in range(self.options.initial_random * 3):
            if len(plains) >= target:
                break
            try:
                plain = self.backend.plain(self.backend.random(self.rng))
            except (ValueError, RuntimeError):
                continue
            if plain not in plains:
                plains.append(plain)
        program: list[tuple[dict[str, object], C]] = []
        for plain in plains:
            try:
                candidate = self.backend.validate(plain)
            except ValueError:
                continue
            program.append((plain, candidate))
        return program

    def _stop(self, workdir: Path) -> None:
        if self.server is not None:
            for event in self.server.drain_events():
                if event.get("event") == "iteration":
                    self._on_event(event)
            self.server.close()
        if self.engine is not None:
            self.engine.stop()
        if self.options.keep_output_dir:
            shutil.copytree(
                workdir, self.options.keep_output_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.sock")
            )
        shutil.rmtree(workdir, ignore_errors=True)

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.out_of_budget():
            self._check_engine()
            llm_live = self.server is not None and not self.fallback_reason and not self._engine_finished
            proposals = self.server.take(0.0, limit=64) if llm_live else []  # type: ignore[union-attr]
            refining = not self.fallback_reason and self.options.refinement
            batch = self._refinement_batch() if refining else []
            if proposals:
                self._serve(proposals, batch)
            elif batch:
                self._converged_since = None
                self._measure([(c, "refine") for c in batch], "refining around the best")
            elif llm_live:
                if refining and self._converged():
                    return
                self._wait_for_llm()
            elif self.fallback_reason:
                self._measure([(c, "fallback") for c in self._random_batch()], "random search (fallback)")
            elif refining:
                self.log("OpenEvolve search converged: LLM calls spent and local refinement done")
                return
            else:
                self._measure([(c, "random") for c in self._random_batch()], "random search (LLM calls spent)")

    def _converged(self) -> bool:
        """Every refinement path has ended (where PatternSearch would stop).

        Rather than idle, wait for the LLM answers already in flight (one round), for at most
        a tenth of the time searched so far (and never over ``converge_wait_s``); any answer
        that beats the best starts a new refinement path. There is no wait if no LLM answer
        has arrived yet (the LLM is slower than the whole search so far), nor if the next
        answer is not due before the wait would end: the device would idle for nothing.
        """
        now = time.perf_counter()
        if self._converged_since is None:
            self._converged_since = now
            self._proposals_at_convergence = self.record.counters.proposals
            if self.record.counters.proposals <= 1:  # the seed program only: no LLM answer yet
                self.record.write("converged", answered_after=0, before_first_answer=True)
                self.log(
                    "OpenEvolve search converged before the first LLM answer arrived; stopping where "
                    "PatternSearch would (an LLM slower than the whole search cannot change its result)"
                )
                return True
            due, patience = self._next_answer_due() - now, self._patience()
            if due > patience:
                self.record.write("converged", answered_after=0, next_answer_due_s=round(due, 2))
                self.log(
                    f"OpenEvolve search converged; the next LLM answer is due in about {due:.0f}s, "
                    f"after the {patience:.1f}s the search would wait for it, so it stops now"
                )
                return True
            self.log("local refinement converged; waiting briefly for the LLM answers in flight")
        answered = self.record.counters.proposals - self._proposals_at_convergence
        if answered < self.options.llm_in_flight and now - self._converged_since < self._patience():
            return False
        self.record.write("converged", answered_after=answered)
        self.log(f"OpenEvolve search converged: {answered} LLM answers after convergence found nothing new nearby")
        return True

    def _patience(self) -> float:
        """How long a converged search waits for LLM answers: a tenth of the time searched until
        it converged, at most ``converge_wait_s``."""
        assert self._converged_since is not None
        return min(self.options.converge_wait_s, 0.1 * (self._converged_since - self._t0))

    def _next_answer_due(self) -> float:
        """When the next LLM answer is expected (a ``perf_counter`` time); inf if none is known to
        be in flight.

        OpenEvolve's workers start a request as soon as their last one is answered: the seed
        program's reply starts ``llm_in_flight`` of them, each later reply (or failed call) one
        more. Answers are matched to requests first in, first out, and the median of the
        answers' latencies so far dates the oldest request still unanswered.
        """
        n = len(self._llm_arrivals)
        if n == 0 or len(self._llm_starts) <= n:
            return math.inf
        latency = statistics.median([a - s for a, s in zip(self._llm_arrivals, self._llm_starts, strict=False)])
        return self._llm_starts[n] + latency

    def _wait_for_llm(self) -> None:
        assert self.server is not None
        t0 = time.perf_counter()
        proposals = self.server.take(min(0.5, max(0.0, self._deadline - t0)), limit=64)
        self.record.time.llm_wait_s += time.perf_counter() - t0
        if proposals:
            self._serve(proposals, [])

    def _check_engine(self) -> None:
        if self.server is None or self.fallback_reason:
            return
        for event in self.server.drain_events():
            self._on_event(event)
        if self.engine is None or self.engine.alive() or self._engine_finished or self.fallback_reason:
            return
        time.sleep(0.2)  # the engine's last events may still be in flight
        for event in self.server.drain_events():
            self._on_event(event)
        if not self._engine_finished and self.fallback_reason is None:
            self._fall_back(self.engine.exit_reason())

    def _on_event(self, event: dict[str, object]) -> None:
        kind = event.get("event")
        c = self.record.counters
        if kind == "iteration":
            c.llm_calls += not event.get("ok")  # successful calls are counted as proposals arrive
            tokens = event.get("tokens") or {}
            c.prompt_tokens += int(tokens.get("prompt", 0))  # type: ignore[union-attr]
            c.completion_tokens += int(tokens.get("completion", 0))  # type: ignore[union-attr]
            if event.get("llm_failed"):
                c.llm_errors += 1
                now = time.perf_counter()  # a failed call frees its worker for the next request
                self._llm_arrivals.append(now)
                self._llm_starts.append(now)
                self._consecutive_llm_failures += 1
                self.record.write("llm_error", error=event.get("error"))
                if self._consecutive_llm_failures >= self.options.max_llm_failures:
                    self._fall_back(
                        f"the LLM failed {self._consecutive_llm_failures} times in a row (last: {event.get('error')})"
                    )
            else:
                self._consecutive_llm_failures = 0
        elif kind == "engine_error":
            self._fall_back(f"OpenEvolve failed: {event.get('error')}")
        elif kind == "engine_finished":
            self._engine_finished = True
            self.record.write("engine_finished", llm_calls=self.record.counters.llm_calls)
            self.log(
                f"OpenEvolve spent its {self.record.counters.llm_calls} LLM calls; refining locally for the rest of the budget"
            )
        elif kind == "started":
            self.record.write("engine_started", torch_imported=event.get("torch_imported"))

    def _fall_back(self, reason: str) -> None:
        if self.fallback_reason is not None:
            return
        if self.options.strict:
            raise OpenEvolveUnavailable(f"OpenEvolve search cannot continue: {reason}")
        self.fallback_reason = reason
        self.record.write("fallback", reason=reason)
        if self.out_of_budget():
            self.warn(f"OpenEvolve search: OpenEvolve stopped working as the budget ran out: {reason}")
        else:
            self.warn(
                f"OpenEvolve search falls back to random search for the remaining {self.remaining} evaluations: {reason}"
            )
        if self.server is not None:
            self.server.close()
        if self.engine is not None:
            self.engine.stop()

    # -- serving proposals ---------------------------------------------------------------------
    def _serve(self, proposals: list[Proposal], refinement: list[C]) -> None:
        """Measure the proposals' new candidates, with ``refinement`` in the same batch, and reply.

        A proposal with nothing new to measure (the seed program, whose configs were measured
        first; an answer of duplicates) is answered before the batch runs, so its OpenEvolve
        worker starts its next LLM request at once rather than a batch later.
        """
        seed_program = proposals[0] if self.record.counters.proposals == 0 else None
        plans = [self._plan(p) for p in proposals]
        new: dict[Hashable, C] = {}
        for plan in plans:
            for status, candidate, _ in plan:
                if status == "new" and candidate is not None:
                    new.setdefault(self.backend.key(candidate), candidate)
        ready: list[tuple[Proposal, list[tuple[str, C | None, str]]]] = []
        waiting: list[tuple[Proposal, list[tuple[str, C | None, str]]]] = []
        for proposal, plan in zip(proposals, plans, strict=True):
            (waiting if any(status == "new" for status, _, _ in plan) else ready).append((proposal, plan))
        self._reply(ready, seed_program)
        # the seed program's configs were measured first, so whatever is new here is the LLM's
        items: list[tuple[C, Source]] = [(c, "llm") for c in new.values()]
        room = max(0, self.options.refine_batch - len(items))
        items += [(c, "refine") for c in refinement[:room]]
        if items:
            self._measure(
                items,
                f"{len(new)} proposed configs" + (f" + {min(room, len(refinement))} refining" if refinement else ""),
            )
        self._reply(waiting, seed_program)

    def _reply(
        self, answered: list[tuple[Proposal, list[tuple[str, C | None, str]]]], seed_program: Proposal | None
    ) -> None:
        best = self.best
        best_plain = self.backend.plain(best.candidate) if best else None
        now = time.perf_counter()
        for proposal, plan in answered:
            outcomes = [self._outcome(i, status, cand, reason) for i, (status, cand, reason) in enumerate(plan)]
            proposal.reply(Reply(outcomes, best_plain, self._speedup(best), ratio=self.options.ratio_scores))
            if proposal is seed_program:  # its reply lets OpenEvolve's workers start their requests
                self._llm_starts += [now] * self.options.llm_in_flight
            else:
                self._llm_arrivals.append(proposal.received_at)
                self._llm_starts.append(now)

    def _plan(self, proposal: Proposal) -> list[tuple[str, C | None, str]]:
        c = self.record.counters
        c.llm_calls += c.proposals > 0  # every program after the seed program is an LLM answer
        c.proposals += 1
        plan: list[tuple[str, C | None, str]] = []
        for raw in proposal.candidates:
            try:
                candidate = self.backend.validate(raw)
            except ValueError as e:
                self.record.evaluation(source="llm", config=raw, status="invalid", perf=None, reason=str(e))
                plan.append(("invalid", None, str(e)))
                continue
            known = self.backend.key(candidate) in self.results
            plan.append(("duplicate" if known else "new", candidate, ""))
        for _, reason in proposal.rejected:
            c.invalid += 1
            self.record.write("evaluation", source="llm", status="invalid", reason=reason)
        if proposal.program_error:
            c.invalid += 1
            self.record.write("evaluation", source="llm", status="invalid", reason=proposal.program_error)
        return plan

    def _outcome(self, index: int, status: str, candidate: C | None, reason: str) -> Outcome:
        if candidate is None:
            return Outcome(index, "invalid", reason)
        entry = self.results.get(self.backend.key(candidate))
        plain = self.backend.plain(candidate)
        if entry is None:
            return Outcome(index, "skipped", "the evaluation budget was spent", plain)
        m = entry.measurement
        if not math.isfinite(m.cost):
            return Outcome(index, "failed", f"{m.status}: {m.reason}"[:400], plain)
        return Outcome(index, "duplicate" if status == "duplicate" else "ok", "", plain, m.cost, self._speedup(entry))

    def _speedup(self, entry: Entry[C] | None) -> float | None:
        """The score OpenEvolve maximises: speedup over the default, or -cost."""
        if entry is not None and not self.options.ratio_scores:
            return -entry.measurement.cost if math.isfinite(entry.measurement.cost) else None
        base = self.default.measurement.cost if self.default else math.nan
        if (
            entry is None
            or not math.isfinite(base)
            or not math.isfinite(entry.measurement.cost)
            or entry.measurement.cost <= 0
        ):
            return None
        return base / entry.measurement.cost

    # -- measuring -----------------------------------------------------------------------------
    def _measure(self, items: list[tuple[C, Source]], desc: str) -> list[Entry[C]]:
        sources = {self.backend.key(c): src for c, src in reversed(items)}  # first source wins
        new = self._unseen((c for c, _ in items), max(1, self.remaining))
        fresh = [(c, sources[self.backend.key(c)]) for c in new]
        t0 = time.perf_counter()
        measurements = self.backend.measure([c for c, _ in fresh], desc) if fresh else []
        self.record.time.measure_s += time.perf_counter() - t0
        for (candidate, source), m in zip(fresh, measurements, strict=True):
            self.results[self.backend.key(candidate)] = Entry(candidate, m, source)
            self.record.time.compile_sum_s += m.compile_s or 0.0
            self.record.evaluation(
                source=source,
                config=self.backend.plain(candidate),
                status=m.status,
                perf=m.cost,
                reason=m.reason,
                compile_s=m.compile_s,
            )
        return [self.results[self.backend.key(c)] for c, _ in items if self.backend.key(c) in self.results]

    def _unseen(self, candidates: Iterable[C], limit: int) -> list[C]:
        """Up to ``limit`` distinct candidates that have not been measured yet."""
        out: list[C] = []
        keys: set[Hashable] = set()
        for candidate in candidates:
            if len(out) >= limit:
                break
            key = self.backend.key(candidate)
            if key not in self.results and key not in keys:
                keys.add(key)
                out.append(candidate)
        return out

    def _refinement_batch(self) -> list[C]:
        """Unmeasured claimed neighbours of the refinement paths' incumbents, best incumbent first.

        Empty once every path has ended: local refinement has converged.
        """
        self._update_paths()
        want = min(self.options.refine_batch, self.remaining)
        ranked = sorted((k for k, _ in self._paths), key=lambda k: self.results[k].measurement.cost)
        return self._unseen((n for k in ranked for n in self._claimed[k]), want)

    def _update_paths(self) -> None:
        """Start paths (at first from the best configs, then from a new best found outside
        refinement: an LLM proposal); move each path to its best claimed neighbour or end it."""
        ok = [e for e in self.results.values() if math.isfinite(e.measurement.cost)]
        if not ok:
            return
        if not self._claimed:  # the first call: PatternSearch's starting points
            for entry in heapq.nsmallest(self.options.refine_starts, ok, key=lambda e: e.measurement.cost):
                self._start_path(self.backend.key(entry.candidate))
        best = min(ok, key=lambda e: e.measurement.cost)
        if best.source != "refine":  # refinement's own finds are its paths' moves
            self._start_path(self.backend.key(best.candidate))
        paths: list[tuple[Hashable, int]] = []
        for key, done in self._paths:
            claimed = [self.backend.key(n) for n in self._claimed[key]]
            if any(k not in self.results for k in claimed):
                paths.append((key, done))  # still being measured
                continue
            finite = [self.results[k] for k in claimed if math.isfinite(self.results[k].measurement.cost)]
            step = min(finite, key=lambda e: e.measurement.cost, default=None)
            if step is None or not self._improves(step, self.results[key]) or done + 1 >= self.options.refine_steps:
                continue  # a local optimum (up to the noise floor), or the path's steps are spent: it ends
            step_key = self.backend.key(step.candidate)
            if step_key not in self._claimed:  # move to the best neighbour
                self._explore(step_key)
                paths.append((step_key, done + 1))
        self._paths = paths

    def _improves(self, step: Entry[C], current: Entry[C]) -> bool:
        """``step`` is faster than ``current`` by at least ``refine_min_improvement`` (relative),
        as PatternSearch's ``min_improvement_delta``: a move on a gain within timing noise would
        only spend configs."""
        new, old = step.measurement.cost, current.measurement.cost
        if new >= old:
            return False
        return old == 0 or abs(new / old - 1.0) >= self.options.refine_min_improvement

    def _start_path(self, key: Hashable) -> None:
        if key not in self._claimed:
            self._explore(key)
            self._paths.append((key, 0))

    def _explore(self, key: Hashable) -> None:
        """Make ``key`` a path's incumbent: its path claims the neighbours that no path claimed
        and nothing measured before, as PatternSearch's paths share one ``visited`` set (so two
        paths that meet do not walk the same ground twice)."""
        claimed: list[C] = []
        for neighbor in self.backend.neighbors(self.results[key].candidate, self.rng):
            k = self.backend.key(neighbor)
            if k not in self.results and k not in self._claimed_keys:
                self._claimed_keys.add(k)
                claimed.append(neighbor)
        self._claimed[key] = claimed

    def _draws(self, n: int) -> Iterator[C]:
        """Up to ``n`` random candidates; a draw the backend cannot build is skipped."""
        for _ in range(n):
            try:
                yield self.backend.random(self.rng)
            except (ValueError, RuntimeError):
                continue

    def _random_batch(self) -> list[C]:
        want = min(self.options.refine_batch, self.remaining)
        batch = self._unseen(self._draws(want * 20), want)
        if not batch:
            self._deadline = 0.0  # the space is exhausted: nothing new to measure
        return batch
