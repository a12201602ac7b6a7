"""HelionSpace over the Triton config space of real kernels bound to CPU tensors."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import kernels
import pytest
import torch

import helion
from helion.autotuner.openevolve.adapters.space import HelionSpace
from helion.autotuner.openevolve.adapters.space import InvalidCandidate

if TYPE_CHECKING:
    from collections.abc import Callable

    from helion.runtime.kernel import BoundKernel


def _matmul_args() -> tuple[torch.Tensor, ...]:
    return (torch.randn(1024, 1024, dtype=torch.float16), torch.randn(1024, 1024, dtype=torch.float16))


def _softmax_args() -> tuple[torch.Tensor, ...]:
    return (torch.randn(4096, 2560, dtype=torch.float16),)


def _attention_args() -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(4, 256, 64, dtype=torch.float32) for _ in range(3))


CASES: dict[str, tuple[helion.Kernel, Callable[[], tuple[torch.Tensor, ...]]]] = {
    "matmul": (kernels.matmul, _matmul_args),
    "softmax": (kernels.softmax, _softmax_args),
    "attention": (kernels.attention, _attention_args),
}


@pytest.fixture(scope="module")
def bound() -> dict[str, BoundKernel]:
    """Fresh kernels (so the Triton backend is picked regardless of the environment)."""
    mp = pytest.MonkeyPatch()
    for var in ("HELION_BACKEND", "HELION_PALLAS_INTERPRET", "HELION_AUTOTUNE_CONFIG_OVERRIDES"):
        mp.delenv(var, raising=False)
    try:
        out: dict[str, BoundKernel] = {}
        for name, (kernel, make_args) in CASES.items():
            settings = {"static_shapes": True} if name == "attention" else {}
            fresh = helion.kernel(kernel.fn, **settings)
            b = fresh.bind(make_args())
            assert b.settings.backend == "triton"
            out[name] = b
        return out
    finally:
        mp.undo()


def _space(b: BoundKernel, **overrides: object) -> HelionSpace:
    gen = b.config_spec.create_config_generation(overrides=overrides) if overrides else None
    gen = gen or b.config_spec.create_config_generation()
    return HelionSpace(gen, b.config_spec)


@pytest.mark.parametrize("name", list(CASES))
def test_describe_covers_every_tunable_field(bound: dict[str, BoundKernel], name: str) -> None:
    b = bound[name]
    space = _space(b)
    described = space.describe()
    json.dumps(described)  # goes into the prompt as JSON
    layout = space.config_gen._key_to_flat_indices
    expected = {key for key in b.config_spec._flat_fields() if layout.get(key, ([], False))[0]}
    assert expected
    assert expected <= set(described), f"missing: {expected - set(described)}"
    for key in expected:
        assert isinstance(described[key], dict)
        assert "type" in described[key]
    assert "block_sizes" in described
    assert described["block_sizes"]["type"] == "list"


@pytest.mark.parametrize("name", list(CASES))
def test_round_trip_default_and_random(bound: dict[str, BoundKernel], name: str) -> None:
    space = _space(bound[name])
    configs = [space.default] + [space.random() for _ in range(20)]
    for config in configs:
        plain = space.to_plain(config)
        json.loads(json.dumps(plain))
        again = space.validate(plain)
        assert again == config, (plain, again)
        assert space.to_plain(again) == plain


@pytest.mark.parametrize("name", list(CASES))
def test_sparse_proposal_fills_in_default(bound: dict[str, BoundKernel], name: str) -> None:
    space = _space(bound[name])
    assert space.validate({}) == space.default
    config = space.validate({"num_warps": 8})
    assert config.config["num_warps"] == 8


def _reason(space: HelionSpace, raw: dict[str, object]) -> str:
    with pytest.raises(InvalidCandidate) as info:
        space.validate(raw)
    return str(info.value)


@pytest.mark.parametrize("name", list(CASES))
def test_invalid_proposals_name_the_field(bound: dict[str, BoundKernel], name: str) -> None:
    space = _space(bound[name])
    n_blocks = len(space.default.config["block_sizes"])

    why = _reason(space, {"num_warps": 3})
    assert "num_warps" in why
    assert "power of two" in why

    why = _reason(space, {"block_sizes": [16] * (n_blocks + 1)})
    assert "block_sizes" in why
    assert str(n_blocks) in why

    why = _reason(space, {"block_sizes": [7] * n_blocks})
    assert "block_sizes" in why
    assert "7" in why

    why = _reason(space, {"no_such_field": 1})
    assert "no_such_field" in why
    assert "unknown field" in why
    assert "num_warps" in why  # lists the known fields

    why = _reason(space, {"pid_type": "zzz"})
    assert "pid_type" in why
    assert "zzz" in why
    assert "flat" in why  # lists the choices

    why = _reason(space, {"num_stages": "2"})
    assert "num_stages" in why
    assert "integer" in why


def test_matmul_specific_rules(bound: dict[str, BoundKernel]) -> None:
    space = _space(bound["matmul"])
    why = _reason(space, {"loop_orders": [[0, 0]]})
    assert "loop_orders" in why
    assert "permutation" in why
    why = _reason(space, {"block_sizes": [16, 16, 2048]})
    assert "block_sizes[2]" in why
    config = space.validate({"block_sizes": [64, 32, 16], "loop_orders": [[1, 0]]})
    assert config.config["block_sizes"] == [64, 32, 16]
    assert config.config["loop_orders"] == [[1, 0]]


def test_softmax_reduction_loop_null_accepted(bound: dict[str, BoundKernel]) -> None:
    space = _space(bound["softmax"])
    assert space.describe()["reduction_loops"]["items"][0].get("or_null") is True
    assert space.validate({"reduction_loops": [None]}).config["reduction_loops"] == [None]
    assert space.validate({"reduction_loops": [64]}).config["reduction_loops"] == [64]


@pytest.mark.parametrize("name", list(CASES))
def test_user_overrides_fix_the_field(bound: dict[str, BoundKernel], name: str) -> None:
    space = _space(bound[name], num_warps=8)
    assert space.describe()["num_warps"] == {"type": "fixed", "value": 8}
    assert space.default.config["num_warps"] == 8
    assert space.validate({"num_warps": 8}).config["num_warps"] == 8
    why = _reason(space, {"num_warps": 4})
    assert "num_warps" in why
    assert "fixed" in why
    for _ in range(10):
        assert space.random().config["num_warps"] == 8

    assert all(n.config["num_warps"] == 8 for n in space.neighbors(space.default))


@pytest.mark.parametrize("name", list(CASES))
def test_neighbors_are_valid_and_distinct(bound: dict[str, BoundKernel], name: str) -> None:

    space = _space(bound[name])
    neighbors = space.neighbors(space.default)
    assert neighbors
    assert any(n != space.default for n in neighbors)
    for n in neighbors[:20]:
        assert space.validate(space.to_plain(n)) == n


def test_neighbors_are_pattern_searchs_and_follow_its_cap(
    bound: dict[str, BoundKernel], monkeypatch: pytest.MonkeyPatch
) -> None:
    space = _space(bound["matmul"])
    full = space.neighbors(space.default)
    assert len(full) > 3
    monkeypatch.setenv("HELION_CAP_AUTOTUNE_NUM_NEIGHBORS", "3")
    assert _space(bound["matmul"]).neighbors(space.default) == full[:3]  # PatternSearch's own cap
