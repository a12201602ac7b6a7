"""The process boundary: the picklable objective, the evaluation server, the engine process."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
import pickle
import tempfile
import threading
import time
from typing import TYPE_CHECKING

from oe_util import FAST
from oe_util import bind_matmul
from oe_util import evaluations
from oe_util import fast_pallas  # noqa: F401 (fixture)
from oe_util import read_record
import oe_worker
import psutil
import pytest

import helion.autotuner
from helion.autotuner.openevolve.engine import feedback
from helion.autotuner.openevolve.engine.main import PACKAGE as ALIAS
from helion.autotuner.openevolve.engine.program import render_program
from helion.autotuner.openevolve.loop import launcher
from helion.autotuner.openevolve.loop import server as protocol
from helion.autotuner.openevolve_tuner import OpenEvolveSearch

if TYPE_CHECKING:
    from standin_llm import StandinLLM


@pytest.fixture(scope="module", autouse=True)
def resource_tracker() -> None:
    """multiprocessing's resource tracker lives as long as this process: start it up front."""
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()


CANDIDATES: list[dict[str, object]] = [{"num_warps": 4}, {"num_warps": 8}, {"num_warps": 16}]


def _program(tmp_path: Path, extra: str = "") -> Path:
    text = render_program("test", CANDIDATES)
    if extra:
        text = text.replace("CANDIDATES = [", f"CANDIDATES = [{extra}, ", 1)
    path = tmp_path / "program.py"
    path.write_text(text)
    return path


def _answer(server: protocol.EvaluationServer, seen: list[protocol.Answer], stop: threading.Event) -> None:
    while not stop.is_set():
        for proposal in server.take(0.2, limit=8):
            seen.append(proposal)
            outcomes = [
                feedback.Outcome(0, "ok", "", proposal.candidates[0], cost=1.2, score=2.5),
                feedback.Outcome(1, "ok", "", proposal.candidates[1], cost=2.0, score=1.5),
                feedback.Outcome(2, "failed", "error: failed to compile or run", proposal.candidates[2]),
            ]
            # the search's best so far (9.9) is another program's: it is not this program's score
            proposal.reply(feedback.Reply(outcomes=outcomes, best_config={"num_warps": 2}, best_score=9.9))


def _our_processes(tmp_root: Path) -> list[psutil.Process]:
    """OpenEvolve processes of this test: the engine and its workers (orphaned ones included)
    whose TMPDIR lies under ``tmp_root``, so other test runs on the machine do not count."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or [])
        try:
            ours = ALIAS in cmdline or "spawn_main" in cmdline
            if ours and p.environ().get("TMPDIR", "").startswith(str(tmp_root)):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def test_factory_pickles_and_objective_works_in_spawned_process(tmp_path: Path) -> None:
    server = protocol.EvaluationServer(tmp_path)
    stop = threading.Event()
    seen: list[protocol.Answer] = []
    answer = threading.Thread(target=_answer, args=(server, seen, stop), daemon=True)
    answer.start()
    try:
        factory = server.factory(timeout_s=60)
        payload = pickle.dumps(factory)
        assert b"torch" not in payload
        loaded = pickle.loads(payload)
        assert loaded == factory
        program = _program(tmp_path, extra="__import__('os').getcwd()")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(1) as pool:
            result = pool.apply(oe_worker.evaluate, (payload, str(program), list(helion.autotuner.__path__)))
            pool.close()
            pool.join()
    finally:
        stop.set()
        answer.join(timeout=5)
        server.close()
    assert result["type"] == "EvaluationResult"
    metrics = result["metrics"]
    assert metrics["combined_score"] == 2.5  # the best of this program's measured candidates
    assert metrics["measured"] == 2.0  # two ok, one failed, one rejected
    assert metrics["valid_fraction"] == pytest.approx(3 / 4)
    feedback = result["artifacts"]["feedback"]
    assert "candidate #0: rejected" in feedback
    assert "2.500x" in feedback
    assert "failed to compile" in feedback
    assert "BEST_CONFIG_JSON" in feedback
    assert len(seen) == 1
    assert seen[0].candidates == CANDIDATES
    assert len(seen[0].rejected) == 1
    assert seen[0].program_error is None
    assert not Path(server.address).exists()


def test_objective_without_server_answers_finished(tmp_path: Path) -> None:
    server = protocol.EvaluationServer(tmp_path)
    factory = server.factory(timeout_s=5)
    server.close()
    result = factory()(str(_program(tmp_path)))
    assert result.metrics["combined_score"] == 0.0
    assert "did not answer" in result.artifacts["feedback"]


def test_objective_times_out(tmp_path: Path) -> None:
    server = protocol.EvaluationServer(tmp_path)
    try:
        factory = server.factory(timeout_s=0.5)
        t0 = time.monotonic()
        result = factory()(str(_program(tmp_path)))
        assert time.monotonic() - t0 < 10
        assert result.metrics["combined_score"] == 0.0
        assert "TimeoutError" in result.artifacts["feedback"]
    finally:
        server.close()


def test_bad_program_reaches_server_as_program_error(tmp_path: Path) -> None:
    server = protocol.EvaluationServer(tmp_path)
    stop = threading.Event()
    got: list[protocol.Answer] = []

    def answer() -> None:
        for p in server.take(10, limit=1):
            got.append(p)
            p.reply(feedback.Reply(outcomes=[]))

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        path = tmp_path / "bad.py"
        path.write_bytes(b"\xff\xfe not utf-8")
        result = server.factory(timeout_s=10)()(str(path))
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()
    assert got and got[0].program_error and "UTF-8" in got[0].program_error
    assert result.metrics["combined_score"] == 0.0
    assert "rejected" in result.artifacts["feedback"]


@pytest.mark.usefixtures("fast_pallas")
def test_engine_process_is_light_and_cleaned_up(
    tmp_path: Path, standin: StandinLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "must-not-leak-into-the-engine-env")
    user_tmp = tmp_path / "user-tmp"
    user_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(user_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(user_tmp))
    assert not _our_processes(user_tmp)
    record = tmp_path / "record.jsonl"
    bound, args = bind_matmul()
    search = OpenEvolveSearch(
        bound, args, **{**FAST, "max_evaluations": 6}, api_base=standin.url, api_key="test-key", record_path=str(record)
    )
    seen: list[tuple[int, dict[str, str]]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set() and not seen:
            for p in _our_processes(user_tmp):
                try:
                    seen.append((p.pid, p.environ()))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        search.autotune()
    finally:
        stop.set()
        watcher.join(timeout=5)
    lines = read_record(record)
    started = [line for line in lines if line["kind"] == "engine_started"]
    assert len(started) == 1
    assert started[0]["torch_imported"] is False
    assert evaluations(lines, source="default", status="ok")
    # The engine ran as its own process, without the user's API key in its environment.
    assert seen, "the engine process was never seen"
    pid, environ = seen[0]
    assert "OPENAI_API_KEY" not in environ
    assert environ.get("CUDA_VISIBLE_DEVICES") == ""
    # OpenEvolve's temporary program files go to the run's private folder, not the user's.
    assert Path(environ["TMPDIR"]).parent.parent == user_tmp
    # Nothing of ours is left once autotune() returns: the engine is reaped, not left a zombie,
    # and neither the run's folder nor a program file OpenEvolve was evaluating stays behind.
    assert not psutil.pid_exists(pid)
    assert not [p.name for p in user_tmp.iterdir() if p.name.startswith(("helion-openevolve-", "tmp"))]
    assert not _our_processes(user_tmp)


def test_engine_stop_reaps_the_engine_when_its_group_looks_ended_early(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A killed engine's /proc entry reads as a zombie while its other threads still exit, and
    it cannot be reaped yet; stop() must wait for it, not poll once and leave a zombie behind."""
    monkeypatch.setattr(launcher, "_group_alive", lambda pgid: False)
    engine = launcher.EngineProcess({}, tmp_path)  # an empty job: the engine would fail at once
    pid = engine.pid
    engine.stop()
    assert pid not in [child.pid for child in psutil.Process().children()]


def test_engine_that_cannot_be_given_its_job_is_stopped(tmp_path: Path) -> None:
    before = {child.pid for child in psutil.Process().children()}
    with pytest.raises(TypeError):
        launcher.EngineProcess({"unserialisable": object()}, tmp_path)
    assert {child.pid for child in psutil.Process().children()} == before
