"""The LLM channel: every request OpenEvolve sends to the LLM, reported to the user's process.

OpenEvolve builds each model's client through the hook its own CLI-backed clients use,
``LLMModelConfig.init_client``. The engine (:func:`.engine.build_config`) sets that hook on every
model to a :class:`ChannelClientFactory`: a picklable object that holds only the evaluation
server's address, its auth key and the model's own ``init_client`` (if the YAML named one). In
each of OpenEvolve's spawned workers it builds a :class:`ChannelLLM`, which wraps the client
OpenEvolve would have built itself (any provider) and reports each request as an event over
the evaluation server's socket:

- ``llm_request``: a request left (``request``, ``model``);
- ``llm_answer``: it came back (``latency_s``, ``prompt_tokens``, ``completion_tokens`` and
  ``total_tokens`` from the response's usage where the provider reports it, ``chars``);
- ``llm_error``: it failed (``latency_s``, ``error_class``, ``message`` with the API key
  removed, ``timeout`` for a request that ran past the model's timeout).

The user's process counts LLM calls, tokens and failures, and decides to fall back, from these
events only; nothing reads OpenEvolve's log text. Sending never raises: when the user's process
is gone, events are dropped and the request goes on as OpenEvolve decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from multiprocessing.connection import Client
from multiprocessing.connection import Connection
import os
import threading
import time
from typing import TYPE_CHECKING
from typing import Any

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
    which OpenEvolve's workers import from the engine's import path (see :mod:`.launcher`).
    """

    def __init__(self, address: str, authkey_hex: str, inner_init: Callable[[Any], Any] | None = None) -> None:
        self.address = address
        self.authkey_hex = authkey_hex
        self.inner_init = inner_init

    def __call__(self, model_cfg: Any) -> ChannelLLM:
        from dataclasses import replace

        from openevolve.llm.ensemble import LLMEnsemble

        # The client OpenEvolve would have built for this model (its provider, or the YAML's
        # own init_client), built through its public ensemble class.
        inner = LLMEnsemble([replace(model_cfg, init_client=self.inner_init)]).models[0]
        return ChannelLLM(inner, _sender(self.address, self.authkey_hex), model_cfg)

    def __repr__(self) -> str:  # never show the key
        return f"ChannelClientFactory({self.address!r})"


_SENDERS: dict[tuple[str, str], EventSender] = {}
_SENDERS_LOCK = threading.Lock()


def _sender(address: str, authkey_hex: str) -> EventSender:
    """One connection per worker process and server, shared by its models' clients."""
    with _SENDERS_LOCK:
        return _SENDERS.setdefault((address, authkey_hex), EventSender(address, authkey_hex))


_REQUEST_IDS = itertools.count(1)


class ChannelLLM:
    """An OpenEvolve LLM client that reports each request of the client it wraps."""

    def __init__(self, inner: Any, sender: EventSender, model_cfg: Any) -> None:
        self._inner = inner
        self._sender = sender
        self._model = str(getattr(model_cfg, "name", None) or "?")
        self.model = self._model  # OpenEvolve 0.4.0's ensemble reads its clients' ``model``
        self._timeout = getattr(model_cfg, "timeout", None)
        key = getattr(model_cfg, "api_key", None)
        self._secrets = [key] if isinstance(key, str) and len(key) >= 4 else []

    @property
    def last_usage(self) -> dict[str, Any] | None:  # OpenEvolve reads it after each request
        return getattr(self._inner, "last_usage", None)

    async def generate(self, prompt: str, **kwargs: Any) -> str:
        return await self._reported(lambda: self._inner.generate(prompt, **kwargs))

    async def generate_with_context(self, system_message: str, messages: list[dict[str, str]], **kwargs: Any) -> str:
        return await self._reported(lambda: self._inner.generate_with_context(system_message, messages, **kwargs))

    async def _reported(self, call: Callable[[], Awaitable[str]]) -> str:
        request = f"{os.getpid()}-{next(_REQUEST_IDS)}"
        self._sender.send({"event": "llm_request", "request": request, "model": self._model})
        t0 = time.monotonic()
        try:
            text = await call()
        except BaseException as e:  # reported, then re-raised: OpenEvolve decides what follows
            self._sender.send(self._error_event(request, e, time.monotonic() - t0))
            raise
        usage = self.last_usage or {}
        self._sender.send(
            {
                "event": "llm_answer",
                "request": request,
                "model": self._model,
                "latency_s": round(time.monotonic() - t0, 4),
                "chars": len(text or ""),
                **{k: int(usage.get(k) or 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")},
            }
        )
        return text

    def _error_event(self, request: str, error: BaseException, latency_s: float) -> dict[str, object]:
        timeout = isinstance(error, (TimeoutError, asyncio.TimeoutError))
        message = str(error).strip()
        if not message and timeout:
            message = f"no answer within {self._timeout} s" if self._timeout else "timed out"
        for secret in self._secrets:
            message = message.replace(secret, "[API key]")
        return {
            "event": "llm_error",
            "request": request,
            "model": self._model,
            "latency_s": round(latency_s, 4),
            "error_class": type(error).__name__,
            "message": message[:MAX_MESSAGE_CHARS],
            "timeout": timeout,
        }
