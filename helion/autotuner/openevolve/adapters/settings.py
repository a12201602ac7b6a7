"""This search's settings: one frozen dataclass of defaults, effort profiles, env and kwargs.

Precedence, lowest first: :data:`DEFAULTS` (with the preset of Helion's ``autotune_effort``,
:data:`EFFORT_PRESETS`), ``HELION_OPENEVOLVE_*`` environment variables (read through
Helion's ``_env_get_*`` helpers, so an empty value is unset and a bad one names the
variable), then keyword arguments. Anything OpenEvolve itself supports (several models,
providers, prompt and database options) can also come from an OpenEvolve YAML file
(``config_path``); explicit settings here override the YAML's LLM fields.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields
from dataclasses import replace
import os

from ..engine.job import LLMSettings
from ..loop.options import DriverOptions
from .helion_api import env_bool
from .helion_api import env_int
from .helion_api import env_optional_float
from .helion_api import env_optional_int
from .helion_api import env_str_or_none
from .helion_api import get_effort_profile


@dataclass(frozen=True)
class OpenEvolveSettings:
    """Defaults of the OpenEvolve search (see README for each setting's variable)."""

    max_evaluations: int = 300  # configs measured, baseline and refinement included
    max_seconds: float | None = None  # wall-clock budget of the search loop
    model: str | None = None  # default "gpt-4o-mini" unless the YAML names models
    api_base: str | None = None  # any OpenAI-compatible endpoint; default api.openai.com
    api_key: str | None = None  # default: $OPENAI_API_KEY
    config_path: str | None = None  # an OpenEvolve YAML file
    candidates_per_program: int = 6  # configs the LLM writes into each evolved program
    max_llm_calls: int = 40  # OpenEvolve iterations (LLM answers) at most
    parallel_llm_calls: int = 3  # OpenEvolve iterations in flight at once
    islands: int = 3
    initial_random: int = 0  # random configs in the seed program, beside the default and seeds
    refinement: bool = True  # measure neighbours of the best while the LLM thinks
    refine_starts: int = 3  # refinement paths started from the best first configs (PatternSearch's ``copies``)
    refine_steps: int = 20  # neighbourhoods one path measures at most (PatternSearch's ``max_generations``)
    refine_min_improvement: float = 0.001  # a path moves only for this relative gain (PatternSearch's)
    refine_prune_ratio: float = 1.05  # a path this many times slower than the best config ends
    # Configs per batch, of every batch the loop measures (one parallel precompile): refinement
    # fills it, up to this size, and LLM candidates that arrive share it; named for refinement,
    # which sets the batch's size when the LLM is quiet.
    refine_batch: int = 48
    decision_rounds: int = 6  # paired re-timing rounds at most behind one decision (a tie after them)
    # Helion's rebenchmark time per config in one re-timing round (its target_ms; Helion's own is 200):
    # the paired noise comes from between rounds, not from within one, so short rounds cost less
    # for the same noise, and more of them resolve smaller gains
    decision_round_ms: float = 20.0
    max_llm_failures: int = 3  # consecutive LLM transport failures before falling back
    llm_timeout_s: int = 120
    llm_retries: int = 1
    temperature: float = 0.7
    diff_based: bool = False  # SEARCH/REPLACE edits instead of whole-program rewrites
    strict: bool = False  # raise instead of falling back to random search
    record_path: str | None = None  # JSON-lines run record
    output_dir: str | None = None  # keep OpenEvolve's folder (database, logs) here
    history: bool = True  # start from earlier searches' picks for this kernel, and keep this one's
    history_dir: str | None = None  # default: openevolve-history in Helion's cache folder
    seed: int | None = None  # default: Helion's autotune_random_seed
    final_verify_ms: float = 1000.0  # Helion's final verification: rounds = this / slowest finalist (Helion's 5000)


DEFAULTS = OpenEvolveSettings()


@dataclass(frozen=True)
class EffortPreset:
    """What one ``autotune_effort`` changes in :data:`DEFAULTS` (None keeps the default).

    Budgets are caps: a search normally ends earlier, once local refinement has converged and
    the LLM's answers bring nothing better. ``refine_starts`` and ``refine_steps`` of ``quick``
    and ``full`` come from Helion's PatternSearch profile (see :func:`_pattern_search_shape`).
    """

    max_evaluations: int | None = None
    max_seconds: float | None = None
    max_llm_calls: int | None = None
    refine_batch: int | None = None
    refine_starts: int | None = None
    decision_rounds: int | None = None

    def changes(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


EFFORT_PRESETS: dict[str, EffortPreset] = {
    "none": EffortPreset(max_evaluations=1, max_seconds=60.0, max_llm_calls=1),
    "quick": EffortPreset(max_evaluations=300, max_seconds=300.0, max_llm_calls=24),
    "full": EffortPreset(max_evaluations=1500, max_seconds=1800.0, max_llm_calls=100),
    # tune_config_space: the objective measures one config at a time in the caller's process,
    # so small refinement batches let LLM proposals in between.
    # A re-timing round of a Python objective costs a few calls, not a batch of compiles: more
    # rounds let gains smaller than its noise show.
    "config_space": EffortPreset(
        max_evaluations=50, max_llm_calls=40, refine_batch=4, refine_starts=3, decision_rounds=64
    ),
}


def _pattern_search_shape(effort: str) -> dict[str, object]:
    """``refine_starts`` and ``refine_steps`` as PatternSearch's ``copies`` and
    ``max_generations`` at this Helion effort (2 and 5 quick, 5 and 20 full in Helion 1.5)."""
    if effort not in ("quick", "full"):
        return {}
    ps = get_effort_profile(effort).pattern_search
    return {} if ps is None else {"refine_starts": ps.copies, "refine_steps": ps.max_generations}


#: A search that converged before any LLM answer arrived waits for one until this long after its
#: start (at most ``llm_timeout_s``): the first requests leave at the start, so a knowing LLM's
#: first answer is due one LLM latency later.
FIRST_ANSWER_WAIT_S = 30.0

_ENV = "HELION_OPENEVOLVE_"


def _from_env() -> dict[str, object]:
    out: dict[str, object] = {}
    for f in fields(OpenEvolveSettings):
        var = _ENV + f.name.upper()
        if not os.environ.get(var, "").strip():
            continue
        kind = str(f.type)
        if kind == "bool":
            out[f.name] = env_bool(var, False)
        elif kind == "int":
            out[f.name] = env_int(var, 0)
        elif kind == "int | None":
            out[f.name] = env_optional_int(var)
        elif kind in ("float", "float | None"):
            out[f.name] = env_optional_float(var)
        else:
            out[f.name] = env_str_or_none(var, None)
    return out


def resolve_settings(effort: str, base: OpenEvolveSettings | None = None, **overrides: object) -> OpenEvolveSettings:
    """Defaults for ``effort``, then environment, then ``base``'s non-default fields, then kwargs."""
    unknown = set(overrides) - {f.name for f in fields(OpenEvolveSettings)}
    if unknown:
        raise TypeError(f"unknown OpenEvolve search settings: {sorted(unknown)}")
    preset = EFFORT_PRESETS.get(effort, EffortPreset()).changes()
    settings = replace(DEFAULTS, **{**_pattern_search_shape(effort), **preset})  # type: ignore[arg-type]
    settings = replace(settings, **_from_env())  # type: ignore[arg-type]
    if base is not None:
        changed = {
            f.name: getattr(base, f.name) for f in fields(base) if getattr(base, f.name) != getattr(DEFAULTS, f.name)
        }
        settings = replace(settings, **changed)
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
    _check(settings)
    return settings


def _check(s: OpenEvolveSettings) -> None:
    for name in (
        "max_evaluations",
        "max_llm_calls",
        "candidates_per_program",
        "parallel_llm_calls",
        "islands",
        "refine_batch",
        "refine_starts",
        "refine_steps",
        "max_llm_failures",
        "decision_rounds",
    ):
        if getattr(s, name) < 1:
            raise ValueError(f"OpenEvolve search setting {name} must be >= 1, got {getattr(s, name)}")
    if not 0.0 <= s.refine_min_improvement < 1.0:
        raise ValueError(
            f"OpenEvolve search setting refine_min_improvement must be in [0, 1), got {s.refine_min_improvement}"
        )
    if s.refine_prune_ratio < 1.0:
        raise ValueError(f"OpenEvolve search setting refine_prune_ratio must be >= 1, got {s.refine_prune_ratio}")
    if not s.decision_round_ms > 0:
        raise ValueError(f"OpenEvolve search setting decision_round_ms must be > 0, got {s.decision_round_ms}")
    if not s.final_verify_ms > 0:
        raise ValueError(f"OpenEvolve search setting final_verify_ms must be > 0, got {s.final_verify_ms}")
    if s.max_seconds is not None and s.max_seconds <= 0:
        raise ValueError(f"OpenEvolve search setting max_seconds must be > 0, got {s.max_seconds}")
    if s.config_path is not None and not os.path.isfile(s.config_path):
        raise ValueError(f"OpenEvolve config file not found: {s.config_path}")


def api_key(s: OpenEvolveSettings) -> str | None:
    return s.api_key or os.environ.get("OPENAI_API_KEY") or None


def public_view(s: OpenEvolveSettings) -> dict[str, object]:
    """Settings without the key: for logs, cache keys and the run record."""
    return {f.name: getattr(s, f.name) for f in fields(s) if f.name != "api_key"}


def driver_options(
    s: OpenEvolveSettings,
    *,
    seed: int,
    system_message: str,
    title: str,
    max_seconds: float | None,
    ratio_scores: bool = True,
    budget_exceeded: Callable[[], bool] | None = None,
) -> DriverOptions:
    """The driver's options, with the engine job's settings, for settings ``s`` (shared by both APIs)."""
    # LLMSettings' fields are named like these settings: each is copied, the key and seed resolved
    resolved: dict[str, object] = {"api_key": api_key(s), "seed": seed}
    llm = LLMSettings(**{f.name: resolved.get(f.name, getattr(s, f.name)) for f in fields(LLMSettings)})  # type: ignore[arg-type]
    return DriverOptions(
        max_evaluations=s.max_evaluations,
        max_seconds=max_seconds,
        candidates_per_program=s.candidates_per_program,
        initial_random=s.initial_random,
        refinement=s.refinement,
        refine_batch=s.refine_batch,
        refine_starts=s.refine_starts,
        refine_steps=s.refine_steps,
        refine_min_improvement=s.refine_min_improvement,
        refine_prune_ratio=s.refine_prune_ratio,
        decision_rounds=s.decision_rounds,
        max_llm_failures=s.max_llm_failures,
        strict=s.strict,
        seed=seed,
        llm=llm,
        system_message=system_message,
        title=title,
        keep_output_dir=s.output_dir,
        ratio_scores=ratio_scores,
        budget_exceeded=budget_exceeded,
        llm_timeout_s=float(s.llm_timeout_s),
        first_answer_wait_s=float(min(s.llm_timeout_s, FIRST_ANSWER_WAIT_S)),
    )
