"""Run the example scripts on the CPU with tiny budgets, as a user runs them.

The tuning scripts run in subprocesses (``python examples/...``) with ``--cpu`` (Helion's Pallas
backend in interpret mode), a private Helion cache folder and no final rebenchmark (slow on the
CPU); the tests check the exit status and the lines a user reads (device, throughput,
correctness, the fallback reason when no LLM is configured). Commands whose subject is what a
script does with its arguments, not how it starts (the split benchmark's steps, ``--simple``,
the LLM cost table), run the script's ``main()`` in this process with the same arguments and
environment: a Python process with torch and Helion costs seconds to start, and the benchmark's
``--report`` and the other scripts still start as a user starts them.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import runpy
import subprocess
import sys
from unittest import mock

from oe_util import COMPILES
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def installed_plugin() -> None:
    """The scripts import the plugin as a user does: it must be installed (pip install .)."""
    assert importlib.util.find_spec("_helion_openevolve_hook") is not None, "run `pip install .` first"


def _script_env(tmp_path: Path, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment a script runs in: this one without Helion's settings (and ``drop``),
    with a private Helion cache, quick effort and no final rebenchmark."""
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("HELION_")}
    env.update(
        HELION_CACHE_DIR=str(tmp_path / "helion-cache"),
        HELION_AUTOTUNE_FINAL_REBENCHMARK_TOP_K="0",
        HELION_AUTOTUNE_EFFORT="quick",
        TMPDIR=str(tmp_path),  # the scripts' run records, when no --record is given
    )
    return env


def run_example(script: str, *args: str, tmp_path: Path, drop: tuple[str, ...] = ()) -> str:
    env = _script_env(tmp_path, drop)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--cpu", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert proc.stdout.splitlines()[0].startswith("device: CPU"), out[-4000:]
    return proc.stdout


#: The examples' shared modules: imported again for each in-process run, so its kernels are
#: made under the environment the run sets (Helion reads the backend when a kernel is made).
_EXAMPLE_MODULES = ("example_support", "kernels", "tune_with_standin", "helion_b200_attention_tuning")


def run_main(
    script: str,
    *args: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Run ``main()`` of ``examples/script`` in this process with ``--cpu`` and ``args`` as its
    command line, in ``tmp_path`` and ``run_example``'s environment (what the run changes in
    ``os.environ``, ``sys.path`` and the examples' modules is undone after it); its stdout."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "argv", [str(EXAMPLES / script), "--cpu", *args])
    for name in (*_EXAMPLE_MODULES, Path(script).stem):
        monkeypatch.delitem(sys.modules, name, raising=False)
    capsys.readouterr()
    with mock.patch.dict(os.environ, _script_env(tmp_path), clear=True):
        spec = importlib.util.spec_from_file_location(Path(script).stem, EXAMPLES / script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, Path(script).stem, module)
        spec.loader.exec_module(module)
        module.main()
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("device: CPU"), out[-4000:]
    return out


def test_vector_add_simple(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = run_main(
        "helion_vector_add_tuning.py",
        "--simple",
        "--size",
        "256",
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    assert "simple: default config" in out and "correctness ok" in out


def test_vector_add_tuning_with_standin(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    out = run_example(
        "helion_vector_add_tuning.py",
        "--max-evaluations",
        "3",
        "--size",
        "256",
        "--llm-latency",
        "0.05",
        "--record",
        str(record),
        tmp_path=tmp_path,
    )
    assert "stand-in" in out
    assert "peak memory bandwidth: unknown" in out
    assert out.count("GB/s") >= 2 and "default" in out and "tuned" in out
    assert "correctness ok" in out
    assert record.exists()


def test_vector_add_without_llm_falls_back(tmp_path: Path) -> None:
    out = run_example(
        "helion_vector_add_tuning.py",
        "--no-standin",
        "--max-evaluations",
        "2",
        "--size",
        "256",
        tmp_path=tmp_path,
        drop=("OPENAI_API_KEY",),
    )
    assert "search fell back to random search: no API key" in out
    assert "GB/s" in out and "correctness ok" in out


def test_attention_tuning(tmp_path: Path) -> None:
    out = run_example(
        "helion_b200_attention_tuning.py",
        "--max-evaluations",
        "2",
        "--batch-heads",
        "1",
        "--seq",
        "16",
        "--head-dim",
        "16",
        "--llm-latency",
        "0.05",
        tmp_path=tmp_path,
    )
    assert "device-specific choices exposed here" in out
    assert "correctness ok" in out
    assert "helion tuned" in out and "torch SDPA" in out and out.count("TFLOP/s") == 2


def test_llm_cost_from_run_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    record = tmp_path / "run.jsonl"
    lines = [
        {"kind": "evaluation", "status": "ok"},
        {"kind": "summary", "llm_calls": 10, "prompt_tokens": 2_000_000, "completion_tokens": 100_000},
    ]
    record.write_text("".join(json.dumps(line) + "\n" for line in lines))
    unfinished = tmp_path / "cut.jsonl"
    unfinished.write_text(json.dumps({"kind": "evaluation"}) + "\n")
    # the script as ``python examples/llm_cost.py ...`` runs it (as __main__), in this process
    argv = [str(EXAMPLES / "llm_cost.py"), str(record), str(unfinished), "--input-price", "1", "--output-price", "10"]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(argv[0], run_name="__main__")
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("run.jsonl"))
    assert row.split()[1:] == ["10", "2000000", "100000", "3.0000"]  # 2 M x $1 + 0.1 M x $10
    assert "cut.jsonl" in out and "did not finish" in out
    assert out.splitlines()[-1].split() == ["total", "3.0000"]


def test_a_kernels_searches_split_over_commands_are_re_timed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The side-by-side benchmark over three commands, as a kernel too long for one device call
    runs: PatternSearch alone, then a knowing search that finds its pick in the results file
    (a command run again with ``--resume`` skips both), then ``--retime-from`` timing both picks
    again together; rows say whether they were. Each command runs the script's ``main()`` in
    this process, a fresh import of the script each time (the kernels, the examples' modules and
    the environment made anew); ``--report`` runs the script as a user does."""
    bench, parts, final = "benchmark_openevolve_vs_baseline.py", tmp_path / "parts.jsonl", tmp_path / "bench.jsonl"
    common = ("--kernels", "vector_add", "--retime-rounds", "0", "--results", str(parts))
    main = {"tmp_path": tmp_path, "monkeypatch": monkeypatch, "capsys": capsys}
    run_main(bench, *common, "--searches", "PatternSearch", **main)
    run_main(bench, *common, "--searches", "OpenEvolveTuner:knowing", "--known", "auto", "--llm-latency", "0.2", **main)
    ps, knowing = (json.loads(line) for line in parts.read_text().splitlines())
    assert (ps["search"], knowing["search"]) == ("PatternSearch", "OpenEvolveTuner:knowing")
    assert knowing["known"] == [ps["config_dict"]]  # PatternSearch's pick, from the earlier command
    assert ps["retimed"] is knowing["retimed"] is False
    # the same commands again, as after a cut-off: with --resume the searches already in the file
    # are skipped (nothing measured, no row added)
    out = run_main(bench, *common, "--searches", "PatternSearch,OpenEvolveTuner:knowing", "--resume", **main)
    assert out.count("skipped: its row is in") == 2 and "warm-up" not in out, out
    assert len(parts.read_text().splitlines()) == 2
    out = run_main(bench, "--kernels", "vector_add", "--retime-from", str(parts), "--results", str(final), **main)
    rows = [json.loads(line) for line in final.read_text().splitlines()]
    assert [r["search"] for r in rows] == ["PatternSearch", "OpenEvolveTuner:knowing"]
    assert all(r["retimed"] is True and r["effort"] == "quick" for r in rows)
    assert [r["best_ms_after_search"] for r in rows] == [ps["best_ms"], knowing["best_ms"]]
    assert "not re-timed" not in out and "OpenEvolveTuner:knowing" in out
    # the header names what is re-timed, not the default --effort (the rows keep their searches')
    assert f"the picks in {parts}, 5 interleaved rounds" in out and "effort quick" not in out, out
    # each round's timing is kept, and the table says how far the picks move round by round
    assert all(len(r["retime_ms"]) == 5 for r in rows), rows  # the default --retime-rounds
    spread = out.split("per round / PatternSearch's pick, median [quartiles]:")[1].splitlines()[1].split()
    assert spread[0] == "OpenEvolveTuner:knowing" and spread[1].endswith("x") and spread[2].startswith("["), out
    # each pick's output was compared with PyTorch's; the table names a pick whose output differs
    assert all(r["matches_reference"] is True and r["reference_error"] < 1e-3 for r in rows), rows
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(final.read_text() + json.dumps({**rows[1], "matches_reference": False, "reference_error": 3.5}))
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / bench), "--report", str(wrong)], capture_output=True, text=True, check=True
    ).stdout
    assert out.count("its pick's output is not PyTorch's") == 1, out
    assert "vector_add  OpenEvolveTuner:knowing: its pick's output is not PyTorch's (max abs error 3.5)" in out, out


def test_the_decision_rounds_benchmark_measures_and_reprints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CPU benchmark of the comparison rule: at 0.5% noise a sloped landscape's optimum is
    found in every seed at 3 rounds, and ``--report`` prints again what a run wrote."""
    results = tmp_path / "rows.jsonl"
    main = runpy.run_path(str(EXAMPLES / "benchmark_decisions_cpu.py"))["main"]
    args = ["--landscapes", "sloped", "--noise", "0.005", "--decision-rounds", "3", "--seeds", "2"]
    assert main([*args, "--results", str(results)]) == 0
    measured = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| sloped")]
    (row,) = [json.loads(line) for line in results.read_text().splitlines()]
    assert (row["landscape"], row["decision_rounds"], row["seeds"]) == ("sloped", 3, 2)
    assert row["pick_mean"] == row["pick_worst"] == 1.0 and row["false_moves"] == 0 < row["moves"]
    assert 0.0 < row["timing_noise"] < 0.02 and row["rounds"] > 0
    assert main(["--report", str(results)]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| sloped")] == measured
    with pytest.raises(SystemExit):
        main(["--landscapes", "hilly"])
    assert "unknown landscape 'hilly'" in capsys.readouterr().err


def test_the_retime_cost_benchmark_times_rounds_and_reprints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The round-cost benchmark times its configs and a twin through Helion's ``rebenchmark``
    at each target, round after round, and ``--report`` prints again what a run wrote."""
    configs = tmp_path / "configs.json"
    configs.write_text(json.dumps([COMPILES, {**COMPILES, "block_sizes": [64, 128, 128]}]))
    results = tmp_path / "rows.jsonl"
    common = ("--kernels", "matmul", "--targets", "50,20", "--rounds", "2", "--configs", str(configs))
    out = run_main(
        "benchmark_retime_cost.py",
        *common,
        "--results",
        str(results),
        tmp_path=tmp_path,
        monkeypatch=monkeypatch,
        capsys=capsys,
    )
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["kernel"], r["target_ms"], r["rounds"], r["configs"]) for r in rows] == [
        ("matmul", 50.0, 2, 2),
        ("matmul", 20.0, 2, 2),
    ]
    for r in rows:  # each round: both configs and the first one's twin, all timed
        assert len(r["timings"]) == 2 and all(len(t) == 3 and min(t) > 0 for t in r["timings"])
        assert r["s_per_round"] > 0 and r["twin_noise"] >= 0 and r["best_ms"] > 0
    measured = [line for line in out.splitlines() if line.startswith("| matmul |")]
    assert len(measured) >= 2
    main = runpy.run_path(str(EXAMPLES / "benchmark_retime_cost.py"))["main"]
    assert main(["--report", str(results)]) == 0
    assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("| matmul |")] == measured[-2:]
