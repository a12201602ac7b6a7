"""Core rules that no other test pinned: each test here fails when its rule is broken by hand.

Pure, in-process and exact: a dict space whose costs the test sets, no processes, no LLM, no
clock. The rules and where they live: pairing of re-timings (:mod:`.compare`), failures never
picked (:mod:`.measure`), a new best superseding the path one step behind it (:mod:`.paths`),
knowledge first in the stop rule (:mod:`.stop_rule`), a permanent LLM error ending the LLM's part
(:mod:`.llm_events`), the proposal desk's outcomes and yield quota (:mod:`.answers`), and the
history store's ranking, de-duplication, cap and trimming (:mod:`.history`).
"""

from __future__ import annotations

import hashlib
import inspect
import math
from pathlib import Path
import textwrap
import threading
from types import SimpleNamespace

from test_refinement import SPACE
from test_refinement import bowl
from test_refinement import decide
from test_refinement import setup
import torch

import helion
from helion.autotuner.openevolve.adapters import history
from helion.autotuner.openevolve.adapters.config_space import _DictBackend
from helion.autotuner.openevolve.adapters.history import HistoryEntry
from helion.autotuner.openevolve.adapters.history import HistoryStore
from helion.autotuner.openevolve.adapters.history import WarmStart
from helion.autotuner.openevolve.loop.answers import AnswerDesk
from helion.autotuner.openevolve.loop.compare import verdict
from helion.autotuner.openevolve.loop.llm_events import LLMState
from helion.autotuner.openevolve.loop.measure import Results
from helion.autotuner.openevolve.loop.record import RunRecord
from helion.autotuner.openevolve.loop.server import Answer
from helion.autotuner.openevolve.loop.stop_rule import AnswerCredit
from helion.autotuner.openevolve.loop.stop_rule import StopRule

Config = dict[str, int]
START = {"a": 0, "b": 0, "c": 0}


def _lines(measured: Results) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    measured.record.write = lambda kind, **fields: out.append({"kind": kind, **fields})  # type: ignore[method-assign]
    return out


# -- the comparison -------------------------------------------------------------------------------


def test_only_rounds_both_configs_were_timed_in_decide() -> None:
    """Round 1 ran with everything twice as slow (a clock drop): ``a`` was timed in it, ``b`` was
    not. Their means say ``a`` is slower; their shared round says it is 5% faster, and that wins."""
    a_rounds, b_rounds = {1: 2.0, 2: 0.95}, {2: 1.0}
    a_cost, b_cost = sum(a_rounds.values()) / 2, 1.0
    v = verdict(a_cost, b_cost, a_rounds=a_rounds, b_rounds=b_rounds, noise=0.01, floor=0.001)
    assert v.better and v.rounds == 1 and math.isclose(v.gain, -0.05)
    assert not verdict(b_cost, a_cost, a_rounds=b_rounds, b_rounds=a_rounds, noise=0.01, floor=0.001).better


# -- failures -------------------------------------------------------------------------------------


def broken(c: Config) -> float:
    """The bowl, except that every config with ``c == 5`` fails (raises)."""
    if c["c"] == 5:
        raise RuntimeError("this config fails")
    return bowl(c)


def test_a_failed_config_is_never_the_best_nor_a_finalist() -> None:
    for exact in (True, False):
        measured = Results(_DictBackend(SPACE, broken, minimize=True, exact=exact), RunRecord(None), 100)
        first = measured.measure([({"a": 0, "b": 0, "c": 5}, "default"), ({"a": 5, "b": 2, "c": 5}, "seed")], "first")
        assert [e.cost for e in first] == [math.inf, math.inf]
        assert measured.best is None  # nothing worked: no best, whatever was measured
        good = {"a": 1, "b": 7, "c": 0}
        measured.measure([(good, "random"), ({"a": 4, "b": 2, "c": 5}, "random")], "next")
        assert measured.best is not None and measured.best.candidate == good
        assert not measured.ties_best(first[0]) and not measured.beats(first[0], None)


# -- refinement paths -----------------------------------------------------------------------------


def test_a_new_best_one_step_ahead_of_a_live_path_supersedes_it() -> None:
    measured, paths = setup(bowl)
    lines = _lines(measured)
    measured.measure([(dict(START), "default")], "default")
    paths.update(measured)  # a path starts at the default and claims its neighbours
    assert [p.incumbent for p in paths.live] == [measured.backend.key(START)]
    ahead = {"a": 1, "b": 0, "c": 0}  # the default's neighbour, brought by the LLM
    measured.measure([(ahead, "llm")], "llm")
    paths.update(measured)
    assert [p.incumbent for p in paths.live] == [measured.backend.key(ahead)]  # one path, not two
    assert [x["incumbent"] for x in lines if x.get("what") == "superseded"] == [START]


# -- the stop rule --------------------------------------------------------------------------------


def test_a_settled_best_from_knowledge_stops_even_a_search_that_waits_for_the_llm() -> None:
    why = "the LLM's best config is settled: no neighbour beats it beyond the noise"
    for busy in (True, False):
        assert decide(StopRule(llm_timeout_s=60.0), 5.0, busy=busy, knowledge_settled=why) == ("stop", why)


def test_next_answer_due_decides_whether_a_converged_search_waits() -> None:
    """The due time comes from the LLM's events (oldest request in flight plus the median latency)."""
    state = LLMState(RunRecord(None), 3)
    for t, event in enumerate(["llm_request", "llm_answer", "llm_request"]):
        state.on_event({"event": event, "request": str(t // 2), "received_at": 100.0 + t, "latency_s": 1.0})
    assert state.next_answer_due() == 103.0  # sent at 102, answers take 1 s
    # converged at 40 s into the search: it waits up to 4 s, so an answer due at 103 is worth it
    assert (
        decide(StopRule(llm_timeout_s=60.0), 100.5, elapsed=40.0, next_answer_due=state.next_answer_due())[0] == "wait"
    )
    late = LLMState(RunRecord(None), 3)
    for t, event in enumerate(["llm_request", "llm_answer", "llm_request"]):
        late.on_event({"event": event, "request": str(t // 2), "received_at": 100.0 + t, "latency_s": 9.0})
    decision, why = decide(StopRule(llm_timeout_s=60.0), 100.5, elapsed=40.0, next_answer_due=late.next_answer_due())
    assert decision == "stop" and "no LLM answer is due" in why
    assert LLMState(RunRecord(None), 3).next_answer_due() == math.inf  # nothing in flight


# -- the LLM's failure verdict --------------------------------------------------------------------


def test_a_permanent_error_ends_the_llms_part_at_once() -> None:
    state = LLMState(RunRecord(None), max_failures=5)
    cause = "the endpoint refused the API key (401 invalid_api_key): set HELION_OPENEVOLVE_API_KEY"
    state.on_event({"event": "llm_request", "request": "1", "received_at": 1.0})
    state.on_event({"event": "llm_error", "request": "1", "category": "permanent", "cause": cause, "status": 401})
    assert state.failure == cause and state.failure_streak() == 1  # one failure of five allowed
    transient = LLMState(RunRecord(None), max_failures=5)
    transient.on_event({"event": "llm_request", "request": "1", "received_at": 1.0})
    transient.on_event({"event": "llm_error", "request": "1", "category": "transient", "status": 500})
    assert transient.failure is None


# -- the proposal desk ----------------------------------------------------------------------------


def _desk(
    cost: object = bowl, *, budget: int = 1000, ratio: bool = True, start: Config = START
) -> tuple[Results, AnswerDesk, AnswerCredit]:
    measured = Results(_DictBackend(SPACE, cost, minimize=True, exact=True), RunRecord(None), budget)  # type: ignore[arg-type]
    credit = AnswerCredit()
    measured.default = measured.measure([(dict(start), "default")], "default")[0]
    return measured, AnswerDesk(measured, credit, ratio_scores=ratio), credit


def _outcomes(measured: Results, desk: AnswerDesk, candidates: list[Config]) -> list[object]:
    proposal = Answer({"candidates": [dict(c) for c in candidates]})
    desk.serve([proposal], [], measured.measure, batch_size=6)
    return proposal.wait(threading.Event()).outcomes  # type: ignore[return-value]


def test_each_candidate_of_an_answer_is_answered_ok_duplicate_failed_or_skipped() -> None:
    measured, desk, _ = _desk(broken)
    fresh, failing = {"a": 1, "b": 0, "c": 0}, {"a": 0, "b": 0, "c": 5}
    out = _outcomes(measured, desk, [fresh, dict(START), failing])
    assert [o.status for o in out] == ["ok", "duplicate", "failed"]  # type: ignore[attr-defined]
    assert (out[1].cost, out[1].score) == (bowl(START), 1.0)  # type: ignore[attr-defined]  # the default's own
    assert "RuntimeError: this config fails" in out[2].reason and out[2].score is None  # type: ignore[attr-defined]
    assert measured.best is not None and measured.best.candidate == fresh
    # the budget spent: the rest is answered skipped, with that reason
    measured, desk, _ = _desk(budget=2)
    out = _outcomes(measured, desk, [{"a": 1, "b": 0, "c": 0}, {"a": 2, "b": 0, "c": 0}])
    assert [(o.status, o.reason) for o in out] == [  # type: ignore[attr-defined]
        ("ok", ""),
        ("skipped", "the evaluation budget was spent"),
    ]


def test_answers_that_bring_nothing_better_get_a_smaller_share_of_the_batch() -> None:
    measured, desk, credit = _desk(start={"a": 5, "b": 2, "c": 6})  # the optimum: nothing beats it
    credit.credit(True)  # one answer improved once, then two in a row brought nothing
    credit.credit(False)
    credit.credit(False)
    assert desk.quota == 6 >> 2 == 1
    six = [{"a": 7, "b": b, "c": 7} for b in range(6)]
    out = _outcomes(measured, desk, six)
    assert [o.status for o in out] == ["ok"] + ["skipped"] * 5  # type: ignore[attr-defined]
    assert "brought nothing better 3 times in a row" in out[1].reason  # type: ignore[attr-defined]
    assert measured.record.counters.evaluations == 2  # the default and one candidate


def test_raw_scores_are_the_negated_cost_below_zero_too() -> None:
    measured, desk, _ = _desk(lambda c: bowl(c) - 100.0, ratio=False)
    (out,) = _outcomes(measured, desk, [{"a": 5, "b": 2, "c": 6}])
    assert (out.cost, out.score) == (-99.0, 99.0)  # type: ignore[attr-defined]


# -- the history store ----------------------------------------------------------------------------


def tiny_kernel(x: object) -> object:
    return x


class _Log(list):
    """The search's logger: a callable with ``.warning``; keeps every line."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def warning(self, line: str) -> None:
        self.append(line)


def _load(root: Path, size: int, cached: list[int]) -> WarmStart:
    """WarmStart.load for a search of ``tiny_kernel`` on a float32 vector of ``size`` whose
    Helion cache holds the block sizes ``cached``; every config fits today's space."""
    search = SimpleNamespace(
        args=(torch.empty(size),),
        oe_settings=SimpleNamespace(history=True, history_dir=str(root)),
        kernel=SimpleNamespace(kernel=SimpleNamespace(fn=tiny_kernel)),
        log=_Log(),
        config_spec=SimpleNamespace(backend_name="pallas"),
        settings=SimpleNamespace(autotune_best_available_max_configs=5),
        _get_current_hardware_and_specialization=lambda: ("cpu", None),
        _find_similar_cached_configs=lambda n: [SimpleNamespace(config=helion.Config(block_sizes=[b])) for b in cached],
    )
    return WarmStart.load(search, search.oe_settings, lambda raw: helion.Config(**raw))  # type: ignore[arg-type]


def _store(root: Path) -> HistoryStore:
    """The store ``_load`` reads (the same kernel, source hash and device)."""
    source = textwrap.dedent(inspect.getsource(tiny_kernel))
    return HistoryStore(
        root,
        kernel=tiny_kernel.__qualname__,
        source_sha256=hashlib.sha256(source.encode()).hexdigest(),
        device="pallas-cpu",
        warn=lambda _: None,
    )


def _pick(block: int, cost: float) -> HistoryEntry:
    return HistoryEntry({"block_sizes": [block]}, cost, 2.0, "2025-01-01T00:00:00+00:00", "openevolve")


def _blocks(configs: list[helion.Config]) -> list[int]:
    return [c.config["block_sizes"][0] for c in configs]  # type: ignore[index]


def test_history_seeds_this_shapes_picks_then_helions_cache_then_the_nearest_shapes(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.add(("float32[64]",), _pick(16, 2.0))
    store.add(("float32[64]",), _pick(8, 1.0))
    store.add(("float32[128]",), _pick(32, 0.5))  # one size step away
    store.add(("float32[1024]",), _pick(4, 0.1))  # four steps away: nearer shapes first, whatever the cost
    warm = _load(tmp_path, 64, cached=[16, 2])
    assert [(k.distance, _blocks([k.config])[0]) for k in warm.known] == [(0.0, 8), (0.0, 16), (1.0, 32), (4.0, 4)]
    # this shape's picks (lowest cost first), then Helion's cache (16 again counts once), capped
    assert _blocks(warm.seeds) == [8, 16, 2][: history.MAX_SEEDS]
    assert _blocks(_load(tmp_path, 256, cached=[]).seeds) == [32, 4, 8]  # none on this shape: nearest, then cheapest


def test_history_keeps_the_lowest_costs_per_shape_one_entry_per_config(tmp_path: Path) -> None:
    store = _store(tmp_path)
    shape = ("float32[64]",)
    for block, cost in [(1, 7.0), (2, 6.0), (3, 5.0), (4, 4.0), (5, 3.0), (6, 2.0), (7, 1.0), (7, 1.5)]:
        store.add(shape, _pick(block, cost))
    kept = [(e.config["block_sizes"][0], e.cost) for _, e in store.read()]  # type: ignore[index]
    # block 7's newest measurement replaces its older one
    assert kept == [(7, 1.5), (6, 2.0), (5, 3.0), (4, 4.0), (3, 5.0)][: history.KEEP_PER_SHAPE]


def test_history_never_keeps_or_reads_a_non_finite_cost(tmp_path: Path) -> None:
    store = _store(tmp_path)
    warm = _load(tmp_path, 64, cached=[])
    for cost in (math.inf, math.nan):
        warm.remember(helion.Config(block_sizes=[8]), {"best_cost": cost, "default_cost": 1.0, "mode": "fallback"})
    assert list(tmp_path.rglob("*.json")) == []  # nothing written
    path = store.path(("float32[64]",))
    store.add(("float32[64]",), _pick(8, 1.0))
    path.write_text(path.read_text().replace('"cost": 1.0', '"cost": Infinity'))
    said: list[str] = []
    store.warn = said.append
    assert store.read() == [] and "no finite cost" in said[0]
