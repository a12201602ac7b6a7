"""The user's side of the socket between the two processes: answers in, replies and events out.

The user's process runs an :class:`EvaluationServer` (a ``multiprocessing.connection``
listener on a private Unix socket with a random auth key). OpenEvolve's workers reach it through
the objective of :mod:`.engine.objective`, which parses each evolved program and sends its
candidate dicts; each arrives here as an :class:`Answer`, waits in a queue for the search loop,
and is answered with a :class:`.engine.feedback.Reply`. Messages are plain data (dicts of
strings, numbers and lists). The first program, OpenEvolve's evaluation of the seed program, is
answered at once with the ``first_reply`` the server was given, so OpenEvolve's first LLM
requests leave while the search measures the seed configs. Event connections
(``{"kind": "events"}``: the engine's and each worker's :mod:`.engine.llm_channel`) stream
events, stamped with the time they arrived (:meth:`EvaluationServer.drain_events`). Nothing of
Helion or torch is imported here.
"""

from __future__ import annotations

import contextlib
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection
from multiprocessing.connection import Listener
import os
from pathlib import Path
import queue
import secrets
import shutil
import socket
import tempfile
import threading
import time

from ..engine.feedback import Reply
from ..engine.objective import ObjectiveFactory

#: Linux limits a Unix socket path to 107 bytes.
_MAX_SOCKET_PATH = 100


class Answer:
    """One LLM answer: the candidates of one evolved program (OpenEvolve's unit; the program is
    the text the LLM wrote, the answer what it proposes), waiting in the user's process for its
    candidates to be measured and the reply to go back."""

    def __init__(self, message: dict[str, object]) -> None:
        self.candidates: list[dict[str, object]] = list(message.get("candidates") or [])  # type: ignore[arg-type]
        self.rejected: list[tuple[int, str]] = [
            (int(i), str(r))
            for i, r in message.get("rejected") or []  # type: ignore[union-attr]
        ]
        self.program_error: str | None = message.get("program_error")  # type: ignore[assignment]
        self.received_at = time.perf_counter()
        self._reply: Reply | None = None
        self._done = threading.Event()

    def reply(self, reply: Reply) -> None:
        if not self._done.is_set():
            self._reply = reply
            self._done.set()

    def wait(self, stop: threading.Event) -> Reply:
        while not self._done.wait(0.2):
            if stop.is_set():
                return Reply(outcomes=[], finished=True)
        assert self._reply is not None
        return self._reply


class EvaluationServer:
    """Listener in the user's process; hands proposals to the search loop and replies."""

    def __init__(self, directory: str | os.PathLike[str], first_reply: Reply | None = None) -> None:
        self._first_reply = first_reply
        self._first_lock = threading.Lock()
        self.authkey = secrets.token_bytes(32)
        self._own_dir: str | None = None
        self.address = str(Path(directory) / "evaluate.sock")
        if len(os.fsencode(self.address)) > _MAX_SOCKET_PATH:  # a long TMPDIR: use a short folder
            self._own_dir = tempfile.mkdtemp(prefix="heo-", dir="/tmp")
            self.address = os.path.join(self._own_dir, "evaluate.sock")
        self._listener = Listener(self.address, family="AF_UNIX", authkey=self.authkey)
        self._proposals: queue.Queue[Answer] = queue.Queue()
        self._events: queue.Queue[dict[str, object]] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._senders: list[threading.Thread] = []  # the threads reading event connections
        self._accept_thread = threading.Thread(target=self._accept_loop, name="openevolve-eval-accept", daemon=True)
        self._accept_thread.start()

    def factory(self, timeout_s: float) -> ObjectiveFactory:
        return ObjectiveFactory(self.address, self.authkey.hex(), timeout_s)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()
            except (OSError, EOFError, AuthenticationError):
                # OSError: the listener was closed (shutdown). EOFError/AuthenticationError: a
                # peer without the key, or one that hung up mid-handshake, is skipped.
                if self._stop.is_set():
                    return
                continue
            thread = threading.Thread(
                target=self._handle_connection, args=(conn,), name="openevolve-eval-conn", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _handle_connection(self, conn: Connection) -> None:
        with contextlib.closing(conn):
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if not isinstance(message, dict):
                return
            if message.get("kind") == "events":
                self._senders.append(threading.current_thread())
                self._pump_events(conn)
            elif message.get("kind") == "evaluate":
                reply = self._take_first_reply()
                if reply is None:
                    proposal = Answer(message)
                    self._proposals.put(proposal)
                    reply = proposal.wait(self._stop)
                with contextlib.suppress(OSError, EOFError):
                    conn.send(reply.to_wire())

    def _take_first_reply(self) -> Reply | None:
        with self._first_lock:
            reply, self._first_reply = self._first_reply, None
            return reply

    def _pump_events(self, conn: Connection) -> None:
        while not self._stop.is_set():
            try:
                if not conn.poll(0.2):
                    continue
                event = conn.recv()
            except (EOFError, OSError):  # the sender ended
                return
            if isinstance(event, dict):
                self._events.put({**event, "received_at": time.perf_counter()})

    def take(self, timeout_s: float, limit: int) -> list[Answer]:
        """Proposals that arrived, waiting up to ``timeout_s`` for the first one."""
        out: list[Answer] = []
        try:
            out.append(self._proposals.get(timeout=timeout_s) if timeout_s > 0 else self._proposals.get_nowait())
        except queue.Empty:
            return out
        while len(out) < limit:
            try:
                out.append(self._proposals.get_nowait())
            except queue.Empty:
                break
        return out

    def wait_for_senders(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` until every event connection has ended (its sender gone):
        the events they had sent are then all received."""
        deadline = time.monotonic() + timeout_s
        for thread in list(self._senders):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def drain_events(self) -> list[dict[str, object]]:
        events: list[dict[str, object]] = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def close(self) -> None:
        """Stop accepting, answer every waiting objective with ``finished``, remove the socket."""
        if self._stop.is_set():
            return
        self._stop.set()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            # Wake a blocked accept() so its thread sees the stop flag. A plain connect never
            # waits for the handshake (the accept thread may already have exited).
            wake.settimeout(1.0)
            wake.connect(self.address)
        with contextlib.suppress(OSError):
            self._listener.close()
        while True:
            try:
                self._proposals.get_nowait().reply(Reply(outcomes=[], finished=True))
            except queue.Empty:
                break
        self._accept_thread.join(timeout=2)
        for thread in self._threads:
            thread.join(timeout=1)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.address)
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
