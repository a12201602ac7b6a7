"""Side by side, in one process on one device: this search against Helion's searches.

Runs, for each kernel, each search variant given by ``--searches`` (``Name`` or ``Name:llm``,
where ``llm`` is the stand-in LLM's behaviour for the LLM searches: ``blind`` proposes
neighbours of the best it is told, ``knowing`` answers with known-good configs first,
``hostile`` answers with invalid configs and garbage, ``dead`` is an endpoint that refuses
every connection). Helion's own LLM searches (``LLMGuidedSearch``, ``LLMSeededLFBOTreeSearch``)
talk to the same stand-in through the OpenAI Responses API, this search through chat
completions. ``--known auto`` makes the knowing LLM know the best config that the searches run
before it on the same kernel chose without an LLM (put PatternSearch, LFBOTreeSearch or
``OpenEvolveTuner:dead`` first); ``--known
FILE`` reads a JSON list of configs or a run record.

Every search runs at the same Helion effort, directly (``search.autotune(skip_cache=True)``,
effort profile applied as Helion's default autotuner function does), with cold compile caches
(a new Triton cache folder, no generated modules and no compiled configs kept in the process).
Before a kernel's first search, a warm-up measures its default config through Helion's
benchmark path, so one-time start-up costs are charged to no search. Once every search of a
kernel has finished, the chosen configs and the PyTorch reference are timed again in
interleaved rounds (each round in a rotated order; the median counts): the table shows those
numbers; ``best_ms_after_search`` keeps the first timing. Each pick's output is compared with
PyTorch's reference there too, and the table names a pick whose output differs.

Results are appended to one JSON-lines file (``--results``, a row per search and kernel, written
once the kernel's re-timing is done), so a suite too long for one command can be run one kernel
per command, over several calls or sessions, and ``--report FILE`` prints the table of every
row in it:

    python examples/benchmark_openevolve_vs_baseline.py --kernels softmax --effort quick \
        --searches PatternSearch,LFBOTreeSearch,OpenEvolveTuner:blind,OpenEvolveTuner:knowing,LLMGuidedSearch:knowing \
        --known auto --llm-latency 10 --results bench.jsonl
    python examples/benchmark_openevolve_vs_baseline.py --report bench.jsonl

A kernel whose searches do not fit one command (``full`` effort: PatternSearch alone took 11
minutes on rms_norm on an H200) runs over several, with ``--retime-rounds 0`` (each row appended
as soon as its search ends, marked not re-timed) and ``--known auto`` finding the picks of
earlier commands in ``--results`` (its rows not re-timed yet); a command cut off and run again
with ``--resume`` skips the searches whose rows are there; then
``--retime-from`` times the picks of every search of the kernel again, together, in one process
and appends the re-timed rows to another file:

    python examples/benchmark_openevolve_vs_baseline.py --kernels rms_norm --effort full \
        --searches PatternSearch --retime-rounds 0 --results parts.jsonl
    python examples/benchmark_openevolve_vs_baseline.py --kernels rms_norm --effort full \
        --searches OpenEvolveTuner:knowing,LLMGuidedSearch:knowing --known auto --retime-rounds 0 --results parts.jsonl
    python examples/benchmark_openevolve_vs_baseline.py --kernels rms_norm --retime-from parts.jsonl --results bench.jsonl

Timings are comparable only within one kernel's run on one device.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import json
import math
import os
from pathlib import Path
import socket
import statistics
import sys
import tempfile
import time
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).parent))
from example_support import interleaved_ms
from example_support import latency_ms
from example_support import select_backend

ON_GPU = select_backend(sys.argv)

from helion.autotuner.effort_profile import get_effort_profile  # noqa: E402
from helion.autotuner.finite_search import FiniteSearch  # noqa: E402
import helion.language as hl  # noqa: E402
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
    from collections.abc import Iterator


@helion.kernel()
def rms_norm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """RMS norm over the last dimension: only in this benchmark (held out when it was added;
    sessions 9-11 measured the search on it)."""
    m, _ = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        inv_rms = torch.rsqrt(torch.mean(row * row, dim=-1) + 1e-5)
        out[tile_m, :] = (row * inv_rms[:, None] * weight[:].to(torch.float32)).to(out.dtype)
    return out


@helion.kernel()
def bias_grad(grad_out: torch.Tensor) -> torch.Tensor:
    """A bias's gradient, ``grad_out.sum(0)``: a reduction over the leading dimension in an inner
    loop. Only in this benchmark, the held-out kernel of the blind case: no test, example or
    development run of the search has tuned it."""
    m, n = grad_out.size()
    out = torch.empty([n], dtype=grad_out.dtype, device=grad_out.device)
    for tile_n in hl.tile(n):
        acc = hl.zeros([tile_n], dtype=torch.float32)
        for tile_m in hl.tile(m):
            acc = acc + grad_out[tile_m, tile_n].to(torch.float32).sum(0)
        out[tile_n] = acc.to(out.dtype)
    return out


def suite(device: str, rows: int = 1) -> dict[str, tuple[object, Callable[[], tuple[torch.Tensor, ...]], object]]:
    """Kernel name -> (kernel, a function making its arguments, PyTorch reference); ``rows``
    multiplies the first dimension of the inputs (another shape of the same kernel). Only the
    arguments of the kernel asked for are ever made."""
    g = ON_GPU
    h = torch.float16 if g else torch.float32

    def r(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, device=device, dtype=h)

    s = (lambda a, b: a) if g else (lambda a, b: b)
    mm_n, big_n, (sm_m, sm_n), ln, (bh, sq, hd), vn, rms, bg = (
        s(1024, 128),
        s(4096, 256),
        s((4096, 2560), (256, 512)),
        s((4096, 4096), (128, 256)),
        s((32, 1024, 64), (2, 128, 32)),
        s(1 << 24, 1 << 14),
        s((8192, 4096), (128, 256)),
        s((16384, 4096), (256, 512)),
    )
    n = rows
    return {
        "matmul": (matmul, lambda: (r(mm_n * n, mm_n), r(mm_n, mm_n)), torch.mm),
        "matmul_big": (matmul, lambda: (r(big_n * n, big_n), r(big_n, big_n)), torch.mm),
        "softmax": (softmax, lambda: (r(sm_m * n, sm_n),), lambda x: torch.softmax(x, dim=-1)),
        "layer_norm": (
            layer_norm,
            lambda: (r(ln[0] * n, ln[1]), r(ln[1]), r(ln[1])),
            lambda x, w, b: F.layer_norm(x, (x.shape[1],), w, b),
        ),
        "attention": (attention, lambda: (r(bh * n, sq, hd), r(bh * n, sq, hd), r(bh * n, sq, hd)), sdpa),
        "vector_add": (vector_add, lambda: (r(vn * n), r(vn * n)), torch.add),
        "rms_norm": (
            rms_norm,
            lambda: (r(rms[0] * n, rms[1]), r(rms[1])),
            lambda x, w: F.rms_norm(x, (x.shape[1],), w, eps=1e-5),
        ),
        "bias_grad": (bias_grad, lambda: (r(bg[0] * n, bg[1]),), lambda g: g.sum(0)),
    }


def kernels_and_args(name: str, device: str, rows: int = 1) -> tuple[object, tuple[torch.Tensor, ...], object]:
    """One kernel of :func:`suite`: (kernel, arguments, PyTorch reference)."""
    kernels = suite(device, rows)
    if name not in kernels:
        raise SystemExit(f"unknown kernel {name!r}; the kernels: {', '.join(kernels)}")
    kernel, make_args, ref = kernels[name]
    return kernel, make_args(), ref


def reference_ms(fn: object, args: tuple[torch.Tensor, ...]) -> float:
    return latency_ms(lambda: fn(*args), warmup=50, rep=300, cpu_runs=5)  # type: ignore[operator]


#: how far a pick's output may be from PyTorch's reference (absolute, and relative to the
#: reference's largest magnitude): loose enough for fp16 outputs and fp32 accumulation in another
#: order, tight enough for a wrong kernel
REFERENCE_ATOL, REFERENCE_RTOL = 2e-2, 2e-2


def retime(
    kernel: object,
    args: tuple[torch.Tensor, ...],
    ref: object,
    chosen: list[tuple[dict[str, object], helion.Config]],
    rounds: int,
) -> None:
    """Time each distinct chosen config and the reference ``rounds`` times, interleaved (round
    ``r`` starts at the ``r``-th of them), and set each row's ``best_ms`` and ``reference_ms`` to
    the medians, keeping each round's timing (``retime_ms``); the timing taken right after the
    search stays as ``best_ms_after_search``. Each pick's output is compared with PyTorch's
    reference first (``reference_error``, ``matches_reference``): Helion's own accuracy check
    compares configs with the default config's output, which a wrong kernel shares."""
    fns: dict[str, Callable[[], object]] = {"reference": lambda: ref(*args)}  # type: ignore[operator]
    expected = ref(*args)  # type: ignore[operator]
    tolerance = REFERENCE_ATOL + REFERENCE_RTOL * expected.abs().max().item()
    errors: dict[str, float] = {}
    for _, config in chosen:
        if repr(config) not in fns:
            compiled = kernel.bind(args).compile_config(config)  # type: ignore[attr-defined]
            fns[repr(config)] = lambda f=compiled: f(*args)
            errors[repr(config)] = (compiled(*args).float() - expected.float()).abs().max().item()
    times = interleaved_ms(fns, rounds, warmup=25, rep=100)
    for row, config in chosen:
        row["reference_error"] = errors[repr(config)]
        row["matches_reference"] = errors[repr(config)] <= tolerance
        row["best_ms_after_search"] = row.get("best_ms_after_search", row["best_ms"])
        row["best_ms"] = statistics.median(times[repr(config)])
        row["retime_ms"] = times[repr(config)]
        row["reference_ms"] = statistics.median(times["reference"])
        row["retimed"] = True


def retime_rows(a: argparse.Namespace, kname: str, device: str) -> list[dict[str, object]]:
    """The latest row of each search of ``kname`` in ``--retime-from``, its pick timed again
    together with the others' (``--retime-rounds`` interleaved rounds, at least 1)."""
    earlier = [r for r in read_rows([a.retime_from]) if r["kernel"] == kname and "config_dict" in r]
    latest = {str(r["search"]): dict(r) for r in earlier}
    if not latest:
        raise SystemExit(f"no picks of {kname!r} in {a.retime_from}")
    kernel, args, ref = kernels_and_args(kname, device)
    chosen = [(row, helion.Config(**row["config_dict"])) for row in latest.values()]  # type: ignore[arg-type]
    retime(kernel, args, ref, chosen, rounds=max(1, a.retime_rounds))
    return [row for row, _ in chosen]


def read_rows(paths: list[str]) -> list[dict[str, object]]:
    """The rows of JSON-lines files (a missing file has none)."""
    return [
        json.loads(line)
        for path in paths
        if Path(path).exists()
        for line in Path(path).read_text().splitlines()
        if line.strip()
    ]


LLM_SEARCHES = {
    # search -> how it is told about the LLM
    "OpenEvolveTuner": lambda url: {"api_base": url, "api_key": "standin", "model": "standin"},
    "OpenEvolveSearch": lambda url: {"api_base": url, "api_key": "standin", "model": "standin"},
    "LLMGuidedSearch": lambda url: {"provider": "openai", "api_base": url, "api_key": "standin", "model": "standin"},
    "LLMSeededLFBOTreeSearch": lambda url: {
        "llm_provider": "openai",
        "llm_api_base": url,
        "llm_api_key": "standin",
        "llm_model": "standin",
    },
}
STANDIN_MODES = {"blind": "neighbors", "knowing": "knowing", "hostile": "garbage"}


@contextlib.contextmanager
def llm_for(variant: str, latency_s: float, known: list[dict[str, object]]) -> Iterator[tuple[str, object]]:
    """The LLM endpoint of a search variant (``Name:llm``): a stand-in started for it, or a
    closed port (``dead``); yields the URL and the stand-in (None for ``dead``)."""
    behaviour = variant.partition(":")[2] or "blind"
    if behaviour == "dead":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}/v1", None
        return
    from standin_llm import StandinLLM

    kw: dict[str, object] = {"known_configs": known} if behaviour == "knowing" else {}
    with StandinLLM(mode=STANDIN_MODES[behaviour], latency_s=latency_s, seed=0, **kw).start() as llm:
        yield llm.url, llm


def run_search(
    variant: str,
    kernel: object,
    args: tuple[torch.Tensor, ...],
    out: Path,
    triton_cache: Path,
    llm: dict[str, object],
    history_dir: Path | None = None,
) -> tuple[dict[str, object], helion.Config]:
    """Run search ``variant`` (``Name`` or ``Name:llm``) with cold compile caches (Triton's in
    ``triton_cache``); its result row and its chosen config. This search keeps no history
    unless ``history_dir`` is given (then it reads and adds to the store there)."""
    name = variant.partition(":")[0]
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    bound.settings.autotune_log = str(out)
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
    kwargs.update(llm)
    if name in ("OpenEvolveTuner", "OpenEvolveSearch"):
        kwargs["record_path"] = f"{out}.record.jsonl"
        # cold, as the compile caches are, unless asked: no picks of an earlier search as seeds
        kwargs["history"] = history_dir is not None
        if history_dir is not None:
            kwargs["history_dir"] = str(history_dir)
    cold_compile_caches(triton_cache, bound)
    t0 = time.perf_counter()
    search = cls(bound, args, **kwargs)
    final_s = time_final_selection(search)
    config = search.autotune(skip_cache=True)
    wall = time.perf_counter() - t0
    row: dict[str, object] = {
        "search": variant,
        "wall_s": wall,
        "best_ms": config_latency_ms(kernel, args, config),
        "config": repr(config),
        "config_dict": dict(config.config),
        "final_selection_s": final_s[0] if final_s else None,
    }
    row["curve"] = convergence(Path(f"{out}.csv"))
    row["evaluations"] = row["curve"].pop("configs")  # type: ignore[union-attr]
    row["first_result_s"] = row["curve"].pop("first_s")  # type: ignore[union-attr]
    summary = getattr(search, "summary", None)
    if summary:
        by_source = summary.get("by_source") or {}
        row.update({k: summary.get(k) for k in SUMMARY_FIELDS})
        row["from_llm"] = by_source.get("llm", 0)
        row["winner_from_llm"] = summary.get("winner_origin") == "llm"
    return row, config


def time_final_selection(search: object) -> list[float]:
    """Time Helion's final selection of ``search`` (``final_rebenchmark_best``: the finalists
    re-timed together, which every search here ends with); the list gets the seconds once it
    has run (stays empty for a search that does not call it)."""
    seconds: list[float] = []
    final = getattr(search, "final_rebenchmark_best", None)
    if final is None:
        return seconds

    def timed(best: object) -> object:
        t0 = time.perf_counter()
        try:
            return final(best)
        finally:
            seconds.append(time.perf_counter() - t0)

    search.final_rebenchmark_best = timed  # type: ignore[attr-defined]
    return seconds


SUMMARY_FIELDS = (
    "mode",
    "llm_calls",
    "llm_errors",
    "llm_answers_used",
    "first_llm_answer_s",
    "stop_reason",
    "measure_s",
    "verify_s",
    "timing_noise",
    "llm_wait_s",
    "finalize_s",
    "other_s",
    "busy_share",
    "by_source",
    "winner_origin",
    "llm_answers_improved",
    "default_beaten",
    "retiming_rounds",
    "first_batch_s",
)


def without_llm(variant: str) -> bool:
    """A search variant (``Name`` or ``Name:llm``) that used no LLM answer."""
    name, _, llm = variant.partition(":")
    return name not in LLM_SEARCHES or llm == "dead"


def known_configs(spec: str | None, rows: list[dict[str, object]]) -> list:
    """The configs the knowing stand-in knows: ``auto`` = the best config that a search without
    an LLM (Helion's plain searches, or an LLM search whose endpoint is ``dead``) chose so far on
    this kernel (``rows``: this command's, and those of earlier commands
    in ``--results`` not re-timed yet, a split run's; by its timing right after its search), so
    every knowing search of the kernel knows the same config; a file = a JSON list or a run
    record."""
    if not spec:
        return []
    if spec == "auto":
        plain = [r for r in rows if "config_dict" in r and "error" not in r and without_llm(str(r["search"]))]
        if not plain:
            return []
        best = min(plain, key=lambda r: float(r["best_ms"]))  # type: ignore[arg-type]
        return [dict(best["config_dict"])]  # type: ignore[call-overload]
    from standin_llm import load_known

    return load_known(spec)


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
    done = [r for r in rows if r["status"] != "started"]  # Helion logs each config's start too
    first_s = min((float(r["timestamp_s"]) for r in done), default=None)  # from the search's start
    for r in done:
        if r["status"] != "ok" or not r["perf_ms"]:
            all_.append(math.inf)
            continue
        perf = float(r["perf_ms"])
        all_.append(perf)
        current = min(current, perf)
        times.append(float(r["timestamp_s"]) - start)
        best.append(current)
    return {
        "t": times,
        "best": best,
        "all": [x if math.isfinite(x) else -1.0 for x in all_],
        "configs": configs,
        "first_s": first_s,
    }


def plot(rows: list[dict[str, object]], out: Path) -> None:
    """Each kernel's best latency over each search's wall time (Helion's CSV log), as PNG ``out``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(f"matplotlib not installed (pip install matplotlib): no {out}")
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
    fig.savefig(out, dpi=110)
    print(f"picture: {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", default="softmax")
    p.add_argument(
        "--searches",
        default="PatternSearch,LFBOTreeSearch,OpenEvolveTuner:blind,OpenEvolveTuner:knowing,LLMGuidedSearch:knowing",
        help="comma list of Name or Name:llm (llm: blind, knowing, hostile, dead)",
    )
    p.add_argument("--effort", default="quick", choices=["quick", "full"])
    p.add_argument("--llm-latency", type=float, default=10.0, help="stand-in LLM seconds per answer")
    p.add_argument("--known", default=None, help="'auto', or a JSON list of configs / a run record")
    p.add_argument("--results", default="benchmark_out/results.jsonl", help="JSON-lines file the rows are appended to")
    p.add_argument(
        "--retime-rounds",
        type=int,
        default=5,
        help="interleaved timing rounds of the chosen configs per kernel (0: keep each search's own timing)",
    )
    p.add_argument(
        "--retime-from",
        default=None,
        metavar="ROWS",
        help="run no search: time the picks of each kernel's searches in ROWS again, together, and append the rows to --results",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip the searches of a kernel that have a row not re-timed in --results (a split run cut off and run again)",
    )
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--report", nargs="+", default=None, metavar="RESULTS", help="measure nothing: print the table")
    p.add_argument("--plot", default=None, metavar="PNG", help="with --report: draw best latency over wall time")
    a = p.parse_args()
    if a.report:
        rows = read_rows(a.report)
        table(rows)
        if a.plot:
            plot(rows, Path(a.plot))
        return
    os.environ["HELION_AUTOTUNE_EFFORT"] = a.effort
    results = Path(a.results)
    out = results.parent
    out.mkdir(parents=True, exist_ok=True)
    device = "cuda" if ON_GPU else "cpu"
    machine = torch.cuda.get_device_name() if ON_GPU else "CPU (Pallas interpret)"
    if a.retime_from:  # the rows keep their searches' effort and stand-in
        print(
            f"device: {machine}; the picks in {a.retime_from}, {max(1, a.retime_rounds)} interleaved rounds", flush=True
        )
    else:
        print(f"device: {machine}; effort {a.effort}; stand-in LLM {a.llm_latency}s per answer", flush=True)

    def save(rows: list[dict[str, object]]) -> None:
        with results.open("a") as f:
            for row in rows:
                f.write(json.dumps({"machine": machine, "effort": a.effort, **row}, default=str) + "\n")

    with tempfile.TemporaryDirectory(prefix="benchmark-triton-") as caches:
        for kname in a.kernels.split(","):
            if a.retime_from:
                save(rows := retime_rows(a, kname, device))
            else:
                rows = run_kernel(a, kname, device, out, Path(caches), save)
            table(rows)
    print(f"\nrows appended to {results}; all of them: --report {results}")


def run_kernel(
    a: argparse.Namespace,
    kname: str,
    device: str,
    out: Path,
    caches: Path,
    save: Callable[[list[dict[str, object]]], None],
) -> list[dict[str, object]]:
    """Every search variant on one kernel, then the interleaved re-timing; the rows, each handed
    to ``save`` (for ``--results``) once re-timed, or as soon as its search ended when there is
    no re-timing (a split run's command: a cut-off loses only the search it cut)."""
    # picks of earlier commands of a split run (rows not re-timed yet: a finished run's are)
    earlier = [r for r in read_rows([a.results]) if r.get("kernel") == kname and r.get("retimed") is False]
    done = {str(r["search"]) for r in earlier if "error" not in r} if a.resume else set()
    variants = [v for v in a.searches.split(",") if v not in done]
    for variant in done & set(a.searches.split(",")):
        print(f"  {kname:<11} {variant:<28} skipped: its row is in {a.results} (--resume)", flush=True)
    if not variants:
        return []
    kernel, args, ref = kernels_and_args(kname, device)
    ref_ms = reference_ms(ref, args)
    print(f"  {kname:<11} warm-up {warm_up(kernel, args, caches / f'{kname}-warm-up'):.1f}s", flush=True)
    rows: list[dict[str, object]] = []
    chosen: dict[str, helion.Config] = {}
    at_once = a.retime_rounds == 0  # no re-timing to wait for: each row is saved when its search ends
    for variant in variants:
        name, _, behaviour = variant.partition(":")
        known = known_configs(a.known, [*earlier, *rows]) if behaviour == "knowing" else []
        tag = f"{kname}-{variant.replace(':', '-')}"
        try:
            if name not in LLM_SEARCHES:
                row, config = run_search(variant, kernel, args, out / tag, caches / tag, {})
            else:
                with llm_for(variant, a.llm_latency, known) as (url, standin):
                    row, config = run_search(variant, kernel, args, out / tag, caches / tag, LLM_SEARCHES[name](url))
                    row["llm_requests"] = standin.requests if standin is not None else None  # type: ignore[attr-defined]
        except Exception as e:  # one search failing (a Helion bug, say) must not end the benchmark
            print(f"  {kname:<11} {variant:<28} FAILED: {type(e).__name__}: {e}", flush=True)
            rows.append({"kernel": kname, "search": variant, "error": f"{type(e).__name__}: {e}"})
            if at_once:
                save(rows[-1:])
            continue
        # not re-timed until the re-timing below (or a later --retime-from) says otherwise
        row.update(kernel=kname, reference_ms=ref_ms, known=known or None, retimed=False)
        rows.append(row)
        if at_once:
            save([row])
        else:
            with Path(f"{a.results}.partial").open("a") as f:  # kept if the run is cut off before re-timing
                f.write(json.dumps(row, default=str) + "\n")
        chosen[variant] = config
        print(
            f"  {kname:<11} {variant:<28} best {row['best_ms']:.4f} ms  wall {row['wall_s']:.1f}s  evals {row['evaluations']}",
            flush=True,
        )
    timed = [(r, chosen[str(r["search"])]) for r in rows if "error" not in r]
    if timed and a.retime_rounds > 0:
        retime(kernel, args, ref, timed, rounds=a.retime_rounds)
        print(
            f"  {kname:<11} timed again, {a.retime_rounds} interleaved rounds: "
            + ", ".join(f"{r['search']} {r['best_ms']:.4f}" for r, _ in timed)
            + f", reference {timed[0][0]['reference_ms']:.4f} ms",
            flush=True,
        )
    if not at_once:
        save(rows)
    return rows


def baseline(rows: list[dict[str, object]], kernel: str, names: tuple[str, ...]) -> float:
    """The best latency of the searches ``names`` on ``kernel`` (nan if none ran)."""
    values = [float(r["best_ms"]) for r in rows if r["kernel"] == kernel and r["search"] in names and "error" not in r]  # type: ignore[arg-type]
    return min(values, default=math.nan)


def table(rows: list[dict[str, object]]) -> None:
    """Per kernel and search: re-timed best, its ratio to min(PatternSearch, LFBOTreeSearch) and
    to the known config (knowing runs), wall and its ratio to PatternSearch's, when the first
    config's measurement was logged and how long Helion's final selection took (both in the wall),
    the search's own part (wall minus those two), configs measured, configs from the LLM, whether
    the winner descends from an LLM proposal."""
    print(
        f"\n{'kernel':<11} {'search':<28} {'best ms':>8} {'/PS,LFBO':>8} {'/known':>7} {'wall s':>7} "
        f"{'/PS':>6} {'1st s':>6} {'final s':>7} {'search s':>8} {'evals':>6} {'LLM':>4} {'win<-LLM':>8}  stop / mode"
    )
    for k in dict.fromkeys(str(r["kernel"]) for r in rows):
        ref = baseline(rows, k, ("PatternSearch", "LFBOTreeSearch"))
        ps_wall = [
            float(r["wall_s"]) for r in rows if r["kernel"] == k and r["search"] == "PatternSearch" and "wall_s" in r
        ]  # type: ignore[arg-type]
        for r in (r for r in rows if r["kernel"] == k):
            if "error" in r:
                print(f"{k:<11} {r['search']:<28} FAILED: {r['error']}")
                continue
            known = known_ms(rows, r)
            wall = float(r["wall_s"])  # type: ignore[arg-type]
            print(
                f"{k:<11} {r['search']:<28} {float(r['best_ms']):>8.4f} "  # type: ignore[arg-type]
                f"{_fmt(float(r['best_ms']) / ref if math.isfinite(ref) else None, 7, 'x')} "  # type: ignore[arg-type]
                f"{_fmt(float(r['best_ms']) / known if known else None, 6, 'x')} {wall:>7.1f} "  # type: ignore[arg-type]
                f"{_fmt(wall / ps_wall[0] if ps_wall else None, 5, 'x')} {_fmt(r.get('first_result_s'), 6)} "
                f"{_fmt(r.get('final_selection_s'), 7)} {_fmt(search_s(r), 8)} {r['evaluations']:>6} "
                f"{_fmt(r.get('from_llm'), 4)} {_fmt(r.get('winner_from_llm'), 8)}  "
                f"{r.get('mode') or ''} {r.get('stop_reason') or ''}"
            )
        for r in (r for r in rows if r["kernel"] == k and r.get("matches_reference") is False):
            print(
                f"{k:<11} {r['search']}: its pick's output is not PyTorch's (max abs error {r['reference_error']:.3g})"
            )
        if any(r.get("retimed") is False for r in rows if r["kernel"] == k):
            print(f"{k:<11} (not re-timed together: each pick timed once, right after its search)")
        spread(k, [r for r in rows if r["kernel"] == k and "error" not in r])
        paired(k, [r for r in rows if r["kernel"] == k and "error" not in r])
    summary(rows)


def spread(kernel: str, rows: list[dict[str, object]]) -> None:
    """How well one re-timing resolves the picks: each pick's timing over PatternSearch's pick's
    in the same round (the rounds interleave the picks, so drift between rounds cancels), median
    and quartiles over the rounds. Rows re-timed before the rounds were kept print nothing."""
    ps = next((r for r in rows if r["search"] == "PatternSearch" and r.get("retime_ms")), None)
    if ps is None:
        return
    print(f"{kernel:<11} per round / PatternSearch's pick, median [quartiles]:")
    for r in rows:
        if r is not ps and (q := per_round(r, ps)) is not None:
            print(f"{'':<11} {r['search']:<28} {q[1]:.3f}x [{q[0]:.3f}x, {q[2]:.3f}x]")


def per_round(row: dict[str, object], base: dict[str, object] | None) -> tuple[float, float, float] | None:
    """The quartiles (q1, median, q3) over the re-timing rounds of ``row``'s timing over
    ``base``'s in the same round; None where either lacks the rounds or they differ in count."""
    times, base_times = row.get("retime_ms") or (), (base or {}).get("retime_ms") or ()
    if not times or len(times) != len(base_times):  # type: ignore[arg-type]
        return None
    ratios = [a / b for a, b in zip(times, base_times, strict=True)]  # type: ignore[call-overload]
    q1, mid, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    return q1, mid, q3


def paired(kernel: str, rows: list[dict[str, object]]) -> None:
    """The ratios two targets are judged by, per round: each knowing pick over the known config
    (where a search chose it), each blind pick over the same search's no-LLM (``dead``) pick;
    median and quartiles over the rounds. Where a kernel's timings jump between two levels
    (the config and the round set which), a median of each pick's timings moves by the gap
    with the share of rounds at each level, and a per-round ratio of two picks far less."""
    by_search = {str(r["search"]): r for r in rows}
    for r in rows:
        name, _, llm = str(r["search"]).partition(":")
        if llm == "knowing":
            base, what = known_row(rows, r), "the known config"
        elif llm == "blind":
            base, what = by_search.get(f"{name}:dead"), f"the no-LLM pick ({name}:dead)"
        else:
            continue
        if (q := per_round(r, base)) is not None:
            print(f"{kernel:<11} per round, {r['search']} / {what}, median {q[1]:.3f}x [{q[0]:.3f}x, {q[2]:.3f}x]")


def known_row(rows: list[dict[str, object]], row: dict[str, object]) -> dict[str, object] | None:
    """The row of a search of the same kernel that chose the config a knowing run was told."""
    if not row.get("known"):
        return None
    known = [repr(helion.Config(**c)) for c in row["known"]]  # type: ignore[union-attr]
    return next((r for r in rows if r["kernel"] == row["kernel"] and r.get("config") in known), None)


def search_s(row: dict[str, object]) -> float | None:
    """The part of the wall the search itself decides: after Helion's first measurement was
    logged and before its final selection (both Helion's, the same for every search)."""
    first, final = row.get("first_result_s"), row.get("final_selection_s")
    return None if first is None or final is None else float(row["wall_s"]) - float(first) - float(final)  # type: ignore[arg-type]


def known_ms(rows: list[dict[str, object]], row: dict[str, object]) -> float | None:
    """The re-timed latency of the config a knowing run was told, where a search of the same
    kernel chose exactly it."""
    base = known_row(rows, row)
    return None if base is None else float(base["best_ms"])  # type: ignore[arg-type]


def _fmt(value: object, width: int, unit: str = "") -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, bool):
        return f"{'yes' if value else 'no':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.3f}{unit}" if unit else f"{value:>{width}.1f}"
    return f"{value!s:>{width}}"


def geomean(values: list[float]) -> float:
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def summary(rows: list[dict[str, object]]) -> None:
    """Per search variant, over the kernels it ran on: geomean of best / min(PatternSearch,
    LFBOTreeSearch) and the worst kernel, geomean of wall / PatternSearch's. A kernel neither
    baseline ran on counts for no search, and is named."""
    ok = [r for r in rows if "error" not in r]
    names = dict.fromkeys(str(r["kernel"]) for r in ok)
    refs = {k: baseline(ok, k, ("PatternSearch", "LFBOTreeSearch")) for k in names}
    kernels = [k for k, ref in refs.items() if math.isfinite(ref)]
    alone = [k for k in refs if k not in kernels]
    print(f"\n{'search':<28} {'kernels':>7} {'best/min(PS,LFBO) geomean':>26} {'worst':>7} {'wall/PS geomean':>16}")
    for name in dict.fromkeys(str(r["search"]) for r in ok):
        quality, wall = [], []
        for k in kernels:
            mine = [r for r in ok if r["kernel"] == k and r["search"] == name]
            ps = [r for r in ok if r["kernel"] == k and r["search"] == "PatternSearch"]
            if not mine:
                continue
            quality.append(float(mine[0]["best_ms"]) / refs[k])  # type: ignore[arg-type]
            if ps:
                wall.append(float(mine[0]["wall_s"]) / float(ps[0]["wall_s"]))  # type: ignore[arg-type]
        if not quality:
            continue
        print(
            f"{name:<28} {len(quality):>7} {geomean(quality):>25.3f}x {max(quality, default=math.nan):>6.3f}x "
            f"{geomean(wall):>15.2f}x"
        )
    if alone:
        print(f"(not in these geomeans, no PatternSearch or LFBOTreeSearch row: {', '.join(alone)})")


if __name__ == "__main__":
    main()
