"""Every Helion API this package uses beyond ``helion.Config``, ``helion.exc`` and ``helion.kernel``.

A search plugs into Helion by subclassing its search base and reading its config space, and
Helion documents neither as a stable interface: many of the names below are private (a leading
underscore) and the rest are internal modules that change between releases. So this is the one
file to read when moving to a new Helion. The package's other modules import from Helion only
``helion`` and ``helion.exc``, and take everything else from here (``test/test_helion_api.py``
checks both that and that every name below exists in the installed Helion).

**Checked on** helion 1.5.0 (with torch 2.11 and 2.13) and helion 1.5.1 (with torch 2.13; it does
not import with torch 2.11): every entry has the same signature and meaning in both.

**Moving to a new Helion release:**

1. For each entry below, check the new release still has it with the same meaning
   (``pip download --no-deps helion==X`` and read the module named).
2. Run ``python -m pytest test -ra`` with it installed (``.ci/run``'s newest pass takes the newest
   Helion that pyproject allows). :func:`missing` lists what the installed Helion lacks; importing
   this module warns with that list, so a user on an unchecked Helion hears it at once.
3. Update :data:`CHECKED_ON`, the helion range in pyproject.toml and README's install section.

Below, grouped by Helion module, each entry says what it is for and which of this package's
modules use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
import warnings

from helion.autotuner.base_search import _FINAL_REBENCHMARK_TARGET_MS_ENV
from helion.autotuner.base_search import PopulationBasedSearch
from helion.autotuner.base_search import PopulationMember
from helion.autotuner.base_search import _AutotunableKernel
from helion.autotuner.base_search import performance
from helion.autotuner.block_id_sequence import BlockIdSequence
from helion.autotuner.config_fragment import BaseIntegerFragment
from helion.autotuner.config_fragment import BooleanFragment
from helion.autotuner.config_fragment import EnumFragment
from helion.autotuner.config_fragment import ListOf
from helion.autotuner.config_fragment import NumThreadsFragment
from helion.autotuner.config_fragment import PermutationFragment
from helion.autotuner.config_fragment import PowerOfTwoFragment
from helion.autotuner.config_fragment import integer_power_of_two
from helion.autotuner.config_generation import ConfigGeneration
from helion.autotuner.effort_profile import PATTERN_SEARCH_DEFAULTS
from helion.autotuner.effort_profile import get_effort_profile
from helion.autotuner.llm.configs import validate_sparse_config_shape
from helion.autotuner.llm.workload import compute_workload_hints
from helion.autotuner.llm.workload import describe_kernel
from helion.autotuner.llm.workload import detect_workload_traits
from helion.autotuner.local_cache import get_helion_cache_dir
from helion.autotuner.pattern_search import PatternSearch
from helion.runtime.settings import _env_get_bool
from helion.runtime.settings import _env_get_int
from helion.runtime.settings import _env_get_optional_float
from helion.runtime.settings import _env_get_optional_int
from helion.runtime.settings import _env_get_str_or_none

from helion.autotuner import cache_classes
from helion.autotuner import search_algorithms

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Sequence

    # for annotations elsewhere in the package (re-exported: "X as X")
    from helion.autotuner.base_search import BaseAutotuner as BaseAutotuner
    from helion.autotuner.config_fragment import ConfigSpecFragment as ConfigSpecFragment
    from helion.autotuner.config_generation import FlatConfig as FlatConfig
    from helion.autotuner.config_spec import ConfigSpec as ConfigSpec
    from helion.autotuner.local_cache import SavedBestConfig
    from helion.runtime.kernel import BoundKernel as BoundKernel

    import helion

__all__ = [
    "CHECKED_ON",
    "FINAL_REBENCHMARK_TARGET_MS_ENV",
    "OVERRIDDEN_HOOKS",
    "PATTERN_SEARCH_DEFAULTS",
    "USED_MEMBERS",
    "AutotunableKernel",
    "BaseIntegerFragment",
    "BlockIdSequence",
    "BooleanFragment",
    "ConfigGeneration",
    "EnumFragment",
    "ListOf",
    "NumThreadsFragment",
    "PatternNeighbors",
    "PermutationFragment",
    "PopulationBasedSearch",
    "PopulationMember",
    "PowerOfTwoFragment",
    "autotune_seed_configs",
    "backend_config_is_viable",
    "budget_check",
    "cache_classes",
    "compute_workload_hints",
    "current_hardware",
    "describe_kernel",
    "detect_workload_traits",
    "encode_flat_values",
    "env_bool",
    "env_int",
    "env_optional_float",
    "env_optional_int",
    "env_str_or_none",
    "finalize",
    "find_similar_cached_configs",
    "flat_fields",
    "flat_layout",
    "get_effort_profile",
    "get_helion_cache_dir",
    "integer_power_of_two",
    "missing",
    "performance",
    "record_benchmarked_member",
    "search_algorithms",
    "validate_sparse_config_shape",
]

#: Helion releases every entry of this file was checked against (see the module docstring).
CHECKED_ON = ("1.5.0", "1.5.1")

# ---------------------------------------------------------------------------------------------
# The search base (helion.autotuner.base_search). OpenEvolveSearch subclasses
# PopulationBasedSearch, as PatternSearch does, to get Helion's benchmark path (parallel
# precompile, compile timeouts, accuracy check, subprocess isolation), its final selection and
# its autotune cache. PopulationMember holds one measured config (fn, perfs, flat_values, config,
# status, compile_time); performance(member) is its sort key.
# ---------------------------------------------------------------------------------------------

#: Private hooks of PopulationBasedSearch/BaseSearch that OpenEvolveSearch (search.py) overrides.
#: A hook Helion renames would be silently ignored, so each is checked (:func:`missing`, tests).
OVERRIDDEN_HOOKS: dict[str, str] = {
    "_autotune": "the search itself (BaseSearch's abstract entry point)",
    "_algorithm_cache_policy": "this search's settings in the autotune cache's key",
    "_final_pick_supported": "off under Pallas interpret mode (no device to profile on a CPU)",
    "_final_rebenchmark_target_ms": "the final verification's time per finalist (final_verify_ms)",
    "_final_rebenchmark_top_k_default": "the final selection sized to the configs that tie the best",
}

#: Methods and attributes of the search base that this package calls on a search (search.py,
#: helion_backend.py, history.py), besides the private ones wrapped below: checked by
#: :func:`missing`. ``rebenchmark`` is also extended by OpenEvolveSearch (it keeps each timing).
USED_MEMBERS: tuple[str, ...] = (
    "benchmark_batch",  # helion_backend: times a batch (returns BenchmarkResult: fn, perf, config, status, compile_time)
    "rebenchmark",  # helion_backend: paired re-timing of the configs a decision rests on
    "set_adaptive_compile_timeout",  # helion_backend: after the first batch, as PatternSearch does
    "pin_finalist_config",  # search: the default, the best and its ties join the final selection
    "format_performance",  # search: the summary line
    "get_kwargs_from_profile",  # openevolve_tuner: effort-profile kwargs, as default_autotuner_fn does
)

#: What a search tunes (a BoundKernel, or Helion's other autotunable kernels): annotations only.
AutotunableKernel = _AutotunableKernel

#: Helion's variable for its final verification's target time (search.py: when the user sets it,
#: Helion's value wins over final_verify_ms).
FINAL_REBENCHMARK_TARGET_MS_ENV = _FINAL_REBENCHMARK_TARGET_MS_ENV


def record_benchmarked_member(search: PopulationBasedSearch, member: PopulationMember) -> None:
    """``_record_benchmarked_member``: keeps a measured config for Helion's final verification
    (the pinned finalists' and the top-k tables). helion_backend: every measured config; search:
    pinned finalists measured before they were pinned."""
    search._record_benchmarked_member(member)


def backend_config_is_viable(search: PopulationBasedSearch, config: helion.Config) -> bool:
    """``_backend_config_is_viable``: the backend's rule for a config on this kernel and device.
    helion_backend: an LLM's config the backend rules out is refused before it is compiled."""
    return search._backend_config_is_viable(config)


def finalize(search: PopulationBasedSearch) -> helion.Config:
    """``_finalize``: PatternSearch's finish (final rebenchmark of the finalists, finishing
    rounds, recovery from an unkillable worker). search: the end of every search."""
    return search._finalize()


def autotune_seed_configs(search: PopulationBasedSearch) -> Sequence[helion.Config]:
    """``_autotune_seed_configs``: the user's seed configs (``autotune_seed_configs`` setting).
    search: part of the first batch."""
    return search._autotune_seed_configs()


def budget_check(search: PopulationBasedSearch) -> Callable[[], bool]:
    """``_autotune_budget_exceeded_across_ranks``: Helion's check of ``autotune_budget_seconds``
    (as PatternSearch's generations use it). search: passed to the driver, asked every turn."""
    return search._autotune_budget_exceeded_across_ranks


def find_similar_cached_configs(search: PopulationBasedSearch, max_configs: int) -> list[SavedBestConfig]:
    """``_find_similar_cached_configs``: the configs Helion's cache holds for this kernel, device
    and specialization (what Helion's ``FROM_BEST_AVAILABLE`` start uses; each has ``.config``).
    history: first-batch configs."""
    return search._find_similar_cached_configs(max_configs)


def kernel_fn(search: PopulationBasedSearch) -> object:
    """``search.kernel.kernel.fn``: the Python function of the kernel being tuned (None where the
    kernel has none). search: the kernel's name in the prompt; history: the source it hashes."""
    return getattr(getattr(search.kernel, "kernel", None), "fn", None)


def current_hardware(search: PopulationBasedSearch) -> str | None:
    """``_get_current_hardware_and_specialization()[0]``: the device name Helion's cache keys on.
    history: the history store's device folder."""
    return search._get_current_hardware_and_specialization()[0]


# ---------------------------------------------------------------------------------------------
# The config space (helion.autotuner.config_generation, config_fragment, config_spec,
# block_id_sequence, pattern_search). space.py reads the kernel's fields through the search's
# ConfigGeneration (config_gen: flat_spec, overridden_flat_indices, flatten, canonicalize_flat,
# random_config, seed_flat_config_pairs) and ConfigSpec (default_config,
# autotune_reference_config, backend_name); the fragment classes say each field's valid values.
# validate_sparse_config_shape (helion.autotuner.llm.configs) is the shape check Helion's own LLM
# search applies to an LLM's config.
# ---------------------------------------------------------------------------------------------


def flat_fields(config_spec: ConfigSpec) -> dict[str, object]:
    """``ConfigSpec._flat_fields``: field name -> fragment (or BlockIdSequence). space: the
    space's fields; prompts: Helion's workload hints."""
    return config_spec._flat_fields()


def flat_layout(config_gen: ConfigGeneration) -> dict[str, tuple[list[int], bool]]:
    """``ConfigGeneration._key_to_flat_indices``: field name -> (flat indices, is a list).
    space: which flat values make up each field of the description and of a config."""
    return config_gen._key_to_flat_indices


def encode_flat_values(field: BlockIdSequence, config_spec: ConfigSpec, values: list[object]) -> list[object]:
    """``BlockIdSequence._encode_flat_values``: a list field's config values as flat values.
    space: validating a list field of an LLM's config."""
    return field._encode_flat_values(config_spec, values)


class PatternNeighbors:
    """Helion's ``PatternSearch._generate_neighbors`` (one field moved, or two block sizes moved
    together) and ``shrink_neighbors`` (the cap), called rather than copied. space: refinement.

    Both read only ``config_gen`` and ``num_neighbors_cap`` of their search, so they run on this
    small holder of the two; the cap is the environment variable PatternSearch's profile reads.
    """

    _generate_neighbors = PatternSearch._generate_neighbors
    shrink_neighbors = PatternSearch.shrink_neighbors

    def __init__(self, config_gen: ConfigGeneration) -> None:
        self.config_gen = config_gen
        self.num_neighbors_cap = _env_get_int("HELION_CAP_AUTOTUNE_NUM_NEIGHBORS", -1)

    def neighbors(self, base: FlatConfig) -> list[FlatConfig]:
        return self._generate_neighbors(base)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Settings and effort (helion.runtime.settings, helion.autotuner.effort_profile). settings.py
# reads HELION_OPENEVOLVE_* through Helion's env helpers (empty is unset, a bad value names the
# variable) and takes refine_starts/refine_steps from the effort profile's pattern_search
# (copies, max_generations); helion_backend takes PatternSearch's adaptive compile-timeout
# defaults (compile_timeout_lower_bound, compile_timeout_quantile); openevolve_tuner applies the
# effort profile as default_autotuner_fn does. Settings fields read on search.settings:
# autotune_effort, autotune_random_seed, autotune_best_available_max_configs, autotune_cache,
# pallas_interpret, get_rebenchmark_threshold().
# ---------------------------------------------------------------------------------------------

env_bool = _env_get_bool
env_int = _env_get_int
env_optional_int = _env_get_optional_int
env_optional_float = _env_get_optional_float
env_str_or_none = _env_get_str_or_none

# ---------------------------------------------------------------------------------------------
# Elsewhere. get_helion_cache_dir (helion.autotuner.local_cache): history's default folder.
# cache_classes (helion.autotuner): the autotune cache openevolve_tuner wraps the search in.
# compute_workload_hints, describe_kernel, detect_workload_traits (helion.autotuner.llm.workload):
# the kernel, shapes and device in prompts.py's system message, as Helion's own LLM search says
# them. Registration (openevolve_tuner, the startup hook) adds to
# helion.autotuner.search_algorithms, the dict HELION_AUTOTUNER names are looked up in.
# ---------------------------------------------------------------------------------------------


def missing() -> list[str]:
    """What the installed Helion lacks of the members this package overrides or calls (names of
    modules imported above fail at import instead, naming themselves). Empty on the releases in
    :data:`CHECKED_ON`."""
    from helion.runtime.settings import Settings

    wanted = [
        *OVERRIDDEN_HOOKS,
        *USED_MEMBERS,
        "_record_benchmarked_member",
        "_backend_config_is_viable",
        "_finalize",
        "_autotune_seed_configs",
        "_autotune_budget_exceeded_across_ranks",
        "_find_similar_cached_configs",
        "_get_current_hardware_and_specialization",
    ]
    out = [f"PopulationBasedSearch.{n}" for n in wanted if not hasattr(PopulationBasedSearch, n)]
    for owner, names in (
        (PatternSearch, ("_generate_neighbors", "shrink_neighbors")),
        (BlockIdSequence, ("_encode_flat_values",)),
        (Settings, ("get_rebenchmark_threshold",)),
    ):
        out += [f"{owner.__name__}.{n}" for n in names if not hasattr(owner, n)]
    return out


def _warn_if_missing() -> None:
    gone = missing()
    if gone:
        import importlib.metadata

        version = importlib.metadata.version("helion")
        warnings.warn(
            f"helion-openevolve was checked on Helion {', '.join(CHECKED_ON)}; the installed Helion {version} "
            f"lacks {', '.join(gone)}, so OpenEvolveSearch may fail or behave differently "
            "(helion/autotuner/openevolve/adapters/helion_api.py lists what each is for)",
            stacklevel=2,
        )


_warn_if_missing()
