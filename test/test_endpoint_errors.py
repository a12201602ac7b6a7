"""What real endpoints answer, and what the search does with it: a request that can never
succeed is not sent again, a rate limit is waited out, and every HTTP attempt is counted.

Each case runs ``tune_config_space`` (a deterministic objective, a fixed seed) against the local
stand-in LLM answering as OpenAI does: 401 ``invalid_api_key``, 404 ``model_not_found``, 400
``context_length_exceeded``, 429 with ``Retry-After``, 500, and no answer at all. Each asserts
the requests the server received (equal to the run record's ``llm_calls``), the one line the
user sees, the summary's mode and counts, and that the search still found the optimum.
Where a case needs more than the first round of requests, refinement is off: the search then
waits for the LLM while it is live (with refinement it may converge after one answer), and
random draws cover the space's 20 configs after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict
import importlib.util
import json
import math
from pathlib import Path
import pickle
import time

import openai
from openevolve.config import LLMModelConfig
import pytest
from standin_llm import StandinLLM

from helion.autotuner.openevolve.engine.llm_channel import ChannelClientFactory
from helion.autotuner.openevolve.engine.llm_faults import classify
from helion.autotuner.openevolve.engine.llm_faults import shorter_messages
from helion.autotuner.openevolve.loop.server import EvaluationServer
from helion.autotuner.openevolve_tuner import TuneResult
from helion.autotuner.openevolve_tuner import tune_config_space

SPACE = {"block_size": [16, 32, 64, 128, 256], "num_warps": [1, 2, 4, 8]}
OPTIMUM = {"block_size": 64, "num_warps": 4}
GOING_ON = "Going on without the LLM"

#: Small budgets; a timeout long enough that the search waits for the first LLM round.
SETTINGS: dict[str, object] = {
    "max_evaluations": 24,
    "max_llm_calls": 6,
    "parallel_llm_calls": 3,
    "max_llm_failures": 2,
    "llm_retries": 0,
    "llm_timeout_s": 10,
    "candidates_per_program": 2,
    "seed": 1,
}


def score(config: dict[str, object]) -> float:
    """Highest (0) at OPTIMUM: one point less per halving or doubling away from it."""
    return -abs(math.log2(int(config["block_size"])) - 6) - abs(math.log2(int(config["num_warps"])) - 2)  # type: ignore[call-overload]


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    for var in ("API_KEY", "API_BASE", "MODEL", "MAX_EVALUATIONS", "RECORD_PATH", "STRICT", "CONFIG_PATH"):
        monkeypatch.delenv(f"HELION_OPENEVOLVE_{var}", raising=False)


def _tune(
    tmp_path: Path, llm: StandinLLM, name: str = "run", objective: object = score, **kw: object
) -> tuple[TuneResult, list[dict[str, object]], list[str], int]:
    """One search against ``llm``: its result, run record, the lines it said, and the requests
    the server received during it (equal to the record's ``llm_calls``)."""
    record, said = tmp_path / f"{name}.jsonl", []
    before = llm.requests
    settings = {"api_base": llm.url, "api_key": "test-key", "model": "standin", **SETTINGS, **kw}
    result = tune_config_space(SPACE, objective, record_path=str(record), log=said.append, **settings)  # type: ignore[arg-type]
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    requests = llm.requests - before
    assert result.best_config == OPTIMUM and result.best_score == 0.0
    assert result.summary["llm_calls"] == requests, (result.summary, requests)
    return result, lines, said, requests


def _one_line(said: list[str], needle: str) -> str:
    lines = [line for line in said if needle in line]
    assert len(lines) == 1, said
    return lines[0]


def _kinds(lines: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [line for line in lines if line["kind"] == kind]


def test_a_wrong_key_stops_the_asking_and_a_later_search_sends_nothing(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", seed=1, api_key="the-right-key").start() as llm:
        first, lines, said, requests = _tune(tmp_path, llm, "first", api_key="a-wrong-key")
        # the requests in flight at once, and no other
        assert 1 <= requests <= SETTINGS["parallel_llm_calls"]
        assert first.mode == "fallback" and first.summary["llm_errors"] == requests
        cause = "the API key was refused (401 invalid_api_key): set OPENAI_API_KEY or HELION_OPENEVOLVE_API_KEY"
        assert first.fallback_reason == cause
        assert _one_line(said, GOING_ON).startswith(f"OpenEvolve search: {cause}. {GOING_ON}")
        assert len(_kinds(lines, "llm_error")) == requests
        assert {e["status"] for e in _kinds(lines, "llm_error")} == {401}
        assert not any("a-wrong-key" in line for line in said)

        # another kernel in the same process, same endpoint, model and key: nothing is sent
        second, _, said, requests = _tune(
            tmp_path, llm, "second", api_key="a-wrong-key", objective=lambda c: 2 * score(c)
        )
        assert requests == 0
        assert second.mode == "fallback" and second.summary["llm_calls"] == 0
        line = _one_line(said, GOING_ON)
        assert f"{cause}; found earlier in this process, so no request is sent" in line


def test_an_unknown_model_stops_the_asking(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        result, _, said, requests = _tune(tmp_path, llm, model="standin:error404")
    assert 1 <= requests <= SETTINGS["parallel_llm_calls"]
    assert result.mode == "fallback" and result.summary["llm_errors"] == requests
    cause = "the endpoint does not serve model 'standin:error404' (404 model_not_found): set HELION_OPENEVOLVE_MODEL"
    assert cause in _one_line(said, GOING_ON)


def test_a_prompt_over_the_context_is_sent_again_without_the_history(tmp_path: Path) -> None:
    # The first prompts (about 2700 characters) are over 2400, the same without OpenEvolve's
    # program history (about 2100) are not: answers come, and the search keeps the LLM.
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        result, lines, said, requests = _tune(tmp_path, llm, model="standin:context:2400")
        sizes = [sum(len(m["content"]) for m in prompt) for prompt in llm.prompts]
    refused = _kinds(lines, "llm_error")
    assert refused and all(e["code"] == "context_length_exceeded" and e["retry"] for e in refused)
    # each request in flight at once was refused once, and every later one left shorter
    assert len(refused) <= SETTINGS["parallel_llm_calls"] == 3
    assert sum(size > 2400 for size in sizes) == len(refused) == result.summary["llm_errors"]
    assert result.mode == "openevolve" and result.summary["llm_answers_used"] >= 1
    assert requests == len(sizes)
    line = _one_line(said, "context")
    assert "system message" in line and "program history" in line and "candidates_per_program" in line
    assert line.endswith("requests go on without OpenEvolve's program history")


def test_a_prompt_over_the_context_even_when_shorter_stops_the_asking(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        result, _, said, requests = _tune(tmp_path, llm, model="standin:context:100")
    # each request in flight at once: once in full, once without the program history
    assert 2 <= requests <= 2 * SETTINGS["parallel_llm_calls"]
    assert result.mode == "fallback" and result.summary["llm_errors"] == requests
    line = _one_line(said, GOING_ON)
    assert "the prompt is over model 'standin:context:100''s context (400 context_length_exceeded)" in line
    assert "a prompt without the program history was over it too" in line


def test_a_rate_limit_is_waited_out_and_is_not_a_failure(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        result, lines, said, requests = _tune(tmp_path, llm, model="standin:error429_alternate", refinement=False)
    limited = _kinds(lines, "llm_rate_limited")
    assert limited and all(e["status"] == 429 for e in limited)
    assert [e["retry_after_s"] for e in limited] == [1.0] * len(limited)
    # the endpoint's answers were used, and its 429s are neither failures nor a fallback
    assert result.mode == "openevolve" and result.summary["llm_answers_used"] >= 1
    assert result.summary["llm_errors"] == 0 and not _kinds(lines, "llm_error")
    assert requests >= len(limited) + result.summary["llm_answers_used"]
    assert "requests wait as it asks and do not count as failures" in _one_line(said, "429")
    assert not [line for line in said if GOING_ON in line]


def test_a_request_still_rate_limited_after_its_wait_is_a_failure(tmp_path: Path) -> None:
    """Every request answered 429 (Retry-After 1 s) with ``llm_timeout_s`` 2: each request waits
    out its 2 s, then fails; failures in a row end the LLM's part, and the record counts them."""
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        result, lines, _, requests = _tune(
            tmp_path, llm, model="standin:error429", refinement=False, llm_timeout_s=2, parallel_llm_calls=2
        )
    limited, errors = _kinds(lines, "llm_rate_limited"), _kinds(lines, "llm_error")
    assert len(limited) == requests  # every attempt was answered 429; the last of each request gave up
    assert 2 <= len(errors) <= requests // 2
    assert result.summary["llm_errors"] == len(errors) >= 2
    assert all(e["category"] == "rate_limit" and "still rate-limited" in str(e["message"]) for e in errors)
    assert result.mode == "fallback" and "RateLimitError" in str(result.fallback_reason)


def test_a_failing_endpoint_is_retried_with_backoff_and_then_left(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", seed=1).start() as llm:
        # every request fails: two in a row end the LLM's part; each worker waits (backoff)
        # before its next request, so only the requests in flight at once were sent
        dead, lines, said, requests = _tune(tmp_path, llm, "dead", model="standin:error500", parallel_llm_calls=2)
        assert 2 <= requests <= 3
        assert dead.mode == "fallback" and dead.summary["llm_errors"] == requests
        assert "the LLM failed 2 requests in a row" in _one_line(said, GOING_ON)
        assert {e["status"] for e in _kinds(lines, "llm_error")} == {500}

        # every other request fails: each failure is sent again and answered; the LLM's part
        # goes on, so the mode stays openevolve while llm_errors counts the failures
        flaky, lines, said, requests = _tune(
            tmp_path, llm, "flaky", model="standin:error500_alternate", llm_retries=1, refinement=False
        )
    retried = [e for e in _kinds(lines, "llm_error") if e["retry"]]
    assert retried and flaky.summary["llm_errors"] == len(_kinds(lines, "llm_error"))
    assert flaky.mode == "openevolve" and flaky.summary["llm_answers_used"] >= 1
    assert not [line for line in said if GOING_ON in line]


def test_an_endpoint_that_never_answers_times_out(tmp_path: Path) -> None:
    with StandinLLM(mode="hang", seed=1).start() as llm:
        result, lines, said, requests = _tune(tmp_path, llm, llm_timeout_s=2, parallel_llm_calls=2, refinement=False)
    # one request per worker; a worker whose request timed out first may have sent its next
    # one (after its backoff) before the other's timed out
    assert 2 <= requests <= 4
    assert result.mode == "fallback"
    errors = _kinds(lines, "llm_error")
    assert len(errors) >= 2 and all(e["timeout"] for e in errors)
    assert "no answer within 2 s" in _one_line(said, GOING_ON)


def test_the_channel_owns_the_retries_and_reports_each_attempt(tmp_path: Path) -> None:
    """OpenEvolve's client is built with no retries of its own (its OpenAI client too): the
    channel sends a failing request ``retries`` more times, each attempt an event."""
    server = EvaluationServer(tmp_path)
    try:
        with StandinLLM(mode="error500", seed=1).start() as llm:
            cfg = LLMModelConfig(name="standin", api_base=llm.url, api_key="k", timeout=5, retries=2, retry_delay=0.05)
            cfg.init_client = ChannelClientFactory(server.address, server.authkey.hex())
            copied = LLMModelConfig(**pickle.loads(pickle.dumps(asdict(cfg))))
            client = copied.init_client(copied)
            assert client._inner.client.max_retries == 0
            with pytest.raises(Exception, match="500"):
                asyncio.run(client.generate_with_context("system", [{"role": "user", "content": "hello"}]))
            assert llm.requests == 3
        deadline, events = time.monotonic() + 10, []
        while len(events) < 6 and time.monotonic() < deadline:
            events += server.drain_events()
            time.sleep(0.02)
    finally:
        server.close()
    assert [e["event"] for e in events] == ["llm_request", "llm_error"] * 3
    assert [e["retry"] for e in events if e["event"] == "llm_error"] == [True, True, False]
    assert all(e["category"] == "transient" and e["status"] == 500 for e in events if e["event"] == "llm_error")


def _request() -> object:
    """A request as the OpenAI client sends it (newer clients read its headers in every error)."""
    http = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")  # openai 3 or 1
    return http.Request("POST", "http://127.0.0.1:1/v1/chat/completions")


def _status_error(kind: type[Exception], status: int, code: object, headers: dict[str, str] | None = None) -> Exception:
    """An exception as the OpenAI client raises it for an HTTP error with this body ``code``."""
    http = importlib.import_module("httpx2" if importlib.util.find_spec("httpx2") else "httpx")  # openai 3 or 1
    request = _request()
    response = http.Response(status, request=request, headers=headers or {})
    return kind("an error message", response=response, body={"message": "m", "code": code})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("make", "category", "cause"),
    [
        (
            lambda: _status_error(openai.AuthenticationError, 401, "invalid_api_key"),
            "permanent",
            "the API key was refused (401 invalid_api_key)",
        ),
        (
            lambda: _status_error(openai.PermissionDeniedError, 403, None),
            "permanent",
            "the API key may not use model 'm' (403)",
        ),
        (
            lambda: _status_error(openai.NotFoundError, 404, "model_not_found"),
            "permanent",
            "the endpoint does not serve model 'm'",
        ),
        (lambda: _status_error(openai.NotFoundError, 404, 404), "permanent", "no chat completions route (404)"),
        (
            lambda: _status_error(openai.BadRequestError, 400, "context_length_exceeded"),
            "permanent",
            "the prompt is over model 'm''s context",
        ),
        (
            lambda: _status_error(openai.UnprocessableEntityError, 422, None),
            "permanent",
            "the endpoint refused the request (422)",
        ),
        (
            lambda: _status_error(openai.RateLimitError, 429, "insufficient_quota"),
            "permanent",
            "no quota left (429 insufficient_quota)",
        ),
        (
            lambda: _status_error(openai.RateLimitError, 429, "rate_limit_exceeded", {"retry-after-ms": "1500"}),
            "rate_limit",
            "rate limited",
        ),
        (lambda: _status_error(openai.InternalServerError, 503, None), "transient", "the endpoint failed (503)"),
        (lambda: openai.APITimeoutError(request=_request()), "transient", "no answer in time"),  # type: ignore[arg-type]
        (lambda: openai.APIConnectionError(request=_request()), "transient", "APIConnectionError"),  # type: ignore[arg-type]
        (lambda: TimeoutError(), "transient", "no answer in time"),
        (lambda: ValueError("a streamed answer"), "transient", "ValueError"),
    ],
)
def test_each_error_is_classified_by_its_type_status_and_code(
    make: Callable[[], Exception], category: str, cause: str
) -> None:
    fault = classify(make(), model="m")
    assert fault.category == category and cause in fault.cause
    assert "an error message" not in fault.cause  # the message text is never read
    if category == "rate_limit":
        assert fault.retry_after_s == 1.5


def test_a_shorter_prompt_leaves_out_openevolves_program_history() -> None:
    user = "# Current Program Information\n- Fitness: 1\n\n# Program Evolution History\n## Previous Attempts\n"
    user += "x" * 500 + "\n\n# Current Program\n```python\nCANDIDATES = []\n```\n# Task\nRewrite."
    shorter = shorter_messages([{"role": "user", "content": user}])
    assert shorter is not None
    text = shorter[0]["content"]
    assert "x" * 10 not in text and "# Current Program\n" in text and "# Program Evolution History\n(left out" in text
    assert shorter_messages([{"role": "user", "content": "no history here"}]) is None
