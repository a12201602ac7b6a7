"""The OpenEvolve process: runs OpenEvolve's controller over the candidate-block program.

Started by the user's process (``loop/launcher.py``) as ``python -c BOOTSTRAP`` in a new
session, so it never re-runs the user's script. Only this subpackage is on its import path,
under the private name :data:`PACKAGE`, so neither ``helion`` nor ``torch`` can be imported here
or in OpenEvolve's spawned workers. It reads one JSON line from standard input, an
:class:`.job.EngineJob` and its :class:`.job.ServerLink` (the API key travels there, never in
argv or the environment), writes the seed program and an evaluator file into its private output
folder, and runs ``OpenEvolve.run``. Process-wide changes OpenEvolve makes (root logger, signal handlers, RNG
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

from .job import DEFAULT_API_BASE
from .job import DEFAULT_MODEL
from .job import EngineJob
from .job import ServerLink
from .job import from_wire
from .llm_channel import ChannelClientFactory
from .llm_channel import EventSender

PACKAGE = "_helion_openevolve"

#: ``python -c BOOTSTRAP``: run the engine. The launcher puts a folder on ``PYTHONPATH`` in which
#: :data:`PACKAGE` is this subpackage (a link), so the engine and OpenEvolve's spawned workers
#: import it under that name, and never as ``helion.autotuner.openevolve.engine`` (which would
#: import helion), and nothing outside this subpackage is importable there.
BOOTSTRAP = f"""import sys
from {PACKAGE}.main import main
sys.exit(main())
"""

#: OpenEvolve's evaluator file (loaded by path in every worker): builds the objective.
_EVALUATOR_TEMPLATE = """# Written by the Helion OpenEvolve search: OpenEvolve's evaluator entry point.
from {package}.objective import ObjectiveFactory
evaluate = ObjectiveFactory({address!r}, {authkey_hex!r}, {timeout_s!r}, {max_candidates!r})()
"""


def _die_with_parent() -> None:
    """Standard input is the user's process's pipe: when it closes, end the whole group."""
    with contextlib.suppress(OSError, ValueError):
        while sys.stdin.buffer.read(4096):
            pass
    with contextlib.suppress(OSError):
        os.killpg(os.getpgid(0), signal.SIGKILL)
    os._exit(1)


#: OpenEvolve settings this search fixes (the user can change the others through a YAML file).
_PROMPT_TOP_PROGRAMS = 3
_POPULATION_SIZE = 200
_MIGRATION_INTERVAL = 10


def build_config(job: EngineJob, link: ServerLink) -> Any:
    """OpenEvolve ``Config`` from the optional YAML file plus this search's settings."""
    from openevolve.config import Config
    from openevolve.config import LLMModelConfig

    llm = job.llm
    config = Config.from_yaml(llm.config_path) if llm.config_path else Config()
    if llm.model or not config.llm.models:
        config.llm.models = [LLMModelConfig(name=llm.model or DEFAULT_MODEL, weight=1.0)]
        config.llm.evaluator_models = []
    llm_params = {
        "api_base": llm.api_base,
        "temperature": llm.temperature,
        "timeout": llm.llm_timeout_s,
        "retries": llm.llm_retries,
    }
    config.llm.update_model_params({k: v for k, v in llm_params.items() if v is not None}, overwrite=True)
    config.llm.update_model_params({"api_base": DEFAULT_API_BASE})
    config.llm.update_model_params({"api_key": llm.api_key}, overwrite=llm.api_key is not None)
    for model in config.llm.models:  # every request is reported to the user's process
        model.init_client = ChannelClientFactory(
            link.address,
            link.authkey_hex,
            model.init_client,
            state_dir=link.llm_state_dir,
            salt_hex=link.endpoint_salt,
        )
    config.llm.evaluator_models = list(config.llm.models)
    config.language = "python"
    config.diff_based_evolution = llm.diff_based
    config.max_code_length = 40_000
    config.random_seed = llm.seed
    config.log_level = "INFO"
    config.checkpoint_interval = 10**9
    config.max_tasks_per_child = 10**6  # any value makes the worker pool spawn, not fork
    config.prompt.system_message = job.system_message
    config.prompt.include_artifacts = True
    config.prompt.num_top_programs = _PROMPT_TOP_PROGRAMS
    config.database.num_islands = llm.islands
    config.database.population_size = _POPULATION_SIZE
    config.database.random_seed = llm.seed
    config.database.log_prompts = False
    config.database.migration_interval = _MIGRATION_INTERVAL
    config.evaluator.cascade_evaluation = False
    config.evaluator.use_llm_feedback = False
    config.evaluator.max_retries = 0
    config.evaluator.timeout = int(job.objective_timeout_s) + 5
    config.evaluator.parallel_evaluations = llm.parallel_llm_calls
    return config


def _write_inputs(job: EngineJob, link: ServerLink) -> tuple[Path, Path]:
    out = Path(link.output_dir)
    program = out / "initial_program.py"
    program.write_text(job.initial_program)
    evaluator = out / "evaluator.py"
    evaluator.write_text(
        _EVALUATOR_TEMPLATE.format(
            package=PACKAGE,
            address=link.address,
            authkey_hex=link.authkey_hex,
            timeout_s=float(job.objective_timeout_s),
            max_candidates=int(job.max_candidates),
        )
    )
    evaluator.chmod(0o600)
    return program, evaluator


def main() -> int:
    job, link = from_wire(json.loads(sys.stdin.readline()))
    threading.Thread(target=_die_with_parent, name="watch-parent", daemon=True).start()
    out = Path(link.output_dir)
    events = EventSender(link.address, link.authkey_hex)
    try:
        from openevolve.controller import OpenEvolve

        config = build_config(job, link)
        program, evaluator = _write_inputs(job, link)
        controller = OpenEvolve(str(program), str(evaluator), config, output_dir=str(out / "openevolve"))
        events.send({"event": "started", "torch_imported": "torch" in sys.modules, "pid": os.getpid()})
        asyncio.run(controller.run(iterations=job.llm.max_llm_calls))
    except BaseException as e:  # reported to the user's process, which falls back
        events.send({"event": "engine_error", "error": f"{type(e).__name__}: {e}"[:2000]})
        raise
    events.send({"event": "engine_finished"})
    return 0
