"""The engine's job: what the user's process tells the OpenEvolve process, as typed plain data.

The user's process builds an :class:`EngineJob` (the settings' :class:`LLMSettings`, the search's
system message and seed program) and, once the evaluation server listens, a :class:`ServerLink`
(where to reach it). Both cross the process boundary as one JSON line on the engine's standard
input (:func:`to_wire`), never in argv or the environment, because they carry the API key;
:func:`from_wire` rebuilds them in the engine (:mod:`.main`). Field names are the names of the
user's settings (``HELION_OPENEVOLVE_*``, keyword arguments), so a setting has one name from the
user to OpenEvolve's ``Config``. Nothing of Helion or torch is imported here.
"""

from __future__ import annotations

from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_API_BASE = "https://api.openai.com/v1"


@dataclass(frozen=True)
class LLMSettings:
    """The user's settings that OpenEvolve's ``Config`` receives (see README's Settings)."""

    model: str | None  # None: the YAML's models, else DEFAULT_MODEL
    api_base: str | None  # None: the YAML's, else DEFAULT_API_BASE
    api_key: str | None
    config_path: str | None  # an OpenEvolve YAML file
    temperature: float
    llm_timeout_s: int  # one LLM request at most, retries of a rate limit included
    llm_retries: int
    parallel_llm_calls: int  # OpenEvolve's parallel evaluations (iterations in flight)
    islands: int
    seed: int
    diff_based: bool
    max_llm_calls: int  # OpenEvolve's ``iterations``: one LLM answer each

    def endpoint(self) -> tuple[str, str, str | None] | None:
        """The (api_base, model, api_key) of the one model :func:`.main.build_config` configures;
        None when an OpenEvolve YAML file decides the models."""
        if self.config_path:
            return None
        return self.api_base or DEFAULT_API_BASE, self.model or DEFAULT_MODEL, self.api_key


@dataclass(frozen=True)
class EngineJob:
    """What one search asks of OpenEvolve: its settings, the system message and seed program."""

    llm: LLMSettings
    system_message: str
    initial_program: str  # the seed program: the default and seed configs as a candidate block
    objective_timeout_s: float  # how long an objective waits for the user's process to reply
    max_candidates: int  # candidates of one evolved program beyond this are rejected


@dataclass(frozen=True)
class ServerLink:
    """Where the engine reaches the user's process, and its private folders."""

    address: str  # the evaluation server's Unix socket
    authkey_hex: str
    output_dir: str  # the run's private folder: the seed program, the evaluator, OpenEvolve's output
    llm_state_dir: str  # marks shared by the workers' LLM clients (:mod:`.llm_channel`)
    endpoint_salt: str  # the user's process's salt for endpoint fingerprints


def to_wire(job: EngineJob, link: ServerLink) -> dict[str, Any]:
    return {"job": asdict(job), "link": asdict(link)}


def from_wire(message: dict[str, Any]) -> tuple[EngineJob, ServerLink]:
    job = dict(message["job"])
    llm = LLMSettings(**job.pop("llm"))
    return EngineJob(llm=llm, **job), ServerLink(**message["link"])
