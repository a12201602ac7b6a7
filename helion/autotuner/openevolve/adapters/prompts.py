"""The system message OpenEvolve sends with every request: kernel, device, space, rules.

Kernel source, input shapes and the device come from Helion's own prompt helpers
(``helion.autotuner.llm.workload``), the space from :class:`.space.HelionSpace`. OpenEvolve
adds the evolving parts itself (the parent program, top programs, their metrics and our
feedback artifacts) to each user message. What earlier searches of the kernel picked comes from
:mod:`.history` (:func:`history_section`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .helion_api import compute_workload_hints
from .helion_api import describe_kernel
from .helion_api import detect_workload_traits
from .helion_api import flat_fields

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .helion_api import AutotunableKernel
    from .history import Known
    from .space import HelionSpace

#: The "What won before" section is cut to this many characters (whole lines).
HISTORY_CHARS = 1500


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


def history_section(known: Sequence[Known], default: dict[str, object]) -> str:
    """Earlier searches' picks for this kernel on this device, nearest shape first, each as its
    changes to today's default config; empty without history."""
    lines = [
        "## What won before",
        "Best configs earlier searches of this kernel found on this device, nearest shape first",
        "(fields not listed are the default config's; a good start for this shape too):",
    ]
    size = sum(len(line) + 1 for line in lines)
    for k in known:
        changes = {f: v for f, v in k.config.config.items() if default.get(f) != v}
        cost, base = k.entry.cost, k.entry.default_cost
        vs = f" (default {base:.4g} ms)" if base else ""
        where = ", ".join(k.shape) + (" (this shape)" if k.distance == 0 else "")
        what = json.dumps(changes, default=str) if changes else "the default config"
        line = f"- {where}: {cost:.4g} ms{vs}: {what}"
        if size + len(line) + 1 > HISTORY_CHARS:
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n" if len(lines) > 3 else ""


def system_message(
    *,
    kernel: AutotunableKernel,
    args: Sequence[object],
    space: HelionSpace,
    candidates: int,
    diff_based: bool,
    history: Sequence[Known] = (),
) -> str:
    spec = space.config_spec
    hints = compute_workload_hints(
        args,
        flat_fields=flat_fields(spec),
        backend=spec.backend_name,
        workload_traits=detect_workload_traits(kernel, config_spec=spec),
    )
    won_before = history_section(history, space.to_plain(space.default))
    parts = [
        f"You tune the config of a Helion kernel (backend: {spec.backend_name}) for speed.",
        "Helion compiles the kernel once per config; the search measures each config you propose.\n",
        describe_kernel(kernel, args),
        _json_section("Search space", space.describe()),
        _json_section("Default config", space.to_plain(space.default)),
        hints,
        *([won_before] if won_before else []),
        answer_rules(candidates, diff_based=diff_based),
    ]
    return "\n".join(parts)
