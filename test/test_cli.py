"""The ``helion-openevolve`` command: ``report`` on a committed run record, ``history`` on a store
in a private Helion cache folder. Most tests call ``main`` in this process (what the console
script calls); one runs the installed console script as a user does."""

from __future__ import annotations

import builtins
import gzip
import importlib.util
import json
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

from helion.autotuner.openevolve import cli
from helion.autotuner.openevolve.adapters.history import HistoryEntry
from helion.autotuner.openevolve.adapters.history import HistoryStore

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "examples" / "results" / "records" / "h200_bias_grad_pair_knowing.record.jsonl.gz"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(argv) == 0
    return capsys.readouterr().out


def test_report_prints_what_the_search_did(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "report", str(RECORD), "--no-plot")
    assert "== h200_bias_grad_pair_knowing" in out
    assert "mode openevolve; stopped: refinement converged and the last 8 LLM answers brought nothing better" in out
    assert "168 configs measured (0 failed), 0 invalid: default 1, seed 1, llm 21, refine 145" in out
    assert "LLM: 9 calls, 0 failed, 9 answers used, 1 improved the best" in out
    assert "tokens: 18803 prompt, 4137 completion" in out
    assert "time: wall 97.4 s = measuring 80.9 s" in out and "Helion's final selection 16.2 s" in out
    # the LLM's configs by batch: the first brought the known config, from the default's 0.44 ms
    rows = out.split("by the batch that measured them")[1].splitlines()[2:5]
    assert [r.split()[:7] for r in rows] == [
        ["32.8", "7", "7", "0", "0", "0.0425", "0.4427"],
        ["62.4", "10", "10", "0", "0", "0.0407", "0.0401"],
        ["81.2", "4", "4", "0", "0", "0.0406", "0.0400"],
    ], out
    last = out.splitlines()[-1].split()
    assert last == [
        "h200_bias_grad_pair_knowing",
        "97.4",
        "168",
        "4.2",  # seconds timing configs again
        "-",  # re-timing rounds: this record is older than that field
        "0.00",  # the noise of one round, in percent (none measured then)
        "9",
        "18803",
        "4137",
        "2089",  # prompt tokens per call
        "0.0436",
        "10.208x",
        "openevolve",
    ]
    assert "picture" not in out
    # a newer record: 20 re-timing rounds, 2.2 s in all, a round's noise 0.54%
    newer = RECORD.parent / "h200_rounds_6x20ms_attention_knowing.record.jsonl.gz"
    assert run(capsys, "report", str(newer), "--no-plot").splitlines()[-1].split()[1:6] == [
        "39.3",
        "86",
        "2.2",
        "20",
        "0.54",
    ]


def test_report_draws_the_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, "report", str(RECORD), "--plot-dir", str(tmp_path / "pictures"))
    png = tmp_path / "pictures" / "h200_bias_grad_pair_knowing.png"
    assert f"picture: {png}" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_matplotlib_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name: str, *args: object, **kwargs: object) -> object:
        if name.partition(".")[0] == "matplotlib":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = run(capsys, "report", str(RECORD), "--plot-dir", str(tmp_path))
    assert "matplotlib is not installed (pip install 'helion-openevolve[plot]'): no picture" in out
    assert "tokens: 18803 prompt" in out and not list(tmp_path.iterdir())


def test_report_of_a_run_cut_short(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record = tmp_path / "cut.jsonl.gz"
    lines = [{"kind": "evaluation", "t": 1.0, "source": "default", "status": "ok", "cost": 2.0, "config": {"a": 1}}] * 2
    with gzip.open(record, "wt") as f:
        f.write("".join(json.dumps(line) + "\n" for line in lines) + '{"kind": "evalu')  # the last line cut off
    out = run(capsys, "report", str(record), "--no-plot")
    assert "== cut\nno summary line: the search did not finish (2 evaluations written)" in out
    assert out.splitlines()[-1].split()[0] == "cut" and out.splitlines()[-1].endswith("unfinished")


def test_report_of_a_missing_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path / "nothing.jsonl")]) == 1
    assert "no such record" in capsys.readouterr().err


def test_the_console_script_reports_a_record() -> None:
    script = shutil.which("helion-openevolve", path=str(Path(sys.executable).parent))
    if script is None:
        if importlib.util.find_spec("_helion_openevolve_hook") is None:
            pytest.skip("the source tree under test: `helion-openevolve` comes with `pip install .`")
        pytest.fail("the package is installed but its `helion-openevolve` command is not")
    proc = subprocess.run([script, "report", str(RECORD), "--no-plot"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tokens: 18803 prompt, 4137 completion" in proc.stdout


def keep(root: Path, kernel: str, shape: tuple[str, ...], cost: float) -> None:
    """A pick in the store, written by the history module as a search writes it."""
    store = HistoryStore(root, kernel=kernel, source_sha256="ab" * 32, device="pallas-cpu", warn=print)
    store.add(shape, HistoryEntry({"block_sizes": [64]}, cost, 4.0 * cost, "2026-12-02T02:45:13+00:00", "openevolve"))


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private Helion cache folder; its history store, as a search would use it."""
    monkeypatch.setenv("HELION_CACHE_DIR", str(tmp_path / "helion-cache"))
    monkeypatch.delenv("HELION_OPENEVOLVE_HISTORY_DIR", raising=False)
    return tmp_path / "helion-cache" / "openevolve-history"


def test_history_path_is_the_store_a_search_uses(
    cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run(capsys, "history", "--path").splitlines() == [str(cache)]
    keep(cache, "matmul", ("float32[64,128]",), 1.0)
    assert run(capsys, "history", "--path", "matmul").splitlines() == [str(cache), str(cache / f"matmul-{'ab' * 6}")]
    monkeypatch.setenv("HELION_OPENEVOLVE_HISTORY_DIR", str(tmp_path / "elsewhere"))
    assert run(capsys, "history", "--path").splitlines() == [str(tmp_path / "elsewhere")]


def test_history_list_and_clear(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "(empty: nothing kept yet)" in run(capsys, "history", "--list")
    keep(cache, "matmul", ("float32[64,128]", "float32[128,128]"), 91.7)
    keep(cache, "matmul", ("float32[128,128]", "float32[128,128]"), 120.0)
    keep(cache, "softmax", ("float32[256,512]",), 3.5)
    (cache / f"softmax-{'ab' * 6}" / "pallas-cpu" / "broken.json").write_text("{")
    out = run(capsys, "history", "--list")
    assert f"matmul-{'ab' * 6} on pallas-cpu:" in out and f"softmax-{'ab' * 6} on pallas-cpu:" in out
    assert "float32[64,128], float32[128,128]: 1 pick, best 91.7 ms, default 366.8 ms (openevolve" in out
    assert "float32[256,512]: 1 pick, best 3.5 ms" in out and "unreadable: broken.json (JSONDecodeError" in out
    only = run(capsys, "history", "--list", "matmul")
    assert "matmul" in only and "softmax" not in only
    assert "no history of a kernel named 'rms_norm'" in run(capsys, "history", "--list", "rms_norm")

    out = run(capsys, "history", "--clear", "matmul")
    assert out.splitlines() == [f"removed {cache / ('matmul-' + 'ab' * 6)}"]
    assert [p.name for p in cache.iterdir()] == [f"softmax-{'ab' * 6}"]
    assert "nothing to remove" in run(capsys, "history", "--clear", "matmul")
    run(capsys, "history", "--clear")
    assert not cache.exists()


def test_history_clear_leaves_other_files_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--dir`` pointed at a folder that holds more than a history store: only kernel folders go."""
    keep(tmp_path, "matmul", ("float32[8]",), 1.0)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    run(capsys, "history", "--clear", "--dir", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes", "notes.txt"]
