"""Inject GPU-only faults into a real OpenEvolve tuning run and check that it survives them.

Needs a CUDA GPU (Triton backend). Run it alone, or through pytest with the other GPU tests
(``test_gpu_faults.py``, marked ``gpu``, skipped on a machine without a CUDA GPU):

    python test/fault_injection_gpu.py [--out DIR]
    python -m pytest -m gpu test

The kernel ``faulty_add`` is a vector add with a tunable ``fault`` (registered with
``hl.register_tunable``, so it is part of the config space the search explores) whose values
make the generated Triton kernel:

    0  correct (the default)
    1  read ~4 GB past its input: an illegal memory access on the device
    2  add 1.0 to every element: wrong results, which Helion's accuracy check must catch
    3  not compile (a failing ``tl.static_assert`` in an inline Triton snippet)
    4  compile slowly (a 40 000-step unrolled loop) past a 5-second compile timeout

Each faulty value is also a user seed config, so every fault is measured at least once; the
stand-in LLM (``random`` mode) and local refinement propose more configs around them. The
script checks that the run ends with a config that is correct (``fault == 0``) and was
measured; that each faulty config is recorded as a failure (never ``ok``) with its status;
that the output of the tuned kernel matches ``x + y``; and that no process the search started
is left. It prints one table row per fault value and exits 1 if any check fails.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
import os
from pathlib import Path
import sys
import tempfile
import time

import helion.language as hl
import psutil
import torch

import helion
from helion.autotuner import EnumFragment

FAULTS = {
    0: "none (correct)",
    1: "illegal memory access",
    2: "wrong results",
    3: "compile error",
    4: "compile time-out",
}
COMPILE_TIMEOUT_S = 5


#: Triton code inlined into every config. Only ``fault`` (a compile-time constant) picks what it
#: does, so no config depends on Triton pruning untaken branches: 3 fails a static assertion,
#: 4 unrolls a 40 000-step loop at compile time, every other value leaves ``{0}`` as it is.
FAULT_SNIPPET = """
tl.static_assert({1} != 3, "injected compile failure")
acc = {0}
for _i in tl.static_range(({1} // 4) * 40000):
    acc = acc * 1.0001 + 0.5
{0} + acc * 0.0
"""


def faulty_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    fault = hl.register_tunable("fault", EnumFragment(choices=(0, 1, 2, 3, 4)))
    for tile in hl.tile(x.size(0)):
        if fault == 1:
            out[tile] = x[tile.index + 1_000_000_000] + y[tile]
        elif fault == 2:
            out[tile] = x[tile] + y[tile] + 1.0
        else:
            xs = x[tile]
            out[tile] = hl.inline_triton(FAULT_SNIPPET, [xs, fault], xs) + y[tile]
    return out


def build_kernel(seeds: list[dict[str, object]]) -> helion.Kernel:
    return helion.kernel(faulty_add, autotune_seed_configs=seeds)  # type: ignore[call-overload]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="folder for the run record (default: a temporary one)")
    p.add_argument("--size", type=int, default=1 << 20)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("fault injection needs a CUDA GPU; none found")
        return 2
    os.environ.setdefault("HELION_AUTOTUNE_EFFORT", "quick")
    os.environ["HELION_SKIP_CACHE"] = "1"
    os.environ["HELION_AUTOTUNE_COMPILE_TIMEOUT"] = str(COMPILE_TIMEOUT_S)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the stand-in LLM
    from standin_llm import StandinLLM

    from helion.autotuner.openevolve_tuner import OpenEvolveSearch

    out = Path(a.out or tempfile.mkdtemp(prefix="oe-faults-"))
    out.mkdir(parents=True, exist_ok=True)
    record = out / "faults_record.jsonl"
    record.unlink(missing_ok=True)
    x = torch.randn(a.size, device="cuda")
    y = torch.randn(a.size, device="cuda")
    print(f"device: {torch.cuda.get_device_name()}; compile timeout {COMPILE_TIMEOUT_S}s; record {record}")

    probe = build_kernel([]).bind((x, y))  # type: ignore[attr-defined]
    default = dict(probe.config_spec.default_config().config)
    seeds = [{**default, "fault": f} for f in FAULTS if f != 0]
    kernel = build_kernel(seeds)
    bound = kernel.bind((x, y))  # type: ignore[attr-defined]
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    failures: list[str] = []
    t0 = time.perf_counter()
    with StandinLLM(mode="random", latency_s=1.0) as llm:
        search = OpenEvolveSearch(
            bound,
            (x, y),
            api_base=llm.url,
            api_key="standin",
            max_evaluations=40,
            max_seconds=400,
            record_path=str(record),
        )
        config = search.autotune()
    wall = time.perf_counter() - t0

    lines = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    evals = [e for e in lines if e["kind"] == "evaluation" and isinstance(e.get("config"), dict)]
    print(f"\ntuned in {wall:.1f}s: {search.summary.get('mode')}, {len(evals)} evaluations; chosen {config}")
    print("\n| fault | what it does | configs measured | statuses |\n| --- | --- | --- | --- |")
    for fault, what in FAULTS.items():
        rows = [e for e in evals if e["config"].get("fault") == fault]
        statuses = Counter(str(e["status"]) for e in rows)
        print(f"| {fault} | {what} | {len(rows)} | {', '.join(f'{k} x{v}' for k, v in sorted(statuses.items()))} |")
        if fault and not rows:
            failures.append(f"fault {fault} ({what}) was never measured")
        if fault and statuses.get("ok"):
            failures.append(f"fault {fault} ({what}) was measured as ok")
        if not fault and not statuses.get("ok"):
            failures.append("no correct config was measured")
    reasons = {e["config"].get("fault"): e.get("reason") for e in evals if e["status"] != "ok"}
    for fault, reason in sorted(reasons.items()):
        print(f"  reason recorded for fault {fault}: {reason}")

    if config.config.get("fault") != 0:
        failures.append(f"the chosen config is faulty: {config}")
    result = bound.compile_config(config)(x, y)
    if not torch.allclose(result, x + y):
        failures.append("the tuned kernel's output does not match x + y")
    time.sleep(1.0)
    left = [c for c in psutil.Process().children(recursive=True) if c.pid not in before and c.is_running()]
    left = [c for c in left if "openevolve" in " ".join(c.cmdline()) or "_helion_openevolve" in " ".join(c.cmdline())]
    if left:
        failures.append(f"processes left: {[c.cmdline()[:3] for c in left]}")
    summary = {"wall_s": wall, "chosen": dict(config.config), "failures": failures, **search.summary}
    (out / "faults_summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print("\n" + ("FAILED:\n  " + "\n  ".join(failures) if failures else "all fault checks passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
