"""Tune a Helion attention kernel with the OpenEvolve search and compare it with PyTorch's SDPA.

Written with a B200 (Blackwell) in mind, but device-neutral: before tuning it lists the
device-specific choices the kernel's ``ConfigSpec`` exposes on this machine (fields or enum
choices whose names relate to Hopper/Blackwell features: tensor descriptors / TMA, persistent
programs, warp specialisation, ``maxnreg``, ``num_sm_multiplier``, epilogues, clusters...),
found by scanning ``HelionSpace(...).describe()``, with no assumption about which exist. It
then tunes the kernel (``attention`` of ``kernels.py``, built as
``helion.kernel(attention.fn, static_shapes=True, autotuner_fn=openevolve_autotuner(...))``), checks
the tuned kernel against ``torch.nn.functional.scaled_dot_product_attention`` with
``torch.testing.assert_close`` (fp16 tolerances on a GPU, fp32 on the CPU) and prints the
TFLOP/s (4*B*H*S*S*D flops) of the tuned kernel and of SDPA.

On a GPU the kernel runs through Triton; with no GPU, through Helion's Pallas backend in
interpret mode on the CPU (said in the first line). The LLM is ``--api-base`` (key from
OPENAI_API_KEY) when given; else the stand-in server of ``standin_llm.py``, unless ``--no-standin``,
in which case OPENAI_API_KEY's endpoint is used if a key is set and, with none, the search falls
back to random search and the script prints why.

    python examples/helion_b200_attention_tuning.py --batch-heads 32 --seq 4096 --head-dim 128
"""

from __future__ import annotations

import argparse
import json
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

from kernels import attention  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import helion  # noqa: E402

#: Substrings of field names or enum choices that point at Hopper/Blackwell-specific features.
DEVICE_FEATURE_KEYWORDS = (
    "tensor_descriptor",
    "tma",
    "persistent",
    "warp_speciali",
    "maxnreg",
    "num_sm",
    "epilogue",
    "cluster",
    "multicast",
    "cta",
    "wgmma",
    "tcgen",
    "cute",
    "blackwell",
    "hopper",
)


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """PyTorch's attention on the same ``[batch*heads, seq, head_dim]`` tensors.

    Viewed as 4-D ``[1, batch*heads, seq, head_dim]``: that is the layout PyTorch's fused
    (flash / memory-efficient) kernels take; 3-D inputs can fall back to the unfused path.
    """
    return F.scaled_dot_product_attention(q[None], k[None], v[None])[0]


def _choices(spec: object) -> list[str]:
    """Every enum choice inside a described field (lists included), as strings."""
    if isinstance(spec, dict):
        out = [str(c) for c in spec.get("choices", [])]
        for item in spec.get("items", []):
            out += _choices(item)
        return out
    return []


def device_specific_fields(described: dict[str, object]) -> dict[str, object]:
    """The described fields whose name, or one of whose enum choices, names a device feature."""

    def hits(text: str) -> bool:
        return any(word in text.lower() for word in DEVICE_FEATURE_KEYWORDS)

    return {key: spec for key, spec in described.items() if hits(key) or any(hits(c) for c in _choices(spec))}


def report_device_choices(bound: Any) -> None:
    from helion.autotuner.openevolve.adapters.space import HelionSpace

    described = HelionSpace(bound.config_spec.create_config_generation(), bound.config_spec).describe()
    found = device_specific_fields(described)
    print(f"config space: {len(described)} fields: {', '.join(described)}")
    if not found:
        print("device-specific choices exposed here: none (no TMA / persistent / warp-specialisation fields)")
        return
    print("device-specific choices exposed here:")
    for key, spec in found.items():
        print(f"  {key}: {json.dumps(spec)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-heads", type=int, default=None, help="batch*heads (GPU 32, CPU 2)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (GPU 4096, CPU 64)")
    p.add_argument("--head-dim", type=int, default=None, help="head dimension (GPU 128, CPU 32)")
    add_llm_options(p)
    a = p.parse_args()
    print(device_line(capability=True), flush=True)
    apply_run_env(a)
    device = "cuda" if ON_GPU else "cpu"
    dtype = torch.float16 if ON_GPU else torch.float32
    bh = a.batch_heads or (32 if ON_GPU else 2)
    seq = a.seq or (4096 if ON_GPU else 64)
    head_dim = a.head_dim or (128 if ON_GPU else 32)
    q, k, v = (torch.randn(bh, seq, head_dim, device=device, dtype=dtype) for _ in range(3))
    args = (q, k, v)
    print(f"shape: batch*heads {bh}, seq {seq}, head_dim {head_dim}, {dtype}")

    record, settings = tuner_settings(a, "attention-")
    searches: list[object] = []
    # the search is built at the first call, once ``settings`` holds the LLM endpoint chosen below
    kernel = helion.kernel(attention.fn, static_shapes=True, autotuner_fn=recording_autotuner(settings, searches))
    report_device_choices(kernel.bind(args))

    with start_llm(a) as llm:
        settings.update(llm)
        t0 = time.perf_counter()
        out = kernel(*args)  # the first call runs the search
        wall = time.perf_counter() - t0

    report_search(searches, record, wall)
    tuned = kernel.bind(args)._config
    print(f"tuned config: {tuned}")

    expected = sdpa(q, k, v)
    tol = 2e-2 if dtype == torch.float16 else 1e-4
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    print(f"correctness ok (vs scaled_dot_product_attention, atol=rtol={tol})")

    flops = 4 * bh * seq * seq * head_dim
    compiled = kernel.bind(args).compile_config(tuned)
    for name, fn in (
        ("helion tuned", lambda: compiled(*args)),
        ("torch SDPA", lambda: sdpa(q, k, v)),
    ):
        ms = latency_ms(fn)
        print(f"{name:<13} {ms:10.4f} ms  {flops / (ms * 1e-3) / 1e12:10.4g} TFLOP/s")


if __name__ == "__main__":
    main()
