"""One search's OpenEvolve session: the evaluation server, the engine process, their folder.

:meth:`EngineSession.start` checks that OpenEvolve can run at all (installed, a key or a YAML),
opens the :class:`.server.EvaluationServer` in a private temporary folder and starts the engine
(:class:`.launcher.EngineProcess`) with its job; it returns why it could not, so the driver goes
on without the LLM. An endpoint that refused for good earlier in this process (a wrong key, an
unknown model; :func:`.llm_events.refused_before`) is such a reason: no engine starts and no
request is sent. The job also carries the folder in which the workers' LLM clients share marks
(:mod:`..engine.llm_channel`), seeded with every endpoint refused in this process, for the models an
OpenEvolve YAML names. :meth:`EngineSession.shut` ends the engine first, then keeps the events
that were still on their way (every request that left is counted) and closes the server (also
mid-search, when the LLM failed); :meth:`EngineSession.close` also keeps OpenEvolve's folder
where the user asked for it and removes the private one. Nothing of it outlives the search.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
import shutil
import tempfile
import time

from ..engine.feedback import Reply
from ..engine.job import EngineJob
from ..engine.job import ServerLink
from ..engine.job import to_wire
from ..engine.llm_channel import STOP_MARK
from .launcher import EngineProcess
from .llm_events import ENDPOINT_SALT
from .llm_events import refused_before
from .llm_events import refused_endpoints
from .server import Answer
from .server import EvaluationServer

#: How long :meth:`EngineSession.shut` waits for the last events of a stopped engine.
LAST_EVENTS_WAIT_S = 1.0
#: How long a request that passed the channel's stop check before the mark was written takes,
#: at most, to reach the endpoint: the engine ends this long after the mark.
REQUEST_LEAVES_S = 0.3


class EngineSession:
    """The server and the engine of one search (see the module docstring)."""

    def __init__(self, keep_output_dir: str | None = None) -> None:
        self.keep_output_dir = keep_output_dir
        self.workdir = Path(tempfile.mkdtemp(prefix="helion-openevolve-"))
        self.server: EvaluationServer | None = None
        self.engine: EngineProcess | None = None
        self._last_events: list[dict[str, object]] = []

    @property
    def running(self) -> bool:
        return self.server is not None

    def start(self, job: EngineJob, first_reply: Reply) -> str | None:
        """Start the server and the engine; the reason they could not start, or None."""
        if (reason := _unavailable(job)) is not None:
            return reason
        try:
            self.server = EvaluationServer(self.workdir, first_reply)
            link = ServerLink(
                address=self.server.address,
                authkey_hex=self.server.authkey.hex(),
                output_dir=str(self.workdir),
                llm_state_dir=str(self._llm_state_dir()),
                endpoint_salt=ENDPOINT_SALT,
            )
            self.engine = EngineProcess(to_wire(job, link), self.workdir)
        except OSError as e:  # socket or process creation failed: go on without the LLM
            self.shut()
            return f"could not start the OpenEvolve process: {type(e).__name__}: {e}"
        return None

    def _llm_state_dir(self) -> Path:
        """The workers' shared marks, seeded with the endpoints refused in this process."""
        path = self.workdir / "llm-state"
        path.mkdir(exist_ok=True)
        for fingerprint, cause in refused_endpoints().items():
            (path / f"refused-{fingerprint}").write_text(f"{cause}; found earlier in this process")
        return path

    def take(self, timeout_s: float) -> list[Answer]:
        return self.server.take(timeout_s, limit=64) if self.server is not None else []

    def events(self) -> list[dict[str, object]]:
        """Events received since the last call (also those kept when the engine was shut)."""
        events, self._last_events = self._last_events, []
        return events + (self.server.drain_events() if self.server is not None else [])

    def ended_without_word(self) -> str | None:
        """Why the engine ended, if it is no longer running (its last events are read first)."""
        if self.engine is None or self.engine.alive():
            return None
        time.sleep(0.2)  # the engine's last events may still be in flight
        return self.engine.exit_reason()

    def shut(self) -> None:
        """End the engine's process group, keep its last events, and close the server (which
        answers every waiting program with ``finished``).

        An LLM request reports itself just before it leaves. So the workers are told first that
        no request may leave (:data:`..engine.llm_channel.STOP_MARK`), a request already past that check
        gets :data:`REQUEST_LEAVES_S` to reach the endpoint, and the engine ends before the last
        events are read: each request the endpoint receives is counted, and no other."""
        if self.engine is not None:
            if self.engine.alive():
                (self.workdir / "llm-state").mkdir(exist_ok=True)
                (self.workdir / "llm-state" / STOP_MARK).touch()
                time.sleep(REQUEST_LEAVES_S)
            self.engine.stop()
            self.engine = None
        if self.server is not None:
            self.server.wait_for_senders(LAST_EVENTS_WAIT_S)
            self._last_events += self.server.drain_events()
            self.server.close()
            self.server = None

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


def _unavailable(job: EngineJob) -> str | None:
    """Why OpenEvolve cannot run for this job at all, or None."""
    if importlib.util.find_spec("openevolve") is None:
        return "openevolve is not installed (pip install 'openevolve>=0.4,<0.5')"
    if not job.llm.api_key and not job.llm.config_path:
        return "no API key: set OPENAI_API_KEY or HELION_OPENEVOLVE_API_KEY (any value for a local server)"
    endpoint = job.llm.endpoint()
    if endpoint is not None and (cause := refused_before(*endpoint)) is not None:
        return f"{cause}; found earlier in this process, so no request is sent"
    return None
