"""Tune a raw Triton matmul kernel (not a Helion kernel) with ``tune_config_space``.

The kernel is the classic grouped-tile Triton matmul; its knobs (``BLOCK_M``, ``BLOCK_N``,
``BLOCK_K``, ``GROUP_M``, ``num_warps``, ``num_stages``) form a plain dict space. The objective
launches the kernel with a config, checks its output against ``torch.mm`` (a mismatch raises,
so the search records a failed evaluation), and returns its latency in ms from Triton's
``do_bench``; ``minimize=True`` makes the search look for the lowest. Configs that Triton cannot
build on this device (too much shared memory, for example) raise too and are recorded as
failures. The search runs on the same engine as the Helion search: the OpenEvolve process, the
asynchronous loop with local refinement, the fallback to random search and the run record.

The script prints the latency and TFLOP/s of the default config (``--default`` below), of the
tuned config and of ``torch.mm`` (cuBLAS). With no GPU it needs Triton's interpreter
(``TRITON_INTERPRET=1``, set by the script) and times with the wall clock on small matrices;
the LLM is the bundled stand-in server unless ``--api-base`` (or ``--no-standin``) is given.

    python examples/triton_matmul_tune_config_space.py --size 4096 --max-evaluations 60
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
import sys
import time

sys.path.insert(0, str(Path(__file__).parent))
from example_support import add_llm_options
from example_support import latency_ms
from example_support import select_backend
from example_support import start_llm

ON_GPU = select_backend(sys.argv)
if not ON_GPU:
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported

try:
    import triton
    import triton.language as tl
except ImportError:  # CPU machines often have no Triton; the GPU image always has it
    print("this example needs Triton (pip install triton); it is not installed here")
    sys.exit(0 if __name__ == "__main__" else 1)

import torch  # noqa: E402

from helion.autotuner.openevolve_tuner import tune_config_space  # noqa: E402

SPACE: dict[str, list[int]] = {
    "BLOCK_M": [16, 32, 64, 128, 256],
    "BLOCK_N": [16, 32, 64, 128, 256],
    "BLOCK_K": [16, 32, 64, 128],
    "GROUP_M": [1, 4, 8, 16],
    "num_warps": [2, 4, 8],
    "num_stages": [1, 2, 3, 4, 5],
}
#: The baseline: a common hand-written choice for fp16 matmul.
DEFAULT = {"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32, "GROUP_M": 8, "num_warps": 4, "num_stages": 3}


@triton.jit
def matmul_kernel(
    a_ptr,
    b_ptr,
    c_ptr,
    M,
    N,
    K,
    stride_am,
    stride_ak,
    stride_bk,
    stride_bn,
    stride_cm,
    stride_cn,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group = GROUP_M * num_pid_n
    first_m = (pid // group) * GROUP_M
    group_m = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group) % group_m
    pid_n = (pid % group) // group_m
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    a = a_ptr + rm[:, None] * stride_am + rk[None, :] * stride_ak
    b = b_ptr + rk[:, None] * stride_bk + rn[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        k_left = K - k * BLOCK_K
        x = tl.load(a, mask=(rm[:, None] < M) & (rk[None, :] < k_left), other=0.0)
        y = tl.load(b, mask=(rk[:, None] < k_left) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(x, y, acc)
        a += BLOCK_K * stride_ak
        b += BLOCK_K * stride_bk
    c = c_ptr + rm[:, None] * stride_cm + rn[None, :] * stride_cn
    tl.store(c, acc.to(c_ptr.dtype.element_ty), mask=(rm[:, None] < M) & (rn[None, :] < N))


def matmul(a: torch.Tensor, b: torch.Tensor, config: dict[str, int]) -> torch.Tensor:
    m, k = a.shape
    _, n = b.shape
    c = torch.empty((m, n), device=a.device, dtype=a.dtype)
    grid = (triton.cdiv(m, config["BLOCK_M"]) * triton.cdiv(n, config["BLOCK_N"]),)
    matmul_kernel[grid](
        a,
        b,
        c,
        m,
        n,
        k,
        a.stride(0),
        a.stride(1),
        b.stride(0),
        b.stride(1),
        c.stride(0),
        c.stride(1),
        BLOCK_M=config["BLOCK_M"],
        BLOCK_N=config["BLOCK_N"],
        BLOCK_K=config["BLOCK_K"],
        GROUP_M=config["GROUP_M"],
        num_warps=config["num_warps"],
        num_stages=config["num_stages"],
    )
    return c


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=None, help="M = N = K (GPU default 4096, CPU 64)")
    add_llm_options(p)
    p.add_argument("--max-seconds", type=float, default=600.0)
    a = p.parse_args()
    size = a.size or (4096 if ON_GPU else 64)
    device = "cuda" if ON_GPU else "cpu"
    dtype = torch.float16 if ON_GPU else torch.float32
    name = torch.cuda.get_device_name() if ON_GPU else "CPU (Triton interpreter, wall-clock timing)"
    print(f"device: {name}; raw Triton matmul {size}x{size}x{size} {str(dtype).removeprefix('torch.')}", flush=True)
    torch.manual_seed(0)
    x = torch.randn(size, size, device=device, dtype=dtype)
    y = torch.randn(size, size, device=device, dtype=dtype)
    expected = torch.mm(x.float(), y.float()).to(dtype)

    def objective(config: dict[str, int]) -> float:
        out = matmul(x, y, config)  # Triton's own errors (e.g. out of shared memory) propagate
        if not torch.allclose(out.float(), expected.float(), atol=1e-1, rtol=2e-2):
            raise ValueError("wrong result against torch.mm")
        return latency_ms(lambda: matmul(x, y, config), cpu_runs=1)

    settings: dict[str, object] = {"max_seconds": a.max_seconds}
    if a.record:
        settings["record_path"] = a.record
    if a.model:
        settings["model"] = a.model
    with start_llm(a) as llm:
        t0 = time.perf_counter()
        result = tune_config_space(
            SPACE,
            objective,
            minimize=True,
            default=DEFAULT,
            max_evaluations=a.max_evaluations or 60,
            description=f"A Triton fp16 matmul of {size}x{size} by {size}x{size} on {name}; score: latency in ms.",
            log=lambda line: print(line, flush=True),
            **settings,
            **llm,
        )
        wall = time.perf_counter() - t0
    flops = 2 * size**3
    rows = [
        ("default", objective(DEFAULT), str(DEFAULT)),
        ("tuned", objective(result.best_config), str(result.best_config)),
        ("torch.mm", latency_ms(lambda: torch.mm(x, y)), "cuBLAS" if ON_GPU else "CPU"),
    ]
    print(f"\ntuning: {result.mode}, {result.evaluations} evaluations, {wall:.1f}s")
    if result.fallback_reason:
        print(f"fell back to random search: {result.fallback_reason}")
    for label, ms, what in rows:
        print(f"{label:<9} {ms:9.4f} ms  {flops / ms / 1e9:8.1f} TFLOP/s  {what}")
    print(f"tuned vs default: {rows[0][1] / rows[1][1]:.2f}x; tuned vs torch.mm: {rows[2][1] / rows[1][1]:.2f}x")


if __name__ == "__main__":
    main()
