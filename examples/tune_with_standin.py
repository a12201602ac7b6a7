"""Tune Helion kernels with the OpenEvolve search, end to end, on whatever this machine has.

The kernels come from ``kernels.py``. On a GPU they run through Triton; with no GPU, through
Helion's Pallas backend in interpret mode on the CPU (said at start). The LLM is the local
stand-in server of ``standin_llm.py`` (``--llm-latency`` seconds per answer) unless
``--api-base`` names a real OpenAI-compatible endpoint (key from OPENAI_API_KEY). The search is
chosen the way a user chooses it, through ``HELION_AUTOTUNER=OpenEvolveTuner``; nothing of the
plugin is imported. Prints, per kernel: default and tuned latency, speedup, wall time of
tuning, evaluations and where the time went (from the run record).

    python examples/tune_with_standin.py --kernels matmul,softmax --max-evaluations 60
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).parent))
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
    if ON_GPU:
        h = torch.float16
        return {
            "matmul": (
                matmul,
                (torch.randn(1024, 1024, device=device, dtype=h), torch.randn(1024, 1024, device=device, dtype=h)),
            ),
            "softmax": (softmax, (torch.randn(4096, 2560, device=device, dtype=h),)),
            "vector_add": (
                vector_add,
                (torch.randn(1 << 24, device=device, dtype=h), torch.randn(1 << 24, device=device, dtype=h)),
            ),
        }
    return {
        "matmul": (matmul, (torch.randn(256, 256), torch.randn(256, 256))),
        "softmax": (softmax, (torch.randn(256, 512),)),
        "vector_add": (vector_add, (torch.randn(1 << 16), torch.randn(1 << 16))),
    }


def config_latency_ms(kernel: object, args: tuple[torch.Tensor, ...], config: helion.Config) -> float:
    """Milliseconds per call of ``kernel`` compiled with ``config`` on ``args``."""
    fn = kernel.bind(args).compile_config(config)  # type: ignore[attr-defined]
    return latency_ms(lambda: fn(*args), warmup=50, rep=300)


#: Another search (e.g. PatternSearch) writes no run record: its rows show only latency and wall.
_NO_RECORD: dict[str, object] = {
    "evaluations": "-", "llm_calls": "-", "mode": os.environ.get("HELION_AUTOTUNER", "-"), "measure_s": 0.0,
    "llm_wait_s": 0.0, "finalize_s": 0.0, "other_s": 0.0, "busy_share": 0.0, "by_source": {},
}  # fmt: skip


def tune(name: str, kernel: object, args: tuple[torch.Tensor, ...], record: Path) -> dict[str, object]:
    os.environ["HELION_OPENEVOLVE_RECORD_PATH"] = str(record)
    t0 = time.perf_counter()
    kernel(*args)  # type: ignore[operator]  # first call autotunes with HELION_AUTOTUNER's search
    wall = time.perf_counter() - t0
    bound = kernel.bind(args)  # type: ignore[attr-defined]
    tuned = bound._config
    default = bound.config_spec.default_config()
    lines = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    summary = next((line for line in reversed(lines) if line["kind"] == "summary"), _NO_RECORD)
    d, t = config_latency_ms(kernel, args, default), config_latency_ms(kernel, args, tuned)
    return {**summary, "kernel": name, "default_ms": d, "tuned_ms": t, "speedup": d / t, "tune_wall_s": wall}


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
    a = p.parse_args()
    device = "cuda" if ON_GPU else "cpu"
    print(f"device: {torch.cuda.get_device_name() if ON_GPU else 'CPU (Helion Pallas backend, interpret mode)'}")
    os.environ["HELION_AUTOTUNER"] = a.search
    os.environ.setdefault("HELION_AUTOTUNE_EFFORT", "quick")
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
            kernel, args = workloads(device)[name]
            rows.append(tune(name, kernel, args, out / f"{name}.jsonl"))
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(
        f"\n{'kernel':<11} {'default ms':>11} {'tuned ms':>10} {'speedup':>8} {'wall s':>7} {'evals':>6} {'LLM':>4}  mode / time split"
    )
    for r in rows:
        print(
            f"{r['kernel']:<11} {r['default_ms']:>11.4f} {r['tuned_ms']:>10.4f} {r['speedup']:>7.2f}x {r['tune_wall_s']:>7.1f} "
            f"{r['evaluations']:>6} {r['llm_calls']:>4}  {r['mode']}: measure {r['measure_s']:.1f}s, LLM wait {r['llm_wait_s']:.1f}s, "
            f"finalize {r['finalize_s']:.1f}s, other {r['other_s']:.1f}s, busy {r['busy_share']:.0%}, sources {r['by_source']}"
        )
    print(f"\nrun records and results.json: {out}")


if __name__ == "__main__":
    main()
