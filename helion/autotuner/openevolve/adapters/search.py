"""``OpenEvolveSearch``: Helion's search interface around the OpenEvolve driver.

Flow of :meth:`OpenEvolveSearch._autotune`:

1. Build the space from the kernel's ``ConfigSpec`` (:class:`.space.HelionSpace`, with the
   user's overrides), read what earlier searches of the kernel picked (:mod:`.history`:
   first-batch configs and the prompt's "What won before") and build the system message (:mod:`.prompts`).
2. Run :class:`..loop.driver.SearchDriver` with :class:`.helion_backend.HelionBackend`, which measures
   configs through Helion's ``benchmark_batch`` (parallel precompile, compile timeouts, accuracy check against the
   baseline output, subprocess isolation when enabled), keeps a ``PopulationMember`` for
   every measured config and times again the ones a decision rests on, paired with their rivals,
   with Helion's ``rebenchmark`` (:mod:`..loop.compare` holds the rule every decision uses).
3. Pin the finalists of Helion's final selection (the default, the best and the configs that
   tie it) and size it to them, finish like PatternSearch with ``self._finalize()`` (final
   rebenchmark, finishing rounds, recovery from an unkillable worker), log one summary line
   (evaluations, LLM calls, best vs default, where the time went), write it to the run record,
   and add the pick to the history.
"""

from __future__ import annotations

import math
import os
import time
from typing import TYPE_CHECKING
from typing import Any

from helion import exc

from ..loop.driver import NOTHING_FASTER
from ..loop.driver import SearchDriver
from ..loop.options import DriverOptions
from ..loop.record import RunRecord
from . import helion_api
from .helion_api import FINAL_REBENCHMARK_TARGET_MS_ENV
from .helion_api import PopulationBasedSearch
from .helion_api import PopulationMember
from .helion_api import performance
from .helion_backend import HelionBackend
from .history import WarmStart
from .prompts import system_message
from .settings import OpenEvolveSettings
from .settings import driver_options
from .settings import public_view
from .settings import resolve_settings
from .space import HelionSpace

if TYPE_CHECKING:
    from collections.abc import Sequence

    import helion

    from .helion_api import AutotunableKernel


#: Helion's own setting of its final verification's target time: when the user sets it, it wins.
FINAL_TARGET_ENV = FINAL_REBENCHMARK_TARGET_MS_ENV


class OpenEvolveSearch(PopulationBasedSearch):
    """Helion search whose proposals come from OpenEvolve's LLM-guided evolution.

    Args:
        kernel: The bound kernel to tune.
        args: Example arguments.
        finishing_rounds: Helion's finishing rounds after the search (effort profile default).
        settings: An :class:`OpenEvolveSettings`; keyword arguments override its fields.
        **overrides: Any field of :class:`OpenEvolveSettings` (``max_evaluations``, ``model``,
            ``api_base``, ``config_path``, ``strict``, ``record_path``...).
    """

    def __init__(
        self,
        kernel: AutotunableKernel,
        args: Sequence[object],
        *,
        finishing_rounds: int = 0,
        settings: OpenEvolveSettings | None = None,
        **overrides: object,
    ) -> None:
        super().__init__(kernel, args, finishing_rounds=finishing_rounds)
        self.oe_settings = resolve_settings(str(self.settings.autotune_effort), settings, **overrides)
        self.summary: dict[str, object] = {}
        self.fallback_reason: str | None = None
        #: each config's latest timing by Helion's ``rebenchmark`` (this search's verifying and
        #: Helion's final verification): the summary's pick and default readings
        self.rebenchmarked: dict[helion.Config, float] = {}  # config -> Helion's rebenchmark timing (ms)
        #: finalists Helion's final selection keeps besides the pinned ones (None: Helion's)
        self.finalists: int | None = None

    def rebenchmark(self, members: list[PopulationMember], **kwargs: Any) -> None:
        """Helion's rebenchmark, keeping each config's new timing in :attr:`rebenchmarked`: Helion's
        final verification times copies of the finalists, so the population's members keep their
        search readings, and the summary compares the pick with the default as the final
        verification timed them, side by side."""
        super().rebenchmark(members, **kwargs)
        for member in members:
            if member.perfs and math.isfinite(member.perf):
                self.rebenchmarked[member.config] = member.perf

    def _algorithm_cache_policy(self) -> dict[str, object]:
        return {"openevolve_version": 1, **public_view(self.oe_settings)}

    def _options(self, space: HelionSpace, warm: WarmStart) -> DriverOptions:
        s = self.oe_settings
        seed = s.seed if s.seed is not None else int(self.settings.autotune_random_seed)
        return driver_options(
            s,
            seed=seed,
            max_seconds=s.max_seconds,
            # Helion's own check of autotune_budget_seconds, as PatternSearch's generations use it
            budget_exceeded=helion_api.budget_check(self),
            system_message=system_message(
                kernel=self.kernel,
                args=self.args,
                space=space,
                candidates=s.candidates_per_program,
                diff_based=s.diff_based,
                history=warm.known,
            ),
            title=f"Candidate configs for the Helion kernel {self._kernel_name()!r}",
        )

    def _final_pick_supported(self) -> bool:
        # Helion's Pallas final pick times finalists with the TPU profiler; in interpret mode
        # on a CPU there is no device to profile and the trace never completes.
        return super()._final_pick_supported() and not self.settings.pallas_interpret

    def _final_rebenchmark_target_ms(self) -> float:
        """The time Helion's final verification gives the slowest finalist: it times all
        finalists together in ``target / slowest finalist`` rounds (at most 20000), so on kernels
        slower than ~0.25 ms it costs about ``target`` per finalist, and finalists that all run
        fast (as a converged search's do) get the most rounds. This search passes
        ``final_verify_ms`` instead (Helion's value when lower, or when the user set
        ``HELION_AUTOTUNE_FINAL_REBENCHMARK_TARGET_MS``); kernels under ~0.05 ms keep Helion's
        20000 rounds either way."""
        helions = super()._final_rebenchmark_target_ms()
        if os.environ.get(FINAL_TARGET_ENV, "").strip():
            return helions
        return min(helions, self.oe_settings.final_verify_ms)

    def _final_rebenchmark_top_k_default(self) -> int:
        """Finalists of Helion's final selection besides the pinned ones: the configs that tie
        the best (see :meth:`_pin_finalists`), at most Helion's number; Helion's own setting
        (``HELION_AUTOTUNE_FINAL_REBENCHMARK_TOP_K``) wins when set."""
        helions = super()._final_rebenchmark_top_k_default()
        return helions if self.finalists is None else max(1, min(helions, self.finalists))

    def _seed_configs(self, space: HelionSpace) -> list[helion.Config]:
        """Helion's reference config, the compiler's seeds and the user's seed configs."""
        seeds = [space.default]
        try:
            seeds += [config for _, config in self.config_gen.seed_flat_config_pairs()]
            seeds += [space.canonical(c) for c in helion_api.autotune_seed_configs(self)]
        except exc.InvalidConfig as e:  # a bad seed is skipped, never fatal
            self.log.warning(f"OpenEvolveSearch: skipping seed configs: {e}")
        return seeds

    def _kernel_name(self) -> str:
        return getattr(helion_api.kernel_fn(self), "__name__", "kernel")

    def _autotune(self) -> helion.Config:
        s = self.oe_settings
        self.log(
            f"Starting OpenEvolveSearch: max_evaluations={s.max_evaluations}, max_seconds={s.max_seconds}, model={s.model or 'default'}"
        )
        space = HelionSpace(self.config_gen, self.config_spec)
        backend = HelionBackend(self, space, s.decision_round_ms)
        warm = WarmStart.load(self, s, backend.validate)
        record = RunRecord(s.record_path)
        driver = SearchDriver(backend, self._options(space, warm), record, self.log, self.log.warning)
        default, seeds = space.canonical(self.config_spec.default_config()), self._seed_configs(space)
        try:
            driver.run(default, seeds, warm.seeds)
            self._pin_finalists(driver, backend, [default, *seeds, *warm.seeds])
            self.population = sorted(backend.members.values(), key=performance)
            if not self.population or not math.isfinite(self.population[0].perf):
                raise exc.NoConfigFound
            t0 = time.perf_counter()
            config = helion_api.finalize(self)
            record.time.finalize_s += time.perf_counter() - t0
            self._log_summary(driver, record, config, default)
            warm.remember(config, self.summary)
            return config
        finally:
            record.close()

    def _pin_finalists(
        self, driver: SearchDriver[helion.Config], backend: HelionBackend, configs: list[helion.Config]
    ) -> None:
        """Pin the default (every speedup's baseline), the best and the seeds that tie it into
        Helion's final selection, and size it to the configs that tie the best: a finalist the
        search already showed slower beyond the noise costs the final selection its time and
        cannot win there (PatternSearch pins every seed; each finalist costs about as much)."""
        measured = driver.measured
        ties = [e for e in measured.ok_entries() if measured.trusted(e) and measured.ties_best(e)]
        self.finalists = len(ties)
        best = measured.best
        keep = [c for c in configs[1:] if (e := measured.entries.get(c)) is not None and e in ties]
        pinned = list(dict.fromkeys([configs[0], *([best.candidate] if best else []), *keep]))
        for config in pinned:
            self.pin_finalist_config(config)
            if (member := backend.members.get(config)) is not None:
                helion_api.record_benchmarked_member(self, member)  # measured before it was pinned
        measured.record.write("finalists", ties=len(ties), pinned=len(pinned))

    def _log_summary(
        self,
        driver: SearchDriver[helion.Config],
        record: RunRecord,
        config: helion.Config,
        default_config: helion.Config,
    ) -> None:
        # The pick and the default as last timed: Helion's final verification times the pick and
        # the pinned default together, side by side, which the search's own readings were not.
        best = self.rebenchmarked.get(config, self.best.perf)
        first = driver.measured.default
        default = self.rebenchmarked.get(default_config, first.measurement.cost if first else math.nan)
        self.fallback_reason = driver.fallback_reason
        self.summary = record.summary(
            **driver.summary_fields(config),
            default_cost=default,
            best_cost=best,
            speedup=default / best if math.isfinite(default) and best > 0 else None,
            best_config=dict(config.config),
        )
        x = self.summary
        self.log(
            f"OpenEvolveSearch ({x['mode']}): {x['evaluations']} evaluations, {x['llm_calls']} LLM calls "
            f"({x['llm_errors']} failed, {x['llm_answers_used']} answers used), "
            f"best {self.format_performance(best)} vs default {self.format_performance(default)} "
            f"({x['speedup'] or 0:.2f}x); wall {x['wall_s']:.1f}s = measure {x['measure_s']:.1f}s "
            f"(verifying {x['verify_s']:.1f}s) "
            f"+ LLM wait {x['llm_wait_s']:.1f}s + startup {x['startup_s']:.1f}s + finalize {x['finalize_s']:.1f}s "
            f"+ other {x['other_s']:.1f}s (device busy {x['busy_share']:.0%}); first batch {x['first_batch_s']:.1f}s, "
            f"{x['retiming_rounds']} re-timing rounds, timing noise {x['timing_noise']:.1%}"
        )
        if x["default_beaten"] is False:
            self.log(f"OpenEvolveSearch: {NOTHING_FASTER} (timing noise {x['timing_noise']:.1%})")
