"""One measured candidate: the backend's :class:`Measurement` of it, and the :class:`Result` the
search keeps (its source, first timing and re-timings); :class:`Backend` is what measures it.

:mod:`.measure` keeps the table of results, :mod:`.retiming` times them again; both, and the
driver's parts, read these types. Nothing of Helion or torch is imported here.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from dataclasses import field
import math
import random
from typing import TYPE_CHECKING
from typing import Generic
from typing import Protocol
from typing import TypeVar

if TYPE_CHECKING:
    from .record import Source

C = TypeVar("C")


@dataclass(frozen=True)
class Measurement:
    """One candidate's result from the backend: ``cost`` is lower-is-better, inf on failure."""

    cost: float
    status: str = "ok"
    reason: str = ""
    compile_s: float | None = None

    @property
    def ok(self) -> bool:
        return math.isfinite(self.cost)


class Backend(Protocol[C]):
    """What the driver needs from the thing being tuned (a Helion kernel, a dict space...).

    ``retime`` times the candidates again, together, in one interleaved round (a candidate
    listed twice is timed twice) and returns their new costs in order (``nan`` where a timing
    failed: the config keeps its earlier cost); ``None`` where it does not time again (an exact
    objective, or Helion's effort leaves re-timing off).
    """

    def key(self, candidate: C) -> Hashable: ...
    def validate(self, raw: dict[str, object]) -> C: ...  # ValueError with a reason if invalid
    def as_dict(self, candidate: C) -> dict[str, object]: ...
    def measure(self, candidates: list[C], desc: str) -> list[Measurement]: ...
    def retime(self, candidates: list[C]) -> list[float] | None: ...
    def random(self, rng: random.Random) -> C: ...
    def neighbors(self, candidate: C) -> list[C]: ...


@dataclass
class Result(Generic[C]):
    """A measured candidate, its result and where it came from."""

    candidate: C
    measurement: Measurement
    source: Source
    #: for a refinement find, the source of the config its path started from (the default, a
    #: seed, an LLM proposal, a random draw); ``history`` for a default an earlier search
    #: picked; otherwise its own source
    origin: Source
    #: the cost from the batch it was measured in (``cost`` is the mean of its re-timings)
    first: float = field(init=False)
    #: its re-timings: round number -> cost (rounds shared with another config pair them)
    rounds: dict[int, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.first = self.measurement.cost

    @property
    def cost(self) -> float:
        return self.measurement.cost

    @property
    def verified(self) -> bool:
        """The backend timed it again (its cost is the mean of its re-timings)."""
        return bool(self.rounds)
