"""The hierarchical orchestrator: plans as validated data, DAG execution in waves, isolated
specialists, replanning, nesting, budgets, usage, durability and interrupts. ScriptedModel only
(the real SDKs: test_orchestrators_e2e.py)."""

import json
import sqlite3
import threading
import uuid
from pathlib import Path

import pytest
from graphflow.tools import tool

from graphflow import AIMessage, Command, GraphValidationError, ToolCall
from graphflow.agents import (
    Agent,
    Plan,
    PlanTask,
    PlanValidationError,
    TaskResult,
    create_hierarchical_orchestrator,
    total_usage,
    validate_plan,
)
from graphflow.models import ScriptedModel
from graphflow.testing import crash_test

SUPPORT = str(Path(__file__).parent / "support")


def task(id, assignee, *deps, description=None):
    return {"id": id, "description": description or f"do {id}", "assignee": assignee,
            "depends_on": list(deps)}


def plan(*tasks):
    return json.dumps({"tasks": list(tasks)})


def manager(*plans, answer="final answer"):
    """A manager that answers with the plans in order, then synthesizes ``answer``."""
    queue = list(plans)

    def reply(messages):
        if "Results of the team" in messages[-1].content:
            return answer
        return queue.pop(0)

    return ScriptedModel(reply)


def echo(name):
    """A specialist that answers '<name> did <task id>'."""

    def reply(messages):
        text = messages[-1].content
        return f"{name} did {text.split('(')[1].split(')')[0]}"

    return Agent(name, ScriptedModel(reply), f"You are the {name}.",
                 description=f"the {name}")


def ask(app, text="build the report", **kw):
    return app.invoke({"messages": [("user", text)]}, **kw)


# -- plans are data -------------------------------------------------------------------------------

NAMES = ["researcher", "writer"]


def as_plan(*tasks):
    return Plan(tasks=[PlanTask(**t) for t in tasks])


def test_validate_plan_accepts_a_dag():
    p = as_plan(task("a", "researcher"), task("b", "researcher"), task("c", "writer", "a", "b"))
    assert validate_plan(p, NAMES) == []


def test_validate_plan_names_each_problem():
    p = as_plan(task("a", "designer"), task("a", "writer"), task("b", "writer", "zz"),
                task("c", "writer", "c"), task(" ", "writer"))
    problems = validate_plan(p, NAMES)
    assert ("task 'a' is assigned to 'designer', who is not a specialist; assign it to one "
            "of: researcher, writer") in problems
    assert "task id 'a' is used by 2 tasks; give each task its own id" in problems
    assert "task 'b' depends on 'zz', which is not a task of the plan" in problems
    assert "task 'c' depends on itself; remove that dependency" in problems
    assert any(p.startswith("task #5 has an empty id") for p in problems)


def test_validate_plan_finds_cycles_with_networkx():
    p = as_plan(task("a", "writer", "c"), task("b", "writer", "a"), task("c", "writer", "b"))
    (problem,) = validate_plan(p, NAMES)
    assert "depend on each other in a cycle" in problem
    assert all(f"'{x}'" in problem for x in "abc")


def test_validate_plan_limits_and_earlier_results():
    p = as_plan(task("a", "writer"), task("b", "writer", "old_ok", "old_bad"),
                task("old_ok", "writer"))
    done = {"old_ok": TaskResult(id="old_ok", assignee="writer", status="done"),
            "old_bad": TaskResult(id="old_bad", assignee="writer", status="failed")}
    problems = validate_plan(p, NAMES, max_tasks=2, done=done)
    assert "the plan has 3 tasks, more than the 2 allowed; merge some" in problems
    assert "task 'b' depends on 'old_bad', which failed; plan around it" in problems
    assert ("task id 'old_ok' is already used by an earlier task (done); use a new id"
            in problems)
    assert not any("'old_ok', which" in p for p in problems)


# -- running --------------------------------------------------------------------------------------

def steps_of(app, **kw):
    """{node: [step, ...]} of the tasks that ran, from the debug stream."""
    steps = {}
    for event in app.stream({"messages": [("user", "go")]}, mode="debug", **kw):
        if event["type"] == "task":
            steps.setdefault(event["node"], []).append(event["step"])
    return steps


def test_the_plan_runs_as_a_dag_in_waves_with_isolated_specialists():
    researcher, writer = echo("researcher"), echo("writer")
    boss = manager(plan(task("t1", "researcher"), task("t2", "researcher"),
                        task("t3", "writer", "t1", "t2"), task("t4", "researcher", "t3")))
    app = create_hierarchical_orchestrator(boss, [researcher, writer])
    steps = steps_of(app)
    # wave 1: t1 and t2 together; wave 2: t3; wave 3: t4
    assert steps["researcher"][0] == steps["researcher"][1] < steps["writer"][0]
    assert steps["writer"][0] < steps["researcher"][2]
    # the writer saw its task and its dependencies' results only
    (writer_call,) = writer.model.calls
    assert [type(m).__name__ for m in writer_call] == ["SystemMessage", "HumanMessage"]
    text = writer_call[1].content
    assert text.startswith("Your task (t3): do t3")
    assert "[t1, by researcher]\nresearcher did t1" in text and "researcher did t2" in text
    assert "go" not in text.split("\n")  # not the user's conversation
    # the researcher's third task comes with its own earlier exchanges, not the writer's
    third = researcher.model.calls[2]
    contents = [m.content for m in third[1:]]
    assert contents[:2] in (["Your task (t1): do t1", "researcher did t1"],
                            ["Your task (t2): do t2", "researcher did t2"])
    assert len(third) == 6 and "writer did t3" in third[-1].content
    assert not any("writer did" in c for c in contents[:-1])


def test_the_answer_is_synthesized_from_the_results():
    boss = manager(plan(task("t1", "researcher"), task("t2", "writer", "t1")),
                   answer="the synthesis")
    out = ask(create_hierarchical_orchestrator(boss, [echo("researcher"), echo("writer")],
                                               name="team"))
    final = out["messages"][-1]
    assert final.content == "the synthesis" and final.name == "team"
    report = boss.calls[-1][-1].content
    assert "[t1, by researcher] done:\nresearcher did t1" in report
    assert {k: v.status for k, v in out["results"].items()} == {"t1": "done", "t2": "done"}


def test_max_concurrency_splits_waves():
    boss = manager(plan(*(task(f"t{i}", "researcher") for i in range(4))))
    app = create_hierarchical_orchestrator(boss, [echo("researcher")], max_concurrency=2)
    steps = steps_of(app)["researcher"]
    assert len(steps) == 4 and len(set(steps)) == 2


def test_a_plan_with_no_tasks_lets_the_manager_answer():
    boss = manager(plan(), answer="I can answer that myself")
    out = ask(create_hierarchical_orchestrator(boss, [echo("researcher")]))
    assert out["messages"][-1].content == "I can answer that myself" and out["results"] == {}


def test_an_invalid_plan_goes_back_to_the_manager_with_the_exact_problems():
    bad = plan(task("t1", "designer"), task("t2", "writer", "t3"), task("t3", "writer", "t2"))
    good = plan(task("t1", "writer"))
    boss = manager("this is not json", bad, good)
    out = ask(create_hierarchical_orchestrator(boss, [echo("researcher"), echo("writer")]))
    assert out["results"]["t1"].output == "writer did t1"
    first_feedback = boss.calls[1][-1].content
    assert "not a plan in the required JSON format" in first_feedback
    second_feedback = boss.calls[2][-1].content
    assert "task 't1' is assigned to 'designer', who is not a specialist" in second_feedback
    assert "depend on each other in a cycle" in second_feedback
    assert boss.calls[2][-2].content == bad  # the manager sees its own rejected plan


def test_the_plan_attempts_are_bounded():
    boss = manager(*[plan(task("t1", "nobody"))] * 5)
    app = create_hierarchical_orchestrator(boss, [echo("writer")], max_plan_attempts=2,
                                           name="team")
    with pytest.raises(PlanValidationError) as info:  # raised in the plan node: as itself
        ask(app)
    err = info.value
    assert err.attempts == 2 and err.orchestrator == "team"
    assert err.problems == ["task 't1' is assigned to 'nobody', who is not a specialist; "
                            "assign it to one of: writer"]
    assert len(boss.calls) == 2


def failing(name, fail_on):
    def reply(messages):
        if fail_on in messages[-1].content:
            raise RuntimeError(f"{name} cannot do {fail_on}")
        return f"{name} did it"

    return Agent(name, ScriptedModel(reply), description=f"the {name}")


def test_a_failed_task_makes_the_manager_replan_the_rest():
    boss = manager(plan(task("t1", "researcher"), task("t2", "writer", "t1")),
                   plan(task("t3", "researcher", "t1")), answer="done anyway")
    app = create_hierarchical_orchestrator(boss, [echo("researcher"),
                                                  failing("writer", "(t2)")])
    out = ask(app)
    assert {k: v.status for k, v in out["results"].items()} == {
        "t1": "done", "t2": "failed", "t3": "done"}
    assert "writer cannot do (t2)" in out["results"]["t2"].error
    assert out["replans"] == 1
    progress = boss.calls[1][-1].content
    assert progress.startswith("Progress so far:")
    assert "[t2, by writer] FAILED: RuntimeError" in progress and "researcher did t1" in progress
    assert "FAILED" in boss.calls[-1][-1].content  # the synthesis knows too


def test_without_replanning_failures_and_skipped_tasks_are_reported():
    boss = manager(plan(task("t1", "writer"), task("t2", "researcher", "t1"),
                        task("t3", "researcher")))
    app = create_hierarchical_orchestrator(boss, [echo("researcher"), failing("writer", "t1")],
                                           replan_on_failure=False)
    out = ask(app)
    assert {k: v.status for k, v in out["results"].items()} == {"t1": "failed", "t3": "done"}
    report = boss.calls[-1][-1].content
    assert "[t2, for researcher] not done (it needs a task that failed)" in report


def test_a_specialist_may_be_an_orchestrator_within_the_depth_limit():
    inner = create_hierarchical_orchestrator(
        manager(plan(task("i1", "analyst")), answer="inner report"), [echo("analyst")],
        name="research_team")
    outer = create_hierarchical_orchestrator(
        manager(plan(task("t1", "research_team")), answer="outer answer"),
        [inner, echo("writer")], name="company")
    out = ask(outer)
    assert out["results"]["t1"].output == "inner report"
    assert {"manager", "research_team/manager", "research_team/analyst"} <= set(out["usage"])
    with pytest.raises(GraphValidationError, match="nests 3 levels deep"):
        create_hierarchical_orchestrator(manager(), [outer], max_depth=2)


def test_specialists_cannot_be_named_like_the_orchestrators_nodes():
    with pytest.raises(GraphValidationError, match="'dispatch'"):
        create_hierarchical_orchestrator(manager(), [echo("dispatch")])


def test_usage_per_agent_and_in_total():
    boss = manager(plan(task("t1", "researcher"), task("t2", "writer", "t1")))
    out = ask(create_hierarchical_orchestrator(boss, [echo("researcher"), echo("writer")]))
    usage = out["usage"]
    assert set(usage) == {"manager", "researcher", "writer"}
    assert usage["manager"]["calls"] == 2 and usage["writer"]["calls"] == 1
    total = total_usage(usage)
    assert total["input_tokens"] == sum(u["input_tokens"] for u in usage.values()) > 0


def test_the_token_budget_stops_new_delegations():
    boss = manager(plan(task("t1", "researcher"), task("t2", "writer", "t1")),
                   answer="partial answer")
    app = create_hierarchical_orchestrator(boss, [echo("researcher"), echo("writer")],
                                           token_budget=1)
    out = ask(app)
    assert out["results"] == {}  # the plan alone used the budget
    assert out["stopped"] == "the token budget of 1 was used up"
    assert "not done (the token budget of 1 was used up)" in boss.calls[-1][-1].content
    assert out["messages"][-1].content == "partial answer"


def test_a_hard_token_budget_covers_the_whole_hierarchy(saver):
    boss = manager(plan(task("t1", "researcher")))
    app = create_hierarchical_orchestrator(boss, [echo("researcher")], checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(Exception) as info:
        ask(app, thread=thread, token_budget=60)
    assert "token_budget of 60" in str(info.value)


def test_stream_events_carry_the_path_of_the_specialist():
    boss = manager(plan(task("t1", "researcher")))
    app = create_hierarchical_orchestrator(boss, [echo("researcher")])
    paths = {path for path, _ in app.stream({"messages": [("user", "go")]}, subgraphs=True)}
    assert paths == {(), ("researcher",)}


def test_the_orchestrator_draws_specialists_as_clusters():
    app = create_hierarchical_orchestrator(manager(), [echo("researcher"), echo("writer")])
    plain = app.get_graph()
    assert plain.nodes["plan"]["kind"] == "agent" and plain.nodes["dispatch"]["kind"] == "router"
    assert plain.nodes["researcher"]["kind"] == "subgraph"
    edges = {(u, v) for u, v in plain.edges()}
    assert {("dispatch", "researcher"), ("researcher", "dispatch"), ("dispatch", "plan")} <= edges
    drawn = app.get_graph(expand_subgraphs=True)
    assert drawn.nodes["writer:agent"]["cluster"] == ("writer",)
    assert "subgraph" in app.to_mermaid(expand=True)


def test_an_approval_inside_a_specialist_pauses_the_hierarchy_and_resumes_in_place(saver):
    sent = []

    @tool(confirm=True)
    def publish(title: str) -> str:
        """Publish a post."""
        sent.append(title)
        return f"published {title}"

    publisher = Agent("publisher", ScriptedModel(
        lambda msgs: "published it" if isinstance(msgs[-1], type(msgs[-1])) and any(
            getattr(m, "tool_call_id", None) for m in msgs)
        else AIMessage(tool_calls=[ToolCall(name="publish", args={"title": "news"})])),
        tools=[publish])
    researcher = echo("researcher")
    boss = manager(plan(task("t1", "researcher"), task("t2", "publisher")))
    app = create_hierarchical_orchestrator(boss, [researcher, publisher], checkpointer=saver)
    thread = uuid.uuid4().hex
    paused = ask(app, thread=thread)
    (question,) = paused["__interrupt__"]
    assert question.value["tool"] == "publish" and sent == []
    assert app.get_state(thread).interrupts == (question,)
    out = app.invoke(Command(resume="approve"), thread=thread)
    assert sent == ["news"] and out["results"]["t2"].output == "published it"
    # the rest of the hierarchy did not run again
    assert len(researcher.model.calls) == 1 and len(boss.calls) == 2


def test_a_failed_run_resumes_without_repeating_finished_delegations(saver):
    flaky = {"n": 0}

    def reply(messages):
        flaky["n"] += 1
        if flaky["n"] == 1:
            raise RuntimeError("writer crashed")
        return "writer did it"

    writer = Agent("writer", ScriptedModel(reply))
    researcher = echo("researcher")
    boss = manager(plan(task("t1", "researcher"), task("t2", "writer", "t1")))
    app = create_hierarchical_orchestrator(boss, [researcher, writer], checkpointer=saver,
                                           replan_on_failure=False)
    thread = uuid.uuid4().hex
    out = ask(app, thread=thread)
    assert out["results"]["t2"].status == "failed"  # a failure is a result, not a crash
    assert len(researcher.model.calls) == 1


def test_crash_at_every_boundary_of_a_hierarchy(tmp_path, monkeypatch):
    """SIGKILL after every journal write (each model call, and each delegation's result) and
    every checkpoint (the delegations' own runs' too): the resumed run ends like an
    uninterrupted one, no delegation runs again and no model call that had finished is made
    twice."""
    effects = tmp_path / "effects.db"
    monkeypatch.setenv("CRASH_EFFECTS_DB", str(effects))
    report = crash_test("hierarchy_graph:make", {"messages": [("user", "report on the sky")]},
                        store=f"sqlite:{tmp_path / 'runs.db'}", pythonpath=[SUPPORT],
                        workdir=tmp_path, kinds=["node", "journal", "writes", "checkpoint"],
                        normalize="hierarchy_graph:normalize")
    report.check(exactly_once_effects=True)
    assert "Report:" in report.reference and "the sky is blue" in report.reference
    assert report.counts["journal"] == 6  # 4 model calls, 2 delegations
    with sqlite3.connect(effects) as db:
        rows = db.execute("SELECT thread, count(*), count(DISTINCT prompt) FROM calls "
                          "GROUP BY thread").fetchall()
    assert len(rows) == len(report.points) + 1
    assert {(n, distinct) for _, n, distinct in rows} == {(4, 4)}  # 4 calls, each paid once


def test_parallel_specialists_really_run_at_the_same_time():
    both = threading.Barrier(2, timeout=10)

    def reply(messages):
        both.wait()  # deadlocks (then fails) unless the two tasks overlap
        return "ok"

    # two agents (a ScriptedModel answers one call at a time)
    left, right = Agent("left", ScriptedModel(reply)), Agent("right", ScriptedModel(reply))
    boss = manager(plan(task("a", "left"), task("b", "right")))
    out = ask(create_hierarchical_orchestrator(boss, [left, right]))
    assert {r.status for r in out["results"].values()} == {"done"}


def test_a_new_request_on_the_thread_plans_afresh(saver):
    boss = manager(plan(task("t1", "researcher")), plan(task("t1", "writer")),
                   answer="answer")
    app = create_hierarchical_orchestrator(boss, [echo("researcher"), echo("writer")],
                                           checkpointer=saver)
    thread = uuid.uuid4().hex
    ask(app, "first question", thread=thread)
    out = ask(app, "second question", thread=thread)
    assert {k: (v.assignee, v.output) for k, v in out["results"].items()} == {
        "t1": ("writer", "writer did t1")}
    assert out["replans"] == 0
    # the manager saw the whole conversation, not the old plan as "progress"
    assert [m.content for m in boss.calls[2][1:]] == [
        "first question", "answer", "second question"]
