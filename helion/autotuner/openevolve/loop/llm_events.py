"""What the user's process knows of the LLM: built from the engine's events only.

Events arrive from the OpenEvolve process (``started``, ``engine_error``, ``engine_finished``)
and from the LLM clients in its workers (``llm_request``, ``llm_answer``, ``llm_error``,
``llm_skipped``; see :mod:`..engine.llm_channel`), each stamped with the time the user's process
received it. :class:`LLMState` turns them into the run record's counters, the times the loop
needs (requests in flight, when the next answer is due), and the one verdict that ends the LLM's
part of a search: :attr:`LLMState.failure`.

Counters: ``llm_calls`` is every HTTP attempt that left (answered, failed, rate-limited, or cut
off when the search ended), so it equals the requests the endpoint received; ``llm_errors`` the
failed ones, a retried attempt included; a rate-limited attempt (429) is neither an answer nor
an error (its record line is ``llm_rate_limited``).

The verdict, by the channel's classification (:mod:`..engine.llm_faults`): the first permanent error
(a refused key, an unknown model, a bad request) ends the LLM's part at once, with the line the
channel wrote (cause and fix); ``max_failures`` requests failed in a row (transient errors, after
the channel's retries) end it too, as does OpenEvolve failing. A refused key or unknown model
is also remembered for this process (:func:`refused_before`): a later search that would ask
the same address, model and key goes on without the LLM and sends nothing. The registry holds
keyed hashes (:func:`..engine.llm_channel.endpoint_fingerprint` with this process's salt), never a key.

"In a row" follows the order in which requests left, not the order their outcomes arrived:
OpenEvolve's workers send requests in parallel, and a failure comes back at once while an
answer takes the LLM's time, so an endpoint that fails every other request would otherwise
look like one failing every request. The streak is the run of failed requests among the latest
ones that came back; a request answered, or one that left before them and is still in flight,
ends it (requests that left after the latest outcome are not known yet and do not count). An
attempt the channel sent again, and a rate-limited one, neither extend nor end it: its request
is still on its way. Nothing here reads OpenEvolve's log text.
"""

from __future__ import annotations

from collections.abc import Callable
import math
import secrets
import statistics

from ..engine.llm_channel import endpoint_fingerprint
from .record import RunRecord

#: This process's salt for endpoint fingerprints (sent to OpenEvolve's workers in the job).
ENDPOINT_SALT = secrets.token_hex(16)
#: Endpoints that refused for good in this process: fingerprint -> the line that said why.
_REFUSED: dict[str, str] = {}


def refused_endpoints() -> dict[str, str]:
    """Fingerprints of the endpoints that refused in this process, and the line that said why."""
    return dict(_REFUSED)


def refused_before(api_base: str, model: str, api_key: str | None) -> str | None:
    """Why this endpoint refused earlier in this process, or None."""
    return _REFUSED.get(endpoint_fingerprint(ENDPOINT_SALT, api_base, model, api_key))


class LLMState:
    """Counters, timings and the failure verdict of the LLM, from engine events."""

    def __init__(self, record: RunRecord, max_failures: int, warn: Callable[[str], None] | None = None) -> None:
        self.record = record
        self.warn = warn or (lambda _: None)
        self.max_failures = max_failures
        self.sent_at: dict[str, float] = {}  # request -> when it left
        self.outcomes: dict[str, str] = {}  # request -> "in_flight", "answered" or "failed", as they left
        self.latencies: list[float] = []
        self.answered = 0
        self.last_error: str | None = None
        self._said: set[str] = set()  # the one-time lines already said (rate limit, shorter prompt)
        self.failure: str | None = None  # why the LLM's part of the search ended, if it failed
        self.engine_finished = False
        #: seconds from the search's start to its first LLM request and first answer
        self.first_request_s: float | None = None
        self.first_answer_s: float | None = None

    @property
    def answers(self) -> int:
        return self.answered

    def on_event(self, event: dict[str, object]) -> None:
        kind = event.get("event")
        now = float(event.get("received_at") or 0.0)  # type: ignore[arg-type]
        request = str(event.get("request"))
        if kind == "llm_request":
            self.record.counters.llm_calls += 1
            self.sent_at[request] = now
            self.outcomes[request] = "in_flight"
            if self.first_request_s is None:
                self.first_request_s = round(now - self.record.start, 3)
        elif kind == "llm_answer":
            self._on_answer(request, event, now)
        elif kind == "llm_error":
            self._on_error(request, event)
        elif kind == "llm_skipped":
            self._on_skipped(event)
        elif kind == "engine_error":
            self._on_engine_error(str(event.get("error")))
        elif kind == "engine_finished":
            self.engine_finished = True
            self.record.write("engine_finished", llm_calls=self.record.counters.llm_calls)
        elif kind == "started":
            self.record.write("engine_started", torch_imported=event.get("torch_imported"))

    def _on_answer(self, request: str, event: dict[str, object], now: float) -> None:
        c = self.record.counters
        self.answered += 1
        c.prompt_tokens += int(event.get("prompt_tokens") or 0)  # type: ignore[call-overload]
        c.completion_tokens += int(event.get("completion_tokens") or 0)  # type: ignore[call-overload]
        self.latencies.append(float(event.get("latency_s") or 0.0))  # type: ignore[arg-type]
        self.outcomes[request] = "answered"
        if self.first_answer_s is None:
            self.first_answer_s = round(now - self.record.start, 3)

    def _on_error(self, request: str, event: dict[str, object]) -> None:
        category, retry = event.get("category") or "transient", bool(event.get("retry"))
        self.outcomes[request] = "retried" if retry else "failed"
        fields = {k: event.get(k) for k in ("error_class", "status", "code", "category", "retry", "model")}
        if category == "rate_limit":  # not a failure while the request waits it out
            self.record.write("llm_rate_limited", retry_after_s=event.get("retry_after_s"), **fields)
            line = f"the LLM endpoint limits the request rate ({event.get('cause')}); requests wait as it asks"
            self._say_once("rate_limit", f"{line} and do not count as failures")
            if retry:
                return
        if category == "rate_limit":  # still limited after llm_timeout_s of waiting: it failed
            self.record.counters.llm_errors += 1
            self.record.write("llm_error", message="still rate-limited after llm_timeout_s of waiting", **fields)
        else:
            self.record.counters.llm_errors += 1
            self.record.write(
                "llm_error",
                message=event.get("message"),
                timeout=event.get("timeout"),
                latency_s=event.get("latency_s"),
                cause=event.get("cause"),
                **fields,
            )
        self.last_error = f"{event.get('error_class')}: {event.get('message') or 'no message'}"
        if category == "permanent":
            return self._on_permanent(event, retry)
        if retry:
            return
        streak = self.failure_streak()
        if self.failure is None:  # after the verdict the fallback line says it all
            self.warn(f"OpenEvolve search: an LLM request failed ({self.last_error}); {streak} in a row")
        if streak >= self.max_failures and self.failure is None:
            self.failure = f"the LLM failed {streak} requests in a row (last: {self.last_error})"

    def _on_permanent(self, event: dict[str, object], retry: bool) -> None:
        """A request no retry can fix: the verdict at once (or, for a prompt over the model's
        context sent again shorter, one line); a refused endpoint is remembered for the process."""
        cause = str(event.get("cause") or self.last_error)
        if retry:
            self._say_once("shorter", f"{cause}; requests go on without OpenEvolve's program history")
            return
        if not event.get("context") and event.get("endpoint"):
            _REFUSED.setdefault(str(event["endpoint"]), cause)
        if self.failure is None:
            self.failure = cause

    def _on_skipped(self, event: dict[str, object]) -> None:
        """A worker sent nothing: the endpoint had refused (in this search or process)."""
        if self.failure is None:
            self.failure = str(event.get("cause"))
            self.record.write("llm_skipped", cause=self.failure, model=event.get("model"))

    def _say_once(self, what: str, line: str) -> None:
        if what not in self._said and self.failure is None:
            self._said.add(what)
            self.warn(f"OpenEvolve search: {line}")

    def failure_streak(self) -> int:
        """Failed requests among the latest ones, in the order they left (see the module docstring)."""
        streak, newest = 0, True
        for outcome in reversed(self.outcomes.values()):
            if outcome == "retried" or (outcome == "in_flight" and newest):
                continue  # sent again, or left after the latest outcome: not known yet
            newest = False
            if outcome != "failed":
                break
            streak += 1
        return streak

    def _on_engine_error(self, error: str) -> None:
        if self.failure is not None:
            return
        if self.answers == 0 and self.outcomes:
            # OpenEvolve gives up when no iteration produced a program; with requests sent and
            # none answered, the cause is the LLM's. The failures of the last requests may still
            # be on their way: they come from OpenEvolve's workers, its error from OpenEvolve.
            n, sent = self.record.counters.llm_errors, len(self.outcomes)
            detail = f"{n} request{'s' * (n != 1)} failed" + (f" of {sent} sent" if sent > n else "")
            last = f", last: {self.last_error}" if self.last_error else ""
            self.failure = f"the LLM never answered ({detail}{last})"
        else:
            self.failure = f"OpenEvolve failed: {error}"

    def engine_ended(self, reason: str) -> None:
        """The OpenEvolve process ended without saying it finished."""
        if self.failure is None and not self.engine_finished:
            self.failure = reason

    def next_answer_due(self) -> float:
        """When the oldest request in flight should come back (the median latency so far
        after it left); ``inf`` when none is in flight, its send time when no latency is known."""
        waiting = [self.sent_at[r] for r, outcome in self.outcomes.items() if outcome == "in_flight"]
        if not waiting:
            return math.inf
        return min(waiting) + (statistics.median(self.latencies) if self.latencies else 0.0)
