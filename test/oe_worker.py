"""Runs in a spawned process: unpickle an ObjectiveFactory and evaluate one program file."""

from __future__ import annotations

import pickle


def evaluate(payload: bytes, program_path: str, autotuner_path: list[str]) -> dict[str, object]:
    import helion.autotuner

    for entry in reversed(autotuner_path):
        if entry not in helion.autotuner.__path__:
            helion.autotuner.__path__.insert(0, entry)
    objective = pickle.loads(payload)()
    result = objective(program_path)
    return {
        "type": type(result).__name__,
        "metrics": dict(result.metrics),
        "artifacts": dict(result.artifacts),
    }
