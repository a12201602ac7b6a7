"""The comparison rule against timing noise, on the CPU: what ``decision_rounds`` buys.

A GPU search decides with at most ``decision_rounds`` paired re-timing rounds (6 by default).
This benchmark runs the same search loop through ``tune_config_space`` on synthetic landscapes
whose true costs it knows, with log-normal timing noise of a set size on every call, so that each
decision can be checked against the truth. No GPU, no LLM (the searches run without one), about
20 s on one core; the seeds fix every timing, so the same versions print the same table.

- Landscapes: six parameters of five values; the optimum has every parameter at 2, the default
  at 0 (twelve steps away). ``flat``: every config costs 1.0; ``gentle``: each step away from the
  optimum costs 1% more (the default: 1.127x the optimum); ``sloped``: 3% more (1.426x).
- The search has a GPU search's shape: the default and 6 random configs first, 3 refinement
  paths, batches of 24, a budget of 400 configs.
- Each row: the mean over the seeds of the noise the search measured (``timing_noise`` in its
  summary: the noise of one paired round, about 1.4x a call's), the configs measured, the
  re-timing rounds (each times a group of configs again: on an H200 0.1-0.2 s at 20 ms per
  config), the pick's true cost over the optimum's (mean and worst), and the paths' moves to a
  neighbour that was not truly faster.

    python examples/benchmark_decisions_cpu.py --results decisions_cpu.jsonl
    python examples/benchmark_decisions_cpu.py --report decisions_cpu.jsonl
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import math
from pathlib import Path
import random
import sys
import tempfile

from helion.autotuner.openevolve.loop.record import read_record
from helion.autotuner.openevolve_tuner import tune_config_space

Config = dict[str, object]
PARAMETERS, VALUES, OPTIMUM_VALUE = 6, 5, 2
SPACE = {f"p{i}": list(range(VALUES)) for i in range(PARAMETERS)}
DEFAULT = {f"p{i}": 0 for i in range(PARAMETERS)}
STEP = {"flat": 0.0, "gentle": 0.01, "sloped": 0.03}  # true cost of each step from the optimum
SHAPE = {"max_evaluations": 400, "initial_random": 6, "refine_starts": 3, "refine_batch": 24}


def true_cost(landscape: str) -> Callable[[Config], float]:
    step = STEP[landscape]
    return lambda c: math.prod((1 + step) ** abs(int(c[k]) - OPTIMUM_VALUE) for k in SPACE)  # type: ignore[call-overload]


def run(landscape: str, noise: float, rounds: int, seed: int) -> dict[str, float]:
    """One search; what it measured and picked, against the truth."""
    truth = true_cost(landscape)
    rng = random.Random(seed)

    def timing(config: Config) -> float:
        return truth(config) * math.exp(rng.gauss(0.0, noise))

    with tempfile.TemporaryDirectory() as tmp:
        record = Path(tmp) / "run.jsonl"
        result = tune_config_space(
            SPACE,
            timing,
            minimize=True,
            default=DEFAULT,
            seed=seed,
            decision_rounds=rounds,
            record_path=str(record),
            log=lambda *a: None,
            **SHAPE,  # type: ignore[arg-type]
        )
        lines = read_record(record)
    moves = [x for x in lines if x["kind"] == "decision" and x.get("what") == "move" and x.get("better")]
    return {
        "configs": result.evaluations,
        "rounds": float(result.summary["retiming_rounds"]),  # type: ignore[arg-type]
        "timing_noise": float(result.summary["timing_noise"]),  # type: ignore[arg-type]
        "pick": truth(result.best_config),  # the optimum costs 1.0
        "moves": len(moves),
        "false_moves": sum(truth(x["neighbor"]) >= truth(x["incumbent"]) for x in moves),  # type: ignore[arg-type]
    }


def row(landscape: str, noise: float, rounds: int, seeds: int) -> dict[str, object]:
    runs = [run(landscape, noise, rounds, seed) for seed in range(seeds)]

    def mean(key: str) -> float:
        return sum(r[key] for r in runs) / len(runs)

    return {
        "landscape": landscape,
        "noise": noise,
        "decision_rounds": rounds,
        "seeds": seeds,
        "configs": round(mean("configs"), 1),
        "rounds": round(mean("rounds"), 1),
        "timing_noise": round(mean("timing_noise"), 4),
        "pick_mean": round(mean("pick"), 4),
        "pick_worst": round(max(r["pick"] for r in runs), 4),
        "moves": int(sum(r["moves"] for r in runs)),
        "false_moves": int(sum(r["false_moves"] for r in runs)),
    }


def report(rows: list[dict[str, object]]) -> None:
    print(
        "| landscape | noise of a call, % | `timing_noise`, % | decision_rounds | configs | re-timing rounds "
        "| pick / optimum | worst | false moves |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['landscape']} | {100 * float(r['noise']):.1f} | {100 * float(r['timing_noise']):.1f} | {r['decision_rounds']} "  # type: ignore[arg-type]
            f"| {r['configs']} | {r['rounds']} | "
            f"{r['pick_mean']:.4f}x | {r['pick_worst']:.4f}x | {r['false_moves']} of {r['moves']} |"
        )
    print(f"(means over {rows[0]['seeds']} seeds per row)" if rows else "(no rows)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--landscapes", default="flat,gentle,sloped")
    p.add_argument("--noise", default="0.005,0.01,0.02", help="timing noise of one call (relative), comma-separated")
    p.add_argument("--decision-rounds", default="3,6,12", help="comma-separated")
    p.add_argument("--seeds", type=int, default=24)
    p.add_argument("--results", help="append the rows to this JSON-lines file")
    p.add_argument("--report", help="print the table of the rows in this file, and measure nothing")
    a = p.parse_args(argv)
    if a.report:
        report([json.loads(line) for line in Path(a.report).read_text().splitlines() if line.strip()])
        return 0
    rows = []
    for landscape in a.landscapes.split(","):
        if landscape not in STEP:
            p.error(f"unknown landscape {landscape!r}; expected one of {', '.join(STEP)}")
        for noise in (float(x) for x in a.noise.split(",")):
            for rounds in (int(x) for x in a.decision_rounds.split(",")):
                rows.append(row(landscape, noise, rounds, a.seeds))
                if a.results:
                    with open(a.results, "a") as f:
                        f.write(json.dumps(rows[-1]) + "\n")
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
