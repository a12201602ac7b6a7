"""Tune Helion kernels with the OpenEvolve search, end to end, on whatever this machine has.

The kernels come from ``kernels.py``. On a GPU they run through Triton; with no GPU, through
Helion's Pallas backend in interpret mode on the CPU. The first line printed says which, and at
which effort it tunes: ``quick`` unless ``--effort full`` (or HELION_AUTOTUNE_EFFORT) asks for
Helion's full effort; on the CPU, quick effort also caps each kernel's search at
``CPU_QUICK_BUDGET_S`` seconds unless ``--max-seconds`` is given. The LLM is the local stand-in
server of ``standin_llm.py`` (``--llm-latency`` seconds per answer) unless ``--api-base`` names a
real OpenAI-compatible endpoint (key from OPENAI_API_KEY). The search is chosen the way a user
chooses it, through ``HELION_AUTOTUNER=OpenEvolveTuner``; nothing of the plugin is imported.

Prints, per kernel: default and tuned latency, the tuned kernel against the default, wall time
of tuning, evaluations and where the time went (from the run record). Default and tuned configs
are timed side by side, in ``--timing-rounds`` interleaved rounds (medians); when the two are
not apart by more than the rounds' own spread, the table says "same (within ... noise)" instead
of a ratio that noise made up. CPU timings under the Pallas interpreter measure the
interpreter: they show the search working, not how a config runs on a GPU.

    python examples/tune_with_standin.py --kernels matmul,softmax
    python examples/tune_with_standin.py --kernels matmul --effort full --search PatternSearch
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).parent))
from example_support import device_line
from example_support import interleaved_ms
from example_support import latency_ms
from example_support import select_backend
from example_support import start_llm

ON_GPU = select_backend(sys.argv)

from kernels import matmul  # noqa: E402
from kernels import softmax  # noqa: E402
from kernels import vector_add  # noqa: E402
import torch  # noqa: E402

import helion  # noqa: E402


def workloads(device: str) -> dict[str, tuple[object, tuple[torch.Tensor, ...]]]:
    """Fresh kernels (Helion reads HELION_AUTOTUNE_* when a kernel is made, so after main() set
    them; the kernels module's own were made at import) and their arguments."""
    mm, sm, va = (helion.kernel(k.fn) for k in (matmul, softmax, vector_add))  # type: ignore[attr-defined]
    if ON_GPU:
        h = torch.float16
        return {
            "matmul": (
                mm,
                (torch.randn(1024, 1024, device=device, dtype=h), torch.randn(1024, 1024, device=device, dtype=h)),
            ),
            "softmax": (sm, (torch.randn(4096, 2560, device=device, dtype=h),)),
            "vector_add": (
                va,
                (torch.randn(1 << 24, device=device, dtype=h), torch.randn(1 << 24, device=device, dtype=h)),
            ),
        }
    return {
        "matmul": (mm, (torch.randn(256, 256), torch.randn(256, 256))),
        "softmax": (sm, (torch.randn(256, 512),)),
        "vector_add": (va, (torch.randn(1 << 16), torch.randn(1 << 16))),
    }


def config_latency_ms(kernel: object, args: tuple[torch.Tensor, ...], config: helion.Config) -> float:
    """Milliseconds per call of ``kernel`` compiled with ``config`` on ``args``."""
    fn = kernel.bind(args).compile_config(config)  # type: ignore[attr-defined]
    return latency_ms(lambda: fn(*args), warmup=50, rep=300)


def compare_configs(
    kernel: object, args: tuple[torch.Tensor, ...], default: helion.Config, tuned: helion.Config, rounds: int
) -> dict[str, object]:
    """Time ``default`` and ``tuned`` side by side: ``rounds`` interleaved rounds (the order
    alternates) after one warm-up call each. Returns both medians, the median-based speedup and a
    verdict: ``same`` when the middle half of the per-round ratios (default / tuned) holds 1.0,
    i.e. the difference is within the measured spread, else ``faster`` or ``slower``."""
    if dict(tuned) == dict(default):
        ms = statistics.median(
            interleaved_ms({"default": _call(kernel, args, default)}, max(1, rounds // 2))["default"]
        )
        return {"default_ms": ms, "tuned_ms": ms, "speedup": 1.0, "verdict": "default", "ratio_iqr": [1.0, 1.0]}
    times = interleaved_ms({"default": _call(kernel, args, default), "tuned": _call(kernel, args, tuned)}, rounds)
    ratios = [d / t for d, t in zip(times["default"], times["tuned"], strict=True)]
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive") if len(ratios) > 1 else ratios * 3
    d_ms, t_ms = statistics.median(times["default"]), statistics.median(times["tuned"])
    verdict = "same" if q1 <= 1.0 <= q3 else ("faster" if t_ms < d_ms else "slower")
    return {"default_ms": d_ms, "tuned_ms": t_ms, "speedup": d_ms / t_ms, "verdict": verdict, "ratio_iqr": [q1, q3]}


def _call(kernel: object, args: tuple[torch.Tensor, ...], config: helion.Config) -> object:
    fn = kernel.bind(args).compile_config(config)  # type: ignore[attr-defined]
    return lambda: fn(*args)


def verdict_text(row: dict[str, object]) -> str:
    """What the table says about the tuned kernel against the default."""
    noise = "GPU timing" if ON_GPU else "CPU"
    return {
        "default": "same config as default",
        "same": f"same (within {noise} noise)",
        "faster": f"{row['speedup']:.2f}x faster",
        "slower": f"{row['speedup']:.2f}x (slower)",
    }[str(row["verdict"])]


def time_split(row: dict[str, object]) -> str:
    """The table's last column: the search's mode and where its time went, from its run record."""
    if row.get("no_record"):
        return f"{row['mode']}: no run record (only OpenEvolveTuner writes one)"
    r = row
    return (
        f"{r['mode']}: measure {r['measure_s']:.1f}s, LLM wait {r['llm_wait_s']:.1f}s, finalize {r['finalize_s']:.1f}s, "
        f"other {r['other_s']:.1f}s, busy {r['busy_share']:.0%}, sources {r['by_source']}"
    )


#: Search budget per kernel on the CPU at quick effort unless --max-seconds or
#: HELION_AUTOTUNE_BUDGET_SECONDS says otherwise (Helion's own budget: every search honours it).
CPU_QUICK_BUDGET_S = 90

#: Another search (e.g. PatternSearch) writes no run record: its rows show only latency and wall.
_NO_RECORD: dict[str, object] = {
    "evaluations": "-", "llm_calls": "-", "mode": "-", "measure_s": 0.0,
    "llm_wait_s": 0.0, "finalize_s": 0.0, "other_s": 0.0, "busy_share": 0.0, "by_source": {},
}  # fmt: skip


def tune(name: str, kernel: object, args: tuple[torch.Tensor, ...], record: Path, rounds: int) -> dict[str, object]:
    os.environ["HELION_OPENEVOLVE_RECORD_PATH"] = str(record)
    t0 = time.perf_counter()
    kernel(*args)  # type: ignore[operator]  # first call autotunes with HELION_AUTOTUNER's search
    wall = time.perf_counter() - t0
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    tuned = bound._config
    default = bound.config_spec.default_config()
    lines = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    summary = next((line for line in reversed(lines) if line["kind"] == "summary"), None)
    summary = summary or {**_NO_RECORD, "mode": os.environ.get("HELION_AUTOTUNER", "-"), "no_record": True}
    print(f"timing {name}: default and tuned configs side by side, {rounds} interleaved rounds", flush=True)
    timing = compare_configs(kernel, args, default, tuned, rounds)
    return {**summary, "kernel": name, **timing, "tune_wall_s": wall, "tuned_config": dict(tuned)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", default="matmul,softmax")
    p.add_argument("--max-evaluations", type=int, default=None)
    p.add_argument("--max-seconds", type=float, default=None)
    p.add_argument("--llm-latency", type=float, default=2.0, help="stand-in LLM seconds per answer")
    p.add_argument("--api-base", default=None, help="a real OpenAI-compatible endpoint instead of the stand-in")
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="folder for run records and results.json")
    p.add_argument("--cpu", action="store_true", help="use the CPU interpret backend even with a GPU")
    p.add_argument("--search", default="OpenEvolveTuner", help="HELION_AUTOTUNER value, e.g. PatternSearch to compare")
    p.add_argument(
        "--effort",
        choices=("quick", "full"),
        default=None,
        help="Helion's autotune effort (default: HELION_AUTOTUNE_EFFORT, else quick)",
    )
    p.add_argument("--timing-rounds", type=int, default=9, help="interleaved rounds timing default vs tuned")
    a = p.parse_args()
    device = "cuda" if ON_GPU else "cpu"
    effort = a.effort or os.environ.get("HELION_AUTOTUNE_EFFORT") or "quick"
    os.environ["HELION_AUTOTUNE_EFFORT"] = effort
    os.environ["HELION_AUTOTUNER"] = a.search
    budget = ""
    if (
        not ON_GPU
        and effort == "quick"
        and a.max_seconds is None
        and "HELION_AUTOTUNE_BUDGET_SECONDS" not in os.environ
    ):
        # Interpreted kernel calls take a second or so each: keep a first run to a few minutes.
        os.environ["HELION_AUTOTUNE_BUDGET_SECONDS"] = str(CPU_QUICK_BUDGET_S)
        budget = f" (at most {CPU_QUICK_BUDGET_S} s of search per kernel on the CPU; --max-seconds to change)"
    print(f"{device_line()}; effort {effort}{budget}; search {a.search}", flush=True)
    if not ON_GPU:
        print(
            "note: on the CPU every kernel call runs under Helion's Pallas interpreter: the timings below show "
            "the search at work, not GPU performance",
            flush=True,
        )
    for var, value in (("MAX_EVALUATIONS", a.max_evaluations), ("MAX_SECONDS", a.max_seconds), ("MODEL", a.model)):
        if value is not None:
            os.environ[f"HELION_OPENEVOLVE_{var}"] = str(value)
    out = Path(a.out or tempfile.mkdtemp(prefix="openevolve-example-"))
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with start_llm(a) as llm:
        os.environ["HELION_OPENEVOLVE_API_BASE"] = llm["api_base"]
        if "api_key" in llm:  # the stand-in
            os.environ.setdefault("OPENAI_API_KEY", llm["api_key"])
        for name in a.kernels.split(","):
            kernel, args = workloads(device)[name]  # made here, after the settings above
            rows.append(tune(name, kernel, args, out / f"{name}.jsonl", max(1, a.timing_rounds)))
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(
        f"\n{'kernel':<11} {'default ms':>11} {'tuned ms':>10}  {'tuned vs default':<25} {'wall s':>7} {'evals':>6} {'LLM':>4}"
        "  mode / time split"
    )
    for r in rows:
        print(
            f"{r['kernel']:<11} {r['default_ms']:>11.4f} {r['tuned_ms']:>10.4f}  {verdict_text(r):<25} {r['tune_wall_s']:>7.1f} "
            f"{r['evaluations']:>6} {r['llm_calls']:>4}  {time_split(r)}"
        )
    print(
        f"\ndefault ms / tuned ms: medians of {max(1, a.timing_rounds)} interleaved rounds timing both configs here, after "
        "tuning (the search's own log lines time them at other moments); 'same' means the per-round ratios "
        "straddle 1.0 in their middle half"
    )
    if not ON_GPU:
        print(
            "CPU timings under Helion's Pallas interpreter are not GPU performance: on a GPU (Triton) the same "
            "search tunes the configs that matter there"
        )
    print(f"run records and results.json: {out}")


if __name__ == "__main__":
    main()
