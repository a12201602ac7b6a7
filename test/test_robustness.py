"""Robustness of real Pallas-on-CPU tuning runs against a misbehaving LLM, engine or user.

Bad LLM output (invalid configs, prose, nothing, megabytes, code), transport faults (429,
dropped connections, hangs), the OpenEvolve process being killed, Ctrl-C in the user's
process, and API keys leaking into the engine's environment, argv or any file the run leaves.
Every run must end with a config it measured.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from oe_util import COMPILES
from oe_util import FAST
from oe_util import TEST_DIR
from oe_util import bind_matmul
from oe_util import evaluations
from oe_util import fast_pallas  # noqa: F401 (fixture)
from oe_util import llm_measured_compiles
from oe_util import measured_ok_configs
from oe_util import read_record
import psutil
import pytest
from standin_llm import StandinLLM

import helion
from helion.autotuner.openevolve_tuner import OpenEvolveSearch

pytestmark = pytest.mark.usefixtures("fast_pallas")

ALIAS = "_helion_openevolve"  # in the engine's command line (its bootstrap loads this alias)
PWNED = Path("/tmp/pwned_standin")
SECRET = "sk-test-SECRET123"


# -- helpers ---------------------------------------------------------------------------------


def _search(record: Path, **kw: object) -> tuple[OpenEvolveSearch, helion.Config, list[dict[str, object]], float]:
    bound, args = bind_matmul()
    search = OpenEvolveSearch(bound, args, record_path=str(record), **{**FAST, **kw})
    t0 = time.monotonic()
    config = search.autotune()
    return search, config, read_record(record), time.monotonic() - t0


def _check_measured(search: OpenEvolveSearch, config: helion.Config, lines: list[dict[str, object]]) -> None:
    assert isinstance(config, helion.Config)
    assert dict(config.config) in measured_ok_configs(lines)
    assert search.summary["best_config"] == dict(config.config)
    summaries = [line for line in lines if line["kind"] == "summary"]
    assert len(summaries) == 1, lines
    assert summaries[0]["mode"] == search.summary["mode"]


def _check_default_kept(search: OpenEvolveSearch, lines: list[dict[str, object]]) -> None:
    default = evaluations(lines, source="default")
    assert len(default) == 1, lines
    assert default[0]["status"] == "ok"
    assert search.summary["default_cost"] == default[0]["cost"]
    assert search.summary["by_source"]["default"] == 1  # type: ignore[index]


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return ""


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _where(pid: int) -> str:
    """What process ``pid`` and its descendants are doing (state, what the kernel waits on, each
    thread's state), for a test that waited in vain."""
    lines = []
    for p in [psutil.Process(pid), *_descendants(pid)]:
        try:
            wchan = Path(f"/proc/{p.pid}/wchan").read_text()
            task = Path(f"/proc/{p.pid}/task")
            states = {t.id: (task / f"{t.id}/stat").read_text().split(")")[-1].split()[0] for t in p.threads()}
            lines.append(f"{p.pid} {p.status()} wchan={wchan} threads={''.join(states.values())} {_cmdline(p)[:150]}")
            # which threads work (an XLA compile, a Helion helper...) while the main one waits
            running = [(task / f"{tid}/comm").read_text().strip() for tid, st in states.items() if st in "RD"]
            if running:
                lines.append(f"  running or in I/O: {', '.join(running)}")
        except (psutil.Error, OSError) as e:
            lines.append(f"{p.pid}: {type(e).__name__}")
    return "\n".join(lines)


def _engines(pid: int) -> list[psutil.Process]:
    """The OpenEvolve engine processes started (directly or not) by process ``pid``."""
    return [p for p in _descendants(pid) if ALIAS in _cmdline(p)]


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


_SCRIPT = textwrap.dedent(
    """
    import faulthandler, json, signal, sys
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # a test that waits in vain asks where it is
    # Python's Ctrl-C handler, as in a terminal: a test run started in the background (a
    # non-interactive shell's `cmd &`) ignores SIGINT, and a process inherits that
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import torch, helion
    import kernels
    from helion.autotuner.openevolve_tuner import OpenEvolveSearch
    x, y = torch.randn(128, 128), torch.randn(128, 128)
    bound = helion.kernel(kernels.matmul.fn).bind((x, y))
    s = OpenEvolveSearch(bound, (x, y), **json.loads(sys.argv[1]))
    config = s.autotune()
    print("RESULT " + json.dumps({"summary": s.summary, "config": dict(config.config)}, default=str), flush=True)
    """
)


class _Script:
    """A tuning run in a fresh process (own session), output captured to files."""

    def __init__(self, tmp_path: Path, settings: dict[str, object], env: dict[str, str] | None = None) -> None:
        self.record = tmp_path / "record.jsonl"
        self.stdout_path = tmp_path / "stdout.txt"
        self.stderr_path = tmp_path / "stderr.txt"
        kw = {**settings, "record_path": str(self.record)}
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _SCRIPT, json.dumps(kw)],
                env={**os.environ, **(env or {})},
                cwd=str(TEST_DIR),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_engine(self, timeout: float = 120) -> list[psutil.Process]:
        """Wait until the record shows ``engine_started``; the engine processes then."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the run ended early:\n{self.stderr[-4000:]}"
            if any(line["kind"] == "engine_started" for line in read_record(self.record)):
                engines = _engines(self.proc.pid)
                if engines:
                    return engines
            time.sleep(0.1)
        raise AssertionError(f"no engine_started within {timeout}s:\n{self.stderr[-4000:]}")

    def result(self, timeout: float = 180) -> dict[str, object]:
        rc = self.proc.wait(timeout=timeout)
        assert rc == 0, self.stderr[-4000:]
        line = next((x for x in self.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line is not None, self.stdout[-2000:] + self.stderr[-4000:]
        return json.loads(line[len("RESULT ") :])

    def kill(self) -> None:
        if self.proc.poll() is None:
            for p in _descendants(self.proc.pid):
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    continue
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def short_tmpdir() -> object:
    """A private TMPDIR for a run in a subprocess, with a short path.

    The run's Unix socket lives in ``$TMPDIR/helion-openevolve-*/``; a long TMPDIR (such as a
    pytest ``tmp_path``) exceeds the 107-byte AF_UNIX path limit.
    """
    path = Path(tempfile.mkdtemp(prefix="oe-rb-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- 1. bad LLM output -----------------------------------------------------------------------

_BAD_OUTPUT = {
    **FAST,
    "max_evaluations": 5,
    "max_seconds": 40,
    "max_llm_calls": 4,
    "llm_timeout_s": 5,
    "llm_retries": 0,
    "refinement": False,
}


@pytest.mark.parametrize("mode", ["invalid", "garbage", "empty", "huge", "code"])
def test_bad_llm_output(mode: str, tmp_path: Path) -> None:
    PWNED.unlink(missing_ok=True)
    record = tmp_path / "record.jsonl"
    with StandinLLM(mode=mode, latency_s=0.05, seed=1).start() as llm:
        search, config, lines, wall = _search(record, api_base=llm.url, api_key="test-key", **_BAD_OUTPUT)
        requests = llm.requests
    _check_measured(search, config, lines)
    _check_default_kept(search, lines)
    assert requests >= 1, "the LLM proposals were never requested"
    assert wall < _BAD_OUTPUT["max_seconds"] + 60  # type: ignore[operator]
    assert search.summary["evaluations"] <= _BAD_OUTPUT["max_evaluations"]  # type: ignore[operator]
    # Bad text is not a transport failure.
    assert search.summary["llm_errors"] == 0, lines
    if search.fallback_reason:
        assert "LLM failed" not in search.fallback_reason
    if mode in ("invalid", "garbage", "empty"):
        assert not evaluations(lines, source="llm", status="ok"), lines
    if mode in ("invalid", "garbage", "code"):
        invalid = evaluations(lines, source="llm", status="invalid")
        assert invalid, [(line["kind"], line.get("source"), line.get("status")) for line in lines]
        assert all(isinstance(line["reason"], str) and line["reason"].strip() for line in invalid), invalid
        assert search.summary["invalid"] >= len(invalid)  # type: ignore[operator]
    if mode == "code":
        assert not PWNED.exists(), "the LLM's code was executed"


# -- 2. transport faults ---------------------------------------------------------------------

#: Small budgets, refinement off: the search measures the default and one random config, then
#: waits for the LLM, so how a fault ends the LLM's part decides how the search ends.
_FAULT = {"max_evaluations": 6, "max_seconds": 40, "llm_retries": 0, "parallel_llm_calls": 2, "seed": 1}


def _lines_of(lines: list[dict[str, object]], kind: str) -> list[dict[str, object]]:
    return [line for line in lines if line["kind"] == kind]


def _check_fell_back(search: OpenEvolveSearch, lines: list[dict[str, object]]) -> dict[str, object]:
    """README: "goes on without the LLM": one ``fallback`` line after the default was measured."""
    assert search.summary["mode"] == "fallback", search.summary
    fallbacks = _lines_of(lines, "fallback")
    assert [f["reason"] for f in fallbacks] == [search.fallback_reason] == [search.summary["fallback_reason"]]
    assert lines.index(fallbacks[0]) > lines.index(evaluations(lines, source="default")[0])
    reason = str(fallbacks[0]["reason"])
    assert "requests in a row" in reason or "the LLM never answered" in reason, reason
    return fallbacks[0]


def _check_not_fallen_back(search: OpenEvolveSearch, lines: list[dict[str, object]]) -> None:
    assert search.fallback_reason is None, search.fallback_reason
    assert search.summary["fallback_reason"] is None
    assert not _lines_of(lines, "fallback")


@pytest.mark.parametrize("mode", ["drop", "hang"])
def test_transport_failure_falls_back(mode: str, tmp_path: Path) -> None:
    """A dropped connection and a request with no answer within ``llm_timeout_s`` are failed
    requests: ``max_llm_failures`` (2) of them in a row end the LLM's part of the search."""
    timeout_s = 2
    with StandinLLM(mode=mode, latency_s=0.05, seed=1).start() as llm:
        search, config, lines, wall = _search(
            tmp_path / "record.jsonl", api_base=llm.url, api_key="test-key", llm_timeout_s=timeout_s, **_FAULT
        )
        requests = llm.requests
    _check_measured(search, config, lines)
    _check_default_kept(search, lines)
    fallback = _check_fell_back(search, lines)
    assert fallback["llm_answers_used"] == 0 == search.summary["llm_answers_used"]
    # the endpoint received every request the record counts, and each that came back failed
    assert requests == search.summary["llm_calls"] >= 1
    errors = _lines_of(lines, "llm_error")
    assert len(errors) == search.summary["llm_errors"] >= 1, errors
    assert len(errors) <= requests
    if mode == "drop":
        assert all(e["error_class"] == "APIConnectionError" and not e["timeout"] for e in errors), errors
    else:
        assert all(e["timeout"] and f"no answer within {timeout_s}" in str(e["message"]) for e in errors), errors
    assert not _lines_of(lines, "llm_rate_limited")
    assert not evaluations(lines, source="llm")
    # after the fallback the search went on without the LLM and spent its evaluation budget
    assert _lines_of(lines, "stop")[0]["reason"] == "the evaluation budget is spent"
    assert search.summary["evaluations"] == _FAULT["max_evaluations"]
    assert wall < 60, wall


def _kept_llm_run(
    tmp_path: Path, mode: str, **settings: object
) -> tuple[OpenEvolveSearch, list[dict[str, object]], float, int]:
    """A search against the stand-in in ``mode`` that must keep its LLM: the search, its record
    lines, its wall and the requests the stand-in received, after the checks every such run
    shares (the pick was measured, the default kept, no fallback). Its answers begin with
    ``COMPILES`` where ``mode`` answers in ``knowing``."""
    with StandinLLM(mode=mode, latency_s=0.05, seed=1, known_configs=[COMPILES]).start() as llm:
        search, config, lines, wall = _search(
            tmp_path / "record.jsonl", api_base=llm.url, api_key="test-key", **settings
        )
        requests = llm.requests
    _check_measured(search, config, lines)
    _check_default_kept(search, lines)
    _check_not_fallen_back(search, lines)
    return search, lines, wall, requests


def test_rate_limited_endpoint_is_waited_for_until_max_seconds(tmp_path: Path) -> None:
    """Every request answered 429: a rate limit is not a failure while a request waits within
    ``llm_timeout_s``, so the search never goes on without the LLM; with refinement off it waits
    for the LLM and its own ``max_seconds`` ends it."""
    max_seconds = 12
    search, lines, wall, requests = _kept_llm_run(
        tmp_path, "error429", **{**_FAULT, "max_seconds": max_seconds, "llm_timeout_s": 60}
    )
    assert search.summary["mode"] == "no_llm_answer"
    # the endpoint got the requests and answered them 429 (Retry-After: 1), each sent again
    limited = _lines_of(lines, "llm_rate_limited")
    assert requests == search.summary["llm_calls"] >= 2
    assert 1 <= len(limited) <= requests
    assert all(x["status"] == 429 and x["retry_after_s"] == 1.0 for x in limited), limited
    assert not _lines_of(lines, "llm_error") and search.summary["llm_errors"] == 0
    # max_seconds ended a real search, on time
    stops = _lines_of(lines, "stop")
    assert len(stops) == 1 and "max_seconds" in str(stops[0]["reason"]), stops
    assert search.summary["evaluations"] < _FAULT["max_evaluations"]
    assert max_seconds <= wall < max_seconds + 20, wall


def test_endpoint_rate_limiting_every_other_request_keeps_the_llm(tmp_path: Path) -> None:
    """Every other request answered 429: each waits as ``Retry-After`` says and is answered on
    the next attempt; the search uses the answers and never goes on without the LLM."""
    search, lines, _, requests = _kept_llm_run(tmp_path, "error429_alternate:knowing", llm_timeout_s=10, **_FAULT)
    assert search.summary["mode"] == "openevolve"
    # two requests leave together, so the endpoint's second one was answered 429
    limited = _lines_of(lines, "llm_rate_limited")
    assert requests == search.summary["llm_calls"] >= 2
    assert 1 <= len(limited) <= requests // 2
    assert all(x["status"] == 429 and x["retry"] for x in limited), limited
    assert not _lines_of(lines, "llm_error") and search.summary["llm_errors"] == 0
    assert search.summary["llm_answers_used"] >= 1
    assert llm_measured_compiles(lines)


# -- 3. the engine killed mid-run ------------------------------------------------------------


def test_engine_killed(tmp_path: Path) -> None:
    with StandinLLM(mode="neighbors", latency_s=1.0, seed=1).start() as llm:
        run = _Script(
            tmp_path,
            {**FAST, "api_base": llm.url, "api_key": "test-key", "max_evaluations": 4, "max_seconds": 60},
        )
        try:
            engines = run.wait_for_engine()
            pid = engines[0].pid
            os.killpg(os.getpgid(pid), signal.SIGKILL)
            data = run.result()
        finally:
            run.kill()
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert summary["mode"] == "fallback", summary
    assert "the OpenEvolve process ended" in summary["fallback_reason"], summary["fallback_reason"]
    lines = read_record(run.record)
    assert data["config"] in measured_ok_configs(lines)
    assert summary["best_config"] == data["config"]
    fallbacks = [line for line in lines if line["kind"] == "fallback"]
    assert [f["reason"] for f in fallbacks] == [summary["fallback_reason"]]
    assert evaluations(lines, source="default", status="ok")
    assert not _alive(engines)


# -- 4. Ctrl-C -------------------------------------------------------------------------------


def test_ctrl_c(tmp_path: Path, short_tmpdir: Path) -> None:
    tmpdir = short_tmpdir
    with StandinLLM(mode="neighbors", latency_s=1.0, seed=1).start() as llm:
        run = _Script(
            tmp_path,
            {**FAST, "api_base": llm.url, "api_key": "test-key", "max_evaluations": 50, "max_seconds": 200},
            env={"TMPDIR": str(tmpdir)},
        )
        try:
            run.wait_for_engine()
            assert list(tmpdir.glob("helion-openevolve-*")), "the run's folder is not in its TMPDIR"
            time.sleep(1.0)  # let OpenEvolve start its workers
            children = _descendants(run.proc.pid)
            assert any(ALIAS in _cmdline(p) for p in children)
            t0 = time.monotonic()
            rc = None
            os.kill(run.proc.pid, signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                rc = run.proc.wait(timeout=15)
            if rc is None:
                state = _where(run.proc.pid)
                os.kill(run.proc.pid, signal.SIGUSR1)  # its threads' stacks, to stderr
                deadline = time.monotonic() + 10
                while "most recent call first" not in run.stderr and time.monotonic() < deadline:
                    time.sleep(0.2)
                err = run.stderr
                first = err.find("(most recent call first)")  # the stacks from their start
                cut = err.rfind("\n", 0, first) + 1 if first >= 0 else len(err)
                log, stacks = err[:cut][-4000:], err[cut:][:30000] or "(no stacks within 10 s of SIGUSR1)"
                pytest.fail(f"the run did not exit within 15 s of SIGINT:\n{state}\n{log}\n{stacks}")
            took = time.monotonic() - t0
        finally:
            run.kill()
    assert rc != 0, f"the run was not interrupted (rc 0, {took:.1f}s):\n{run.stdout[-2000:]}"
    assert "RESULT " not in run.stdout
    assert "KeyboardInterrupt" in run.stderr, run.stderr[-4000:]
    # Everything the run started is gone (the engine, its workers, Helion's helpers).
    deadline = time.monotonic() + 5
    while (left := _alive(children)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, [(p.pid, _cmdline(p)) for p in left]
    for p in psutil.process_iter():
        if ALIAS in _cmdline(p):
            try:
                env = p.environ()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            assert env.get("TMPDIR") != str(tmpdir), f"engine {p.pid} outlived Ctrl-C: {_cmdline(p)[:200]}"
    assert not list(tmpdir.glob("helion-openevolve-*"))


# -- 5. secrets ------------------------------------------------------------------------------


def _files_with(root: Path, needle: bytes) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if needle in data:
                hits.append(str(path.relative_to(root)))
    return hits


@pytest.mark.parametrize("variable", ["OPENAI_API_KEY", "HELION_OPENEVOLVE_API_KEY"])
def test_api_key_does_not_leak(
    variable: str, tmp_path: Path, short_tmpdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key from ``$OPENAI_API_KEY`` or from the ``api_key`` setting (its variable)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(variable, SECRET)
    out_dir = tmp_path / "oe-out"
    tmpdir = short_tmpdir
    checked: dict[int, str] = {}
    with StandinLLM(mode="neighbors", latency_s=0.3, seed=1).start() as llm:
        run = _Script(
            tmp_path,
            {**FAST, "api_base": llm.url, "max_seconds": 60, "output_dir": str(out_dir)},
            env={"TMPDIR": str(tmpdir)},
        )
        try:
            engine = run.wait_for_engine()[0]
            pgid = engine.pid
            # Control: the user's process does hold the key (so reading /proc works here).
            assert SECRET.encode() in Path(f"/proc/{run.proc.pid}/environ").read_bytes()
            # Sample the engine and every process of its group (OpenEvolve's workers) while it runs.
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline and run.proc.poll() is None:
                for p in _descendants(run.proc.pid):
                    try:
                        if os.getpgid(p.pid) != pgid:
                            continue
                        cmdline = "\0".join(p.cmdline())
                        environ = p.environ()
                        raw = Path(f"/proc/{p.pid}/environ").read_bytes()
                    except (psutil.NoSuchProcess, psutil.ZombieProcess, ProcessLookupError, FileNotFoundError):
                        continue
                    assert SECRET not in cmdline, f"API key in the argv of {p.pid}: {cmdline[:300]}"
                    assert SECRET.encode() not in raw, f"API key in /proc/{p.pid}/environ"
                    assert not [k for k, v in environ.items() if SECRET in v], f"API key in the env of {p.pid}"
                    checked[p.pid] = cmdline
                time.sleep(0.3)
            data = run.result()
            requests = llm.requests
        finally:
            run.kill()
    assert pgid in checked, checked
    assert any("spawn_main" in c for c in checked.values()), f"OpenEvolve's workers were not sampled: {checked}"
    assert requests > 0
    assert isinstance(data["summary"], dict)
    assert data["summary"]["llm_calls"] > 0, data["summary"]
    lines = read_record(run.record)
    assert data["config"] in measured_ok_configs(lines)
    # OpenEvolve's folder was kept and holds its files (logs, the evaluator with the socket key).
    kept = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.is_file())
    assert "evaluator.py" in kept and "engine.log" in kept, kept
    assert any(k.startswith("openevolve") for k in kept), kept
    assert SECRET not in run.stdout
    assert SECRET not in run.stderr
    assert SECRET not in run.record.read_text()
    # Every file of the run: the kept folder, the record, the cache, the temporary folder.
    assert _files_with(tmp_path, SECRET.encode()) == []
    assert _files_with(tmpdir, SECRET.encode()) == []
