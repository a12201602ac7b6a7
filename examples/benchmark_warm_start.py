"""Warm start, measured: what tuning a kernel on one shape buys its next shape and its next run.

For each kernel, in one process on one device:

1. Shape A is tuned once by this search (blind stand-in LLM) through Helion's own cache
   wrapper, so both stores a user would have afterwards are filled: Helion's autotune cache
   (``HELION_CACHE_DIR``, a folder private to this run) and this search's history store.
2. Shape B (twice the rows of A) is tuned, each run with cold compile caches, by:
   ``PatternSearch`` and ``LFBOTreeSearch`` (Helion's ``from_best_available`` start reads shape
   A's entry in Helion's cache: the default at ``quick`` effort, set for them at ``full``), this search
   ``cold`` (no history, no cache seeds, blind LLM), ``warm`` (the history store as shape A left
   it, blind LLM) and ``warm, no LLM`` (the same store, no LLM configured).
3. ``rerun``: shape B again with Helion's cache skipped but the history store as the warm run
   left it (it holds shape B's own pick now).
4. The picks on shape B are timed again together in interleaved rounds.

Each warm run starts from a copy of the store as step 1 (or the warm run, for ``rerun``) left
it, so no run sees another's pick of shape B. The table shows best / the cold run's best and
wall / the cold run's wall (``rerun``: / the warm run's). Rows go to ``--results`` (JSON lines;
``--report FILE`` prints the table again):

    python examples/benchmark_warm_start.py --kernels rms_norm,softmax,matmul --results warm.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING
from unittest import mock

sys.path.insert(0, str(Path(__file__).parent))
import benchmark_openevolve_vs_baseline as side  # same runs, same timing; selects the backend
from benchmark_openevolve_vs_baseline import geomean
from benchmark_openevolve_vs_baseline import kernels_and_args
from helion.autotuner.local_cache import LocalAutotuneCache
import torch

import helion
from helion.autotuner.openevolve_tuner import OpenEvolveSearch

if TYPE_CHECKING:
    from collections.abc import Iterator

# label -> (search, LLM behaviour, which history store): "A" = as shape A left it, "B" = as the
# warm run on shape B left it
RUNS: dict[str, tuple[str, str, str | None]] = {
    "PatternSearch (from_best_available)": ("PatternSearch", "", None),
    "LFBOTreeSearch (from_best_available)": ("LFBOTreeSearch", "", None),
    "OpenEvolve cold": ("OpenEvolveTuner", "blind", None),
    "OpenEvolve warm": ("OpenEvolveTuner", "blind", "A"),
    "OpenEvolve warm, no LLM": ("OpenEvolveTuner", "none", "A"),
    "OpenEvolve rerun": ("OpenEvolveTuner", "blind", "B"),
}
COLD, WARM, RERUN = "OpenEvolve cold", "OpenEvolve warm", "OpenEvolve rerun"


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """These environment variables set (None: unset) for the duration."""
    with mock.patch.dict(os.environ):  # restores the whole environment on exit
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield


#: No API key anywhere: this search then runs without an LLM.
NO_LLM = {"OPENAI_API_KEY": None, "HELION_OPENEVOLVE_API_KEY": None}
#: Helion's searches start from its cache at every effort (``full`` starts from random otherwise).
FROM_CACHE = {"HELION_AUTOTUNER_INITIAL_POPULATION": "from_best_available"}


def tune_first_shape(
    kernel: object, args: tuple[torch.Tensor, ...], out: Path, history: Path, latency_s: float
) -> float:
    """Tune shape A through Helion's cache wrapper (fills Helion's cache and the history
    store, as a user's first run does); seconds taken."""
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    bound.settings.autotune_log = str(out / "shape-A")
    bound.settings.autotune_effort = os.environ["HELION_AUTOTUNE_EFFORT"]
    with side.llm_for("OpenEvolveTuner:blind", latency_s, []) as (url, _):
        search = OpenEvolveSearch(
            bound, args, **side.LLM_SEARCHES["OpenEvolveTuner"](url), history=True, history_dir=str(history)
        )
        t0 = time.perf_counter()
        LocalAutotuneCache(search).autotune(skip_cache=True)  # skips reading, writes back
    return time.perf_counter() - t0


def run_kernel(a: argparse.Namespace, kname: str, device: str, out: Path, root: Path) -> list[dict[str, object]]:
    (kernel, args_a, ref), (_, args_b, _) = kernels_and_args(kname, device), kernels_and_args(kname, device, rows=2)
    os.environ["HELION_CACHE_DIR"] = str(root / f"{kname}-helion-cache")  # Helion's cache: this run's only
    stores = {"A": root / f"{kname}-history-A", "B": root / f"{kname}-history-B"}
    print(f"  {kname:<11} warm-up {side.warm_up(kernel, args_b, root / f'{kname}-warm-up'):.1f}s", flush=True)
    first = tune_first_shape(kernel, args_a, out / kname, stores["A"], a.llm_latency)
    print(f"  {kname:<11} shape A tuned in {first:.1f}s (Helion's cache and the history store filled)", flush=True)
    rows: list[dict[str, object]] = []
    chosen: list[tuple[dict[str, object], helion.Config]] = []
    for label, (name, behaviour, store) in RUNS.items():
        if any(skip and skip in label for skip in a.skip.split(",")):
            continue
        tag = f"{kname}-B-{label.split(' (')[0].replace(' ', '_').replace(',', '')}"
        history = None
        if store is not None:  # a private copy of the store as it was (empty if nothing was kept)
            history = root / f"{tag}-history"
            if stores[store].exists():
                shutil.copytree(stores[store], history)
        variant = f"{name}:{behaviour}" if behaviour else name
        try:
            with contextlib.ExitStack() as stack:
                llm: dict[str, object] = {}
                if behaviour == "none":
                    stack.enter_context(environ(**NO_LLM))
                elif not behaviour:
                    stack.enter_context(environ(**FROM_CACHE))
                else:
                    url, _ = stack.enter_context(side.llm_for(variant, a.llm_latency, []))
                    llm = side.LLM_SEARCHES[name](url)
                row, config = side.run_search(variant, kernel, args_b, out / tag, root / tag, llm, history_dir=history)
        except Exception as e:  # one run failing (a Helion bug, say) must not end the benchmark
            print(f"  {kname:<11} {label:<38} FAILED: {type(e).__name__}: {e}", flush=True)
            continue
        if label == WARM and history is not None and history.exists():  # the rerun starts from it
            shutil.copytree(history, stores["B"])
        row.update(kernel=kname, run=label, shape_a_s=first)
        rows.append(row)
        chosen.append((row, config))
        print(f"  {kname:<11} {label:<38} best {row['best_ms']:.4f} ms  wall {row['wall_s']:.1f}s", flush=True)
    if a.retime_rounds > 0:
        side.retime(kernel, args_b, ref, chosen, rounds=a.retime_rounds)
    return rows


def table(rows: list[dict[str, object]]) -> None:
    """Per kernel and run on shape B: best (re-timed), wall and search time, each against the
    cold run's, configs measured, what stopped it; the rerun's best and wall against the warm
    run's too."""
    print(
        f"\n{'kernel':<9} {'run':<37} {'best ms':>8} {'/cold':>7} {'wall s':>6} {'/cold':>6} "
        f"{'search s':>8} {'/cold':>6} {'evals':>5}  stop"
    )
    ratios: dict[str, list[tuple[float, float, float | None]]] = {}
    for k in dict.fromkeys(str(r["kernel"]) for r in rows):
        mine = {str(r["run"]): r for r in rows if r["kernel"] == k}
        if (cold := mine.get(COLD)) is None:
            continue
        for label, r in mine.items():
            best = float(r["best_ms"]) / float(cold["best_ms"])  # type: ignore[arg-type]
            wall = float(r["wall_s"]) / float(cold["wall_s"])  # type: ignore[arg-type]
            mine_s, cold_s = side.search_s(r), side.search_s(cold)
            search = mine_s / cold_s if mine_s is not None and cold_s else None
            ratios.setdefault(label, []).append((best, wall, search))
            print(
                f"{k:<9} {label:<37} {float(r['best_ms']):>8.4f} {best:>6.3f}x {float(r['wall_s']):>6.1f} "  # type: ignore[arg-type]
                f"{wall:>5.2f}x {side._fmt(mine_s, 8)} {side._fmt(search, 5, 'x')} {r['evaluations']:>5}  "
                f"{r.get('stop_reason') or ''}"
            )
        if (rerun := mine.get(RERUN)) is not None and (warm := mine.get(WARM)) is not None:
            print(
                f"{'':<9} {'rerun / warm':<37} {float(rerun['best_ms']) / float(warm['best_ms']):>15.3f}x "  # type: ignore[arg-type]
                f"{float(rerun['wall_s']) / float(warm['wall_s']):>12.2f}x"
            )  # type: ignore[arg-type]
    print(
        f"\n{'run':<37} {'kernels':>7} {'best/cold':>10} {'worst':>7} {'wall/cold':>10} {'search/cold':>12}  (geomeans)"
    )
    for label, xs in ratios.items():
        searches = [x[2] for x in xs if x[2] is not None]
        print(
            f"{label:<37} {len(xs):>7} {geomean([x[0] for x in xs]):>9.3f}x {max(x[0] for x in xs):>6.3f}x "
            f"{geomean([x[1] for x in xs]):>9.2f}x {side._fmt(geomean(searches) if searches else None, 11, 'x')}"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kernels", default="rms_norm")
    p.add_argument("--effort", default="quick", choices=["quick", "full"])
    p.add_argument("--llm-latency", type=float, default=10.0, help="stand-in LLM seconds per answer")
    p.add_argument(
        "--results", default="benchmark_out/warm_start.jsonl", help="JSON-lines file the rows are appended to"
    )
    p.add_argument("--retime-rounds", type=int, default=5)
    p.add_argument("--skip", default="", help="comma list: runs whose label contains one are skipped")
    p.add_argument("--cpu", action="store_true")
    p.add_argument("--report", nargs="+", default=None, metavar="RESULTS", help="measure nothing: print the table")
    a = p.parse_args()
    if a.report:
        table([json.loads(line) for path in a.report for line in Path(path).read_text().splitlines() if line.strip()])
        return
    os.environ["HELION_AUTOTUNE_EFFORT"] = a.effort
    results = Path(a.results)
    results.parent.mkdir(parents=True, exist_ok=True)
    device = "cuda" if side.ON_GPU else "cpu"
    machine = torch.cuda.get_device_name() if side.ON_GPU else "CPU (Pallas interpret)"
    print(f"device: {machine}; effort {a.effort}; stand-in LLM {a.llm_latency}s per answer", flush=True)
    with tempfile.TemporaryDirectory(prefix="warm-start-") as root:
        for kname in a.kernels.split(","):
            rows = run_kernel(a, kname, device, results.parent, Path(root))
            with results.open("a") as f:
                for row in rows:
                    f.write(json.dumps({**row, "machine": machine, "effort": a.effort}, default=str) + "\n")
            table(rows)
    print(f"\nrows appended to {results}; all of them: --report {results}")


if __name__ == "__main__":
    main()
