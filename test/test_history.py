"""Warm start: what one search of a kernel picked seeds and informs the next one (history store).

Real Pallas-on-CPU tuning runs with small budgets, without an LLM (no API key) or with the
stand-in LLM: a pick on one shape seeds the search of another shape and is listed in the system
message; unreadable, foreign and stale history is skipped with a log line; ``history`` off writes
and reads nothing; a second run of the same kernel and shape measures fewer configs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from oe_util import FAST
from oe_util import evaluations
from oe_util import fast_pallas  # noqa: F401 (fixture)
from oe_util import fresh_matmul
from oe_util import read_record
import pytest
import torch

import helion
from helion.autotuner.openevolve.adapters.history import HistoryEntry
from helion.autotuner.openevolve.adapters.history import HistoryStore
from helion.autotuner.openevolve.adapters.history import Known
from helion.autotuner.openevolve.adapters.prompts import HISTORY_CHARS
from helion.autotuner.openevolve.adapters.prompts import history_section
from helion.autotuner.openevolve_tuner import OpenEvolveSearch

if TYPE_CHECKING:
    from standin_llm import StandinLLM

pytestmark = pytest.mark.usefixtures("fast_pallas")

#: The first search's shape; the second's differs in its first dimension only, so the first
#: search's pick also fits the second's space (on Pallas the other block sizes are the full 128).
SMALL = ((64, 128), (128, 128))
LARGE = ((128, 128), (128, 128))
TINY = {**FAST, "max_evaluations": 4, "initial_random": 1}


def _tune(shape: tuple[tuple[int, int], ...], record: Path, **kw: object) -> tuple[OpenEvolveSearch, list[dict]]:
    args = tuple(torch.randn(*s) for s in shape)
    search = OpenEvolveSearch(fresh_matmul().bind(args), args, record_path=str(record), **{**TINY, **kw})
    search.autotune()
    return search, read_record(record)


def _history_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.json"))


def _first_batch(lines: list[dict]) -> list[dict]:
    """The configs of the first measured batch: the default and the seed configs."""
    out = []
    for line in evaluations(lines):
        if line["source"] not in ("default", "seed", "history"):
            break
        out.append(line["config"])
    return out


def test_a_pick_on_one_shape_seeds_the_next_shape_and_is_in_the_prompt(
    tmp_path: Path, standin: StandinLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    first, _ = _tune(SMALL, tmp_path / "small.jsonl")  # no key: no LLM; default history_dir
    (path,) = _history_files(tmp_path / "helion-cache" / "openevolve-history")
    assert path.parts[-3].startswith("matmul-") and path.parts[-2] == "pallas-cpu"
    assert path.name == "float32_64x128__float32_128x128.json"
    data = json.loads(path.read_text())
    assert data["kernel"] == "matmul" and data["shape"] == ["float32[64,128]", "float32[128,128]"]
    (entry,) = data["entries"]
    assert entry["config"] == first.summary["best_config"]
    assert entry["cost"] == first.summary["best_cost"] and entry["mode"] == "fallback"

    second, lines = _tune(LARGE, tmp_path / "large.jsonl", api_base=standin.url, api_key="test-key")
    assert entry["config"] in _first_batch(lines)  # a seed of the first batch
    systems = {m[0]["content"] for m in standin.prompts if m and m[0].get("role") == "system"}
    assert systems, "the stand-in LLM got no system message"
    for system in systems:
        assert "## What won before" in system
        assert "- float32[64,128], float32[128,128]: " in system
    assert len(_history_files(tmp_path / "helion-cache" / "openevolve-history")) == 2
    assert second.summary["best_config"] is not None


def test_unreadable_foreign_and_stale_history_is_skipped_with_a_log_line(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    history = tmp_path / "history"
    first, _ = _tune(SMALL, tmp_path / "one.jsonl", history_dir=str(history))
    (good,) = _history_files(history)
    data = json.loads(good.read_text())
    (good.parent / "corrupt.json").write_text("{not json")
    (good.parent / "foreign.json").write_text(json.dumps({**data, "kernel": "softmax"}))
    stale = {**data["entries"][0], "config": {"no_such_field": 1}}
    (good.parent / "stale.json").write_text(json.dumps({**data, "shape": ["float32[8]"], "entries": [stale]}))
    capfd.readouterr()

    _, lines = _tune(SMALL, tmp_path / "two.jsonl", history_dir=str(history))
    said = capfd.readouterr()
    said = said.out + said.err
    assert "skipping unreadable file" in said and "corrupt.json" in said
    assert "foreign.json: it holds kernel 'softmax'" in said and "not this kernel and device" in said
    assert "skipping a config for float32[8] that no longer fits" in said and "no_such_field" in said
    assert first.summary["best_config"] in _first_batch(lines)  # the good entry still seeds
    assert len(json.loads(good.read_text())["entries"]) in (1, 2)  # the second pick was added
    assert (good.parent / "corrupt.json").read_text() == "{not json"  # skipped, never rewritten


def test_history_off_writes_and_reads_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    history = tmp_path / "history"
    _tune(SMALL, tmp_path / "on.jsonl", history_dir=str(history))
    before = {p: p.read_text() for p in _history_files(history)}
    assert before
    capfd.readouterr()
    monkeypatch.setenv("HELION_OPENEVOLVE_HISTORY", "0")
    search, _ = _tune(SMALL, tmp_path / "off.jsonl", history_dir=str(history))
    assert search.oe_settings.history is False
    said = capfd.readouterr()
    assert "OpenEvolveSearch history" not in said.out + said.err  # nothing read, nothing logged
    assert {p: p.read_text() for p in _history_files(history)} == before  # nothing written


def test_a_second_run_of_the_same_shape_starts_at_the_first_runs_pick(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run's pick is measured in the second run's first batch, as a seed. (Whether the
    second run then measures fewer configs depends on timings, which on this CPU under the Pallas
    interpreter are noise: that is measured on a GPU, not asserted here.)"""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    shape = ((32, 128), (128, 128))
    steady = {"refinement": True, "initial_random": 0, "refine_starts": 1, "refine_min_improvement": 0.5}
    first, one = _tune(shape, tmp_path / "first.jsonl", max_evaluations=8, **steady)
    pick = first.summary["best_config"]
    _, two = _tune(shape, tmp_path / "second.jsonl", max_evaluations=8, **steady)
    # the default is always in the first batch; a pick that is not the default comes from history
    assert pick in _first_batch(two)
    default = evaluations(one, source="default")[0]["config"]
    source = next(line["source"] for line in evaluations(two) if line["config"] == pick)
    assert source == ("default" if pick == default else "history")


def test_store_io_errors_are_logged_never_raised(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    said: list[str] = []
    store = HistoryStore(blocker / "history", kernel="k", source_sha256="0" * 64, device="pallas-cpu", warn=said.append)
    assert store.read() == []
    store.add(("float32[8]",), HistoryEntry({"block_sizes": [8]}, 1.0, 2.0, "2025-01-01T00:00:00+00:00", "fallback"))
    assert len(said) == 1 and "could not write" in said[0] and "the pick is not kept" in said[0]


def test_the_prompt_section_lists_nearest_shapes_first_within_its_size() -> None:
    default = {"block_sizes": [128]}
    known = [
        Known(
            (f"float32[{n}]",),
            HistoryEntry({"block_sizes": [n]}, n / 1000, 1.0, "2025-01-01T00:00:00+00:00", "openevolve"),
            helion.Config(block_sizes=[n]),
            float(i),
        )
        for i, n in enumerate([4096, 8192, *range(1, 200)])
    ]
    text = history_section(known, default)
    assert text.startswith("## What won before\n")
    assert len(text) <= HISTORY_CHARS
    assert text.index('- float32[4096] (this shape): 4.096 ms (default 1 ms): {"block_sizes": [4096]}') < text.index(
        "float32[8192]"
    )
    assert history_section([], default) == ""
