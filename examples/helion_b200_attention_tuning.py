"""Tune a Helion attention kernel with the OpenEvolve search and compare it with PyTorch's SDPA.

Written with a B200 (Blackwell) in mind, but device-neutral: before tuning it lists the
device-specific choices the kernel's ``ConfigSpec`` exposes on this machine (fields or enum
choices whose names relate to Hopper/Blackwell features: tensor descriptors / TMA, persistent
programs, warp specialisation, ``maxnreg``, ``num_sm_multiplier``, epilogues, clusters...),
found by scanning ``HelionSpace(...).describe()``, with no assumption about which exist. It
then tunes the kernel (``helion.kernel(fn, autotuner_fn=openevolve_autotuner(...))``), checks
the tuned kernel against ``torch.nn.functional.scaled_dot_product_attention`` with
``torch.testing.assert_close`` (fp16 tolerances on a GPU, fp32 on the CPU) and prints the
TFLOP/s (4*B*H*S*S*D flops) of the tuned kernel and of SDPA.

On a GPU the kernel runs through Triton; with no GPU, through Helion's Pallas backend in
interpret mode on the CPU (said in the first line). The LLM is ``--api-base`` (key from
OPENAI_API_KEY) when given; else the plugin's bundled stand-in server, unless ``--no-standin``,
in which case OPENAI_API_KEY's endpoint is used if a key is set and, with none, the search falls
back to random search and the script prints why.

    python examples/helion_b200_attention_tuning.py --batch-heads 32 --seq 4096 --head-dim 128
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import json
import os
from pathlib import Path
import sys
import tempfile
import time
from typing import Any

ON_GPU = "--cpu" not in sys.argv and __import__("torch").cuda.is_available()
if not ON_GPU:
    os.environ.setdefault("HELION_BACKEND", "pallas")
    os.environ.setdefault("HELION_PALLAS_INTERPRET", "1")

import helion.language as hl  # noqa: E402
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


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Flash-attention style forward over ``[batch*heads, seq, head_dim]`` tensors."""
    bh, m_dim, head_dim = q.size()
    n_dim = k.size(1)
    head_dim = hl.specialize(head_dim)
    out = torch.empty_like(q)
    scale = 1.0 / (head_dim**0.5)
    for tile_b, tile_m in hl.tile([bh, m_dim]):
        m_i = hl.full([tile_b, tile_m], float("-inf"), dtype=torch.float32)
        l_i = hl.zeros([tile_b, tile_m], dtype=torch.float32)
        acc = hl.zeros([tile_b, tile_m, head_dim], dtype=torch.float32)
        q_i = q[tile_b, tile_m, :]
        for tile_n in hl.tile(n_dim):
            qk = torch.bmm(q_i, k[tile_b, tile_n, :].transpose(1, 2)) * scale
            m_ij = torch.maximum(m_i, torch.amax(qk, -1))
            p = torch.exp(qk - m_ij[:, :, None])
            alpha = torch.exp(m_i - m_ij)
            l_i = l_i * alpha + torch.sum(p, -1)
            acc = torch.baddbmm(acc * alpha[:, :, None], p.to(v.dtype), v[tile_b, tile_n, :])
            m_i = m_ij
        out[tile_b, tile_m, :] = (acc / l_i[:, :, None]).to(out.dtype)
    return out


def device_line() -> str:
    if ON_GPU:
        cap = torch.cuda.get_device_capability()
        return f"device: {torch.cuda.get_device_name()} (sm_{cap[0]}{cap[1]}, Triton backend)"
    return "device: CPU (no GPU in use: Helion Pallas backend, interpret mode)"


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
    from helion.autotuner.openevolve.space import HelionSpace

    described = HelionSpace(bound.config_spec.create_config_generation(), bound.config_spec).describe()
    found = device_specific_fields(described)
    print(f"config space: {len(described)} fields: {', '.join(described)}")
    if not found:
        print("device-specific choices exposed here: none (no TMA / persistent / warp-specialisation fields)")
        return
    print("device-specific choices exposed here:")
    for key, spec in found.items():
        print(f"  {key}: {json.dumps(spec)}")


def latency_ms(fn: Callable[[], object]) -> float:
    if ON_GPU:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=25, rep=100))
    fn()
    t0 = time.perf_counter()
    for _ in range(3):
        fn()
    return (time.perf_counter() - t0) / 3 * 1e3


def fallback_reason(search: object | None, record: Path) -> str | None:
    """Why the search fell back to random search: from the search object, else the run record."""
    inner = getattr(search, "autotuner", search)  # the cache layer wraps the search
    reason = getattr(inner, "fallback_reason", None)
    if reason:
        return str(reason)
    if record.exists():
        for line in record.read_text().splitlines():
            entry = json.loads(line)
            if entry.get("kind") == "fallback":
                return str(entry.get("reason"))
    return None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-heads", type=int, default=None, help="batch*heads (GPU 32, CPU 2)")
    p.add_argument("--seq", type=int, default=None, help="sequence length (GPU 4096, CPU 64)")
    p.add_argument("--head-dim", type=int, default=None, help="head dimension (GPU 128, CPU 32)")
    p.add_argument("--max-evaluations", type=int, default=None, help="configs measured (default: effort's)")
    p.add_argument("--api-base", default=None, help="an OpenAI-compatible endpoint (key: OPENAI_API_KEY)")
    p.add_argument("--model", default=None)
    p.add_argument("--record", default=None, help="JSON-lines run record (default: a temporary file)")
    p.add_argument("--llm-latency", type=float, default=0.5, help="stand-in LLM seconds per answer")
    p.add_argument("--no-standin", action="store_true", help="do not start the bundled stand-in LLM")
    p.add_argument("--force", action="store_true", help="set HELION_SKIP_CACHE=1: tune even if cached")
    p.add_argument("--cpu", action="store_true", help="use the CPU interpret backend even with a GPU")
    a = p.parse_args()
    print(device_line(), flush=True)
    os.environ.setdefault("HELION_AUTOTUNE_EFFORT", "quick")
    if a.force:
        os.environ["HELION_SKIP_CACHE"] = "1"
    device = "cuda" if ON_GPU else "cpu"
    dtype = torch.float16 if ON_GPU else torch.float32
    bh = a.batch_heads or (32 if ON_GPU else 2)
    seq = a.seq or (4096 if ON_GPU else 64)
    head_dim = a.head_dim or (128 if ON_GPU else 32)
    q, k, v = (torch.randn(bh, seq, head_dim, device=device, dtype=dtype) for _ in range(3))
    args = (q, k, v)
    print(f"shape: batch*heads {bh}, seq {seq}, head_dim {head_dim}, {dtype}")

    record = Path(a.record or Path(tempfile.mkdtemp(prefix="attention-")) / "record.jsonl")
    record.parent.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    settings: dict[str, object] = {"record_path": str(record)}
    if a.max_evaluations is not None:
        settings["max_evaluations"] = a.max_evaluations
    if a.model:
        settings["model"] = a.model

    from helion.autotuner.openevolve_tuner import openevolve_autotuner

    searches: list[object] = []

    def autotuner_fn(bound_kernel: Any, fn_args: Any, **kwargs: Any) -> Any:
        # built at the first call, once ``settings`` holds the LLM endpoint chosen below
        search = openevolve_autotuner(**settings)(bound_kernel, fn_args, **kwargs)
        searches.append(search)
        return search

    kernel = helion.kernel(attention, static_shapes=True, autotuner_fn=autotuner_fn)
    report_device_choices(kernel.bind(args))

    standin = None
    if a.api_base:
        settings["api_base"] = a.api_base
        print(f"LLM: {a.api_base}")
    elif not a.no_standin:
        from helion.autotuner.openevolve.standin_llm import StandinLLM

        standin = StandinLLM(mode="neighbors", latency_s=a.llm_latency).start()
        settings.update(api_base=standin.url, api_key="standin")
        print(f"LLM: bundled stand-in server at {standin.url}, {a.llm_latency}s per answer")
    elif os.environ.get("OPENAI_API_KEY"):
        print("LLM: the default endpoint with OPENAI_API_KEY (--no-standin)")
    else:
        print("LLM: none (--no-standin, no --api-base, no OPENAI_API_KEY): the search will fall back to random search")
    try:
        t0 = time.perf_counter()
        out = kernel(*args)  # the first call runs the search
        wall = time.perf_counter() - t0
    finally:
        if standin is not None:
            standin.stop()

    search = searches[-1] if searches else None
    if search is None or not record.exists():
        print("tuning: config served from Helion's cache (use --force to tune again)")
    else:
        summary = getattr(getattr(search, "autotuner", search), "summary", None) or {}
        detail = (
            f"{summary.get('mode')}, {summary.get('evaluations')} evaluations, {summary.get('llm_calls')} LLM calls, "
        )
        print(f"tuning: {detail if summary else ''}{wall:.1f}s, run record {record}")
    if (reason := fallback_reason(search, record)) is not None:
        print(f"search fell back to random search: {reason}")
    tuned = kernel.bind(args)._config
    print(f"tuned config: {tuned}")

    expected = F.scaled_dot_product_attention(q, k, v)
    tol = 2e-2 if dtype == torch.float16 else 1e-4
    torch.testing.assert_close(out, expected, atol=tol, rtol=tol)
    print(f"correctness ok (vs scaled_dot_product_attention, atol=rtol={tol})")

    flops = 4 * bh * seq * seq * head_dim
    compiled = kernel.bind(args).compile_config(tuned)
    for name, fn in (
        ("helion tuned", lambda: compiled(*args)),
        ("torch SDPA", lambda: F.scaled_dot_product_attention(q, k, v)),
    ):
        ms = latency_ms(fn)
        print(f"{name:<13} {ms:10.4f} ms  {flops / (ms * 1e-3) / 1e12:10.4g} TFLOP/s")


if __name__ == "__main__":
    main()
