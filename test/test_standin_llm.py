"""Tests for the stand-in LLM server (examples/standin_llm.py, on ``sys.path`` via conftest).

Requests go over real HTTP through the ``openai`` client and OpenEvolve's own client.
"""

from __future__ import annotations

import ast
import asyncio
import json
import random
import re
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

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

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


@pytest.fixture(scope="module")
def mod() -> ModuleType:
    import standin_llm

    assert "torch" not in vars(standin_llm)
    return standin_llm


@pytest.fixture
def llm(mod: ModuleType) -> Iterator[Any]:
    with mod.StandinLLM(seed=1) as server:
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


def candidates_of(mod: ModuleType, program: str) -> list[Any]:
    span = mod.candidates_span(program)
    assert span is not None, program
    text = program[span[0] : span[1]]
    return ast.literal_eval(text[text.index("[") :])


def python_block(text: str) -> str:
    match = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert match is not None, text[:500]
    return match.group(1)


def assert_valid_batch(mod: ModuleType, candidates: list[Any], n: int) -> None:
    assert len(candidates) == n
    assert all(isinstance(c, dict) and c for c in candidates)
    assert all(mod.config_is_valid(SPACE, c) for c in candidates), candidates
    assert len({json.dumps(c, sort_keys=True) for c in candidates}) == n
    assert all("indexing" not in c for c in candidates)


def test_neighbors_full_rewrite_over_http(mod: ModuleType, llm: Any) -> None:
    program = python_block(chat(llm.url, n=5))
    assert program.startswith('"""Candidate configs for kernel `matmul`')
    assert "# EVOLVE-BLOCK-START" in program
    assert "# EVOLVE-BLOCK-END" in program
    assert_valid_batch(mod, candidates_of(mod, program), 5)


def test_diff_mode_applies_with_openevolve(mod: ModuleType, llm: Any) -> None:
    text = chat(llm.url, n=3, diff=True)
    new_program, applied = apply_diff_blocks(PROGRAM, extract_diffs(text))
    assert applied == 1
    assert new_program.startswith('"""Candidate configs for kernel `matmul`')
    assert new_program.count("# EVOLVE-BLOCK-") == 2
    assert_valid_batch(mod, candidates_of(mod, new_program), 3)


def test_neighbors_move_one_or_two_fields_of_best(mod: ModuleType) -> None:
    best = {**DEFAULT, "num_warps": 8, "block_sizes": [128, 64, 32]}
    extra = f"Feedback\nBEST_CONFIG_JSON: {json.dumps(best)}\n"
    text = mod.propose(system_text(8), user_text(extra=extra), "neighbors", random.Random(3))
    candidates = candidates_of(mod, python_block(text))
    assert_valid_batch(mod, candidates, 8)
    for candidate in candidates:
        full = {**DEFAULT, **candidate}
        moved = [k for k in SPACE if full[k] != best[k]]
        assert 1 <= len(moved) <= 2, (candidate, moved)


def test_neighbors_are_deterministic_per_seed(mod: ModuleType) -> None:
    def run(seed: int) -> str:
        return mod.propose(system_text(4), user_text(), "neighbors", random.Random(seed))

    assert run(7) == run(7)


def test_random_and_invalid_modes(mod: ModuleType) -> None:
    rng = random.Random(0)
    text = mod.propose(system_text(6), user_text(), "random", rng)
    assert_valid_batch(mod, candidates_of(mod, python_block(text)), 6)
    text = mod.propose(system_text(6), user_text(), "invalid", rng)
    invalid = candidates_of(mod, python_block(text))
    assert len(invalid) == 6
    assert not any(mod.config_is_valid(SPACE, c) for c in invalid)
    assert {"not_a_field": 1} in invalid


def test_batch_default_and_fallback_to_default_config(mod: ModuleType) -> None:
    system = system_text(1).replace("Propose 1 candidates", "Suggest some")
    text = mod.propose(system, "no program here", "neighbors", random.Random(0))
    assert_valid_batch(mod, candidates_of(mod, python_block(text)), 4)


def test_text_failure_modes(mod: ModuleType) -> None:
    rng = random.Random(0)
    assert mod.propose("", "", "empty", rng) == ""
    garbage = mod.propose(system_text(2), user_text(), "garbage", rng)
    assert "```" not in garbage
    with pytest.raises(SyntaxError):
        ast.parse(garbage)
    huge = mod.propose(system_text(2), user_text(), "huge", rng)
    assert 4_500_000 < len(huge) < 6_000_000
    code = python_block(mod.propose(system_text(2), user_text(), "code", rng))
    assert "__import__('os').system" in code
    assert "lambda" in code
    with pytest.raises(ValueError):
        candidates_of(mod, code)


def test_error500_and_error429(llm: Any) -> None:
    llm.mode = "error500"
    with pytest.raises(openai.InternalServerError):
        chat(llm.url)
    with pytest.raises(openai.RateLimitError) as info:
        chat(llm.url, model="standin:error429")
    assert info.value.response.headers["retry-after"] == "1"


def test_drop_closes_connection(llm: Any) -> None:
    with pytest.raises(openai.APIConnectionError):
        chat(llm.url, model="standin:drop")


def test_per_request_mode_and_counters(mod: ModuleType, llm: Any) -> None:
    assert chat(llm.url, model="standin:garbage") == mod.GARBAGE_TEXT
    assert chat(llm.url, model="standin:empty") == ""
    assert "CANDIDATES" in chat(llm.url, model="gpt-whatever")
    assert llm.requests == 3
    assert len(llm.prompts) == 3
    assert llm.prompts[0][0]["role"] == "system"
    assert llm.responses[:2] == [mod.GARBAGE_TEXT, ""]


def test_latency_is_honoured(mod: ModuleType) -> None:
    with mod.StandinLLM(latency_s=0.4) as server:
        start = time.monotonic()
        chat(server.url, n=2)
        assert time.monotonic() - start >= 0.4


def test_usage_and_models_and_404(llm: Any) -> None:
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


def test_openevolve_client_round_trip(mod: ModuleType, llm: Any) -> None:
    cfg = LLMModelConfig(api_base=llm.url, api_key="x", name="standin", timeout=10, retries=0)
    messages = [{"role": "user", "content": user_text()}]
    text = asyncio.run(OpenAILLM(cfg).generate_with_context(system_text(4), messages))
    assert_valid_batch(mod, candidates_of(mod, python_block(text)), 4)


def test_stop_does_not_wait_for_hanging_request(mod: ModuleType) -> None:
    server = mod.StandinLLM(mode="hang").start()
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
