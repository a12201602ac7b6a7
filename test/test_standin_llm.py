"""Tests for the stand-in LLM (examples/standin_llm.py and standin_answers.py, on ``sys.path``
through conftest) with OpenEvolve's prompts: text, knowing and fault modes over both APIs.

Requests go over real HTTP through the ``openai`` client, OpenEvolve's own client and urllib.
Helion's own LLM searches against the stand-in are tested in test_standin_helion.py.
"""

from __future__ import annotations

import ast
import asyncio
import json
from pathlib import Path
import random
import re
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
import urllib.error
import urllib.request

import openai
from openevolve.config import LLMModelConfig
from openevolve.llm.openai import OpenAILLM
from openevolve.utils.code_utils import apply_diff_blocks
from openevolve.utils.code_utils import extract_diffs
import pytest
import standin_answers as answers
from standin_llm import StandinLLM
from standin_llm import load_known

if TYPE_CHECKING:
    from collections.abc import Iterator

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SPACE: dict[str, Any] = {
    "block_sizes": {
        "type": "list",
        "items": [
            {"type": "pow2", "min": 16, "max": 256},
            {"type": "pow2", "min": 16, "max": 256},
            {"type": "pow2", "min": 16, "max": 128},
        ],
    },
    "num_warps": {"type": "pow2", "min": 1, "max": 32},
    "num_stages": {"type": "int", "min": 1, "max": 8},
    "pid_type": {"type": "enum", "choices": ["flat", "persistent_blocked", None]},
    "flatten": {"type": "bool"},
    "loop_order": {"type": "permutation", "length": 2},
    "num_threads": {"type": "threads", "max": 32},
    "indexing": {"type": "fixed", "value": "pointer"},
    "mode": {"type": "choice", "choices": [0, 1, True]},
}
DEFAULT: dict[str, Any] = {
    "block_sizes": [64, 64, 32],
    "num_warps": 4,
    "num_stages": 2,
    "pid_type": "flat",
    "flatten": False,
    "loop_order": [0, 1],
    "num_threads": 0,
    "indexing": "pointer",
    "mode": 0,
}
PROGRAM = '''"""Candidate configs for kernel `matmul` (data only, never executed)."""
# EVOLVE-BLOCK-START
CANDIDATES = [
    {"block_sizes": [64, 64, 32], "num_warps": 4},
    {"block_sizes": [128, 64, 32], "num_warps": 8, "pid_type": "flat"},
]
# EVOLVE-BLOCK-END
'''
OTHER_PROGRAM = PROGRAM.replace('"num_warps": 4}', '"num_warps": 2, "flatten": True}')


def system_text(n: int) -> str:
    return (
        "You tune Helion kernels.\n\n## Search space\n```json\n"
        f"{json.dumps(SPACE)}\n```\n\n## Default config\n```json\n"
        f"{json.dumps(DEFAULT)}\n```\n\nPropose {n} candidates per answer.\n"
    )


def user_text(*, diff: bool = False, extra: str = "") -> str:
    history = f"# Program Evolution History\n```python\n{OTHER_PROGRAM}```\n\n"
    task = "Use this format:\n<<<<<<< SEARCH\nold\n=======\nnew\n>>>>>>> REPLACE\n"
    current = f"# Current Program\n```python\n{PROGRAM}```\n\n"
    return history + current + extra + (task if diff else "Rewrite the program.\n")


@pytest.fixture
def llm() -> Iterator[StandinLLM]:
    with StandinLLM(seed=1) as server:
        yield server


def client(url: str, timeout: float = 10.0) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="x", max_retries=0, timeout=timeout)


def chat(url: str, model: str = "standin", n: int = 5, **kw: Any) -> str:
    messages = [
        {"role": "system", "content": system_text(n)},
        {"role": "user", "content": user_text(**kw)},
    ]
    reply = client(url).chat.completions.create(model=model, messages=messages)
    return reply.choices[0].message.content or ""


def candidates_of(program: str) -> list[Any]:
    span = answers.candidates_span(program)
    assert span is not None, program
    text = program[span[0] : span[1]]
    return ast.literal_eval(text[text.index("[") :])


def python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, text[:500]
    return match.group(1)


def assert_valid_batch(candidates: list[Any], n: int) -> None:
    assert len(candidates) == n
    assert all(isinstance(c, dict) and c for c in candidates)
    assert all(answers.config_is_valid(SPACE, c) for c in candidates), candidates
    assert len({json.dumps(c, sort_keys=True) for c in candidates}) == n
    assert all("indexing" not in c for c in candidates)


def test_neighbors_full_rewrite_over_http(llm: StandinLLM) -> None:
    program = python_block(chat(llm.url, n=5))
    assert program.startswith('"""Candidate configs for kernel `matmul`')
    assert "# EVOLVE-BLOCK-START" in program
    assert "# EVOLVE-BLOCK-END" in program
    assert_valid_batch(candidates_of(program), 5)


def test_diff_mode_applies_with_openevolve(llm: StandinLLM) -> None:
    text = chat(llm.url, n=3, diff=True)
    new_program, applied = apply_diff_blocks(PROGRAM, extract_diffs(text))
    assert applied == 1
    assert new_program.startswith('"""Candidate configs for kernel `matmul`')
    assert new_program.count("# EVOLVE-BLOCK-") == 2
    assert_valid_batch(candidates_of(new_program), 3)


def test_neighbors_move_one_or_two_fields_of_best() -> None:
    best = {**DEFAULT, "num_warps": 8, "block_sizes": [128, 64, 32]}
    extra = f"Feedback\nBEST_CONFIG_JSON: {json.dumps(best)}\n"
    text = answers.propose(system_text(8), user_text(extra=extra), "neighbors", random.Random(3))
    candidates = candidates_of(python_block(text))
    assert_valid_batch(candidates, 8)
    for candidate in candidates:
        full = {**DEFAULT, **candidate}
        moved = [k for k in SPACE if full[k] != best[k]]
        assert 1 <= len(moved) <= 2, (candidate, moved)


def test_neighbors_are_deterministic_per_seed() -> None:
    def run(seed: int) -> str:
        return answers.propose(system_text(4), user_text(), "neighbors", random.Random(seed))

    assert run(7) == run(7)


def test_random_and_invalid_modes() -> None:
    rng = random.Random(0)
    text = answers.propose(system_text(6), user_text(), "random", rng)
    assert_valid_batch(candidates_of(python_block(text)), 6)
    text = answers.propose(system_text(6), user_text(), "invalid", rng)
    invalid = candidates_of(python_block(text))
    assert len(invalid) == 6
    assert not any(answers.config_is_valid(SPACE, c) for c in invalid)
    assert {"not_a_field": 1} in invalid


def test_batch_default_and_fallback_to_default_config() -> None:
    system = system_text(1).replace("Propose 1 candidates", "Suggest some")
    text = answers.propose(system, "no program here", "neighbors", random.Random(0))
    assert_valid_batch(candidates_of(python_block(text)), 4)


def test_text_failure_modes() -> None:
    rng = random.Random(0)
    assert answers.propose("", "", "empty", rng) == ""
    garbage = answers.propose(system_text(2), user_text(), "garbage", rng)
    assert "```" not in garbage
    with pytest.raises(SyntaxError):
        ast.parse(garbage)
    huge = answers.propose(system_text(2), user_text(), "huge", rng)
    assert 4_500_000 < len(huge) < 6_000_000
    code = python_block(answers.propose(system_text(2), user_text(), "code", rng))
    assert "__import__('os').system" in code
    assert "lambda" in code
    with pytest.raises(ValueError):
        candidates_of(code)


def test_error500_and_error429(llm: StandinLLM) -> None:
    llm.mode = "error500"
    with pytest.raises(openai.InternalServerError):
        chat(llm.url)
    with pytest.raises(openai.RateLimitError) as info:
        chat(llm.url, model="standin:error429")
    assert info.value.response.headers["retry-after"] == "1"


def test_drop_closes_connection(llm: StandinLLM) -> None:
    with pytest.raises(openai.APIConnectionError):
        chat(llm.url, model="standin:drop")


def test_per_request_mode_and_counters(llm: StandinLLM) -> None:
    assert chat(llm.url, model="standin:garbage") == answers.GARBAGE_TEXT
    assert chat(llm.url, model="standin:empty") == ""
    assert "CANDIDATES" in chat(llm.url, model="gpt-whatever")
    assert llm.requests == 3
    assert len(llm.prompts) == 3
    assert llm.prompts[0][0]["role"] == "system"
    assert llm.responses[:2] == [answers.GARBAGE_TEXT, ""]


def test_latency_is_honoured() -> None:
    with StandinLLM(latency_s=0.4) as server:
        start = time.monotonic()
        chat(server.url, n=2)
        assert time.monotonic() - start >= 0.4


def test_usage_and_models_and_404(llm: StandinLLM) -> None:
    messages = [{"role": "user", "content": "x" * 400}]
    reply = client(llm.url).chat.completions.create(model="standin", messages=messages)
    assert reply.object == "chat.completion"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 100
    assert reply.choices[0].finish_reason == "stop"
    ids = [m.id for m in client(llm.url).models.list()]
    assert "standin:neighbors" in ids
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(f"{llm.url}/completions", data=b"{}"), timeout=5)
    assert info.value.code == 404


def test_openevolve_client_round_trip(llm: StandinLLM) -> None:
    cfg = LLMModelConfig(api_base=llm.url, api_key="x", name="standin", timeout=10, retries=0)
    messages = [{"role": "user", "content": user_text()}]
    text = asyncio.run(OpenAILLM(cfg).generate_with_context(system_text(4), messages))
    assert_valid_batch(candidates_of(python_block(text)), 4)


def test_stop_does_not_wait_for_hanging_request() -> None:
    server = StandinLLM(mode="hang").start()
    errors: list[BaseException] = []

    def call() -> None:
        try:
            chat(server.url)
        except openai.APIError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while server.requests == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.requests == 1
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2.0
    thread.join(timeout=2.0)
    assert not thread.is_alive()
    assert errors
    assert isinstance(errors[0], openai.APIConnectionError)


def test_imports_neither_torch_nor_helion() -> None:
    code = "import sys, standin_llm; print(sorted(m for m in ('torch', 'helion') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=EXAMPLES, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


# -- the Responses API ---------------------------------------------------------------------------


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def responses_body(model: str = "standin", n: int = 5) -> dict[str, Any]:
    """OpenEvolve's prompt carried by the Responses API: the answer follows the prompt's dialect."""
    text = [{"type": "input_text", "text": user_text()}]
    return {"model": model, "instructions": system_text(n), "input": [{"role": "user", "content": text}]}


def test_responses_api_answers_in_the_prompts_dialect(llm: StandinLLM) -> None:
    reply = post(f"{llm.url}/responses", responses_body(n=3))
    assert reply["object"] == "response" and reply["model"] == "standin"
    (message,) = reply["output"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert [part["type"] for part in message["content"]] == ["output_text"]
    assert message["content"][0]["text"] == reply["output_text"]
    assert_valid_batch(candidates_of(python_block(reply["output_text"])), 3)
    usage = reply["usage"]
    assert usage["input_tokens"] > 0 and usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert llm.prompts[-1][0] == {"role": "system", "content": system_text(3)}


def test_responses_api_through_the_openai_client(llm: StandinLLM) -> None:
    reply = client(llm.url).responses.create(model="standin", instructions=system_text(2), input=user_text())
    assert_valid_batch(candidates_of(python_block(reply.output_text)), 2)
    reply = client(llm.url).responses.create(model="standin:garbage", input="a plain string input")
    assert reply.output_text == answers.GARBAGE_TEXT
    assert llm.prompts[-1] == [{"role": "user", "content": "a plain string input"}]


# -- knowing ---------------------------------------------------------------------------------

KNOWN = [
    {**DEFAULT, "block_sizes": [128, 128, 64], "num_warps": 8, "not_in_space": 1},
    {"num_stages": 5, "pid_type": "not_a_choice"},
]


def test_knowing_answers_the_known_configs_first_then_their_neighbours() -> None:
    with StandinLLM(mode="knowing", known_configs=KNOWN, seed=2) as server:
        for text in (chat(server.url, n=6), post(f"{server.url}/responses", responses_body(n=6))["output_text"]):
            candidates = candidates_of(python_block(text))
            assert_valid_batch(candidates, 6)
            # sparse, fields of the space only, invalid values left to the default
            assert candidates[:2] == [{"block_sizes": [128, 128, 64], "num_warps": 8}, {"num_stages": 5}]
            for candidate in candidates[2:]:
                full = {**DEFAULT, **candidate}
                moves = min(sum(full[k] != {**DEFAULT, **known}[k] for k in SPACE) for known in candidates[:2])
                assert 1 <= moves <= 2, candidate


def test_knowing_answers_at_most_the_batch() -> None:
    text = answers.propose(system_text(1), user_text(), "knowing", random.Random(0), KNOWN)
    assert candidates_of(python_block(text)) == [{"block_sizes": [128, 128, 64], "num_warps": 8}]


def test_knowing_needs_known_configs_and_unknown_modes_are_refused(llm: StandinLLM) -> None:
    with pytest.raises(ValueError, match="known_configs"):
        StandinLLM(mode="knowing")
    with pytest.raises(ValueError, match="unknown standin mode"):
        StandinLLM(mode="fail_after:x")
    with pytest.raises(openai.BadRequestError, match="unknown standin mode"):
        chat(llm.url, model="standin:error500_alternate:hang")


def test_known_configs_from_a_json_list_and_from_a_run_record(tmp_path: Path) -> None:
    listed = tmp_path / "known.json"
    listed.write_text(json.dumps(KNOWN))
    assert load_known(listed) == KNOWN
    record = tmp_path / "run.jsonl"
    lines = [
        {"kind": "evaluation", "status": "ok", "cost": 0.03, "config": {"num_warps": 2}},
        {"kind": "evaluation", "status": "error", "cost": None, "config": {"num_warps": 32}},
        {"kind": "evaluation", "status": "ok", "cost": 0.01, "config": {"num_warps": 8}},
        {"kind": "evaluation", "status": "ok", "cost": 0.02, "config": {"num_warps": 4}},
        {"kind": "evaluation", "status": "ok", "cost": 0.01, "config": {"num_warps": 8}},
        {"kind": "summary", "best_config": {"num_warps": 16}},
    ]
    record.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert load_known(record) == [{"num_warps": 8}, {"num_warps": 4}, {"num_warps": 2}]
    assert load_known(record, top=1) == [{"num_warps": 8}]
    listed.write_text(json.dumps({"num_warps": 8}))
    with pytest.raises(ValueError, match="JSON list of configs"):
        load_known(listed)


def test_cli_serves_the_best_configs_of_a_run_record(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    best = {"block_sizes": [256, 64, 32], "num_warps": 16}
    record.write_text(json.dumps({"kind": "evaluation", "status": "ok", "cost": 0.01, "config": best}) + "\n")
    cmd = [sys.executable, str(EXAMPLES / "standin_llm.py"), "--port", "0", "--known", str(record)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert "mode knowing, 1 known configs" in line, line + proc.stderr.read()  # type: ignore[union-attr]
        url = line.split()[0]
        assert candidates_of(python_block(chat(url, n=3)))[0] == best
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


# -- faults ----------------------------------------------------------------------------------


def statuses(url: str, model: str, count: int) -> list[int]:
    out = []
    for i in range(count):
        try:
            if i % 2:  # both APIs count against the same fault mode
                post(f"{url}/responses", responses_body(model=model))
            else:
                chat(url, model=model)
            out.append(200)
        except (openai.InternalServerError, urllib.error.HTTPError) as e:
            out.append(getattr(e, "status_code", None) or getattr(e, "code", 0))
    return out


def test_fail_after_answers_n_requests_then_500() -> None:
    with StandinLLM(mode="fail_after:2") as server:
        assert statuses(server.url, "standin", 5) == [200, 200, 500, 500, 500]
        assert server.requests == 5
        assert len(server.responses) == 2
    with StandinLLM(mode="knowing", known_configs=KNOWN) as server:
        text = chat(server.url, model="standin:fail_after:1:knowing", n=2)
        assert candidates_of(python_block(text))[0] == {"block_sizes": [128, 128, 64], "num_warps": 8}
        assert statuses(server.url, "standin:fail_after:1:knowing", 2) == [500, 500]
        assert statuses(server.url, "standin:fail_after:3", 1) == [200]  # a mode of its own, its own count


def test_error500_alternate_fails_every_other_request() -> None:
    with StandinLLM(mode="error500_alternate") as server:
        assert statuses(server.url, "standin", 6) == [200, 500, 200, 500, 200, 500]
        assert statuses(server.url, "standin:error500_alternate:garbage", 2) == [200, 500]
        assert server.responses[-1] == answers.GARBAGE_TEXT
