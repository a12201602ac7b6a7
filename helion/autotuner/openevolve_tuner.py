"""Public entry of the OpenEvolve search for Helion.

``OpenEvolveSearch`` (alias ``OpenEvolveTuner``) is a Helion search whose proposals come from
OpenEvolve's LLM-guided evolution; see ``helion.autotuner.openevolve`` for how it works.
Installing this project registers both names in ``helion.autotuner.search_algorithms`` (a
startup hook does it when ``helion.autotuner`` is imported), so
``HELION_AUTOTUNER=OpenEvolveTuner`` works without importing anything of ours. In code::

    @helion.kernel(autotuner_fn=OpenEvolveSearch)
    @helion.kernel(autotuner_fn=openevolve_autotuner(max_evaluations=40, model="gpt-4o-mini"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from helion.autotuner.openevolve.adapters.config_space import TuneResult
from helion.autotuner.openevolve.adapters.config_space import tune_config_space
from helion.autotuner.openevolve.adapters.search import OpenEvolveSearch
from helion.autotuner.openevolve.adapters.settings import OpenEvolveSettings
from helion.autotuner.openevolve.adapters.settings import resolve_settings
from helion.autotuner.openevolve.loop.options import OpenEvolveUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Sequence

    from helion.autotuner.openevolve.adapters.helion_api import BaseAutotuner
    from helion.autotuner.openevolve.adapters.helion_api import BoundKernel

OpenEvolveTuner = OpenEvolveSearch

__all__ = [
    "OpenEvolveSearch",
    "OpenEvolveSettings",
    "OpenEvolveTuner",
    "OpenEvolveUnavailable",
    "TuneResult",
    "openevolve_autotuner",
    "register",
    "tune_config_space",
]


def openevolve_autotuner(**settings: object) -> Callable[..., BaseAutotuner]:
    """An ``autotuner_fn`` for ``@helion.kernel`` that runs this search with ``settings``.

    Like Helion's default autotuner function it applies the effort profile and wraps the
    search in the configured autotune cache, so a second run of the same kernel and shapes
    is served from the cache instead of searching again.
    """
    base = settings.get("settings")
    if base is not None and not isinstance(base, OpenEvolveSettings):
        raise TypeError(f"settings= must be an OpenEvolveSettings, got {type(base).__name__}")
    # Bad names or values fail here, not at the kernel's first call.
    resolve_settings("full", base, **{k: v for k, v in settings.items() if k != "settings"})

    def autotuner_fn(bound_kernel: BoundKernel, args: Sequence[object], **kwargs: object) -> BaseAutotuner:
        # Mirrors Helion's default_autotuner_fn, which cannot be called here: it takes its
        # search class from HELION_AUTOTUNER alone. test_e2e pins the two against each other.
        import inspect

        from helion.autotuner.openevolve.adapters.helion_api import cache_classes
        from helion.autotuner.openevolve.adapters.helion_api import get_effort_profile

        profile = get_effort_profile(bound_kernel.settings.autotune_effort)
        params = inspect.signature(OpenEvolveSearch.__init__).parameters
        for k, v in OpenEvolveSearch.get_kwargs_from_profile(profile, bound_kernel.settings).items():
            if k not in kwargs and k in params:
                kwargs[k] = v
        kwargs = {**kwargs, **settings}

        def factory() -> OpenEvolveSearch:
            return OpenEvolveSearch(bound_kernel, args, **kwargs)  # type: ignore[arg-type]

        cache_name = bound_kernel.settings.autotune_cache
        cache_cls = cache_classes.get(cache_name)
        if cache_cls is None:
            raise ValueError(
                f"Unknown HELION_AUTOTUNE_CACHE value: {cache_name}, valid options are: {', '.join(cache_classes)}"
            )
        return cache_cls(factory(), autotuner_factory=factory)

    return autotuner_fn


def register() -> None:
    """Add ``OpenEvolveTuner`` and ``OpenEvolveSearch`` to Helion's search registry."""
    from helion.autotuner.openevolve.adapters.helion_api import search_algorithms

    search_algorithms.setdefault("OpenEvolveTuner", OpenEvolveSearch)
    search_algorithms.setdefault("OpenEvolveSearch", OpenEvolveSearch)
