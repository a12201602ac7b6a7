"""Tune a Helion vector-add kernel with the OpenEvolve search and report its memory throughput.

The kernel (``vector_add`` of ``kernels.py``) is built with
``helion.kernel(vector_add.fn, autotuner_fn=openevolve_autotuner(...))``; its
first call runs the search. The script then times Helion's default config and the tuned config
and prints their throughput in GB/s (3 tensors of ``--size`` elements moved per call) and the
share of the device's peak memory bandwidth (from torch's CUDA device properties; 'unknown'
where torch does not expose them, e.g. on the CPU).

On a GPU the kernel runs through Triton; with no GPU, through Helion's Pallas backend in
interpret mode on the CPU (said in the first line). The LLM is ``--api-base`` (key from
OPENAI_API_KEY) when given; else the stand-in server of ``standin_llm.py``, unless ``--no-standin``,
in which case OPENAI_API_KEY's endpoint is used if a key is set and, with none, the search falls
back to random search and the script prints why. ``--simple`` runs the kernel once with the
default config (no tuning) and checks it against ``x + y``.

    python examples/helion_vector_add_tuning.py --size 16777216 --max-evaluations 40
    python examples/helion_vector_add_tuning.py --simple
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from example_support import add_llm_options
from example_support import apply_run_env
from example_support import device_line
from example_support import latency_ms
from example_support import recording_autotuner
from example_support import report_search
from example_support import select_backend
from example_support import start_llm
from example_support import tuner_settings

ON_GPU = select_backend(sys.argv)

from kernels import vector_add  # noqa: E402
import torch  # noqa: E402

import helion  # noqa: E402


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


def config_gbs(kernel: Any, args: tuple[torch.Tensor, ...], config: helion.Config) -> float:
    compiled = kernel.bind(args).compile_config(config)
    ms = latency_ms(lambda: compiled(*args))
    moved = sum(a.numel() * a.element_size() for a in args) + args[0].numel() * args[0].element_size()
    return moved / (ms * 1e-3) / 1e9


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=None, help="elements per vector (GPU 2**24, CPU 2**12)")
    p.add_argument("--simple", action="store_true", help="run the default config once and check it; no tuning")
    add_llm_options(p)
    a = p.parse_args()
    print(device_line(), flush=True)
    apply_run_env(a)
    device = "cuda" if ON_GPU else "cpu"
    dtype = torch.float16 if ON_GPU else torch.float32
    size = a.size or (1 << 24 if ON_GPU else 1 << 12)
    args = (torch.randn(size, device=device, dtype=dtype), torch.randn(size, device=device, dtype=dtype))

    if a.simple:
        bound = vector_add.bind(args)
        out = bound.compile_config(bound.config_spec.default_config())(*args)
        torch.testing.assert_close(out, args[0] + args[1])
        print(f"simple: default config {bound.config_spec.default_config()} on {size} elements: correctness ok")
        return

    record, settings = tuner_settings(a, "vector-add-")
    searches: list[object] = []
    kernel = helion.kernel(vector_add.fn, autotuner_fn=recording_autotuner(settings, searches))
    with start_llm(a) as llm:
        settings.update(llm)
        t0 = time.perf_counter()
        out = kernel(*args)  # the first call runs the search
        wall = time.perf_counter() - t0
    torch.testing.assert_close(out, args[0] + args[1])
    bound = kernel.bind(args)
    default, tuned = bound.config_spec.default_config(), bound._config
    report_search(searches, record, wall)
    peak = peak_bandwidth_gbs()
    print(f"peak memory bandwidth: {f'{peak:.0f} GB/s' if peak else 'unknown'}")
    for name, config in (("default", default), ("tuned", tuned)):
        gbs = config_gbs(kernel, args, config)
        share = f"{gbs / peak:.1%} of peak" if peak else "share of peak unknown"
        print(f"{name:<8} {gbs:10.4g} GB/s  ({share})  {config}")
    print("correctness ok")


if __name__ == "__main__":
    main()
