"""Run the vector-add and attention example scripts on the CPU, in subprocesses, with tiny budgets.

Each script runs as a user runs it (``python examples/...``) with ``--cpu`` (Helion's Pallas
backend in interpret mode), a private Helion cache folder and no final rebenchmark (slow on the
CPU); the tests check the exit status and the lines a user reads (device, throughput,
correctness, the fallback reason when no LLM is configured).
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def installed_plugin() -> None:
    """The scripts import the plugin as a user does: it must be installed (pip install .)."""
    assert importlib.util.find_spec("_helion_openevolve_hook") is not None, "run `pip install .` first"


def run_example(script: str, *args: str, tmp_path: Path, drop: tuple[str, ...] = ()) -> str:
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("HELION_")}
    env.update(
        HELION_CACHE_DIR=str(tmp_path / "helion-cache"),
        HELION_AUTOTUNE_FINAL_REBENCHMARK_TOP_K="0",
        HELION_AUTOTUNE_EFFORT="quick",
        TMPDIR=str(tmp_path),  # the scripts' run records, when no --record is given
    )
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


def test_vector_add_simple(tmp_path: Path) -> None:
    out = run_example("helion_vector_add_tuning.py", "--simple", "--size", "1024", tmp_path=tmp_path)
    assert "correctness ok" in out


def test_vector_add_tuning_with_standin(tmp_path: Path) -> None:
    record = tmp_path / "record.jsonl"
    out = run_example(
        "helion_vector_add_tuning.py",
        "--max-evaluations",
        "4",
        "--size",
        "2048",
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
        "4",
        "--size",
        "1024",
        tmp_path=tmp_path,
        drop=("OPENAI_API_KEY",),
    )
    assert "search fell back to random search: no API key" in out
    assert "GB/s" in out and "correctness ok" in out


def test_attention_tuning(tmp_path: Path) -> None:
    out = run_example(
        "helion_b200_attention_tuning.py",
        "--max-evaluations",
        "4",
        "--batch-heads",
        "2",
        "--seq",
        "32",
        "--head-dim",
        "16",
        "--llm-latency",
        "0.05",
        tmp_path=tmp_path,
    )
    assert "device-specific choices exposed here" in out
    assert "correctness ok" in out
    assert "helion tuned" in out and "torch SDPA" in out and out.count("TFLOP/s") == 2


def test_llm_cost_from_run_records(tmp_path: Path) -> None:
    record = tmp_path / "run.jsonl"
    lines = [
        {"kind": "evaluation", "status": "ok"},
        {"kind": "summary", "llm_calls": 10, "prompt_tokens": 2_000_000, "completion_tokens": 100_000},
    ]
    record.write_text("".join(json.dumps(line) + "\n" for line in lines))
    unfinished = tmp_path / "cut.jsonl"
    unfinished.write_text(json.dumps({"kind": "evaluation"}) + "\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "llm_cost.py"),
            str(record),
            str(unfinished),
            "--input-price",
            "1",
            "--output-price",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    row = next(line for line in proc.stdout.splitlines() if line.startswith("run.jsonl"))
    assert row.split()[1:] == ["10", "2000000", "100000", "3.0000"]  # 2 M x $1 + 0.1 M x $10
    assert "cut.jsonl" in proc.stdout and "did not finish" in proc.stdout
    assert proc.stdout.splitlines()[-1].split() == ["total", "3.0000"]


def test_a_kernels_searches_split_over_commands_are_re_timed_together(tmp_path: Path) -> None:
    """The side-by-side benchmark over three commands, as a kernel too long for one device call
    runs: PatternSearch alone, then a knowing search that finds its pick in the results file
    (a command run again with ``--resume`` skips both), then ``--retime-from`` timing both picks
    again together; rows say whether they were."""
    bench, parts, final = "benchmark_openevolve_vs_baseline.py", tmp_path / "parts.jsonl", tmp_path / "bench.jsonl"
    common = ("--kernels", "vector_add", "--retime-rounds", "0", "--results", str(parts))
    run_example(bench, *common, "--searches", "PatternSearch", tmp_path=tmp_path)
    run_example(
        bench, *common, "--searches", "OpenEvolveTuner:knowing", "--known", "auto", "--llm-latency", "0.2",
        tmp_path=tmp_path,
    )  # fmt: skip
    ps, knowing = (json.loads(line) for line in parts.read_text().splitlines())
    assert (ps["search"], knowing["search"]) == ("PatternSearch", "OpenEvolveTuner:knowing")
    assert knowing["known"] == [ps["config_dict"]]  # PatternSearch's pick, from the earlier command
    assert ps["retimed"] is knowing["retimed"] is False
    # the same commands again, as after a cut-off: with --resume the searches already in the file
    # are skipped (nothing measured, no row added)
    out = run_example(
        bench, *common, "--searches", "PatternSearch,OpenEvolveTuner:knowing", "--resume", tmp_path=tmp_path
    )
    assert out.count("skipped: its row is in") == 2 and "warm-up" not in out, out
    assert len(parts.read_text().splitlines()) == 2
    out = run_example(
        bench, "--kernels", "vector_add", "--retime-from", str(parts), "--results", str(final), tmp_path=tmp_path
    )
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


def test_the_measured_tables_come_from_the_committed_rows() -> None:
    """The benchmarks' ``--report`` reprints the H200 tables quoted in TESTING_B200.md and the
    README from the rows in examples/results (no device needed)."""

    def report(script: str, *rows: str) -> str:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / script), "--report", *(str(EXAMPLES / "results" / r) for r in rows)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return proc.stdout

    def side(*rows: str) -> str:
        """The side-by-side benchmark's report of ``rows``."""
        return report("benchmark_openevolve_vs_baseline.py", *rows)

    def assert_geomeans(text: str, expected: dict[str, list[str]]) -> None:
        """The geomean lines under a side-by-side report (after its last ``search`` header):
        search -> its columns, as ``expected`` says for the searches it names."""
        lines = text.rsplit("\nsearch ", 1)[1].splitlines()[1:]
        geomeans = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
        assert {name: geomeans.get(name) for name in expected} == expected, text

    def rows_of(text: str, kernel: str) -> dict[str, list[str]]:
        """The table's rows of one kernel: search -> its columns."""
        return {line.split()[1]: line.split()[2:] for line in text.splitlines() if line.startswith(f"{kernel} ")}

    warm = report("benchmark_warm_start.py", "h200_warm_full.jsonl")
    geomeans = {line[:37].strip(): line[37:].split() for line in warm.splitlines()[-6:]}
    assert geomeans["OpenEvolve warm"] == ["3", "1.022x", "1.039x", "0.92x", "0.609x"], warm
    assert geomeans["OpenEvolve warm, no LLM"] == ["3", "1.007x", "1.023x", "0.91x", "0.684x"], warm
    assert_geomeans(side("h200_quick.jsonl"), {"OpenEvolveTuner:blind": ["5", "1.010x", "1.024x", "1.02x"]})
    assert_geomeans(
        side("h200_quick_knowing.jsonl"),
        {
            "OpenEvolveTuner:knowing": ["2", "0.974x", "0.986x", "0.70x"],
            "LLMGuidedSearch:knowing": ["2", "1.084x", "1.190x", "0.55x"],
            "OpenEvolveTuner:blind": ["2", "0.982x", "1.001x", "0.75x"],
        },
    )
    cut = side("h200_full_cut_short.jsonl")
    rows = rows_of(cut, "rms_norm")
    assert rows["OpenEvolveTuner:knowing"][:6] == ["0.0381", "1.018x", "1.018x", "501.0", "0.749x", "20.9"], cut
    assert rows["(not"][:3] == ["re-timed", "together:", "each"], cut  # single timings, said so
    full = side("h200_full.jsonl")
    assert_geomeans(
        full,
        {
            "OpenEvolveTuner:knowing": ["1", "1.002x", "1.002x", "0.08x"],
            "OpenEvolveTuner:blind": ["1", "1.002x", "1.002x", "0.09x"],
            "OpenEvolveTuner:hostile": ["1", "1.015x", "1.015x", "0.10x"],
            "LLMGuidedSearch:knowing": ["1", "1.012x", "1.012x", "0.11x"],
            "LFBOTreeSearch": ["1", "1.000x", "1.000x", "0.81x"],
        },
    )
    known = side("h200_full_with_known.jsonl")
    rows = rows_of(known, "rms_norm")
    assert rows["OpenEvolveTuner:knowing"][:5] == ["0.0385", "1.007x", "1.007x", "53.0", "0.079x"], known
    matmul = side("h200_full_matmul.jsonl")
    assert_geomeans(
        matmul,
        {
            "OpenEvolveTuner:knowing": ["1", "0.974x", "0.974x", "0.07x"],
            "LLMGuidedSearch:knowing": ["1", "0.991x", "0.991x", "0.12x"],
            "OpenEvolveTuner:blind": ["1", "0.987x", "0.987x", "0.07x"],
            "OpenEvolveTuner:hostile": ["1", "0.987x", "0.987x", "0.06x"],
        },
    )
    rows = rows_of(matmul, "matmul")
    assert rows["OpenEvolveTuner:knowing"][:5] == ["0.0095", "0.974x", "0.974x", "51.6", "0.074x"], matmul
    assert rows["LLMGuidedSearch:knowing"][3] == "83.3", matmul
    split = side("h200_full_split.jsonl")  # session 13
    assert_geomeans(
        split,
        {
            "OpenEvolveTuner:knowing": ["2", "1.016x", "1.024x", "0.12x"],
            "LLMGuidedSearch:knowing": ["2", "1.030x", "1.038x", "0.18x"],
            "OpenEvolveTuner:blind": ["2", "1.012x", "1.024x", "0.12x"],
            "OpenEvolveTuner:hostile": ["2", "1.006x", "1.013x", "0.11x"],
            "LFBOTreeSearch": ["2", "1.000x", "1.000x", "0.62x"],
        },
    )
    three = side("h200_full.jsonl", "h200_full_split.jsonl")
    assert_geomeans(
        three,
        {
            "OpenEvolveTuner:knowing": ["3", "1.011x", "1.024x", "0.11x"],
            "OpenEvolveTuner:blind": ["3", "1.009x", "1.024x", "0.11x"],
            "OpenEvolveTuner:hostile": ["3", "1.009x", "1.015x", "0.10x"],
            "LLMGuidedSearch:knowing": ["3", "1.024x", "1.038x", "0.15x"],
            "PatternSearch": ["3", "1.004x", "1.010x", "1.00x"],
        },
    )
    rows = rows_of(split, "vector_add")
    assert rows["OpenEvolveTuner:knowing"][:5] == ["0.0294", "1.024x", "1.014x", "49.6", "0.195x"], split
    assert rows["LFBOTreeSearch"][3] == "271.2", split
    # the same picks of vector_add, re-timed together 5 minutes earlier (without LFBOTreeSearch's)
    first = side("h200_full_vector_add_first_retiming.jsonl")
    assert rows_of(first, "vector_add")["OpenEvolveTuner:knowing"][:3] == ["0.0286", "0.976x", "0.976x"], first
    softmax = side("h200_full_softmax.jsonl")  # session 14
    rows = rows_of(softmax, "softmax")
    assert rows["OpenEvolveTuner:knowing"][:5] == ["0.0157", "1.038x", "1.038x", "57.9", "0.141x"], softmax
    assert rows["LLMGuidedSearch:knowing"][3] == "103.8" and rows["PatternSearch"][3] == "409.3", softmax
    # the same six picks re-timed again with 30 rounds: each pick's per-round ratio to PatternSearch's
    # pick has a median of 1.000x-1.003x, quartiles 2.6-7.3% apart
    again = side("h200_full_softmax_retime30.jsonl")
    assert rows_of(again, "softmax")["OpenEvolveTuner:knowing"][:3] == ["0.0159", "1.021x", "1.001x"], again
    assert "OpenEvolveTuner:knowing      1.002x [0.972x, 1.041x]" in again, again
    four_files = ("h200_full.jsonl", "h200_full_split.jsonl", "h200_full_softmax.jsonl")
    four = side(*four_files)
    four_kernels = {
        "OpenEvolveTuner:knowing": ["4", "1.018x", "1.038x", "0.11x"],
        "OpenEvolveTuner:blind": ["4", "1.012x", "1.024x", "0.11x"],
        "OpenEvolveTuner:hostile": ["4", "1.007x", "1.015x", "0.11x"],
        "LLMGuidedSearch:knowing": ["4", "1.018x", "1.038x", "0.17x"],
        "LFBOTreeSearch": ["4", "1.010x", "1.042x", "0.68x"],
        "PatternSearch": ["4", "1.003x", "1.010x", "1.00x"],
    }
    assert_geomeans(four, four_kernels)
    layer_norm = side("h200_full_layer_norm.jsonl")  # session 15: the blind case's fifth kernel
    rows = rows_of(layer_norm, "layer_norm")
    assert rows["OpenEvolveTuner:blind"][:5] == ["0.0221", "1.015x", "-", "39.4", "0.065x"], layer_norm
    assert rows["PatternSearch"][3] == "610.3", layer_norm
    assert rows["LFBOTreeSearch"][:4] == ["0.0218", "1.000x", "-", "611.9"], layer_norm
    assert "OpenEvolveTuner:blind        1.006x [1.004x, 1.007x]" in layer_norm, layer_norm
    # the held-out kernel's blind pick, re-timed alone in session 15 before its baselines ran: no ratio, no geomean
    alone = side("h200_full_bias_grad_blind.jsonl")
    assert rows_of(alone, "bias_grad")["OpenEvolveTuner:blind"][:5] == ["0.0430", "-", "-", "54.3", "-"], alone
    assert "no PatternSearch or LFBOTreeSearch row: bias_grad" in alone, alone
    bias_grad = side("h200_full_bias_grad.jsonl")  # session 16: its six searches' picks re-timed together
    rows = rows_of(bias_grad, "bias_grad")
    assert rows["OpenEvolveTuner:blind"][:5] == ["0.0430", "1.013x", "-", "54.3", "0.160x"], bias_grad
    assert rows["PatternSearch"][3] == "339.9", bias_grad
    assert rows["LFBOTreeSearch"][:4] == ["0.0425", "1.000x", "-", "348.0"], bias_grad
    assert rows["OpenEvolveTuner:knowing"][:5] == ["0.0430", "1.013x", "1.013x", "73.8", "0.217x"], bias_grad
    assert rows["LLMGuidedSearch:knowing"][3] == "107.9" and rows["OpenEvolveTuner:hostile"][1] == "1.000x", bias_grad
    assert "OpenEvolveTuner:blind        1.001x [0.999x, 1.013x]" in bias_grad, bias_grad
    # the three picks re-timed together 7 minutes earlier: PatternSearch's pick fastest that time
    first = side("h200_full_bias_grad_first_retiming.jsonl")
    rows = rows_of(first, "bias_grad")
    assert [rows[s][0] for s in ("OpenEvolveTuner:blind", "PatternSearch", "LFBOTreeSearch")] == [
        "0.0427",
        "0.0424",
        "0.0429",
    ], first
    # blind and knowing again, one after the other in one process (not re-timed together)
    pair = side("h200_full_bias_grad_knowing_vs_blind.jsonl")
    rows = rows_of(pair, "bias_grad")
    assert [rows["OpenEvolveTuner:blind"][i] for i in (3, 8)] == ["83.3", "205"], pair
    assert [rows["OpenEvolveTuner:knowing"][i] for i in (0, 3, 8)] == ["0.0425", "99.7", "168"], pair
    five = side(*four_files, "h200_full_layer_norm.jsonl")
    assert_geomeans(  # layer_norm ran the blind search and the baselines only: the rest as on four kernels
        five,
        four_kernels
        | {
            "OpenEvolveTuner:blind": ["5", "1.012x", "1.024x", "0.10x"],
            "LFBOTreeSearch": ["5", "1.008x", "1.042x", "0.73x"],
            "PatternSearch": ["5", "1.004x", "1.010x", "1.00x"],
        },
    )
    six = side(*four_files, "h200_full_layer_norm.jsonl", "h200_full_bias_grad.jsonl")
    six_kernels = {
        "OpenEvolveTuner:knowing": ["5", "1.017x", "1.038x", "0.13x"],
        "LLMGuidedSearch:knowing": ["5", "1.017x", "1.038x", "0.20x"],
        "OpenEvolveTuner:blind": ["6", "1.013x", "1.024x", "0.11x"],
        "OpenEvolveTuner:hostile": ["5", "1.006x", "1.015x", "0.13x"],
        "LFBOTreeSearch": ["6", "1.007x", "1.042x", "0.78x"],
        "PatternSearch": ["6", "1.005x", "1.012x", "1.00x"],
    }
    assert_geomeans(six, six_kernels)
    # session 17: the blind case's second matmul-like kernel, 4096^3 fp16 (Helion's 5 s final verification)
    big = side("h200_full_matmul_big.jsonl")
    rows = rows_of(big, "matmul_big")
    assert rows["OpenEvolveTuner:blind"][:7] == ["0.2141", "1.019x", "-", "114.6", "0.204x", "15.0", "56.7"], big
    assert rows["PatternSearch"][:4] == ["0.2148", "1.022x", "-", "562.5"], big
    assert rows["LFBOTreeSearch"][:5] == ["0.2102", "1.000x", "-", "247.4", "0.440x"], big
    assert "OpenEvolveTuner:blind        1.008x [0.991x, 1.022x]" in big, big
    again = side("h200_full_matmul_big_retime2.jsonl")  # the same three picks re-timed together again
    assert rows_of(again, "matmul_big")["OpenEvolveTuner:blind"][:2] == ["0.2157", "1.028x"], again
    # the blind search run again twice, each pick re-timed with PatternSearch's and LFBO's: with Helion's
    # final verification as it is, then with this search's final_verify_ms (1 s a finalist, not 5 s)
    second = side("h200_full_matmul_big_blind_again.jsonl")
    assert rows_of(second, "matmul_big")["OpenEvolveTuner:blind"][:7] == [
        *("0.2070", "1.010x", "-", "128.6", "0.229x", "21.8", "68.4")
    ], second
    third = side("h200_full_matmul_big_final_verify.jsonl")
    assert rows_of(third, "matmul_big")["OpenEvolveTuner:blind"][:7] == [
        *("0.2171", "1.035x", "-", "97.7", "0.174x", "21.4", "13.7")
    ], third
    seven = side(*four_files, "h200_full_layer_norm.jsonl", "h200_full_bias_grad.jsonl", "h200_full_matmul_big.jsonl")
    assert_geomeans(  # README's "Measured"; matmul_big ran the blind search and the baselines only
        seven,
        six_kernels
        | {
            "OpenEvolveTuner:blind": ["7", "1.013x", "1.024x", "0.12x"],
            "LFBOTreeSearch": ["7", "1.006x", "1.042x", "0.72x"],
            "PatternSearch": ["7", "1.008x", "1.022x", "1.00x"],
        },
    )
