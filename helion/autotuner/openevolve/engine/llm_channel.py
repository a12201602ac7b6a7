"""The LLM channel: every HTTP attempt OpenEvolve's workers make, retried here and reported.

OpenEvolve builds each model's client through the hook its own CLI-backed clients use,
``LLMModelConfig.init_client``. The engine (:func:`.main.build_config`) sets that hook on every
model to a :class:`ChannelClientFactory`: a picklable object that holds only the evaluation
server's address, its auth key, the search's folder for shared marks, a salt, and the model's
own ``init_client`` (if the YAML named one). In each of OpenEvolve's spawned workers it builds a
:class:`ChannelLLM`, which wraps the client OpenEvolve would have built itself (any provider),
built with ``retries=0``: OpenEvolve's loop then makes one attempt and its OpenAI client gets
``max_retries=0``, so every HTTP attempt passes through here, once. The channel owns the
retries, by what :func:`.llm_faults.classify` makes of each error:

- permanent (a refused key, an unknown model, a bad request): never sent again. The search's
  folder gets a mark, so no worker sends another request to that endpoint; a later request
  raises :class:`EndpointRefused` without sending. A prompt over the model's context is sent
  once more without OpenEvolve's program history, and every later prompt goes without it;
- transient (5xx, time-outs, connection errors): sent again up to the model's ``retries``;
  the worker's next request waits ``retry_delay`` (default :data:`DEFAULT_RETRY_DELAY_S`),
  doubled per failure in a row, so a dead endpoint is not hammered by new iterations either;
- rate limit (429): sent again after ``Retry-After``, within the model's ``timeout`` in all
  for one request; not a failure.

Each attempt is reported as events over the evaluation server's socket:

- ``llm_request``: an attempt left (``request``, ``model``);
- ``llm_answer``: it came back (``latency_s``, ``prompt_tokens``, ``completion_tokens`` and
  ``total_tokens`` from the response's usage where the provider reports it, ``chars``);
- ``llm_error``: it failed (``latency_s``, ``error_class``, ``message`` with the API key
  removed, ``timeout``; the fault's ``category``, ``status``, ``code``, ``context``, ``cause``;
  ``retry``: whether the channel sends it again; ``endpoint``: :func:`endpoint_fingerprint`);
- ``llm_skipped``: no attempt left, the endpoint refused before (``cause``, ``endpoint``).

Once the search has stopped (:data:`STOP_MARK` in its folder), no attempt leaves, so the user's
process can count every request that left before it ends this process.

The user's process counts LLM calls, tokens and failures, and decides to fall back, from these
events only; nothing reads OpenEvolve's log text. Sending never raises: when the user's process
is gone, events are dropped and the request goes on as OpenEvolve decides.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
import hashlib
import hmac
import itertools
from multiprocessing.connection import Client
from multiprocessing.connection import Connection
import os
from pathlib import Path
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

from .llm_faults import Fault
from .llm_faults import classify
from .llm_faults import context_cause
from .llm_faults import shorter_messages

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from collections.abc import Callable

#: Longest error message sent in an ``llm_error`` event.
MAX_MESSAGE_CHARS = 300


class EventSender:
    """A lazily opened, thread-safe connection that sends events to the evaluation server."""

    def __init__(self, address: str, authkey_hex: str) -> None:
        self._address = address
        self._authkey = bytes.fromhex(authkey_hex)
        self._conn: Connection | None = None
        self._broken = False
        self._lock = threading.Lock()

    def send(self, event: dict[str, object]) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                if self._conn is None:
                    self._conn = Client(self._address, family="AF_UNIX", authkey=self._authkey)
                    self._conn.send({"kind": "events"})
                self._conn.send(event)
            except (OSError, EOFError, ValueError):  # the user's process is gone: drop events
                self._broken = True

    def close(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            if self._conn is not None:
                self._conn.close()
            self._conn = None


class ChannelClientFactory:
    """``init_client`` for OpenEvolve's model configs: builds a :class:`ChannelLLM`.

    A plain class, not a dataclass: OpenEvolve copies model configs with ``dataclasses.asdict``,
    which would turn a dataclass here into a dict. It is pickled by reference to this module,
    which OpenEvolve's workers import from the engine's import path (see ``loop/launcher.py``).
    """

    def __init__(
        self,
        address: str,
        authkey_hex: str,
        inner_init: Callable[[Any], Any] | None = None,
        *,
        state_dir: str | None = None,
        salt_hex: str = "",
    ) -> None:
        self.address = address
        self.authkey_hex = authkey_hex
        self.inner_init = inner_init
        self.state_dir = state_dir  # the search's folder for marks shared by its workers
        self.salt_hex = salt_hex  # the user's process's salt for endpoint fingerprints

    def __call__(self, model_cfg: Any) -> ChannelLLM:
        from dataclasses import replace

        from openevolve.llm.ensemble import LLMEnsemble

        # The client OpenEvolve would have built for this model (its provider, or the YAML's
        # own init_client), built through its public ensemble class, asked once per attempt.
        inner = LLMEnsemble([replace(model_cfg, init_client=self.inner_init, retries=0)]).models[0]
        fingerprint = endpoint_fingerprint(
            self.salt_hex, getattr(model_cfg, "api_base", None), model_cfg.name, getattr(model_cfg, "api_key", None)
        )
        sender = _sender(self.address, self.authkey_hex)
        return ChannelLLM(inner, sender, model_cfg, fingerprint=fingerprint, state_dir=self.state_dir)

    def __repr__(self) -> str:  # never show the key
        return f"ChannelClientFactory({self.address!r})"


_SENDERS: dict[tuple[str, str], EventSender] = {}
_SENDERS_LOCK = threading.Lock()


def _sender(address: str, authkey_hex: str) -> EventSender:
    """One connection per worker process and server, shared by its models' clients."""
    with _SENDERS_LOCK:
        return _SENDERS.setdefault((address, authkey_hex), EventSender(address, authkey_hex))


_REQUEST_IDS = itertools.count(1)

#: Backoff after a transient failure when the model names no ``retry_delay``: the first wait of
#: OpenAI's own client is 0.5 s; a worker's next request waits this, doubled per failure in a row.
DEFAULT_RETRY_DELAY_S = 1.0
MAX_BACKOFF_S = 30.0
#: The file in the search's folder that says the search stopped: no request leaves any more.
STOP_MARK = "stop"
#: Longest a request waits out rate limits in all when the model names no timeout.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0


def endpoint_fingerprint(salt_hex: str, api_base: str | None, model: str | None, api_key: str | None) -> str:
    """Who is asked: a keyed hash of the address, the model and the key (never the key itself)."""
    text = "\0".join([(api_base or "").rstrip("/"), model or "", api_key or ""])
    return hmac.new(bytes.fromhex(salt_hex), text.encode(), hashlib.sha256).hexdigest()[:24]


class EndpointRefused(RuntimeError):
    """No request was sent: the endpoint already refused this search's (or process's) requests."""


@dataclass
class _Endpoint:
    """What one worker knows of one endpoint, across OpenEvolve's requests."""

    failures: int = 0  # transient failures in a row
    not_before: float = 0.0  # monotonic time before which no request leaves (backoff, Retry-After)
    shorten: bool = False  # the full prompt was over the model's context
    refused: str | None = None  # the cause, once a request was refused for good


_ENDPOINTS: dict[str, _Endpoint] = {}


class ChannelLLM:
    """An OpenEvolve LLM client that owns the retries of the client it wraps and reports each
    HTTP attempt; see the module docstring for what it retries and what it stops at."""

    def __init__(
        self,
        inner: Any,
        sender: EventSender,
        model_cfg: Any,
        *,
        fingerprint: str = "",
        state_dir: str | None = None,
    ) -> None:
        self._inner = inner
        self._sender = sender
        self._model = str(getattr(model_cfg, "name", None) or "?")
        self.model = self._model  # OpenEvolve 0.4.0's ensemble reads its clients' ``model``
        self._timeout = getattr(model_cfg, "timeout", None)
        self._retries = int(getattr(model_cfg, "retries", None) or 0)
        self._retry_delay = float(getattr(model_cfg, "retry_delay", None) or DEFAULT_RETRY_DELAY_S)
        key = getattr(model_cfg, "api_key", None)
        self._secrets = [key] if isinstance(key, str) and len(key) >= 4 else []
        self._fingerprint = fingerprint
        self._state = _ENDPOINTS.setdefault(fingerprint, _Endpoint())
        self._marks = Path(state_dir) if state_dir else None

    @property
    def last_usage(self) -> dict[str, Any] | None:  # OpenEvolve reads it after each request
        return getattr(self._inner, "last_usage", None)

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        kwargs = _without_retries(kwargs)
        return await self._ask("", None, lambda _: self._inner.generate(prompt, **kwargs))

    async def generate_with_context(self, system_message: str, messages: list[dict[str, str]], **kwargs: Any) -> str:
        kwargs = _without_retries(kwargs)
        return await self._ask(
            system_message, messages, lambda m: self._inner.generate_with_context(system_message, m, **kwargs)
        )

    async def _ask(
        self,
        system_message: str,
        messages: list[dict[str, str]] | None,
        call: Callable[[list[dict[str, str]] | None], Awaitable[str]],
    ) -> str:
        """One OpenEvolve request: HTTP attempts until an answer, a refusal, or no retry left."""
        attempt = _Attempt(self._retries, self._timeout or DEFAULT_RATE_LIMIT_WAIT_S, messages)
        while True:
            await asyncio.sleep(max(0.0, self._state.not_before - time.monotonic()))
            self._check_refused()
            if attempt.messages is not None and not attempt.shortened and self._shortening():
                attempt.messages, attempt.shortened = shorter_messages(attempt.messages) or attempt.messages, True
            request = f"{os.getpid()}-{next(_REQUEST_IDS)}"
            self._sender.send({"event": "llm_request", "request": request, "model": self._model})
            t0 = time.monotonic()
            try:
                text = await call(attempt.messages)
            except BaseException as e:  # classified and reported; re-raised unless retried
                if isinstance(e, Exception):
                    fault = classify(e, model=self._model)
                    retry, cause = self._next_step(fault, attempt, system_message)
                else:  # cancelled or interrupted: never sent again
                    fault, retry = Fault("transient", type(e).__name__), False
                    cause = fault.cause
                self._sender.send(self._error_event(request, e, fault, cause, retry, time.monotonic() - t0))
                if not retry:
                    raise
                continue
            self._state.failures = 0
            self._sender.send(self._answer_event(request, text, time.monotonic() - t0))
            return text

    def _next_step(self, fault: Fault, attempt: _Attempt, system_message: str) -> tuple[bool, str]:
        """Whether the request is sent again after ``fault``, and the line that says why not."""
        now, state = time.monotonic(), self._state
        if fault.category == "rate_limit":
            wait = fault.retry_after_s if fault.retry_after_s is not None else self._backoff(1)
            state.not_before = max(state.not_before, now + wait)
            attempt.rate_limit_wait_s -= wait
            return attempt.rate_limit_wait_s >= 0, fault.cause
        if fault.category == "transient":
            state.failures += 1
            state.not_before = max(state.not_before, now + self._backoff(state.failures))
            attempt.retries -= 1
            return attempt.retries >= 0, fault.cause
        cause = fault.cause
        if fault.context:
            cause = context_cause(fault, system_message, attempt.messages or [], shortened=attempt.shortened)
            if not attempt.shortened and attempt.messages is not None and shorter_messages(attempt.messages):
                self._mark("shorten", "")
                return True, cause
        self._mark("refused", cause)
        return False, cause

    def _backoff(self, failures: int) -> float:
        return min(MAX_BACKOFF_S, self._retry_delay * 2 ** (failures - 1))

    def _mark(self, what: str, cause: str) -> None:
        """Tell this worker and, through the search's folder, the others."""
        if what == "shorten":
            self._state.shorten = True
        else:
            self._state.refused = cause
        if self._marks is not None:
            with contextlib.suppress(OSError):
                tmp = self._marks / f".{what}-{self._fingerprint}.{os.getpid()}"
                tmp.write_text(cause)
                tmp.replace(self._marks / f"{what}-{self._fingerprint}")

    def _marked(self, what: str) -> str | None:
        if self._marks is None:
            return None
        with contextlib.suppress(OSError):
            return (self._marks / f"{what}-{self._fingerprint}").read_text()
        return None

    def _shortening(self) -> bool:
        self._state.shorten = self._state.shorten or self._marked("shorten") is not None
        return self._state.shorten

    def _check_refused(self) -> None:
        """Raise :class:`EndpointRefused`, sending nothing, once the endpoint refused for good
        or the search stopped (it is ending this process: no request may leave uncounted)."""
        if self._marks is not None and (self._marks / STOP_MARK).exists():
            raise EndpointRefused("the search stopped")
        cause = self._state.refused or self._marked("refused")
        if cause is None:
            return
        self._state.refused = cause
        self._sender.send({"event": "llm_skipped", "model": self._model, "endpoint": self._fingerprint, "cause": cause})
        raise EndpointRefused(cause)

    def _answer_event(self, request: str, text: str, latency_s: float) -> dict[str, object]:
        usage = self.last_usage or {}
        return {
            "event": "llm_answer",
            "request": request,
            "model": self._model,
            "latency_s": round(latency_s, 4),
            "chars": len(text or ""),
            **{k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
        }

    def _error_event(
        self, request: str, error: BaseException, fault: Fault, cause: str, retry: bool, latency_s: float
    ) -> dict[str, object]:
        message = str(error).strip()
        if fault.timeout:
            message = f"no answer within {self._timeout} s" if self._timeout else "timed out"
        for secret in self._secrets:
            message = message.replace(secret, "[API key]")
        return {
            "event": "llm_error",
            "request": request,
            "model": self._model,
            "endpoint": self._fingerprint,
            "latency_s": round(latency_s, 4),
            "error_class": type(error).__name__,
            "message": message[:MAX_MESSAGE_CHARS],
            "timeout": fault.timeout,
            "category": fault.category,
            "status": fault.status,
            "code": fault.code,
            "context": fault.context,
            "cause": cause,
            "retry": retry,
            "retry_after_s": fault.retry_after_s,
        }


@dataclass
class _Attempt:
    """One OpenEvolve request's state across its HTTP attempts."""

    retries: int  # transient failures it may still retry
    rate_limit_wait_s: float  # seconds it may still wait out rate limits
    messages: list[dict[str, str]] | None
    shortened: bool = False


def _without_retries(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The channel retries: the wrapped client is asked once per attempt."""
    return {k: v for k, v in kwargs.items() if k not in ("retries", "retry_delay")}
