"""The OpenEvolve process: runs OpenEvolve's controller over the candidate-block program.

Started by :mod:`.launcher` as ``python -c BOOTSTRAP`` in a new session, so it never re-runs
the user's script, and it imports this package under the private name :data:`PACKAGE`, so
neither ``helion`` nor ``torch`` is imported here or in OpenEvolve's spawned workers. It reads
one JSON job from standard input (the API key travels there, never in argv or the environment),
writes the seed program and an evaluator file into its private output folder, and runs
``OpenEvolve.run``. Process-wide changes OpenEvolve makes (root logger, signal handlers, RNG
seeds) stay in this process.

Events to the user's process: ``started``, ``engine_error`` and ``engine_finished`` from here;
each LLM request's ``llm_request``/``llm_answer``/``llm_error`` from the workers' LLM clients
(:mod:`.llm_channel`, installed through OpenEvolve's ``init_client`` hook). When the user's
process goes away (standard input closes), this process kills its whole group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
import signal
import sys
import threading
from typing import Any

from .llm_channel import ChannelClientFactory
from .llm_channel import EventSender

PACKAGE = "_helion_openevolve"

#: ``python -c BOOTSTRAP``: run the engine. The launcher puts a folder on ``PYTHONPATH`` in which
#: :data:`PACKAGE` is this package (a link), so the engine and OpenEvolve's spawned workers import
#: it under that name, and never as ``helion.autotuner.openevolve`` (which would import helion).
BOOTSTRAP = f"""import sys
from {PACKAGE}.engine import main
sys.exit(main())
"""

#: OpenEvolve's evaluator file (loaded by path in every worker): builds the objective.
_EVALUATOR_TEMPLATE = """# Written by the Helion OpenEvolve search: OpenEvolve's evaluator entry point.
from {package}.server import ObjectiveFactory
evaluate = ObjectiveFactory({address!r}, {authkey_hex!r}, {timeout_s!r}, {max_candidates!r})()
"""


DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_API_BASE = "https://api.openai.com/v1"


def job_endpoint(oe: dict[str, Any]) -> tuple[str, str, str | None] | None:
    """The (api_base, model, api_key) :func:`build_config` gives the job's one model; None when
    an OpenEvolve YAML file decides the models."""
    if oe.get("yaml_path"):
        return None
    return oe.get("api_base") or DEFAULT_API_BASE, oe.get("model") or DEFAULT_MODEL, oe.get("api_key")


def _die_with_parent() -> None:
    """Standard input is the user's process's pipe: when it closes, end the whole group."""
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(4096):
            pass
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(1)


def build_config(job: dict[str, Any]) -> Any:
    """OpenEvolve ``Config`` from the optional YAML file plus this search's settings."""
    from openevolve.config import Config
    from openevolve.config import LLMModelConfig

    oe = job["openevolve"]
    config = Config.from_yaml(oe["yaml_path"]) if oe.get("yaml_path") else Config()
    if oe.get("model") or not config.llm.models:
        config.llm.models = [LLMModelConfig(name=oe.get("model") or DEFAULT_MODEL, weight=1.0)]
        config.llm.evaluator_models = []
    llm_params = {
        "api_base": oe.get("api_base"),
        "temperature": oe.get("temperature"),
        "max_tokens": oe.get("max_tokens"),
        "timeout": oe.get("llm_timeout_s"),
        "retries": oe.get("llm_retries"),
        "retry_delay": oe.get("llm_retry_delay_s"),
    }
    config.llm.update_model_params({k: v for k, v in llm_params.items() if v is not None}, overwrite=True)
    config.llm.update_model_params({"api_base": DEFAULT_API_BASE})
    config.llm.update_model_params({"api_key": oe.get("api_key")}, overwrite=oe.get("api_key") is not None)
    for model in config.llm.models:  # every request is reported to the user's process
        model.init_client = ChannelClientFactory(
            job["address"],
            job["authkey_hex"],
            model.init_client,
            state_dir=job.get("llm_state_dir"),
            salt_hex=job.get("endpoint_salt", ""),
        )
    config.llm.evaluator_models = list(config.llm.models)
    config.language = "python"
    config.diff_based_evolution = bool(oe.get("diff_based", False))
    config.max_code_length = 40_000
    config.random_seed = oe.get("seed")
    config.log_level = oe.get("log_level", "INFO")
    config.checkpoint_interval = 10**9
    config.max_tasks_per_child = 10**6  # any value makes the worker pool spawn, not fork
    config.prompt.system_message = job["system_message"]
    config.prompt.include_artifacts = True
    config.prompt.num_top_programs = oe.get("num_top_programs", 3)
    config.database.num_islands = oe.get("islands", 3)
    config.database.population_size = oe.get("population_size", 200)
    config.database.random_seed = oe.get("seed")
    config.database.log_prompts = False
    config.database.migration_interval = oe.get("migration_interval", 10)
    config.evaluator.cascade_evaluation = False
    config.evaluator.use_llm_feedback = False
    config.evaluator.max_retries = 0
    config.evaluator.timeout = int(job["objective_timeout_s"]) + 5
    config.evaluator.parallel_evaluations = oe.get("parallel", 2)
    return config


def _write_inputs(job: dict[str, Any], out: Path) -> tuple[Path, Path]:
    program = out / "initial_program.py"
    program.write_text(job["initial_program"])
    evaluator = out / "evaluator.py"
    evaluator.write_text(
        _EVALUATOR_TEMPLATE.format(
            package=PACKAGE,
            address=job["address"],
            authkey_hex=job["authkey_hex"],
            timeout_s=float(job["objective_timeout_s"]),
            max_candidates=int(job["max_candidates"]),
        )
    )
    evaluator.chmod(0o600)
    return program, evaluator


def main() -> int:
    job = json.loads(sys.stdin.readline())
    threading.Thread(target=_die_with_parent, name="watch-parent", daemon=True).start()
    out = Path(job["output_dir"])
    events = EventSender(job["address"], job["authkey_hex"])
    try:
        from openevolve.controller import OpenEvolve

        config = build_config(job)
        program, evaluator = _write_inputs(job, out)
        controller = OpenEvolve(str(program), str(evaluator), config, output_dir=str(out / "openevolve"))
        events.send({"event": "started", "torch_imported": "torch" in sys.modules, "pid": os.getpid()})
        asyncio.run(controller.run(iterations=int(job["iterations"])))
    except BaseException as e:  # reported to the user's process, which falls back
        events.send({"event": "engine_error", "error": f"{type(e).__name__}: {e}"[:2000]})
        raise
    events.send({"event": "engine_finished"})
    return 0
