"""Pieces the example scripts share: backend choice, device line, timing, LLM setup, run reports.

Each script puts this folder on ``sys.path`` and calls :func:`select_backend` before it imports
Helion, because Helion reads ``HELION_BACKEND`` / ``HELION_PALLAS_INTERPRET`` at import: with no
GPU (or with ``--cpu``) the kernels run through Helion's Pallas backend in interpret mode on the
CPU. This module therefore imports nothing of Helion at module level.

    sys.path.insert(0, str(Path(__file__).parent))
    from example_support import select_backend

    ON_GPU = select_backend(sys.argv)
    import helion
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Sequence
from contextlib import contextmanager
import os
from pathlib import Path
import tempfile
import time
from typing import Any

import torch

#: Whether the kernels run on a GPU (Triton); set by :func:`select_backend`.
ON_GPU = False


def select_backend(argv: Sequence[str]) -> bool:
    """Choose GPU (Triton) or CPU (Pallas interpret) before Helion is imported; True on a GPU.

    The CPU is used with ``--cpu`` in ``argv`` or when torch sees no CUDA device; then the
    Pallas interpret backend is set in the environment unless the caller already chose one, and
    Helion's final pick is off: on the Pallas backend it times its finalists with the TPU
    profiler, whose trace never completes in interpret mode (Helion 1.5's own searches hang
    there; this search turns it off by itself).
    """
    global ON_GPU
    ON_GPU = "--cpu" not in argv and torch.cuda.is_available()
    if not ON_GPU:
        os.environ.setdefault("HELION_BACKEND", "pallas")
        os.environ.setdefault("HELION_PALLAS_INTERPRET", "1")
        os.environ.setdefault("HELION_AUTOTUNE_FINAL_PICK_TOP_K", "0")
    return ON_GPU


def device_line(*, capability: bool = False) -> str:
    """The ``device: ...`` line a script prints first; ``capability`` adds the GPU's ``sm_XY``."""
    if ON_GPU:
        if capability:
            cap = torch.cuda.get_device_capability()
            return f"device: {torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]}, Triton backend)"
        return f"device: {torch.cuda.get_device_name()} (Triton backend)"
    return "device: CPU (no GPU in use: Helion Pallas backend, interpret mode)"


def latency_ms(fn: Callable[[], object], *, warmup: int = 25, rep: int = 100, cpu_runs: int = 3) -> float:
    """Milliseconds per call of ``fn``: the median of Triton's ``do_bench`` samples on a GPU (as
    Helion's own timings take it: a few stalled samples move a mean, not a median; one pick,
    timed once by the mean right after its search, read 2.1x its re-timed latency), else the
    mean of ``cpu_runs`` wall-clock calls after one warm-up call."""
    if ON_GPU:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))
    fn()
    t0 = time.perf_counter()
    for _ in range(cpu_runs):
        fn()
    return (time.perf_counter() - t0) / cpu_runs * 1e3


def interleaved_ms(
    fns: dict[str, Callable[[], object]], rounds: int, *, warmup: int = 10, rep: int = 40
) -> dict[str, list[float]]:
    """Time every function once per round for ``rounds`` rounds, round ``r`` starting at the
    ``r``-th of them (so no function is always timed first), after one warm-up call each. A
    timing is Triton's ``do_bench`` (``warmup``, ``rep``) on a GPU, one wall-clock call on the CPU
    (a call under the Pallas interpreter takes long enough on its own). Times in ms, per name."""
    for fn in fns.values():
        fn()  # warm-up (and, on the first call, compile)
    names = list(fns)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if ON_GPU:
                times[name].append(latency_ms(fns[name], warmup=warmup, rep=rep))
            else:
                t0 = time.perf_counter()
                fns[name]()
                times[name].append((time.perf_counter() - t0) * 1e3)
    return times


def fallback_reason(search: object | None, record: Path) -> str | None:
    """Why the search fell back to random search: from the search object, else the run record."""
    inner = getattr(search, "autotuner", search)  # the cache layer wraps the search
    reason = getattr(inner, "fallback_reason", None)
    if reason:
        return str(reason)
    from helion.autotuner.openevolve.loop.record import last_line
    from helion.autotuner.openevolve.loop.record import read_record

    fallback = last_line(read_record(record), "fallback")
    return str(fallback["reason"]) if fallback else None


def add_llm_options(parser: argparse.ArgumentParser) -> None:
    """The options shared by the tuning scripts: budget, LLM, run record, cache and backend."""
    p = parser
    p.add_argument("--max-evaluations", type=int, default=None, help="configs measured (default: effort's)")
    p.add_argument("--api-base", default=None, help="an OpenAI-compatible endpoint (key: OPENAI_API_KEY)")
    p.add_argument("--model", default=None)
    p.add_argument("--record", default=None, help="JSON-lines run record (default: a temporary file)")
    p.add_argument("--llm-latency", type=float, default=0.5, help="stand-in LLM seconds per answer")
    p.add_argument("--no-standin", action="store_true", help="do not start the bundled stand-in LLM")
    p.add_argument("--force", action="store_true", help="set HELION_SKIP_CACHE=1: tune even if cached")
    p.add_argument("--cpu", action="store_true", help="use the CPU interpret backend even with a GPU")


def apply_run_env(args: argparse.Namespace) -> None:
    """Helion's effort defaults to ``quick``; ``--force`` skips Helion's autotune cache."""
    os.environ.setdefault("HELION_AUTOTUNE_EFFORT", "quick")
    if args.force:
        os.environ["HELION_SKIP_CACHE"] = "1"


def tuner_settings(args: argparse.Namespace, prefix: str) -> tuple[Path, dict[str, object]]:
    """A fresh run record (``--record``, else in a new temporary folder named ``prefix...``) and
    the ``openevolve_autotuner`` settings from ``--max-evaluations`` and ``--model``."""
    record = Path(args.record or Path(tempfile.mkdtemp(prefix=prefix)) / "record.jsonl")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    settings: dict[str, object] = {"record_path": str(record)}
    if args.max_evaluations is not None:
        settings["max_evaluations"] = args.max_evaluations
    if args.model:
        settings["model"] = args.model
    return record, settings


@contextmanager
def start_llm(args: argparse.Namespace) -> Iterator[dict[str, str]]:
    """Yield the LLM settings (``api_base``, and ``api_key`` for the stand-in) for the search.

    ``--api-base`` when given; else the bundled stand-in server (``--llm-latency`` seconds per
    answer), stopped on exit, unless ``--no-standin`` (an argument some scripts lack), which
    yields no settings. Prints the ``LLM: ...`` line.
    """
    if args.api_base:
        print(f"LLM: {args.api_base}")
        yield {"api_base": args.api_base}
        return
    if getattr(args, "no_standin", False):
        if os.environ.get("OPENAI_API_KEY"):
            print("LLM: the default endpoint with OPENAI_API_KEY (--no-standin)")
        else:
            print(
                "LLM: none (--no-standin, no --api-base, no OPENAI_API_KEY): the search will fall back to random search"
            )
        yield {}
        return
    from standin_llm import StandinLLM

    standin = StandinLLM(mode="neighbors", latency_s=args.llm_latency).start()
    try:
        print(f"LLM: bundled stand-in server at {standin.url}, {args.llm_latency}s per answer")
        yield {"api_base": standin.url, "api_key": "standin"}
    finally:
        standin.stop()


def recording_autotuner(settings: dict[str, object], searches: list[object]) -> Callable[..., Any]:
    """An ``autotuner_fn`` that runs ``openevolve_autotuner(**settings)`` and appends each search
    to ``searches``; built at each call, so ``settings`` may still change until the first one."""

    def autotuner_fn(bound_kernel: Any, fn_args: Any, **kwargs: Any) -> Any:
        from helion.autotuner.openevolve_tuner import openevolve_autotuner

        search = openevolve_autotuner(**settings)(bound_kernel, fn_args, **kwargs)
        searches.append(search)
        return search

    return autotuner_fn


def report_search(searches: list[object], record: Path, wall: float) -> None:
    """Print the ``tuning: ...`` line (or that the config came from Helion's cache) and, where
    the search fell back to random search, why."""
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
