"""Starts and stops the OpenEvolve process (:mod:`.engine.main`) from the user's process.

The engine runs as ``python -c BOOTSTRAP`` in its own session (process group) with a narrow
environment: no API keys or other secrets, which reach it through its standard input instead.
Its output goes to a log file in the run's private temporary folder. :meth:`EngineProcess.stop`
ends the whole group (the engine and OpenEvolve's workers) within a few seconds, and the engine
ends its group by itself if the user's process dies (its standard input closes).
"""

from __future__ import annotations

from collections.abc import Mapping
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import IO
from typing import Any

from .. import engine as engine_package
from ..engine.main import BOOTSTRAP
from ..engine.main import PACKAGE

#: Environment variables the engine may inherit; everything else (keys, tokens) stays behind.
_ENV_ALLOWLIST = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    "PYTHONPATH", "VIRTUAL_ENV", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip


def engine_import_path(workdir: Path) -> Path:
    """A folder in which :data:`.engine.main.PACKAGE` is the engine subpackage: a link to it, or a
    copy where links cannot be made. On the engine's ``PYTHONPATH`` it lets the engine and
    OpenEvolve's spawned workers import that subpackage (and unpickle what it defines), and
    nothing else of this package, so nothing there can import helion or torch."""
    path = workdir / "lib"
    path.mkdir(exist_ok=True)
    package = Path(engine_package.__file__).resolve().parent
    try:
        (path / PACKAGE).symlink_to(package, target_is_directory=True)
    except OSError:
        shutil.copytree(package, path / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    return path


def engine_environment(tmpdir: Path, import_path: Path) -> dict[str, str]:
    """The engine's environment: the allowed variables, no GPU, ``import_path`` first on its
    ``PYTHONPATH`` and ``tmpdir`` as its TMPDIR.

    OpenEvolve writes each program it evaluates to a temporary file, which stays behind when
    the engine is killed mid-evaluation; in the run's private folder it goes with the folder.
    """
    env = {k: v for k, v in os.environ.items() if k in _ENV_ALLOWLIST}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(import_path), env.get("PYTHONPATH")]))
    env["TMPDIR"] = str(tmpdir)
    env["PYTHONUNBUFFERED"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # belt and braces: nothing there may touch the GPU
    return env


class EngineProcess:
    """Handle on a running engine: liveness, exit reason, log tail, stop."""

    def __init__(self, job: Mapping[str, Any], workdir: Path) -> None:
        """Start the engine and send it ``job`` (:func:`.engine.job.to_wire`) as one JSON line."""
        self.log_path = workdir / "engine.log"
        self._log: IO[bytes] = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop)
        tmpdir = workdir / "tmp"
        tmpdir.mkdir(exist_ok=True)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=engine_environment(tmpdir, engine_import_path(workdir)),
                cwd=workdir,
                start_new_session=True,
            )
        except BaseException:
            self._log.close()
            raise
        try:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps(job).encode() + b"\n")
            self._proc.stdin.flush()
        except BaseException:  # e.g. the engine died at once (broken pipe): end and reap it
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def exit_reason(self) -> str:
        code = self._proc.poll()
        tail = self.log_tail(1)
        how = f"exit code {code}" if code is None or code >= 0 else f"signal {signal.Signals(-code).name}"
        return f"the OpenEvolve process ended ({how})" + (f": {tail}" if tail else "")

    def log_tail(self, lines: int) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:])[-500:]
        return ""

    def stop(self, grace_s: float = 2.0) -> None:
        """End the engine's whole process group (SIGTERM, then SIGKILL after ``grace_s``); reap it.

        The wait ends when no member of the group still runs. That is not the moment the engine
        can be reaped: a killed process's main thread reads as a zombie in /proc while its other
        threads still exit, and ``waitpid`` cannot reap it until they have. So the engine is
        waited for, and if it is still not reapable after half a second (a thread in
        uninterruptible I/O), a daemon thread reaps it when it is: it never stays a zombie of
        the user's process.
        """
        with contextlib.suppress(OSError):
            if self._proc.stdin is not None:
                self._proc.stdin.close()
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, sig)
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and _group_alive(self._proc.pid):
                self._proc.poll()
                time.sleep(0.05)
            if not _group_alive(self._proc.pid):
                break
        try:
            self._proc.wait(timeout=0.5)
        except subprocess.TimeoutExpired:
            threading.Thread(target=self._proc.wait, name="openevolve-engine-reaper", daemon=True).start()
        self._log.close()


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies waiting to be reaped do not)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _group_has_running_member(pgid)


def _group_has_running_member(pgid: int) -> bool:
    """Scan /proc for a member of ``pgid`` that is not a zombie; True where /proc is missing.

    The engine's workers, killed with it, are re-parented to PID 1 and stay zombies until it
    reaps them, which in some containers takes a second or more: they hold nothing but their
    process-table entry, so waiting for them would only delay the user's run.
    """
    try:
        entries = [e.name for e in os.scandir("/proc") if e.name.isdigit()]
    except OSError:
        return True
    for pid in entries:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(")") + 2 :].split()  # state, ppid, pgrp, ...
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False
