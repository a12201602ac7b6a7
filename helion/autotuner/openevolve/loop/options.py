"""What the search loop is told: :class:`DriverOptions`, plain data derived from the settings.

Both entry points build it through :func:`..adapters.settings.driver_options` (the Helion search and
:func:`..adapters.config_space.tune_config_space`); the loop (:mod:`.driver`) and its parts read only this.
Nothing of Helion or torch is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine.job import LLMSettings


class OpenEvolveUnavailable(RuntimeError):
    """OpenEvolve or its LLM failed and ``strict`` forbids going on without it."""


@dataclass(frozen=True)
class DriverOptions:
    """The subset of settings the loop itself uses (plain data)."""

    max_evaluations: int
    max_seconds: float | None
    candidates_per_program: int
    initial_random: int
    refinement: bool
    refine_batch: int
    max_llm_failures: int
    strict: bool
    seed: int
    refine_starts: int
    refine_steps: int
    refine_min_improvement: float
    refine_prune_ratio: float
    decision_rounds: int  # paired re-timing rounds at most behind one decision
    llm_timeout_s: float  # the setting: one LLM request at most, so the longest a converged search waits for an answer
    first_answer_wait_s: float  # from the start: how long a converged search waits for the first answer
    llm: LLMSettings  # what OpenEvolve's Config receives (the engine job's settings)
    system_message: str = ""
    title: str = "Candidate configs"
    objective_timeout_s: float = 900.0
    keep_output_dir: str | None = None
    #: True: costs are positive latencies and the LLM's score is default/cost (a speedup).
    #: False: the LLM's score is -cost (e.g. a maximised objective).
    ratio_scores: bool = True
    #: the caller's own budget check (Helion's, which keeps time back for its final selection)
    budget_exceeded: Callable[[], bool] | None = None
