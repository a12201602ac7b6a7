"""The LLM channel: our client in OpenEvolve's workers reports every request as an event.

Real OpenEvolve client classes and a real evaluation server; the LLM is the local stand-in over
HTTP. The events are what the search decides on (fallback, counters, tokens), so they are
checked here field by field, including that the API key never travels in them.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from pathlib import Path
import pickle
import time

from openevolve.config import LLMModelConfig
import pytest
from standin_llm import StandinLLM

from helion.autotuner.openevolve.engine.llm_channel import ChannelClientFactory
from helion.autotuner.openevolve.engine.llm_channel import ChannelLLM
from helion.autotuner.openevolve.loop.llm_events import LLMState
from helion.autotuner.openevolve.loop.record import RunRecord
from helion.autotuner.openevolve.loop.server import EvaluationServer

KEY = "sk-test-secret-key-0123456789"


def _events(server: EvaluationServer, n: int, timeout_s: float = 10.0) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    deadline = time.monotonic() + timeout_s
    while len(events) < n and time.monotonic() < deadline:
        events += server.drain_events()
        time.sleep(0.02)
    return events


def _client(server: EvaluationServer, url: str, model: str = "standin", timeout: int = 5) -> ChannelLLM:
    factory = ChannelClientFactory(server.address, server.authkey.hex())
    cfg = LLMModelConfig(name=model, api_base=url, api_key=KEY, timeout=timeout, retries=0, retry_delay=0)
    cfg.init_client = factory
    # What OpenEvolve does to a model config on its way to a spawned worker.
    copied = LLMModelConfig(**pickle.loads(pickle.dumps(asdict(cfg))))
    assert isinstance(copied.init_client, ChannelClientFactory)
    assert KEY not in repr(copied.init_client)
    client = copied.init_client(copied)
    assert isinstance(client, ChannelLLM)
    return client


def _ask(client: ChannelLLM) -> str:
    return asyncio.run(client.generate_with_context("system", [{"role": "user", "content": "hello"}]))


def test_an_answer_is_reported_with_its_tokens(tmp_path: Path) -> None:
    server = EvaluationServer(tmp_path)
    try:
        with StandinLLM(mode="neighbors", latency_s=0.05, seed=1).start() as llm:
            text = _ask(_client(server, llm.url))
        events = _events(server, 2)
    finally:
        server.close()
    assert text
    request, answer = events
    assert request["event"] == "llm_request" and request["model"] == "standin"
    assert answer["event"] == "llm_answer" and answer["request"] == request["request"]
    assert answer["prompt_tokens"] > 0 and answer["completion_tokens"] > 0  # type: ignore[operator]
    assert answer["total_tokens"] == answer["prompt_tokens"] + answer["completion_tokens"]  # type: ignore[operator]
    assert answer["chars"] == len(text)
    assert 0.0 < answer["latency_s"] < 10.0  # type: ignore[operator]
    assert all(isinstance(e["received_at"], float) for e in events)


def test_a_failure_is_reported_with_its_class_and_message_and_no_key(tmp_path: Path) -> None:
    server = EvaluationServer(tmp_path)
    try:
        with StandinLLM(mode="error500", latency_s=0.0, seed=1).start() as llm, pytest.raises(Exception) as raised:
            _ask(_client(server, llm.url))
        events = _events(server, 2)
    finally:
        server.close()
    request, error = events
    assert error["event"] == "llm_error" and error["request"] == request["request"]
    assert error["error_class"] == type(raised.value).__name__
    assert error["timeout"] is False
    assert "500" in str(error["message"])
    assert KEY not in str(events)


def test_a_request_past_its_timeout_is_reported_as_a_timeout(tmp_path: Path) -> None:
    server = EvaluationServer(tmp_path)
    try:
        with StandinLLM(mode="hang", latency_s=0.0, seed=1).start() as llm:
            t0 = time.monotonic()
            with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                _ask(_client(server, llm.url, timeout=1))
            assert time.monotonic() - t0 < 10
        events = _events(server, 2)
    finally:
        server.close()
    error = events[-1]
    assert error["event"] == "llm_error" and error["timeout"] is True
    assert error["message"] == "no answer within 1 s"


def test_events_are_dropped_quietly_when_the_search_is_gone(tmp_path: Path) -> None:
    server = EvaluationServer(tmp_path)
    with StandinLLM(mode="neighbors", latency_s=0.0, seed=1).start() as llm:
        client = _client(server, llm.url)
        server.close()
        assert _ask(client)  # the request itself goes on


def _state(max_failures: int = 3) -> LLMState:
    return LLMState(RunRecord(None), max_failures)


def _feed(state: LLMState, *events: tuple[str, str]) -> None:
    kinds = {"start": "llm_request", "ok": "llm_answer", "fail": "llm_error"}
    for t, (kind, request) in enumerate(events):
        state.on_event({"event": kinds[kind], "request": request, "received_at": float(t), "error_class": "E"})


def test_failures_in_a_row_follow_the_order_requests_left() -> None:
    # Three parallel requests to an endpoint that fails every other one: the failures come back
    # at once, the answers later. Not three failures in a row.
    state = _state()
    _feed(state, ("start", "1"), ("start", "2"), ("start", "3"), ("fail", "1"), ("start", "4"), ("fail", "3"))
    _feed(state, ("start", "5"), ("fail", "5"))
    assert state.failure_streak() == 1 and state.failure is None
    # An endpoint that fails every request: three in a row, whatever is in flight after them.
    state = _state()
    _feed(state, ("start", "1"), ("start", "2"), ("start", "3"), ("fail", "1"), ("start", "4"), ("fail", "2"))
    _feed(state, ("start", "5"), ("fail", "3"))
    assert state.failure_streak() == 3
    assert state.failure is not None and "3 requests in a row" in state.failure
    # Answers first, then only failures (an endpoint that dies mid-run).
    state = _state(2)
    _feed(state, ("start", "1"), ("ok", "1"), ("start", "2"), ("ok", "2"), ("start", "3"), ("fail", "3"))
    assert state.failure is None
    _feed(state, ("start", "4"), ("fail", "4"))
    assert state.failure is not None and state.answers == 2


def test_openevolve_giving_up_after_llm_failures_is_reported_as_the_llms_failure() -> None:
    state = _state(5)
    _feed(state, ("start", "1"), ("fail", "1"))
    state.on_event({"event": "engine_error", "error": "EvolutionFailedError: 0/1 iterations produced a program"})
    assert state.failure is not None and state.failure.startswith("the LLM never answered (1 request failed")
    # its error read before its workers' failures (separate paths): still the LLM's failure
    state = _state(5)
    _feed(state, ("start", "1"), ("start", "2"), ("fail", "1"))
    state.on_event({"event": "engine_error", "error": "EvolutionFailedError: 0/2 iterations produced a program"})
    assert state.failure == f"the LLM never answered (1 request failed of 2 sent, last: {state.last_error})"
    state = _state(5)
    _feed(state, ("start", "1"))
    state.on_event({"event": "engine_error", "error": "EvolutionFailedError"})
    assert state.failure == "the LLM never answered (0 requests failed of 1 sent)"
    # OpenEvolve failing before any request left, or after an answer, is OpenEvolve's failure
    for events in ([], [("start", "1"), ("ok", "1")]):
        state = _state(5)
        _feed(state, *events)
        state.on_event({"event": "engine_error", "error": "RuntimeError: boom"})
        assert state.failure == "OpenEvolve failed: RuntimeError: boom"
