"""Side by side, in one process on one device: this search against Helion's searches.

For each kernel of the suite and each search, binds the kernel, runs the search directly
(``search.autotune(skip_cache=True)``, effort profile applied as Helion's default autotuner
function does) and times the chosen config. Every search starts with cold compile caches (a
new Triton cache folder, no generated modules and no compiled configs kept in the process), as
the first one does; with warm caches a later search would compile what an earlier one measured
as cache hits. Before a kernel's first search, a warm-up measures its default config through
Helion's benchmark path, so the process's one-time start-up costs (imports, compiler and
benchmark machinery) are charged to no search.
Once every search of a kernel has finished, the chosen configs and the PyTorch reference are
timed again in interleaved rounds (each round in a rotated order; the median counts), so one
config timed right after its own search, under whatever state the device was in then, cannot
decide a comparison: the same config gets the same number, up to noise. The table shows the
interleaved numbers; ``best_ms_after_search`` in ``results.json`` keeps the first timing.
Every search logs its measurements through Helion's own CSV log (``autotune_log``), which gives
the best-latency-over-time curves. Prints a table, writes ``results.json`` and
``convergence.png``.

    python examples/benchmark_openevolve_vs_baseline.py --effort quick --llm-latency 10
    python examples/benchmark_openevolve_vs_baseline.py --report gpu0/results.json gpu1/results.json

Timings are only comparable within one run on one device; ``--report`` merges runs made on
separate GPUs of one machine (one kernel each) into one table, which is still side by side per
kernel.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import json
import math
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).parent))
from example_support import latency_ms
from example_support import select_backend
from example_support import start_llm

ON_GPU = select_backend(sys.argv)

from helion.autotuner.effort_profile import get_effort_profile  # noqa: E402
from helion.autotuner.finite_search import FiniteSearch  # noqa: E402
from helion_b200_attention_tuning import sdpa  # noqa: E402
from kernels import attention  # noqa: E402
from kernels import layer_norm  # noqa: E402
from kernels import matmul  # noqa: E402
from kernels import softmax  # noqa: E402
from kernels import vector_add  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from tune_with_standin import config_latency_ms  # noqa: E402

import helion  # noqa: E402
from helion.autotuner import search_algorithms  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable


def suite(device: str) -> dict[str, tuple[object, tuple[torch.Tensor, ...], object]]:
    g = ON_GPU
    h = torch.float16 if g else torch.float32

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=h)

    s = (lambda a, b: a) if g else (lambda a, b: b)
    mm_n, big_n, (sm_m, sm_n), ln, (bh, sq, hd), vn = (
        s(1024, 128),
        s(4096, 256),
        s((4096, 2560), (256, 512)),
        s((4096, 4096), (128, 256)),
        s((32, 1024, 64), (2, 128, 32)),
        s(1 << 24, 1 << 14),
    )
    return {
        "matmul": (matmul, (r(mm_n, mm_n), r(mm_n, mm_n)), torch.mm),
        "matmul_big": (matmul, (r(big_n, big_n), r(big_n, big_n)), torch.mm),
        "softmax": (softmax, (r(sm_m, sm_n),), lambda x: torch.softmax(x, dim=-1)),
        "layer_norm": (layer_norm, (r(*ln), r(ln[1]), r(ln[1])), lambda x, w, b: F.layer_norm(x, (x.shape[1],), w, b)),
        "attention": (attention, (r(bh, sq, hd), r(bh, sq, hd), r(bh, sq, hd)), sdpa),
        "vector_add": (vector_add, (r(vn), r(vn)), torch.add),
    }


def reference_ms(fn: object, args: tuple[torch.Tensor, ...]) -> float:
    return latency_ms(lambda: fn(*args), warmup=50, rep=300, cpu_runs=5)  # type: ignore[operator]


def retime(
    kernel: object,
    args: tuple[torch.Tensor, ...],
    ref: object,
    chosen: list[tuple[dict[str, object], helion.Config]],
    rounds: int,
) -> None:
    """Time each distinct chosen config and the reference ``rounds`` times, interleaved (round
    ``r`` starts at the ``r``-th of them), and set each row's ``best_ms`` and ``reference_ms`` to
    the medians; the timing taken right after the search stays as ``best_ms_after_search``."""
    fns: dict[str, Callable[[], object]] = {"reference": lambda: ref(*args)}  # type: ignore[operator]
    for _, config in chosen:
        if repr(config) not in fns:
            compiled = kernel.bind(args).compile_config(config)  # type: ignore[attr-defined]
            fns[repr(config)] = lambda f=compiled: f(*args)
    keys = list(fns)
    times: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            times[key].append(latency_ms(fns[key], warmup=25, rep=100, cpu_runs=1))
    for row, config in chosen:
        row["best_ms_after_search"] = row["best_ms"]
        row["best_ms"] = statistics.median(times[repr(config)])
        row["reference_ms"] = statistics.median(times["reference"])


def run_search(
    name: str,
    kernel: object,
    args: tuple[torch.Tensor, ...],
    log_base: Path,
    extra: dict[str, object],
    triton_cache: Path,
) -> tuple[dict[str, object], helion.Config]:
    """Run search ``name`` with cold compile caches (Triton's in ``triton_cache``); its result
    row and its chosen config."""
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    bound.settings.autotune_log = str(log_base)
    bound.settings.autotune_effort = os.environ["HELION_AUTOTUNE_EFFORT"]  # kernels were made at import
    cls = search_algorithms[name]
    params = inspect.signature(cls.__init__).parameters
    kwargs = {
        k: v
        for k, v in cls.get_kwargs_from_profile(
            get_effort_profile(bound.settings.autotune_effort), bound.settings
        ).items()
        if k in params
    }
    if name == "OpenEvolveTuner":
        kwargs.update(extra)
    cold_compile_caches(triton_cache, bound)
    t0 = time.perf_counter()
    search = cls(bound, args, **kwargs)
    config = search.autotune(skip_cache=True)
    wall = time.perf_counter() - t0
    row: dict[str, object] = {
        "search": name,
        "wall_s": wall,
        "best_ms": config_latency_ms(kernel, args, config),
        "config": repr(config),
    }
    row["curve"] = convergence(Path(f"{log_base}.csv"))
    row["evaluations"] = row["curve"].pop("configs")  # type: ignore[union-attr]
    summary = getattr(search, "summary", None)
    if summary:
        row.update(
            {
                k: summary.get(k)
                for k in (
                    "mode",
                    "llm_calls",
                    "measure_s",
                    "llm_wait_s",
                    "finalize_s",
                    "other_s",
                    "busy_share",
                    "by_source",
                )
            }
        )
    return row, config


def cold_compile_caches(triton_cache: Path, bound: object) -> None:
    """Give the next search the cold caches the first one had: a new Triton cache folder, no
    generated modules kept in this process and none of the bound kernel's compiled configs.
    Otherwise a search that runs later compiles the configs an earlier one already measured (the
    seeds and their neighbours, mostly) as cache hits, and looks faster per config for it."""
    triton_cache.mkdir(parents=True)
    os.environ["TRITON_CACHE_DIR"] = str(triton_cache)
    from torch._inductor.codecache import PyCodeCache

    PyCodeCache.cache_clear()
    # kernel.bind(args) returns the same BoundKernel each time; it keeps every config it compiled
    getattr(bound, "_compile_cache", {}).clear()


def warm_up(kernel: object, args: tuple[torch.Tensor, ...], triton_cache: Path) -> float:
    """Measure the default config through Helion's benchmark path once (a FiniteSearch over it),
    so the process's one-time costs (imports, CUDA and compiler start-up, the benchmark
    machinery) are paid before any timed search; seconds taken."""
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    bound.settings.autotune_log = None
    default = bound.config_spec.default_config()
    cold_compile_caches(triton_cache, bound)
    t0 = time.perf_counter()
    FiniteSearch(bound, args, configs=[default, default]).autotune(skip_cache=True)
    return time.perf_counter() - t0


def convergence(path: Path) -> dict[str, object]:
    """Best-so-far latency over time from Helion's autotune CSV log."""
    times, best, all_ = [], [], []
    current = math.inf
    with path.open() as f:
        rows = list(csv.DictReader(f))
    configs = len({r["config_id"] for r in rows})
    start = min((float(r["timestamp_s"]) for r in rows), default=0.0)
    for r in rows:
        if r["status"] != "ok" or not r["perf_ms"]:
            all_.append(math.inf)
            continue
        perf = float(r["perf_ms"])
        all_.append(perf)
        current = min(current, perf)
        times.append(float(r["timestamp_s"]) - start)
        best.append(current)
    return {"t": times, "best": best, "all": [x if math.isfinite(x) else -1.0 for x in all_], "configs": configs}


def plot(rows: list[dict[str, object]], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no convergence.png")
        return
    kernels = sorted({str(r["kernel"]) for r in rows})
    fig, axes = plt.subplots(1, len(kernels), figsize=(4.5 * len(kernels), 3.6), squeeze=False)
    for ax, k in zip(axes[0], kernels, strict=True):
        for r in rows:
            if r["kernel"] == k and r["curve"]["t"]:  # type: ignore[index]
                ax.step(r["curve"]["t"], r["curve"]["best"], where="post", label=r["search"])  # type: ignore[index]
        ax.set_title(k)
        ax.set_xlabel("search wall time (s)")
        ax.set_ylabel("best latency (ms)")
        ax.set_yscale("log")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "convergence.png", dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", default="matmul,matmul_big,softmax,layer_norm,attention,vector_add")
    p.add_argument(
        "--searches", default="OpenEvolveTuner,PatternSearch,LFBOTreeSearch,DifferentialEvolutionSearch,RandomSearch"
    )
    p.add_argument("--effort", default="quick", choices=["quick", "full"])
    p.add_argument("--llm-latency", type=float, default=10.0, help="stand-in LLM seconds per answer")
    p.add_argument("--api-base", default=None, help="a real OpenAI-compatible endpoint (key: OPENAI_API_KEY)")
    p.add_argument("--model", default=None)
    p.add_argument("--max-evaluations", type=int, default=None, help="OpenEvolve budget (default: effort's)")
    p.add_argument("--out", default="benchmark_out")
    p.add_argument(
        "--retime-rounds",
        type=int,
        default=5,
        help="interleaved timing rounds of the chosen configs per kernel (0: keep each search's own timing)",
    )
    p.add_argument("--cpu", action="store_true")
    p.add_argument(
        "--report",
        nargs="+",
        default=None,
        metavar="RESULTS_JSON",
        help="measure nothing: print the table of earlier runs' results.json files (e.g. one per GPU) and plot them",
    )
    a = p.parse_args()
    if a.report:
        rows = [row for path in a.report for row in json.loads(Path(path).read_text())]
        table(rows)
        plot(rows, Path(a.out))
        return
    os.environ["HELION_AUTOTUNE_EFFORT"] = a.effort
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if ON_GPU else "cpu"
    print(f"device: {torch.cuda.get_device_name() if ON_GPU else 'CPU (Pallas interpret)'}; effort {a.effort}")
    extra: dict[str, object] = {"model": a.model, "max_evaluations": a.max_evaluations}
    rows: list[dict[str, object]] = []
    errors: list[dict[str, str]] = []
    with start_llm(a) as llm, tempfile.TemporaryDirectory(prefix="benchmark-triton-") as caches:
        extra.update(llm)
        for kname in a.kernels.split(","):
            kernel, args, ref = suite(device)[kname]
            ref_ms = reference_ms(ref, args)
            print(f"  {kname:<11} warm-up {warm_up(kernel, args, Path(caches) / f'{kname}-warm-up'):.1f}s", flush=True)
            chosen: list[tuple[dict[str, object], helion.Config]] = []
            for sname in a.searches.split(","):
                extra["record_path"] = str(out / f"{kname}-{sname}.record.jsonl")
                try:
                    row, config = run_search(
                        sname,
                        kernel,
                        args,
                        out / f"{kname}-{sname}",
                        {k: v for k, v in extra.items() if v is not None},
                        Path(caches) / f"{kname}-{sname}",
                    )
                except Exception as e:  # one search failing (a Helion bug, say) must not end the benchmark
                    print(f"  {kname:<11} {sname:<28} FAILED: {type(e).__name__}: {e}", flush=True)
                    errors.append({"kernel": kname, "search": sname, "error": f"{type(e).__name__}: {e}"})
                    (out / "errors.json").write_text(json.dumps(errors, indent=1))
                    continue
                row.update(kernel=kname, reference_ms=ref_ms)
                rows.append(row)
                chosen.append((row, config))
                print(
                    f"  {kname:<11} {sname:<28} best {row['best_ms']:.4f} ms  wall {row['wall_s']:.1f}s  evals {row['evaluations']}",
                    flush=True,
                )
                (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
            if chosen and a.retime_rounds > 0:
                retime(kernel, args, ref, chosen, rounds=a.retime_rounds)
                print(
                    f"  {kname:<11} timed again, {a.retime_rounds} interleaved rounds: "
                    + ", ".join(f"{r['search']} {r['best_ms']:.4f}" for r, _ in chosen)
                    + f", reference {chosen[0][0]['reference_ms']:.4f} ms",
                    flush=True,
                )
                (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    table(rows)
    plot(rows, out)
    print(f"\nresults.json and convergence.png in {out}")


def vs_best_helion(rows: list[dict[str, object]]) -> dict[tuple[str, str], float]:
    """(kernel, search) -> its best latency / the best of Helion's searches on that kernel."""
    best: dict[str, float] = {}
    for r in rows:
        if r["search"] != "OpenEvolveTuner":
            best[str(r["kernel"])] = min(best.get(str(r["kernel"]), math.inf), float(r["best_ms"]))
    return {
        (str(r["kernel"]), str(r["search"])): float(r["best_ms"]) / best.get(str(r["kernel"]), math.nan) for r in rows
    }


def table(rows: list[dict[str, object]]) -> None:
    ratio = vs_best_helion(rows)
    print(
        f"\n{'kernel':<11} {'search':<28} {'best ms':>9} {'vs torch':>8} {'vs best helion':>14} {'wall s':>7} {'evals':>6}  time split (OpenEvolve)"
    )
    for k in dict.fromkeys(str(r["kernel"]) for r in rows):
        for r in (r for r in rows if r["kernel"] == k):
            split = ""
            if r.get("mode"):
                split = f"{r['mode']}: measure {r['measure_s']:.0f}s, LLM wait {r['llm_wait_s']:.0f}s, finalize {r['finalize_s']:.0f}s, other {r['other_s']:.0f}s, busy {r['busy_share']:.0%}"
            print(
                f"{k:<11} {r['search']:<28} {r['best_ms']:>9.4f} {float(r['best_ms']) / float(r['reference_ms']):>7.2f}x "
                f"{ratio[k, str(r['search'])]:>13.3f}x {r['wall_s']:>7.1f} {r['evaluations']:>6}  {split}"
            )
    summary(rows, ratio)


def geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def summary(rows: list[dict[str, object]], ratio: dict[tuple[str, str], float]) -> None:
    """Per search, over the kernels: geomean of best / best Helion search, and of wall / PatternSearch's."""
    kernels = list(dict.fromkeys(str(r["kernel"]) for r in rows))
    by = {(str(r["kernel"]), str(r["search"])): r for r in rows}
    print(f"\n{'search':<28} {'kernels':>7} {'geomean best / best Helion':>27} {'geomean wall / PatternSearch':>29}")
    for name in dict.fromkeys(str(r["search"]) for r in rows):
        quality, wall = [], []
        for k in kernels:
            if (k, name) not in by:
                continue
            quality.append(ratio[k, name])
            if (k, "PatternSearch") in by:
                wall.append(float(by[k, name]["wall_s"]) / float(by[k, "PatternSearch"]["wall_s"]))
        print(f"{name:<28} {len(quality):>7} {geomean(quality):>26.3f}x {geomean(wall):>28.2f}x")


if __name__ == "__main__":
    main()
