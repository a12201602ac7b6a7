"""What one re-timing round costs, and how noisy it is, against Helion's ``rebenchmark`` target.

Every decision of the search rests on paired re-timing rounds: the configs a decision is about,
and one of them twice (its twin), timed again together by Helion's ``rebenchmark``, whose
``target_ms`` sets how long each config is timed in a round (Helion's default: 200 ms). This
benchmark times the committed picks of each suite kernel (configs within a few percent of each
other, as a decision's contenders are) in rounds at several targets, the targets interleaved
round by round so that drift touches each alike, and prints per kernel and target:

- ``s / round``: the wall of one round (four timings: three configs and a twin);
- ``twin noise``: the root mean square of the relative difference between a config's two
  timings in one round (what the search's ``timing_noise`` measures);
- ``pair sd``: the standard deviation over the rounds of the paired relative difference between
  the two fastest picks (the noise a real decision sees).

A target that gives the same noise for less wall makes each decision round cheaper. Needs a GPU.

    python examples/benchmark_retime_cost.py --results retime_cost.jsonl
    python examples/benchmark_retime_cost.py --report retime_cost.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
import statistics
import sys
import time

import benchmark_openevolve_vs_baseline as bench
from example_support import device_line
from helion.autotuner.pattern_search import PatternSearch

import helion
from helion.autotuner.openevolve.adapters.helion_backend import HelionBackend
from helion.autotuner.openevolve.adapters.space import HelionSpace
from helion.autotuner.openevolve.loop.compare import relative_difference

RESULTS = Path(__file__).parent / "results"
#: the committed rows whose picks are timed (each kernel's distinct picks, fastest first)
PICKS = [RESULTS / n for n in ("h200_full.jsonl", "decisions_h200.jsonl", "outside_h200.jsonl")]


def picks(kernel: str, count: int) -> list[helion.Config]:
    """The ``count`` fastest distinct committed picks of ``kernel`` (by their re-timed latency)."""
    best: dict[str, float] = {}
    for path in PICKS:
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if row.get("kernel") == kernel and "config_dict" in row and row.get("best_ms"):
                key = json.dumps(row["config_dict"], sort_keys=True)
                best[key] = min(best.get(key, math.inf), float(row["best_ms"]))
    return [helion.Config(**json.loads(k)) for k in sorted(best, key=best.__getitem__)[:count]]


class _Probe(PatternSearch):
    """A Helion search whose whole run is this benchmark's rounds, each timed as the search times
    a decision round (its backend's ``retime``: the configs and a twin through Helion's
    ``rebenchmark``), so every timing has a search's setup (benchmark provider, accuracy check,
    isolation)."""

    def __init__(
        self, kernel: object, args: object, configs: list[helion.Config], targets: list[float], rounds: int
    ) -> None:
        super().__init__(kernel, args)  # type: ignore[arg-type]
        self.configs, self.targets, self.rounds = configs, targets, rounds
        self.timings: dict[float, list[list[float]]] = {t: [] for t in targets}
        self.walls: dict[float, list[float]] = {t: [] for t in targets}

    def _autotune(self) -> helion.Config:
        backend = HelionBackend(self, HelionSpace(self.config_gen, self.config_spec), self.targets[0])
        measured = backend.measure(self.configs, "compiling picks")
        ok = [c for c, m in zip(self.configs, measured, strict=True) if m.ok]
        if len(ok) < 2:
            return self.configs[0]
        targets = self.targets
        for r in range(self.rounds):
            for t in targets[r % len(targets) :] + targets[: r % len(targets)]:
                backend.round_ms = t
                start = time.perf_counter()
                timings = backend.retime([*ok, ok[0]])  # the first pick twice: its twin
                if timings is None:
                    raise SystemExit("Helion's settings turn re-timing off (autotune_rebenchmark_threshold < 1)")
                self.walls[t].append(time.perf_counter() - start)
                self.timings[t].append(timings)
        return ok[0]


def measure(
    kernel_name: str, targets: list[float], rounds: int, configs: list[helion.Config] | None = None
) -> list[dict[str, object]]:
    """Rows for one kernel: each target's rounds over ``configs`` (default: the committed picks)."""
    kernel, args, _ = bench.kernels_and_args(kernel_name, "cuda" if bench.ON_GPU else "cpu")
    configs = configs or picks(kernel_name, 3)
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    bound.settings.autotune_effort = "full"  # the effort whose searches time configs again
    probe = _Probe(bound, args, configs, targets, rounds)
    probe.autotune(skip_cache=True)
    if not probe.timings[targets[0]]:
        print(f"{kernel_name}: fewer than two picks compiled; skipped", flush=True)
        return []
    rows = []
    for t in targets:
        timings = probe.timings[t]
        twin = [relative_difference(x[-1], x[0]) for x in timings]
        pair = [relative_difference(x[1], x[0]) for x in timings]
        rows.append(
            {
                "kernel": kernel_name,
                "target_ms": t,
                "rounds": rounds,
                "configs": len(timings[0]) - 1,
                "best_ms": statistics.median(x[0] for x in timings),
                "s_per_round": statistics.mean(probe.walls[t]),
                "twin_noise": math.sqrt(statistics.mean(d * d for d in twin)),
                "pair_sd": statistics.stdev(pair),
                "pair_mean": statistics.mean(pair),
                "timings": timings,
            }
        )
    return rows


def report(rows: list[dict[str, object]]) -> None:
    print("| kernel | best ms | target ms | s / round | twin noise, % | pair sd, % | pair mean, % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['kernel']} | {r['best_ms']:.4f} | {r['target_ms']:g} | {r['s_per_round']:.2f} | "
            f"{100 * r['twin_noise']:.2f} | {100 * r['pair_sd']:.2f} | {100 * r['pair_mean']:+.2f} |"  # type: ignore[operator]
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kernels", default="vector_add,softmax,layer_norm,rms_norm,bias_grad,attention,matmul")
    p.add_argument("--targets", default="200,50,20", help="rebenchmark target_ms values, comma-separated")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--configs", type=Path, help="a JSON list of the configs to time (default: the committed picks)")
    p.add_argument("--cpu", action="store_true", help="Helion's Pallas backend on the CPU (interpret mode)")
    p.add_argument("--results", type=Path, help="append rows to this file")
    p.add_argument("--report", type=Path, help="print the table of a results file and exit")
    a = p.parse_args(argv)
    if a.report:
        report([json.loads(line) for line in a.report.read_text().splitlines()])
        return 0
    print(device_line(), flush=True)
    targets = [float(t) for t in a.targets.split(",")]
    configs = [helion.Config(**c) for c in json.loads(a.configs.read_text())] if a.configs else None
    rows: list[dict[str, object]] = []
    for name in a.kernels.split(","):
        new = measure(name, targets, a.rounds, configs)
        rows += new
        if a.results:
            with a.results.open("a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
        report(new)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
