"""The Helion kernels the examples and the tests tune: vector add, matmul, softmax, layer norm, attention.

Written once here. The example scripts and the tests import them (``import kernels``; the scripts
run from this folder, the tests get it on ``sys.path`` from ``test/conftest.py``). Each is a
``helion.kernel`` with Helion's default settings, made when this module is imported, so a script
imports it only after choosing the backend (``example_support.select_backend``). Where a caller
needs other settings (its own ``autotuner_fn``, a backend chosen later), it builds a fresh kernel
from the function: ``helion.kernel(kernels.matmul.fn, autotuner_fn=...)``.

Bound to CPU tensors they give the Triton config space (space extraction, prompts); with
``HELION_BACKEND=pallas HELION_PALLAS_INTERPRET=1`` they tune for real on the CPU.
"""

from __future__ import annotations

import helion.language as hl
import torch

import helion


@helion.kernel()
def vector_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise ``x + y``, one Helion tile at a time."""
    out = torch.empty_like(x)
    for tile in hl.tile(x.size()):
        out[tile] = x[tile] + y[tile]
    return out


@helion.kernel()
def matmul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    m, k = x.size()
    _, n = y.size()
    out = torch.empty([m, n], dtype=x.dtype, device=x.device)
    for tile_m, tile_n in hl.tile([m, n]):
        acc = hl.zeros([tile_m, tile_n], dtype=torch.float32)
        for tile_k in hl.tile(k):
            acc = torch.addmm(acc, x[tile_m, tile_k], y[tile_k, tile_n])
        out[tile_m, tile_n] = acc.to(x.dtype)
    return out


@helion.kernel()
def softmax(x: torch.Tensor) -> torch.Tensor:
    n, _m = x.size()
    out = torch.empty_like(x)
    for tile_n in hl.tile(n):
        values = x[tile_n, :]
        amax = torch.amax(values, dim=1, keepdim=True)
        exp = torch.exp(values - amax)
        out[tile_n, :] = exp / torch.sum(exp, dim=1, keepdim=True)
    return out


@helion.kernel()
def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    m, _n = x.size()
    out = torch.empty_like(x)
    for tile_m in hl.tile(m):
        row = x[tile_m, :].to(torch.float32)
        mean = torch.mean(row, dim=-1, keepdim=True)
        centered = row - mean
        var = torch.mean(centered * centered, dim=-1, keepdim=True)
        normed = centered * torch.rsqrt(var + 1e-5)
        out[tile_m, :] = (normed * weight[None, :].to(torch.float32) + bias[None, :].to(torch.float32)).to(x.dtype)
    return out


@helion.kernel(static_shapes=True)
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
