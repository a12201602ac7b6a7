"""The objective OpenEvolve's workers call: the client side of the evaluation server's socket.

OpenEvolve loads the evaluator file the engine writes (:mod:`.main`) in each worker; it builds
its ``evaluate`` with an :class:`ObjectiveFactory`, a picklable object that holds only the
socket address, the key and a timeout. Each call parses the evolved program as data
(:func:`.program.parse_program`, never executed), sends the candidate dicts to the user's
process (its ``EvaluationServer``), waits for a :class:`.feedback.Reply` and scores it
(:func:`.feedback.score_outcomes`). Messages are plain data (dicts of strings, numbers and
lists). Nothing of Helion or torch is imported here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client
from pathlib import Path

from .feedback import Reply
from .feedback import score_outcomes
from .program import ProgramError
from .program import parse_program


@dataclass(frozen=True)
class ObjectiveFactory:
    """Picklable recipe for the objective OpenEvolve calls: address, key and timeout only."""

    address: str
    authkey_hex: str
    timeout_s: float
    max_candidates: int = 64

    def __call__(self) -> Objective:
        return Objective(self)


class Objective:
    """``evaluate(program_path)`` for OpenEvolve: parse, ask the user's process, score."""

    def __init__(self, factory: ObjectiveFactory) -> None:
        self.factory = factory

    def __call__(self, program_path: str) -> object:
        message = self._message(Path(program_path).read_bytes())
        try:
            reply = self._ask(message)
        except (OSError, EOFError, TimeoutError, AuthenticationError) as e:
            reply = Reply(outcomes=[], finished=True)
            message["program_error"] = f"the search did not answer ({type(e).__name__})"
        metrics, artifacts = score_outcomes(message, reply)
        from openevolve.evaluation_result import EvaluationResult

        return EvaluationResult(metrics=metrics, artifacts=artifacts)

    def _message(self, text: bytes) -> dict[str, object]:
        try:
            parsed = parse_program(text, max_candidates=self.factory.max_candidates)
        except ProgramError as e:
            return {"kind": "evaluate", "candidates": [], "rejected": [], "program_error": str(e)}
        return {
            "kind": "evaluate",
            "candidates": parsed.candidates,
            "rejected": [list(r) for r in parsed.rejected],
            "program_error": None,
        }

    def _ask(self, message: dict[str, object]) -> Reply:
        conn = Client(self.factory.address, family="AF_UNIX", authkey=bytes.fromhex(self.factory.authkey_hex))
        with contextlib.closing(conn):
            conn.send(message)
            if not conn.poll(self.factory.timeout_s):
                raise TimeoutError("no reply from the search")
            return Reply.from_wire(conn.recv())
