"""The system message OpenEvolve sends with every request: kernel, device, space, rules.

Kernel source, input shapes and the device come from Helion's own prompt helpers
(``helion.autotuner.llm.workload``), the space from :class:`.space.HelionSpace`. OpenEvolve
adds the evolving parts itself (the parent program, top programs, their metrics and our
feedback artifacts) to each user message.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from helion.autotuner.llm.workload import compute_workload_hints
from helion.autotuner.llm.workload import describe_kernel
from helion.autotuner.llm.workload import detect_workload_traits

if TYPE_CHECKING:
    from collections.abc import Sequence

    from helion.autotuner.base_search import _AutotunableKernel

    from .space import HelionSpace


def answer_rules(candidates: int, *, diff_based: bool) -> str:
    how = (
        "Answer with SEARCH/REPLACE blocks that replace the CANDIDATES list of the current program."
        if diff_based
        else "Answer with the whole new program in one ```python fenced block."
    )
    return (
        "## How to answer\n"
        "The program you evolve is data, not code: its evolve block assigns one list literal,\n"
        "CANDIDATES = [ {...}, ... ], of configs for this kernel. Each dict sets some fields; fields\n"
        "left out take the default config's value. Use only the fields and values of the search\n"
        "space, written as Python literals (True/False/None). No expressions, calls or comments.\n"
        f"Propose {candidates} candidates that have not been measured yet: mix small moves around\n"
        "the best config so far with a few bolder ones. The feedback of earlier programs lists each\n"
        "candidate's time (ms, lower is better) and speedup over the default, failures and rejection\n"
        "reasons; BEST_CONFIG_JSON is the best config measured so far.\n"
        f"{how}\n"
    )


def _json_section(title: str, data: object) -> str:
    return f"## {title}\n```json\n{json.dumps(data, sort_keys=False, default=str)}\n```\n"


def system_message(
    *,
    kernel: _AutotunableKernel,
    args: Sequence[object],
    space: HelionSpace,
    candidates: int,
    diff_based: bool,
) -> str:
    spec = space.config_spec
    hints = compute_workload_hints(
        args,
        flat_fields=spec._flat_fields(),
        backend=spec.backend_name,
        workload_traits=detect_workload_traits(kernel, config_spec=spec),
    )
    return "\n".join(
        [
            f"You tune the config of a Helion kernel (backend: {spec.backend_name}) for speed.",
            "Helion compiles the kernel once per config; the search measures each config you propose.\n",
            describe_kernel(kernel, args),
            _json_section("Search space", space.describe()),
            _json_section("Default config", space.to_plain(space.default)),
            hints,
            answer_rules(candidates, diff_based=diff_based),
        ]
    )
