"""Tune a Helion vector-add kernel with the OpenEvolve search and report its memory throughput.

The kernel is built with ``helion.kernel(fn, autotuner_fn=openevolve_autotuner(...))``; its
first call runs the search. The script then times Helion's default config and the tuned config
and prints their throughput in GB/s (3 tensors of ``--size`` elements moved per call) and the
share of the device's peak memory bandwidth (from torch's CUDA device properties; 'unknown'
where torch does not expose them, e.g. on the CPU).

On a GPU the kernel runs through Triton; with no GPU, through Helion's Pallas backend in
interpret mode on the CPU (said in the first line). The LLM is ``--api-base`` (key from
OPENAI_API_KEY) when given; else the plugin's bundled stand-in server, unless ``--no-standin``,
in which case OPENAI_API_KEY's endpoint is used if a key is set and, with none, the search falls
back to random search and the script prints why. ``--simple`` runs the kernel once with the
default config (no tuning) and checks it against ``x + y``.

    python examples/helion_vector_add_tuning.py --size 16777216 --max-evaluations 40
    python examples/helion_vector_add_tuning.py --simple
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

ON_GPU = "--cpu" not in sys.argv and __import__("torch").cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("HELION_BACKEND", "pallas")
    os.environ.setdefault("HELION_PALLAS_INTERPRET", "1")

import helion.language as hl  # noqa: E402
import torch  # noqa: E402

import helion  # noqa: E402


def vector_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise ``x + y``, one Helion tile at a time."""
    out = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        out[tile] = x[tile] + y[tile]
    return out


def device_line() -> str:
    if ON_GPU:
        return f"device: {torch.cuda.get_device_name()} (Triton backend)"
    return "device: CPU (no GPU in use: Helion Pallas backend, interpret mode)"


def peak_bandwidth_gbs() -> float | None:
    """Peak memory bandwidth in GB/s from torch's device properties, or None when not exposed."""
    if not ON_GPU:
        return None
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    clock_khz = getattr(props, "memory_clock_rate", None)
    bus_bits = getattr(props, "memory_bus_width", None)
    if not clock_khz or not bus_bits:
        return None
    return clock_khz * 1e3 * bus_bits * 2 / 8 / 1e9  # double data rate, bits -> bytes


def latency_ms(fn: Callable[[], object]) -> float:
    if ON_GPU:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=100))
    fn()
    t0 = time.perf_counter()
    for _ in range(3):
        fn()
    return (time.perf_counter() - t0) / 3 * 1e3


def config_gbs(kernel: Any, args: tuple[torch.Tensor, ...], config: helion.Config) -> float:
    compiled = kernel.bind(args).compile_config(config)
    ms = latency_ms(lambda: compiled(*args))
    moved = sum(a.numel() * a.element_size() for a in args) + args[0].numel() * args[0].element_size()
    return moved / (ms * 1e-3) / 1e9


def fallback_reason(search: object | None, record: Path) -> str | None:
    """Why the search fell back to random search: from the search object, else the run record."""
    inner = getattr(search, "autotuner", search)  # the cache layer wraps the search
    reason = getattr(inner, "fallback_reason", None)
    if reason:
        return str(reason)
    if record.exists():
        for line in record.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("kind") == "fallback":
                return str(entry.get("reason"))
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=None, help="elements per vector (GPU 2**24, CPU 2**12)")
    p.add_argument("--max-evaluations", type=int, default=None, help="configs measured (default: effort's)")
    p.add_argument("--api-base", default=None, help="an OpenAI-compatible endpoint (key: OPENAI_API_KEY)")
    p.add_argument("--model", default=None)
    p.add_argument("--record", default=None, help="JSON-lines run record (default: a temporary file)")
    p.add_argument("--llm-latency", type=float, default=0.5, help="stand-in LLM seconds per answer")
    p.add_argument("--no-standin", action="store_true", help="do not start the bundled stand-in LLM")
    p.add_argument("--simple", action="store_true", help="run the default config once and check it; no tuning")
    p.add_argument("--force", action="store_true", help="set HELION_SKIP_CACHE=1: tune even if cached")
    p.add_argument("--cpu", action="store_true", help="use the CPU interpret backend even with a GPU")
    a = p.parse_args()
    print(device_line(), flush=True)
    os.environ.setdefault("HELION_AUTOTUNE_EFFORT", "quick")
    if a.force:
        os.environ["HELION_SKIP_CACHE"] = "1"
    device = "cuda" if ON_GPU else "cpu"
    dtype = torch.float16 if ON_GPU else torch.float32
    size = a.size or (1 << 24 if ON_GPU else 1 << 12)
    args = (torch.randn(size, device=device, dtype=dtype), torch.randn(size, device=device, dtype=dtype))

    if a.simple:
        kernel = helion.kernel(vector_add)
        bound = kernel.bind(args)
        out = bound.compile_config(bound.config_spec.default_config())(*args)
        torch.testing.assert_close(out, args[0] + args[1])
        print(f"simple: default config {bound.config_spec.default_config()} on {size} elements: correctness ok")
        return

    record = Path(a.record or Path(tempfile.mkdtemp(prefix="vector-add-")) / "record.jsonl")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    settings: dict[str, object] = {"record_path": str(record)}
    if a.max_evaluations is not None:
        settings["max_evaluations"] = a.max_evaluations
    if a.model:
        settings["model"] = a.model
    standin = None
    if a.api_base:
        settings["api_base"] = a.api_base
        print(f"LLM: {a.api_base}")
    elif not a.no_standin:
        from helion.autotuner.openevolve.standin_llm import StandinLLM

        standin = StandinLLM(mode="neighbors", latency_s=a.llm_latency).start()
        settings.update(api_base=standin.url, api_key="standin")
        print(f"LLM: bundled stand-in server at {standin.url}, {a.llm_latency}s per answer")
    elif os.environ.get("OPENAI_API_KEY"):
        print("LLM: the default endpoint with OPENAI_API_KEY (--no-standin)")
    else:
        print("LLM: none (--no-standin, no --api-base, no OPENAI_API_KEY): the search will fall back to random search")

    from helion.autotuner.openevolve_tuner import openevolve_autotuner

    inner_fn = openevolve_autotuner(**settings)
    searches: list[object] = []

    def autotuner_fn(bound_kernel: Any, fn_args: Any, **kwargs: Any) -> Any:
        search = inner_fn(bound_kernel, fn_args, **kwargs)
        searches.append(search)
        return search

    kernel = helion.kernel(vector_add, autotuner_fn=autotuner_fn)
    try:
        t0 = time.perf_counter()
        out = kernel(*args)  # the first call runs the search
        wall = time.perf_counter() - t0
    finally:
        if standin is not None:
            standin.stop()
    torch.testing.assert_close(out, args[0] + args[1])
    bound = kernel.bind(args)
    default, tuned = bound.config_spec.default_config(), bound._config
    search = searches[-1] if searches else None
    if search is None or not record.exists():
        print("tuning: config served from Helion's cache (use --force to tune again)")
    else:
        summary = getattr(getattr(search, "autotuner", search), "summary", None) or {}
        detail = (
            f"{summary.get('mode')}, {summary.get('evaluations')} evaluations, {summary.get('llm_calls')} LLM calls, "
        )
        print(f"tuning: {detail if summary else ''}{wall:.1f}s, run record {record}")
    if (reason := fallback_reason(search, record)) is not None:
        print(f"search fell back to random search: {reason}")
    peak = peak_bandwidth_gbs()
    print(f"peak memory bandwidth: {f'{peak:.0f} GB/s' if peak else 'unknown'}")
    for name, config in (("default", default), ("tuned", tuned)):
        gbs = config_gbs(kernel, args, config)
        share = f"{gbs / peak:.1%} of peak" if peak else "share of peak unknown"
        print(f"{name:<8} {gbs:10.4g} GB/s  ({share})  {config}")
    print("correctness ok")


if __name__ == "__main__":
    main()
