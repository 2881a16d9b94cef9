"""The parallel orchestrator: fan-out to N agents or N samples, concurrency limit, per-branch
timeout, failure policies, and aggregation (collect, vote, judge, any function)."""

import threading
import time
import uuid

import pytest

from graphflow import GraphValidationError
from graphflow.agents import (
    Agent,
    BranchFailedError,
    BranchResult,
    JudgeVerdict,
    Vote,
    create_parallel_orchestrator,
    llm_judge,
)
from graphflow.models import ScriptedModel


def says(name, *answers):
    return Agent(name, ScriptedModel(list(answers)), f"You are {name}.")


def answering(name, fn):
    return Agent(name, ScriptedModel(fn))


def ask(app, text="Capital of France?", **kw):
    return app.invoke({"messages": [("user", text)]}, **kw)


def branch(out, index):
    (result,) = [r for r in out["branches"] if r.index == index]
    return result


def test_samples_of_one_agent_and_a_majority_vote_with_a_normalising_key():
    solver = says("solver", "Paris", "paris.", "Lyon", " PARIS!", "lyon")
    out = ask(create_parallel_orchestrator(solver, samples=5, aggregate="vote"))
    vote = out["outcome"]
    assert isinstance(vote, Vote)
    assert (vote.winner, vote.votes, vote.total, vote.agreement, vote.tie) == (
        "Paris", 3, 5, 0.6, False)
    assert vote.counts == (("paris", 3), ("lyon", 2))
    assert out["messages"][-1].content == "Paris"
    assert len(solver.model.calls) == 5
    assert all(len(c) == 2 and c[1].content == "Capital of France?"
               for c in solver.model.calls)


def test_a_tie_is_reported_not_hidden():
    out = ask(create_parallel_orchestrator(
        [says("a", "Paris"), says("b", "Lyon"), says("c", "lyon"), says("d", "paris")],
        aggregate="vote"))
    vote = out["outcome"]
    assert vote.tie and vote.tied == ("Paris", "Lyon") and vote.agreement == 0.5
    assert vote.winner == "Paris"  # the tied answer given first, documented


def test_collect_keeps_branch_order_and_names_each_answer():
    out = ask(create_parallel_orchestrator([says("a", "one"), says("b", "two")]))
    assert out["outcome"] == ["one", "two"]
    assert out["messages"][-1].content == "[a #0]\none\n\n[b #1]\ntwo"
    assert [(r.index, r.agent) for r in out["branches"]] == [(0, "a"), (1, "b")]


def test_any_function_aggregates():
    out = ask(create_parallel_orchestrator(
        [says("a", "3"), says("b", "4")],
        aggregate=lambda results: sum(int(r.output) for r in results)))
    assert out["outcome"] == 7 and out["messages"][-1].content == "7"


def test_llm_judge_picks_and_merges():
    judge_model = ScriptedModel(['{"choice": 1, "reason": "more precise"}'])
    out = ask(create_parallel_orchestrator(
        [says("a", "about 2"), says("b", "exactly 2")], aggregate=llm_judge(judge_model)),
        "1+1?")
    assert out["outcome"] == JudgeVerdict(choice=1, answer="exactly 2", reason="more precise")
    prompt = judge_model.calls[0][-1].content
    assert "Question:\n1+1?" in prompt and "Answer 1 (from b):\nexactly 2" in prompt
    assert out["usage"]["judge"]["calls"] == 1

    merger = ScriptedModel(['{"answer": "2 (both agree)", "reason": "same"}'])
    out = ask(create_parallel_orchestrator(
        [says("a", "2"), says("b", "two")], aggregate=llm_judge(merger, mode="merge")))
    assert out["messages"][-1].content == "2 (both agree)"


def test_a_judge_choosing_a_missing_answer_is_an_error():
    judge_model = ScriptedModel(['{"choice": 5, "reason": "?"}'])
    app = create_parallel_orchestrator([says("a", "x")], aggregate=llm_judge(judge_model))
    with pytest.raises(ValueError, match="chose answer 5, but there are 1"):
        ask(app)


def test_max_concurrency_bounds_the_branches_running_at_once():
    running = []
    peak = []
    lock = threading.Lock()

    def slow(messages):
        with lock:
            running.append(1)
            peak.append(len(running))
        time.sleep(0.02)
        with lock:
            running.pop()
        return "ok"

    agents = [answering(f"w{i}", slow) for i in range(6)]
    out = ask(create_parallel_orchestrator(agents, max_concurrency=2))
    assert len(out["outcome"]) == 6
    assert max(peak) == 2


def test_branches_run_at_the_same_time_without_a_limit():
    barrier = threading.Barrier(3, timeout=10)

    def meet(messages):
        barrier.wait()  # breaks (and the branch fails) unless all three overlap
        return "met"

    out = ask(create_parallel_orchestrator([answering(f"w{i}", meet) for i in range(3)],
                                           fail_fast=True))
    assert out["outcome"] == ["met"] * 3


def test_a_branch_over_its_timeout_fails_and_the_others_go_on():
    release = threading.Event()

    def stuck(messages):
        release.wait(30)
        return "too late"

    app = create_parallel_orchestrator(
        [answering("slow", stuck), says("fast", "quick"), says("other", "also")],
        timeout=0.5)
    try:
        out = ask(app)
    finally:
        release.set()
    slow = branch(out, 0)
    assert (slow.status, slow.error) == ("timeout", "no answer within 0.5s")
    assert out["outcome"] == ["quick", "also"]


def broken(name):
    def fail(messages):
        raise RuntimeError(f"{name} is broken")

    return answering(name, fail)


def test_keep_going_reports_failures_next_to_the_outcome():
    out = ask(create_parallel_orchestrator([broken("x"), says("a", "fine")], aggregate="vote"))
    assert out["outcome"].winner == "fine"
    failed = branch(out, 0)
    assert failed.status == "failed" and "x is broken" in failed.error


def test_fewer_than_k_successes_is_an_error_listing_the_failures():
    app = create_parallel_orchestrator([broken("x"), broken("y"), says("a", "fine")],
                                       min_successes=2)
    with pytest.raises(BranchFailedError) as info:  # raised in a node: as itself
        ask(app)
    err = info.value
    assert "1 of 3 branches succeeded, 2 needed" in str(err)
    assert [f.agent for f in err.failures] == ["x", "y"]


def test_once_k_cannot_be_reached_branches_not_started_are_cancelled():
    started = []

    def record(messages):
        started.append(1)
        return "late"

    agents = [broken("x"), broken("y"), answering("z", record)]
    app = create_parallel_orchestrator(agents, min_successes=2, max_concurrency=1)
    with pytest.raises(BranchFailedError) as info:
        ask(app)
    statuses = [f.status for f in info.value.failures]
    assert statuses == ["failed", "failed", "cancelled"] and started == []


def test_fail_fast_fails_the_run_at_the_first_failure():
    app = create_parallel_orchestrator([says("a", "fine"), broken("x")], fail_fast=True)
    with pytest.raises(BranchFailedError, match="x is broken") as info:
        ask(app)
    assert "branch 1 (x) failed" in str(info.value)


def test_settings_are_checked():
    a = says("a")
    with pytest.raises(GraphValidationError, match="samples= needs exactly one agent"):
        create_parallel_orchestrator([a, says("b")], samples=3)
    with pytest.raises(GraphValidationError, match="min_successes"):
        create_parallel_orchestrator([a], min_successes=2)
    with pytest.raises(ValueError, match="aggregate"):
        create_parallel_orchestrator([a], aggregate="average")
    with pytest.raises(GraphValidationError, match="two different graphs are named 'a'"):
        create_parallel_orchestrator([a, says("a")])


def test_a_resumed_run_does_not_ask_finished_branches_again(saver):
    failures = []

    def flaky_aggregate(results):
        if not failures:
            failures.append(1)
            raise RuntimeError("aggregation crashed")
        return len(results)

    solver = answering("solver", lambda msgs: "answer")
    app = create_parallel_orchestrator(solver, samples=4, aggregate=flaky_aggregate,
                                       checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="aggregation crashed"):
        ask(app, thread=thread)
    out = app.invoke(None, thread=thread)
    assert out["outcome"] == 4 and len(solver.model.calls) == 4


def test_usage_per_agent_sums_the_samples():
    out = ask(create_parallel_orchestrator(says("s", "a", "b", "c"), samples=3))
    assert out["usage"]["s"]["calls"] == 3


def test_branches_stream_under_their_agent_and_draw_as_clusters():
    app = create_parallel_orchestrator([says("a", "x"), says("b", "y")], aggregate="vote")
    paths = {p for p, _ in app.stream({"messages": [("user", "q")]}, subgraphs=True)}
    assert paths == {(), ("a",), ("b",)}
    drawn = app.get_graph(expand_subgraphs=True)
    assert drawn.nodes["a:agent"]["cluster"] == ("a",)
    assert app.get_graph().nodes["fan_out"]["kind"] == "router"


def test_branch_results_are_data():
    r = BranchResult(index=0, agent="a", status="done", output="x")
    assert r.ok and not BranchResult(index=1, agent="a", status="timeout").ok


def test_a_new_question_on_the_thread_is_voted_on_its_own_answers(saver):
    app = create_parallel_orchestrator(says("s", "A", "A", "B", "B"), samples=2,
                                       aggregate="vote", checkpointer=saver)
    thread = uuid.uuid4().hex
    assert ask(app, "first", thread=thread)["outcome"].winner == "A"
    out = ask(app, "second", thread=thread)
    assert (out["outcome"].winner, out["outcome"].total) == ("B", 2)
    assert len(out["branches"]) == 4 and out["branches_start"] == 2
