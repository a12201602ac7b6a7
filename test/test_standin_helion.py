"""The stand-in LLM against Helion's own LLM searches: Helion's prompts, transport and parser.

Helion's ``LLMGuidedSearch`` and ``LLMSeededLFBOTreeSearch`` with ``provider="openai"`` speak
OpenAI's Responses API through ``helion.autotuner.llm.transport``. These tests build Helion's
prompts for kernels bound to CPU tensors (the Triton config space), send them as Helion does and
read the answers with Helion's own ``parse_response_configs``; the last one runs the real
search on the Pallas CPU interpreter with the stand-in in knowing mode.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
import random
from typing import TYPE_CHECKING
from typing import Any
import urllib.request

from helion.autotuner.benchmark_provider import BenchmarkResult
from helion.autotuner.llm import transport
from helion.autotuner.llm.configs import parse_response_configs
from helion.autotuner.llm.configs import validate_sparse_config_shape
from helion.autotuner.llm.feedback import summarize_anchor_configs_for_llm
from helion.autotuner.llm.prompting import build_initial_prompt
from helion.autotuner.llm.prompting import build_refinement_prompt
from helion.autotuner.llm.prompting import build_system_prompt
from helion.autotuner.llm_search import LLMGuidedSearch
from helion.autotuner.search_space_logger import canonical_config_id
import kernels
from oe_util import fast_pallas  # noqa: F401 (fixture)
import openai
import pytest
import standin_answers as answers
from standin_llm import StandinLLM
import torch

import helion

if TYPE_CHECKING:
    from collections.abc import Iterator

    from helion.runtime.kernel import BoundKernel

Messages = list[dict[str, str]]

ARGS = {
    "matmul": lambda: (torch.randn(64, 64), torch.randn(64, 64)),
    "softmax": lambda: (torch.randn(64, 128),),
    "attention": lambda: tuple(torch.randn(2, 32, 16) for _ in range(3)),
    "layer_norm": lambda: (torch.randn(64, 128), torch.randn(128), torch.randn(128)),
}


class Log:
    """Stands in for the search's logger: keeps what Helion's parser says."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, *parts: object) -> None:
        self.lines.append(" ".join(map(str, parts)))

    warning = debug = __call__


@pytest.fixture(scope="module")
def bound() -> dict[str, tuple[BoundKernel, tuple[torch.Tensor, ...]]]:
    """Fresh kernels (Triton, whatever the environment) bound to CPU tensors, by name."""
    out = {}
    for name, make_args in ARGS.items():
        kernel = getattr(kernels, name)
        args = make_args()
        out[name] = (helion.kernel(kernel.fn, static_shapes=kernel.settings.static_shapes).bind(args), args)
    return out


@pytest.fixture
def llm() -> Iterator[StandinLLM]:
    with StandinLLM(seed=1) as server:
        yield server


def helion_messages(kernel: BoundKernel, args: tuple[torch.Tensor, ...], n: int) -> Messages:
    """The system message and initial prompt LLMGuidedSearch sends first."""
    spec = kernel.config_spec
    user = build_initial_prompt(kernel=kernel, args=args, config_spec=spec, configs_per_round=n, compile_timeout_s=15)
    return [
        {"role": "system", "content": build_system_prompt(backend=spec.backend_name)},
        {"role": "user", "content": user},
    ]


def ask(llm: StandinLLM, messages: Messages, model: str = "standin") -> str:
    """One request through Helion's own transport, as LLMGuidedSearch(provider="openai") sends it."""
    return transport.call_provider(
        "openai",
        model=model,
        api_base=llm.url,
        api_key="x",
        messages=messages,
        max_output_tokens=4096,
        request_timeout_s=10,
    )


def parse(text: str, kernel: BoundKernel) -> tuple[list[helion.Config], Log]:
    log = Log()
    default = dict(kernel.config_spec.autotune_reference_config())
    return parse_response_configs(text, config_spec=kernel.config_spec, default_config_dict=default, log=log), log


def test_responses_request_in_helions_exact_shape(bound: dict[str, Any], llm: StandinLLM) -> None:
    kernel, args = bound["matmul"]
    messages = helion_messages(kernel, args, 5)
    # What Helion's transport sends for provider="openai": built by Helion, posted with urllib.
    url = transport._resolve_v1_endpoint(llm.url, "responses")
    body = transport._openai_payload("standin", messages, 2176, None, False)
    headers = transport._openai_headers("x", False)
    assert url == f"{llm.url}/responses"
    assert set(body) == {"model", "input", "max_output_tokens", "instructions"}
    assert body["input"][0]["content"][0]["type"] == "input_text"
    assert headers == {"Authorization": "Bearer x", "Content-Type": "application/json"}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        payload = json.load(reply)
    assert payload["object"] == "response"
    assert transport.extract_openai_response_text(payload) == payload["output_text"]
    assert set(payload["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    configs = json.loads(payload["output_text"])["configs"]
    assert len(configs) == 5 and all(isinstance(c, dict) and c for c in configs)
    assert llm.prompts[0] == [{"role": "system", "content": messages[0]["content"]}, messages[1]]


@pytest.mark.parametrize("mode", ["neighbors", "random"])
@pytest.mark.parametrize("name", list(ARGS))
def test_blind_answers_are_configs_of_the_space(name: str, mode: str, bound: dict[str, Any], llm: StandinLLM) -> None:
    kernel, args = bound[name]
    text = ask(llm, helion_messages(kernel, args, 6), model=f"standin:{mode}")
    raw = json.loads(text)["configs"]
    assert len(raw) == 6 and len({json.dumps(c, sort_keys=True) for c in raw}) == 6
    fields = kernel.config_spec._flat_fields()
    for config in raw:
        assert config and set(config) <= set(fields), config
        validate_sparse_config_shape(config, config_spec=kernel.config_spec)  # list lengths, scalars
    configs, log = parse(text, kernel)
    assert configs, log.lines
    assert not [line for line in log.lines if line.startswith("Skipping")], log.lines


def test_neighbours_of_the_anchors_of_a_refinement_prompt(bound: dict[str, Any], llm: StandinLLM) -> None:
    kernel, args = bound["matmul"]
    default = dict(kernel.config_spec.autotune_reference_config())
    anchor = {**default, "num_warps": 8, "block_sizes": [32, 32, 16]}
    result = BenchmarkResult(config=helion.Config(**anchor), fn=None, perf=1.0, status="ok", compile_time=0.1)  # type: ignore[arg-type]
    refinement = build_refinement_prompt(
        backend="triton",
        configs_per_round=4,
        compile_timeout_s=15,
        failed_count=0,
        total_count=1,
        search_state="",
        anchor_configs=summarize_anchor_configs_for_llm([result], default),
        results="",
        top_patterns="",
        failed_patterns="",
    )
    first = helion_messages(kernel, args, 4)
    text = ask(
        llm, [*first, {"role": "assistant", "content": '{"configs":[]}'}, {"role": "user", "content": refinement}]
    )
    raw = json.loads(text)["configs"]
    assert len(raw) == 4
    space, full_default = answers.helion_space(first[1]["content"])  # the default of every field
    for config in raw:
        moved = [k for k in space if {**full_default, **config}[k] != {**full_default, **anchor}[k]]
        assert 1 <= len(moved) <= 2, config


def test_knowing_answers_the_known_configs_first_over_both_apis(bound: dict[str, Any]) -> None:
    kernel, args = bound["matmul"]
    messages = helion_messages(kernel, args, 4)
    known = {"block_sizes": [32, 32, 16], "num_warps": 8, "pid_type": "flat", "pallas_loop_type": "unroll", "bogus": 1}
    with StandinLLM(mode="knowing", known_configs=[known]) as server:
        via_responses = ask(server, messages)
        chat = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0, timeout=10).chat.completions
        via_chat = chat.create(model="standin", messages=messages).choices[0].message.content or ""  # type: ignore[arg-type]
    for text in (via_responses, via_chat):
        raw = json.loads(text)["configs"]
        # sparse against the prompt's default, fields of the prompt's space only
        assert raw[0] == {"block_sizes": [32, 32, 16], "num_warps": 8}
        assert len(raw) == 4
        configs, _ = parse(text, kernel)
        assert {k: configs[0].config[k] for k in ("block_sizes", "num_warps")} == raw[0]


@pytest.mark.parametrize("mode", ["garbage", "empty", "code", "invalid", "huge"])
def test_hostile_answers_reach_helions_parser(mode: str, bound: dict[str, Any], llm: StandinLLM) -> None:
    kernel, args = bound["matmul"]
    messages = helion_messages(kernel, args, 4)
    text = ask(llm, messages, model=f"standin:{mode}")
    configs, log = parse(text, kernel)
    if mode == "huge":
        assert len(text) > answers.HUGE_BYTES and len(configs) >= 1
    elif mode == "invalid":
        space, _ = answers.helion_space(messages[1]["content"])
        raw = json.loads(text)["configs"]
        assert len(raw) == 4 and not any(answers.config_is_valid(space, c) for c in raw)
    else:
        assert configs == [] and "Failed to parse LLM response as a config list" in log.lines


def test_fail_after_reaches_helion_as_an_http_500(bound: dict[str, Any], llm: StandinLLM) -> None:
    kernel, args = bound["softmax"]
    messages = helion_messages(kernel, args, 2)
    assert json.loads(ask(llm, messages, model="standin:fail_after:1"))["configs"]
    with pytest.raises(RuntimeError, match=r"HTTP 500 from http://127\.0\.0\.1:\d+/v1/responses"):
        ask(llm, messages, model="standin:fail_after:1")


def test_helion_space_reads_every_field_kind() -> None:
    text = (
        "## Configuration Space\n"
        "  block_sizes: [power_of_2(min=16, max=64, default=16), power_of_2(min=1, max=1, default=1)]\n"
        "  loop_orders: list of 1 x permutation(length=2)\n"
        "  num_stages: integer(min=1, max=8, default=1)\n"
        "  num_threads: list of 2 x integer(0=auto, or power_of_2(min=1, max=32), default=0)\n"
        "  pid_type: enum('flat', 'xyz', None)\n"
        "  flag: boolean(default=False)\n"
        "  atomic_indexing: list of 0 x enum('pointer')\n"
        "  mystery: SomethingNew()\n"
        "  buffers: list of 2 x integer(min=1, max=2, default=1)\n"
        "\n## Default Configuration\n"
        '{"block_sizes":[32,1],"loop_orders":[[0,1]],"num_stages":2,"pid_type":"flat","atomic_indexing":[],"mystery":7}\n'
        "  a workload hint\n"
    )
    space, default = answers.helion_space(text)
    assert space["block_sizes"]["items"][0] == {"type": "pow2", "min": 16, "max": 64, "default": 16}
    assert space["num_threads"] == {"type": "list", "items": [{"type": "threads", "max": 32}] * 2}
    assert space["pid_type"] == {"type": "enum", "choices": ["flat", "xyz", None]}
    assert space["mystery"] == {"type": "fixed", "value": 7}
    assert space["atomic_indexing"]["type"] == "fixed"
    assert default == {
        "block_sizes": [32, 1],
        "loop_orders": [[0, 1]],
        "num_stages": 2,
        "num_threads": [0, 0],
        "pid_type": "flat",
        "flag": False,
        "atomic_indexing": [],
        "mystery": 7,
        "buffers": [1, 1],  # not in the prompt's default: each item's own default
    }
    for seed in range(20):
        config = {k: answers.random_value(s, random.Random(seed)) for k, s in space.items()}
        assert answers.config_is_valid(space, config)


# -- the real search ---------------------------------------------------------------------------


@pytest.mark.usefixtures("fast_pallas")
def test_llm_guided_search_measures_the_known_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Helion's LLMGuidedSearch, Pallas on the CPU, one LLM round: the known config is measured."""
    monkeypatch.setenv("HELION_AUTOTUNE_FINAL_PICK_TOP_K", "0")  # slow paired re-timing on the CPU
    monkeypatch.setenv("OPENAI_API_KEY", "any")
    args = (torch.randn(64, 64), torch.randn(64, 64))
    kernel = helion.kernel(kernels.matmul.fn).bind(args)
    assert kernel.config_spec.backend_name == "pallas"
    kernel.settings.autotune_log = str(tmp_path / "tune")
    known = {"block_sizes": [32, 64, 64], "pallas_loop_type": "unroll"}
    with StandinLLM(mode="knowing", known_configs=[known], seed=1) as llm:
        search = LLMGuidedSearch(
            kernel,
            args,
            provider="openai",
            model="standin",
            api_base=llm.url,
            configs_per_round=3,
            max_rounds=1,
            initial_random_configs=0,
        )
        best = search.autotune()
    assert llm.requests == 1
    assert llm.prompts[0][0]["content"].startswith("You are an expert GPU kernel autotuner for Helion")
    proposed, _ = parse(llm.responses[0], kernel)
    assert {k: proposed[0].config[k] for k in known} == known
    with (tmp_path / "tune.csv").open() as f:
        measured = {row["config_id"] for row in csv.DictReader(f) if row["status"] == "ok"}
    assert canonical_config_id(proposed[0]) in measured
    assert canonical_config_id(best) in measured
