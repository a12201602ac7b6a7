"""One search's OpenEvolve session: the evaluation server, the engine process, their folder.

:meth:`EngineSession.start` checks that OpenEvolve can run at all (installed, a key or a YAML),
opens the :class:`.server.EvaluationServer` in a private temporary folder and starts the engine
(:class:`.launcher.EngineProcess`) with its job; it returns why it could not, so the driver goes
on without the LLM. :meth:`EngineSession.shut` ends both (also mid-search, when the LLM
failed); :meth:`EngineSession.close` also keeps OpenEvolve's folder where the user asked for it
and removes the private one. Nothing of it outlives the search.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import shutil
import tempfile
import time

from .feedback import Reply
from .launcher import EngineProcess
from .server import EvaluationServer
from .server import Proposal


class EngineSession:
    """The server and the engine of one search (see the module docstring)."""

    def __init__(self, keep_output_dir: str | None = None) -> None:
        self.keep_output_dir = keep_output_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="helion-openevolve-"))
        self.server: EvaluationServer | None = None
        self.engine: EngineProcess | None = None

    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self, job: dict[str, object], first_reply: Reply) -> str | None:
        """Start the server and the engine; the reason they could not start, or None.

        ``job`` is the engine's job without the server's address, key and output folder.
        """
        if (reason := _unavailable(job)) is not None:
            return reason
        try:
            self.server = EvaluationServer(self.workdir, first_reply)
            full = {
                **job,
                "address": self.server.address,
                "authkey_hex": self.server.authkey.hex(),
                "output_dir": str(self.workdir),
            }
            self.engine = EngineProcess(full, self.workdir)
        except OSError as e:  # socket or process creation failed: go on without the LLM
            self.shut()
            return f"could not start the OpenEvolve process: {type(e).__name__}: {e}"
        return None

    def take(self, timeout_s: float) -> list[Proposal]:
        return self.server.take(timeout_s, limit=64) if self.server is not None else []

    def events(self) -> list[dict[str, object]]:
        return self.server.drain_events() if self.server is not None else []

    def ended_without_word(self) -> str | None:
        """Why the engine ended, if it is no longer running (its last events are read first)."""
        if self.engine is None or self.engine.alive():
            return None
        time.sleep(0.2)  # the engine's last events may still be in flight
        return self.engine.exit_reason()

    def shut(self) -> None:
        """Answer every waiting program with ``finished`` and end the engine's process group."""
        if self.server is not None:
            self.server.close()
            self.server = None
        if self.engine is not None:
            self.engine.stop()
            self.engine = None

    def close(self) -> None:
        self.shut()
        if self.keep_output_dir:
            shutil.copytree(
                self.workdir,
                self.keep_output_dir,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("*.sock", "lib"),
            )
        shutil.rmtree(self.workdir, ignore_errors=True)


def _unavailable(job: dict[str, object]) -> str | None:
    """Why OpenEvolve cannot run for this job at all, or None."""
    if importlib.util.find_spec("openevolve") is None:
        return "openevolve is not installed (pip install 'openevolve>=0.4,<0.5')"
    oe = job.get("openevolve") or {}
    if not oe.get("api_key") and not oe.get("yaml_path"):  # type: ignore[union-attr]
        return "no API key: set OPENAI_API_KEY or HELION_OPENEVOLVE_API_KEY (any value for a local server)"
    return None
