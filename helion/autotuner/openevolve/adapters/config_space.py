"""Tune a plain dict config space with any Python objective, on the same engine.

``tune_config_space({'block_size': [32, 64, 128], 'num_warps': [1, 2, 4, 8]}, objective)``
runs the OpenEvolve process, the asynchronous loop, the budget, the fallback and the run
record of the Helion search (:mod:`..loop.driver`), with a backend whose candidates are dicts of
the given choices and whose measurement is ``objective(config)`` in the calling process.
Higher scores are better unless ``minimize=True``. An objective is taken to be a timing, noisy:
every decision between two configs calls it again for both, paired and interleaved, and decides
on a difference beyond the noise measured from calling one config twice (:mod:`..loop.compare`); these
calls are not counted as evaluations. Pass ``exact=True`` for an objective that returns the same
score for the same config every time (a computed cost, a simulation with a fixed seed): it is
then called once per config and any difference above ``refine_min_improvement`` decides.
An exception or a non-finite score is a failed evaluation, never a crash; a space that is not a mapping of non-empty lists of
hashable values is refused up front with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Hashable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
import json
import math
import random

from ..loop.driver import NOTHING_FASTER
from ..loop.driver import SearchDriver
from ..loop.record import RunRecord
from ..loop.result import Measurement
from .prompts import answer_rules
from .settings import driver_options
from .settings import resolve_settings

Config = dict[str, Hashable]


def validate_space(space: object) -> dict[str, list[Hashable]]:
    """A copy of ``space`` as name -> list of choices, or ValueError/TypeError saying why not."""
    if not isinstance(space, Mapping) or not space:
        raise ValueError("config_space must be a non-empty dict of name -> list of choices")
    out: dict[str, list[Hashable]] = {}
    for name, choices in space.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"config_space key {name!r} must be a string identifier")
        if not isinstance(choices, (list, tuple)):
            raise TypeError(f"config_space[{name!r}] must be a list of choices, got {type(choices).__name__}")
        if not choices:
            raise ValueError(f"config_space[{name!r}] has no choices")
        for choice in choices:
            try:
                hash(choice)
            except TypeError:
                raise TypeError(f"config_space[{name!r}] choice {choice!r} is not hashable") from None
        if len(set(map(_key_item, choices))) != len(choices):
            raise ValueError(f"config_space[{name!r}] lists a choice twice")
        out[name] = list(choices)
    return out


def _key_item(value: Hashable) -> tuple[str, Hashable]:
    return (type(value).__name__, value)  # keeps True and 1 apart


class _DictBackend:
    def __init__(
        self,
        space: dict[str, list[Hashable]],
        objective: Callable[[Config], float],
        minimize: bool,
        exact: bool = False,
    ) -> None:
        self.space = space
        self.objective = objective
        self.minimize = minimize
        self.exact = exact
        self.default: Config = {k: v[0] for k, v in space.items()}

    def key(self, candidate: Config) -> Hashable:
        return tuple((k, _key_item(candidate[k])) for k in self.space)

    def validate(self, raw: dict[str, object]) -> Config:
        config = dict(self.default)
        for name, value in raw.items():
            if name not in self.space:
                raise ValueError(f"unknown field {name!r}; the fields are: {', '.join(self.space)}")
            matches = [c for c in self.space[name] if _key_item(c) == _key_item(value)]  # type: ignore[arg-type]
            if not matches:
                raise ValueError(f"{name}={value!r} must be one of {self.space[name]!r}")
            config[name] = matches[0]
        return config

    def as_dict(self, candidate: Config) -> dict[str, object]:
        return dict(candidate)

    def random(self, rng: random.Random) -> Config:
        return {k: rng.choice(v) for k, v in self.space.items()}

    def neighbors(self, candidate: Config) -> list[Config]:
        out: list[Config] = []
        for name, choices in self.space.items():
            i = next(j for j, c in enumerate(choices) if _key_item(c) == _key_item(candidate[name]))
            out.extend({**candidate, name: choices[j]} for j in (i - 1, i + 1) if 0 <= j < len(choices))
        return out

    def measure(self, candidates: list[Config], desc: str) -> list[Measurement]:
        return [self._measure_one(c) for c in candidates]

    def retime(self, candidates: list[Config]) -> list[float] | None:
        """The objective called again for each candidate, in order (None for an exact one)."""
        if self.exact:
            return None
        return [m.cost if m.ok else math.nan for m in map(self._measure_one, candidates)]

    def _measure_one(self, config: Config) -> Measurement:
        try:
            score = float(self.objective(dict(config)))
        except Exception as e:  # the user's objective failing is a failed evaluation, not a crash
            return Measurement(math.inf, "error", f"{type(e).__name__}: {e}"[:300])
        if not math.isfinite(score):
            return Measurement(math.inf, "error", f"non-finite score {score}")
        return Measurement(score if self.minimize else -score)


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune_config_space` found: the best config, its score and the run summary."""

    best_config: Config
    best_score: float
    evaluations: int
    mode: str
    fallback_reason: str | None
    summary: dict[str, object]


def _system_message(
    space: dict[str, list[Hashable]],
    default: Config,
    description: str,
    candidates: int,
    *,
    minimize: bool,
    diff_based: bool,
) -> str:
    spec = {k: {"type": "choice", "choices": v} for k, v in space.items()}
    goal = "as low as possible (a cost)" if minimize else "as high as possible"
    return (
        f"You tune a configuration: the objective's score should be {goal}.\n{description}\n\n"
        f"## Search space\n```json\n{json.dumps(spec, default=str)}\n```\n"
        f"## Default config\n```json\n{json.dumps(default, default=str)}\n```\n"
        + answer_rules(candidates, diff_based=diff_based)
    )


def tune_config_space(
    config_space: Mapping[str, list[Hashable]],
    objective: Callable[[Config], float],
    *,
    max_evaluations: int = 50,
    minimize: bool = False,
    default: Mapping[str, Hashable] | None = None,
    known_configs: Sequence[Mapping[str, Hashable]] = (),
    description: str = "",
    exact: bool = False,
    log: Callable[[str], None] = print,
    **settings: object,
) -> TuneResult:
    """Search ``config_space`` for the config with the best ``objective(config)``.

    ``default`` is the baseline config, measured first (speedups are relative to it); fields
    it leaves out, or all of them without it, take the first choice of their list.
    ``known_configs`` (e.g. an earlier search's picks) are measured with it; when one of them
    is the best and nothing around it is faster, the search ends sooner. ``exact``: the
    objective returns the same score for the same config every time, so it is never called
    twice for one config (by default it is taken to be a noisy timing; see the module
    docstring). ``settings``
    are those of the Helion search (``model``, ``api_base``, ``api_key``,
    ``max_seconds``, ``strict``, ``record_path``, ...; also from ``HELION_OPENEVOLVE_*``).
    """
    space = validate_space(config_space)
    s = resolve_settings("config_space", max_evaluations=max_evaluations, **settings)
    seed = s.seed if s.seed is not None else random.randrange(2**31)
    backend = _DictBackend(space, objective, minimize, exact)
    if default is not None:
        if not isinstance(default, Mapping):
            raise TypeError(f"default must be a dict of name -> choice, got {type(default).__name__}")
        try:
            backend.default = backend.validate(dict(default))
        except ValueError as e:
            raise ValueError(f"default config is not in config_space: {e}") from None
    try:
        known = [backend.validate(dict(c)) for c in known_configs]
    except (ValueError, TypeError) as e:
        raise ValueError(f"a known config is not in config_space: {e}") from None
    options = driver_options(
        s,
        seed=seed,
        max_seconds=s.max_seconds,
        system_message=_system_message(
            space,
            backend.default,
            description,
            s.candidates_per_program,
            minimize=minimize,
            diff_based=s.diff_based,
        ),
        title="Candidate configs",
        ratio_scores=minimize,
    )
    record = RunRecord(s.record_path)
    driver = SearchDriver(backend, options, record, log, log)
    try:
        driver.run(backend.default, history=known)
        best = driver.best
        if best is None:
            raise RuntimeError("every evaluation of the objective failed; see the run record for the reasons")
        score = best.measurement.cost if minimize else -best.measurement.cost
        summary = record.summary(**driver.summary_fields(), best_score=score, best_config=best.candidate)
        log(
            f"tune_config_space ({driver.mode}): {summary['evaluations']} evaluations, best score {score:.6g} with {best.candidate}"
        )
        if summary["default_beaten"] is False:
            log(f"tune_config_space: {NOTHING_FASTER} (timing noise {driver.measured.noise:.1%})")
        return TuneResult(
            dict(best.candidate), score, int(summary["evaluations"]), driver.mode, driver.fallback_reason, summary
        )  # type: ignore[call-overload]
    finally:
        record.close()
