"""A Helion kernel's config space, as the search and the LLM see it.

Everything comes from the kernel's ``ConfigSpec`` through Helion's ``ConfigGeneration`` (the
same object Helion's own searches use, with the user's ``autotune_config_overrides`` applied):
the flat fragments give the valid values of every field for this kernel and device, the
reference config is the baseline, and ``canonicalize_flat`` is the normalisation every
proposal goes through. :meth:`HelionSpace.describe` renders the space as compact JSON for the
prompt; :meth:`HelionSpace.validate` turns an LLM's sparse dict into a ``helion.Config`` or
raises :class:`InvalidCandidate` with a reason the LLM reads next time.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import helion
from helion import exc

from .helion_api import BaseIntegerFragment
from .helion_api import BlockIdSequence
from .helion_api import BooleanFragment
from .helion_api import EnumFragment
from .helion_api import ListOf
from .helion_api import NumThreadsFragment
from .helion_api import PatternNeighbors
from .helion_api import PermutationFragment
from .helion_api import PowerOfTwoFragment
from .helion_api import encode_flat_values
from .helion_api import flat_fields
from .helion_api import flat_layout
from .helion_api import integer_power_of_two
from .helion_api import validate_sparse_config_shape

if TYPE_CHECKING:
    from .helion_api import ConfigGeneration
    from .helion_api import ConfigSpec
    from .helion_api import ConfigSpecFragment


class InvalidCandidate(ValueError):
    """A proposed config is outside the space; the message names the field and the rule."""


def fragment_spec(frag: ConfigSpecFragment) -> dict[str, object]:
    """Compact JSON description of one fragment's valid values."""
    if isinstance(frag, BooleanFragment):
        return {"type": "bool"}
    if isinstance(frag, EnumFragment):
        return {"type": "enum", "choices": list(frag.choices)}
    if isinstance(frag, NumThreadsFragment):
        return {"type": "threads", "max": frag.high}
    if isinstance(frag, PowerOfTwoFragment):
        return {"type": "pow2", "min": frag.low, "max": frag.high}
    if isinstance(frag, BaseIntegerFragment):
        return {"type": "int", "min": frag.low, "max": frag.high}
    if isinstance(frag, PermutationFragment):
        return {"type": "permutation", "length": frag.length}
    if isinstance(frag, ListOf):
        return {"type": "list", "items": [fragment_spec(frag.inner)] * frag.length}
    return {"type": type(frag).__name__}


def fragment_violation(frag: ConfigSpecFragment, value: object) -> str | None:
    """Why ``value`` is not a valid value of ``frag``, or None when it is."""
    spec = fragment_spec(frag)
    kind = spec["type"]
    if kind == "bool":
        return None if isinstance(value, bool) else "must be true or false"
    if kind == "enum":
        ok = any(value == c and type(value) is type(c) for c in frag.choices)  # type: ignore[attr-defined]
        return None if ok else f"must be one of {list(frag.choices)!r}"  # type: ignore[attr-defined]
    if kind in ("pow2", "int", "threads"):
        if type(value) is not int:
            return f"must be an integer, got {type(value).__name__}"
        if kind == "threads":
            return (
                None
                if value == 0 or (integer_power_of_two(value) and value <= spec["max"])
                else f"must be 0 or a power of two <= {spec['max']}"
            )  # type: ignore[operator]
        if not spec["min"] <= value <= spec["max"]:  # type: ignore[operator]
            return f"must be in [{spec['min']}, {spec['max']}]"
        return None if kind == "int" or integer_power_of_two(value) else "must be a power of two"
    if kind == "permutation":
        ok = isinstance(value, list) and sorted(value) == list(range(spec["length"]))  # type: ignore[arg-type]
        return None if ok else f"must be a permutation of 0..{spec['length'] - 1}"  # type: ignore[operator]
    if kind == "list":
        assert isinstance(frag, ListOf)
        if not isinstance(value, list) or len(value) != frag.length:
            return f"must be a list of {frag.length} values"
        for i, item in enumerate(value):
            if (why := fragment_violation(frag.inner, item)) is not None:
                return f"item {i} {why}"
    return None


class HelionSpace:
    """The tunable fields of one bound kernel, with validation, sampling and neighbours."""

    def __init__(self, config_gen: ConfigGeneration, config_spec: ConfigSpec) -> None:
        self.config_gen = config_gen
        self.config_spec = config_spec
        self._layout = flat_layout(config_gen)
        self._fixed = config_gen.overridden_flat_indices
        self._flat_fields = flat_fields(config_spec)
        self.default = self.canonical(config_spec.autotune_reference_config())
        self._pattern = PatternNeighbors(config_gen)

    # -- description ---------------------------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """Field -> spec, for every field the spec exposes (fixed ones marked as such)."""
        out: dict[str, object] = {}
        default = self.default.config
        for key, (indices, is_sequence) in self._layout.items():
            if not indices:
                continue
            if all(i in self._fixed for i in indices):
                out[key] = {"type": "fixed", "value": default.get(key)}
                continue
            frags = [fragment_spec(self.config_gen.flat_spec[i]) for i in indices]
            if is_sequence and None in (default.get(key) or []):
                frags = [{**f, "or_null": True} for f in frags]  # null: Helion's "no loop"
            out[key] = {"type": "list", "items": frags} if is_sequence else frags[0]
        return out

    def to_plain(self, config: helion.Config) -> dict[str, object]:
        """The config as a JSON-ready dict (what the LLM and the run record see)."""
        return dict(config.config)

    # -- validation ----------------------------------------------------------------------------
    def validate(self, raw: dict[str, object]) -> helion.Config:
        """A sparse dict from the LLM -> a normalised ``helion.Config``; InvalidCandidate if not."""
        for key, value in raw.items():
            self._check_field(key, value)
        merged = {**self.default.config, **raw}
        try:
            validate_sparse_config_shape(raw, config_spec=self.config_spec)
            return self.canonical(helion.Config(**merged))  # type: ignore[arg-type]
        except (exc.InvalidConfig, ValueError, TypeError, AssertionError) as e:
            raise InvalidCandidate(f"rejected by Helion's normalisation: {e}") from None

    def _check_field(self, key: str, value: object) -> None:
        if key not in self._layout:
            known = ", ".join(k for k, (idx, _) in self._layout.items() if idx)
            raise InvalidCandidate(f"unknown field {key!r}; the fields are: {known}")
        indices, is_sequence = self._layout[key]
        if indices and all(i in self._fixed for i in indices):
            if value != self.default.config.get(key):
                raise InvalidCandidate(
                    f"{key} is fixed by the user's config overrides to {self.default.config.get(key)!r}"
                )
            return
        frags = [self.config_gen.flat_spec[i] for i in indices]
        if not is_sequence:
            if (why := fragment_violation(frags[0], value)) is not None:
                raise InvalidCandidate(f"{key}={value!r} {why}")
            return
        if not isinstance(value, list) or len(value) != len(frags):
            raise InvalidCandidate(f"{key} must be a list of {len(frags)} values, got {value!r}")
        encoded = self._encode(key, value)
        for i, (frag, item, flat) in enumerate(zip(frags, value, encoded, strict=True)):
            if (why := fragment_violation(frag, flat)) is not None:
                raise InvalidCandidate(f"{key}[{i}]={item!r} {why}")

    def _encode(self, key: str, value: list[object]) -> list[object]:
        """Config values of a per-block field -> flat values (e.g. ``None`` = no reduction loop)."""
        field = self._flat_fields.get(key)
        if not isinstance(field, BlockIdSequence):
            return value
        try:
            return list(encode_flat_values(field, self.config_spec, copy.deepcopy(value)))
        except (TypeError, ValueError, AssertionError, exc.InvalidConfig) as e:
            raise InvalidCandidate(f"{key}={value!r} is not valid: {e}") from None

    def canonical(self, config: helion.Config) -> helion.Config:
        """Helion's normalisation (with the user's overrides) of a full config."""
        return self.config_gen.canonicalize_flat(self.config_gen.flatten(config))[1]

    # -- sampling ------------------------------------------------------------------------------
    def random(self) -> helion.Config:
        return self.config_gen.random_config()

    def neighbors(self, config: helion.Config) -> list[helion.Config]:
        """PatternSearch's neighbours (one field moved, or two block sizes moved together),
        capped as PatternSearch caps them (``HELION_CAP_AUTOTUNE_NUM_NEIGHBORS``), normalised."""
        out: list[helion.Config] = []
        for flat in self._pattern.neighbors(self.config_gen.flatten(config)):
            try:
                out.append(self.config_gen.canonicalize_flat(flat)[1])
            except exc.InvalidConfig:
                continue
        return out
