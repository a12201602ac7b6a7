"""The loop's parts on their own, without processes or an LLM: refinement paths, the stop rule,
the answer credit and the proposal desk, against a dict space with a known cost landscape.

The loop that ties them is exercised by the end-to-end tests; here the rules are checked exactly.
"""

from __future__ import annotations

import math
import threading

from helion.autotuner.openevolve.adapters.config_space import _DictBackend
from helion.autotuner.openevolve.loop.answers import AnswerDesk
from helion.autotuner.openevolve.loop.measure import Results
from helion.autotuner.openevolve.loop.paths import RefinementPaths
from helion.autotuner.openevolve.loop.record import RunRecord
from helion.autotuner.openevolve.loop.result import Measurement
from helion.autotuner.openevolve.loop.server import Answer
from helion.autotuner.openevolve.loop.stop_rule import MAX_STAGNANT_ANSWERS
from helion.autotuner.openevolve.loop.stop_rule import AnswerCredit
from helion.autotuner.openevolve.loop.stop_rule import StopRule
from helion.autotuner.openevolve.loop.stop_rule import knowledge_first

LEVELS = list(range(8))
SPACE = {"a": LEVELS, "b": LEVELS, "c": LEVELS}
Config = dict[str, int]


def bowl(c: Config) -> float:
    return 1.0 + abs(c["a"] - 5) + abs(c["b"] - 2) + abs(c["c"] - 6)


def setup(cost: object, **kw: object) -> tuple[Results, RefinementPaths]:
    backend = _DictBackend(SPACE, cost, minimize=True)  # type: ignore[arg-type]
    shape = {"starts": 1, "steps": 20, "min_improvement": 0.001, "prune_ratio": math.inf, **kw}
    measured = Results(backend, RunRecord(None), max_evaluations=1000, min_improvement=shape["min_improvement"])
    return measured, RefinementPaths(**shape)  # type: ignore[arg-type]


def refine(measured: Results, paths: RefinementPaths, want: int = 6) -> int:
    """Measure refinement batches until the paths converge, each verified against its paths'
    incumbents as the driver does; the number of batches."""
    batches = 0
    while batch := paths.batch(measured, want):
        measured.measure([(c, "refine") for c in batch], "refine", rival_of=paths.incumbent_of)
        batches += 1
        assert batches < 500
    return batches


def refine_from(cost: object, start: Config, **kw: object) -> tuple[Results, RefinementPaths]:
    measured, paths = setup(cost, **kw)
    measured.measure([(dict(start), "default")], "default")
    refine(measured, paths)
    return measured, paths


def test_a_path_walks_downhill_to_the_optimum_and_stops() -> None:
    measured, paths = refine_from(bowl, {"a": 0, "b": 7, "c": 0})
    assert measured.best is not None
    assert measured.best.candidate == {"a": 5, "b": 2, "c": 6}
    # one neighbourhood (at most 6 configs) per step on the way, far below the 512 configs
    assert measured.record.counters.evaluations <= 1 + 6 * 15
    assert paths.converged


def test_a_path_ends_at_a_local_optimum_and_an_outside_best_starts_another() -> None:
    def two_basins(c: Config) -> float:
        # a local optimum at a=0 (cost 2) and the global one at a=7 (cost 0), a ridge between
        return {0: 2.0, 1: 3.0, 2: 4.0, 3: 5.0, 4: 5.0, 5: 4.0, 6: 3.0, 7: 0.0}[c["a"]] + c["b"] + c["c"]

    measured, paths = refine_from(two_basins, {"a": 1, "b": 0, "c": 0})
    assert measured.best.candidate == {"a": 0, "b": 0, "c": 0}  # stuck, as pattern search is
    evaluated = measured.record.counters.evaluations
    # an LLM proposal that is not among the best configs starts nothing
    measured.measure([({"a": 6, "b": 3, "c": 3}, "llm")], "llm")
    assert paths.batch(measured, 6) == []
    # one that is the best measured starts a path, which walks to the global optimum
    measured.measure([({"a": 7, "b": 1, "c": 0}, "llm")], "llm")
    refine(measured, paths)
    assert measured.best.candidate == {"a": 7, "b": 0, "c": 0}
    assert measured.record.counters.evaluations > evaluated + 2


def test_paths_start_at_the_best_configs_of_any_source() -> None:
    measured, paths = setup(bowl, starts=2)
    measured.measure([({"a": 0, "b": 0, "c": 0}, "default"), ({"a": 0, "b": 7, "c": 0}, "seed")], "first")
    measured.measure([({"a": 4, "b": 2, "c": 6}, "llm"), ({"a": 5, "b": 3, "c": 6}, "llm")], "llm")
    paths.update(measured)
    # the two LLM configs are the two best measured: the paths start there, not at the seeds
    starts = {measured.backend.key(measured[p.incumbent].candidate) for p in paths.live}
    assert starts == {measured.backend.key({"a": 4, "b": 2, "c": 6}), measured.backend.key({"a": 5, "b": 3, "c": 6})}


def test_neighbours_claimed_by_a_path_that_ended_early_go_to_a_live_path() -> None:
    """A path pruned before its neighbourhood was measured gives up its claims: the live path
    next to one of them claims and measures it (before, nothing ever measured it again: a
    random search for the fallback missed the optimum of a 60-config space on some seeds)."""
    measured, paths = setup(bowl, starts=2, prune_ratio=1.05)
    behind, leader, shared = {"a": 5, "b": 2, "c": 2}, {"a": 5, "b": 2, "c": 4}, {"a": 5, "b": 2, "c": 3}
    key = measured.backend.key
    measured.measure([(behind, "default")], "default")
    paths.update(measured)  # its path claims its neighbours, ``shared`` among them
    assert paths._claimer[key(shared)] == key(behind)
    measured.measure([(leader, "llm")], "llm")  # cost 3 against 5: the first path is behind
    paths.update(measured)
    assert [measured[p.incumbent].candidate for p in paths.live] == [leader]
    assert paths.claimed[key(behind)] == []  # nothing of it was measured: all given up
    assert paths._claimer[key(shared)] == key(leader)
    assert shared in paths.batch(measured, 10)
    refine(measured, paths)
    assert measured.best.candidate == {"a": 5, "b": 2, "c": 6}


def test_a_path_that_falls_clearly_behind_ends_and_the_leader_gets_its_steps() -> None:
    measured, paths = setup(bowl, starts=3, steps=5, prune_ratio=1.25)
    measured.measure([({"a": 0, "b": 0, "c": 0}, "default"), ({"a": 0, "b": 7, "c": 0}, "seed")], "first")
    paths.update(measured)
    assert len(paths.live) == 2
    measured.measure([({"a": 4, "b": 2, "c": 6}, "llm")], "llm")  # cost 2: the seeds' paths (12, 14) are far behind
    paths.update(measured)
    assert [measured[p.incumbent].candidate for p in paths.live] == [{"a": 4, "b": 2, "c": 6}]
    assert paths.live[0].steps == 5 + 2 * 4  # the two dropped paths had 4 neighbourhoods left each
    refine(measured, paths)
    assert measured.best.candidate == {"a": 5, "b": 2, "c": 6}
    assert (measured.best.source, measured.best.origin) == ("refine", "llm")  # found from the LLM's config


def test_the_best_is_settled_once_its_path_ended_at_a_local_optimum_and_paths_behind_it_can_end() -> None:
    measured, paths = setup(bowl, starts=2)
    measured.measure([({"a": 0, "b": 0, "c": 0}, "default"), ({"a": 0, "b": 7, "c": 0}, "seed")], "first")
    paths.update(measured)
    measured.measure([({"a": 5, "b": 2, "c": 6}, "llm")], "llm")  # the optimum, told by the LLM
    paths.update(measured)
    assert len(paths.live) == 2  # it starts a path; the seed's is behind but within prune_ratio
    assert not paths.settled(measured) and paths.end_behind(measured) == 0  # its neighbourhood is unmeasured
    # measure the optimum's neighbourhood only: nothing there is faster, its path ends there
    optimum = measured.backend.key({"a": 5, "b": 2, "c": 6})
    measured.measure([(c, "refine") for c in paths.claimed[optimum]], "refine")
    paths.update(measured)
    assert paths.settled(measured)
    behind = len(paths.live)
    assert behind == 1 and measured[paths.live[0].incumbent].cost > measured.best.cost  # the seed's path
    assert paths.end_behind(measured) == behind
    assert paths.converged and paths.batch(measured, 6) == []


def test_a_knowledge_tie_starts_a_path_only_while_a_path_walks_clearly_behind_it() -> None:
    """A knowledge config level with the best and not next to it: a path starts at it (its
    neighbourhood confirms it, and the paths behind it can then end) only while a live path
    walks clearly behind it; with none behind, confirming it could end nothing and it costs no
    neighbourhood."""

    def two_optima(c: Config) -> float:
        return 1.0 + min(
            abs(c["a"] - 5) + abs(c["b"] - 2) + abs(c["c"] - 6), abs(c["a"] - 1) + abs(c["b"] - 6) + c["c"]
        )

    tie = {"a": 1, "b": 6, "c": 0}
    for first, confirmed in (
        ([({"a": 5, "b": 2, "c": 6}, "default"), ({"a": 5, "b": 2, "c": 3}, "seed")], True),  # the seed's path: cost 4
        ([({"a": 5, "b": 2, "c": 6}, "default")], False),
    ):
        measured, paths = setup(two_optima, starts=2)
        key = measured.backend.key
        measured.measure(first, "first")
        paths.update(measured)
        measured.measure([(tie, "llm")], "llm")
        assert measured.ties_best(measured[key(tie)]) and paths.add_peer(key(tie))
        paths.update(measured)
        assert (key(tie) in paths.claimed) is confirmed
        refine(measured, paths)
        assert paths.at_optimum(key(tie)) is confirmed
        around = [n for n in measured.backend.neighbors(tie) if key(n) in measured]
        assert bool(around) is confirmed


def test_knowledge_leads_when_the_llm_or_history_brought_the_best() -> None:
    """A settled best that the LLM or an earlier search brought ends the search at once (it
    waits for no more answers); a config of any other origin never ends the paths behind it."""
    assert "LLM's best config is settled" in str(knowledge_first("llm"))
    assert "earlier search's pick, is settled" in str(knowledge_first("history"))
    for origin in ("default", "seed", "random", "fallback", "refine"):
        assert knowledge_first(origin) is None


def test_a_best_found_by_a_live_path_is_not_settled() -> None:
    measured, paths = setup(bowl)
    measured.measure([({"a": 3, "b": 2, "c": 6}, "default")], "default")
    measured.measure([(c, "refine") for c in paths.batch(measured, 6)], "refine")
    paths.update(measured)  # moved to a=4 (cost 2): its neighbourhood is not measured yet
    assert paths.live and measured.best.cost == 2.0
    assert not paths.settled(measured) and paths.end_behind(measured) == 0 and paths.live


def test_failed_neighbours_never_become_incumbents() -> None:
    def cost(c: Config) -> float:
        return math.nan if c["a"] == 4 else bowl(c)  # a crashing config right next to the start

    backend = _DictBackend(SPACE, cost, minimize=True)
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    paths = RefinementPaths(starts=1, steps=20, min_improvement=0.001, prune_ratio=math.inf)
    measured.measure([({"a": 3, "b": 2, "c": 6}, "default")], "default")
    refine(measured, paths)
    assert measured.best.candidate["a"] == 3
    failed = [e for e in measured.entries.values() if not e.measurement.ok]
    assert failed and all(e.candidate["a"] == 4 for e in failed)


def test_several_starts_refine_each_neighbourhood_once() -> None:
    measured, _ = refine_from(bowl, {"a": 5, "b": 2, "c": 6}, starts=3)
    # the start is already optimal: exactly its 6 neighbours are measured, then it stops
    assert measured.record.counters.evaluations == 1 + 6


def test_a_path_stops_after_its_steps() -> None:
    measured, _ = refine_from(bowl, {"a": 0, "b": 7, "c": 0}, steps=2)
    # the start's neighbourhood, one move downhill and that incumbent's neighbourhood (as
    # PatternSearch's max_generations counts generations), then the path stops
    assert measured.best.cost == bowl({"a": 0, "b": 7, "c": 0}) - 2


def test_two_paths_that_meet_do_not_walk_the_same_ground() -> None:
    def cost(c: Config) -> float:  # a valley along a; every step in b or c costs 1
        return {0: 5.0, 1: 3.0, 2: 4.0}.get(c["a"], 9.0) + c["b"] + c["c"]

    measured, paths = setup(cost, starts=2)
    first, second = {"a": 1, "b": 0, "c": 0}, {"a": 2, "b": 1, "c": 0}  # costs 3 and 5
    measured.measure([(first, "default"), (second, "seed")], "default and seed configs")
    refine(measured, paths)
    key = measured.backend.key
    first_claims = {key(c) for c in paths.claimed[key(first)]}
    second_claims = {key(c) for c in paths.claimed[key(second)]}
    # the best start claims its 4 neighbours first, two of which neighbour the second start too
    assert len(first_claims) == 4 and len(second_claims) == 3
    assert not first_claims & second_claims
    assert measured.record.counters.evaluations == 2 + 4 + 3
    assert paths.converged and measured.best.candidate == first


def test_a_path_does_not_move_on_a_gain_within_the_noise_floor() -> None:
    def shallow(c: Config) -> float:  # each step downhill gains 0.05%, under the 0.1% floor
        return 1000.0 + 0.5 * (bowl(c) - 1.0)

    start = {"a": 0, "b": 7, "c": 0}
    measured, paths = setup(shallow)
    measured.measure([(dict(start), "default")], "default")
    assert refine(measured, paths) == 1  # the start's neighbourhood, then the path ends
    assert measured.best.cost == shallow(start)  # a gain under the floor is a tie: the start stays the best
    measured, _ = refine_from(shallow, start, min_improvement=0.0)  # without the floor: walked down
    assert measured.best.cost == 1000.0


# -- the stop rule --------------------------------------------------------------------------------


def decide(rule: StopRule, now: float, **kw: object) -> tuple[str, str]:
    args = {"elapsed": now, "busy": False, "llm_live": True, "stagnant_answers": 0, "next_answer_due": math.inf}
    return rule.decide(now=now, **{**args, **kw})  # type: ignore[arg-type]


def test_stop_rule_caps() -> None:
    rule = StopRule(llm_timeout_s=60.0, deadline=100.0)
    assert rule.caps(now=10.0, remaining_evaluations=0) == "the evaluation budget is spent"
    assert rule.caps(now=100.0, remaining_evaluations=5) == "the time budget (max_seconds) is spent"
    assert rule.caps(now=10.0, remaining_evaluations=5) is None
    spent = [False]
    rule = StopRule(llm_timeout_s=60.0, budget_exceeded=lambda: spent[0])
    assert rule.caps(now=10.0, remaining_evaluations=5) is None
    spent[0] = True  # the caller's (Helion's) budget check
    assert rule.caps(now=10.0, remaining_evaluations=5) == "Helion's autotune budget is spent"


def test_converged_search_stops_when_the_llm_is_gone_or_stagnant() -> None:
    assert decide(StopRule(llm_timeout_s=60.0), 50.0, llm_live=False)[0] == "stop"
    decision, why = decide(StopRule(llm_timeout_s=60.0), 50.0, stagnant_answers=MAX_STAGNANT_ANSWERS)
    assert decision == "stop" and "brought nothing better" in why


def test_converged_search_waits_a_tenth_of_its_time_for_an_answer_due_within_it() -> None:
    rule = StopRule(llm_timeout_s=60.0)
    # converged at 30 s: waits at most 3 s, and only for an answer due before then
    assert decide(rule, 30.0, next_answer_due=32.0)[0] == "wait"
    assert decide(rule, 31.0, elapsed=31.0, next_answer_due=32.0)[0] == "wait"
    assert decide(rule, 33.5, elapsed=33.5, next_answer_due=32.0)[0] == "stop"
    rule = StopRule(llm_timeout_s=60.0)
    decision, why = decide(rule, 30.0, next_answer_due=40.0)
    assert decision == "stop" and "no LLM answer is due" in why
    # the wait is capped by llm_timeout_s
    rule = StopRule(llm_timeout_s=1.0)
    assert decide(rule, 300.0, next_answer_due=300.5)[0] == "wait"
    assert decide(rule, 301.5, elapsed=301.5, next_answer_due=300.5)[0] == "stop"


def test_a_search_that_converged_before_any_answer_waits_for_the_first_one() -> None:
    rule = StopRule(llm_timeout_s=60.0, first_answer_wait_s=30.0)
    # converged 8 s in, the first round of requests (sent at the start) not answered yet
    assert decide(rule, 8.0, answers_used=0)[0] == "wait"
    assert decide(rule, 29.0, elapsed=29.0, answers_used=0)[0] == "wait"
    decision, why = decide(rule, 30.5, elapsed=30.5, answers_used=0)
    assert decision == "stop" and "no LLM answer came within 30 s" in why
    # an LLM that failed or was never there is not waited for
    assert (
        decide(StopRule(llm_timeout_s=60.0, first_answer_wait_s=30.0), 8.0, answers_used=0, llm_live=False)[0] == "stop"
    )


def test_any_measured_batch_restarts_the_convergence_clock() -> None:
    rule = StopRule(llm_timeout_s=60.0)
    assert decide(rule, 30.0, next_answer_due=32.0)[0] == "wait"  # converged at 30 s, waits until 33 s
    # a batch of LLM proposals (mixed with refinement or not) was measured from 31 s to 40 s
    rule.measured()
    # idle again at 40 s: a fresh wait of 4 s, not the stale one that ended at 33 s
    assert decide(rule, 40.0, next_answer_due=42.0)[0] == "wait"
    assert decide(rule, 43.0, elapsed=43.0, next_answer_due=42.0)[0] == "wait"


def test_busy_waits_for_the_llm_without_a_convergence_clock() -> None:
    rule = StopRule(llm_timeout_s=1.0)
    assert decide(rule, 500.0, busy=True)[0] == "wait"
    assert rule.converged_at is None


def test_answer_credit_counts_answers_in_a_row_that_brought_nothing_better() -> None:
    credit = AnswerCredit()
    assert credit.credit(True)
    assert not credit.credit(False)
    assert not credit.credit(False)
    assert (credit.improved, credit.stagnant) == (1, 2)
    assert credit.credit(True) and credit.stagnant == 0


# -- the proposal desk ----------------------------------------------------------------------------


def desk_setup() -> tuple[Results, AnswerDesk, AnswerCredit]:
    backend = _DictBackend(SPACE, bowl, minimize=True)
    measured = Results(backend, RunRecord(None), max_evaluations=1000)
    credit = AnswerCredit()
    return measured, AnswerDesk(measured, credit, ratio_scores=True), credit


def test_a_proposal_with_nothing_new_is_answered_before_the_batch_is_measured() -> None:
    measured, desk, _ = desk_setup()
    start = {"a": 0, "b": 0, "c": 0}
    measured.default = measured.measure([(dict(start), "default")], "default")[0]
    old = Answer({"candidates": [dict(start)]})  # an answer of configs measured before
    new = Answer({"candidates": [{"a": 7, "b": 7, "c": 7}]})
    answered_while_measuring: list[tuple[bool, bool]] = []

    def measure(items: list[tuple[Config, str]], desc: str) -> object:
        answered_while_measuring.append((old._done.is_set(), new._done.is_set()))
        return measured.measure(items, desc)  # type: ignore[arg-type]

    desk.serve([old, new], [], measure, batch_size=6)
    assert answered_while_measuring == [(True, False)]
    outcome = new.wait(threading.Event()).outcomes[0]
    assert (outcome.status, outcome.cost) == ("ok", bowl({"a": 7, "b": 7, "c": 7}))
    assert outcome.score == bowl(start) / bowl({"a": 7, "b": 7, "c": 7})


def test_answers_that_repeat_a_find_of_the_same_batch_are_not_credited_with_it() -> None:
    measured, desk, credit = desk_setup()
    measured.default = measured.measure([({"a": 0, "b": 0, "c": 0}, "default")], "default")[0]
    best = {"a": 5, "b": 2, "c": 6}
    answers = [Answer({"candidates": [dict(best), {"a": 1, "b": 1, "c": 1}]}) for _ in range(3)]
    desk.serve(answers, [], measured.measure, batch_size=6)
    # three parallel answers brought the same best: one found it, two repeated it
    assert (credit.improved, credit.stagnant) == (1, 2)
    assert measured.record.counters.by_source == {"default": 1, "llm": 2}
    assert [a.wait(threading.Event()).outcomes[0].status for a in answers] == ["ok", "ok", "ok"]


def test_invalid_candidates_are_answered_with_their_reason_and_recorded() -> None:
    measured, desk, credit = desk_setup()
    measured.default = measured.measure([({"a": 0, "b": 0, "c": 0}, "default")], "default")[0]
    bad = Answer({"candidates": [{"a": 99}, {"zzz": 1}], "rejected": [[2, "not a literal"]]})
    desk.serve([bad], [], measured.measure, batch_size=6)
    outcomes = bad.wait(threading.Event()).outcomes
    assert [o.status for o in outcomes] == ["invalid", "invalid"]
    assert "must be one of" in outcomes[0].reason and "unknown field" in outcomes[1].reason
    assert measured.record.counters.invalid == 3
    assert credit.stagnant == 1


def test_measurement_ok_means_finite_cost() -> None:
    assert Measurement(1.0).ok and not Measurement(math.inf, "error").ok


def test_the_rules_hold_for_negative_costs() -> None:
    """A maximised objective is minimised as -score, so costs can be negative."""

    def cost(c: Config) -> float:
        return bowl(c) - 100.0  # -99 at the optimum

    measured, paths = setup(cost, starts=2, prune_ratio=1.05)
    measured.measure([({"a": 0, "b": 7, "c": 0}, "default"), ({"a": 7, "b": 0, "c": 7}, "seed")], "first")
    refine(measured, paths)
    assert measured.best.candidate == {"a": 5, "b": 2, "c": 6}
    worse, better, base = (
        measured.entries[measured.backend.key(c)]
        for c in ({"a": 0, "b": 7, "c": 0}, {"a": 5, "b": 2, "c": 6}, {"a": 7, "b": 0, "c": 7})
    )
    assert measured.beats(better, base) and not measured.beats(worse, base)  # lower is better, below zero too
    assert not measured.beats(base, better)
