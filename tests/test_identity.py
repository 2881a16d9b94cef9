"""Ids that cannot collide, on every checkpointer: task ids and journal keys are built
structurally (a node named ``work:1`` never shares ``Send("work")`` #1's journal); subgraph
state lives in namespaces apart from every user-chosen thread id (``alice:1:sub`` is just a
thread); what cannot be stored is refused before anything runs."""

from __future__ import annotations

import operator
import uuid
from typing import Annotated, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphflow import (
    END,
    START,
    Command,
    GraphValidationError,
    InvalidThreadIdError,
    RunContext,
    Send,
    StateGraph,
    interrupt,
)
from graphflow.engine.ids import (
    MAX_THREAD_ID_LENGTH,
    child_namespace,
    escape_name,
    make_task_id,
    parse_task_id,
)


class Items(TypedDict):
    items: Annotated[list, operator.add]


def test_a_node_named_like_a_send_task_keeps_its_own_journal(saver):
    """Before: node ``work:1`` and ``Send("work", ...)`` #1 had the same task id, so one got
    the other's journaled result."""
    calls: list[str] = []

    def journaled(label: str):
        def node(arg, ctx: RunContext) -> dict:
            value = ctx.step("effect", lambda: calls.append(label) or label)
            return {"items": [value]}
        return node

    g = StateGraph(Items)
    g.add_node("fan", lambda s: {})
    g.add_node("work", journaled("send"))
    g.add_node("work:1", journaled("named"))
    g.add_edge(START, "fan")
    g.add_conditional_edges("fan", lambda s: [Send("work", 0), Send("work", 1), "work:1"],
                            ["work", "work:1"])
    g.add_edge("work", END)
    g.add_edge("work:1", END)
    app = g.compile(checkpointer=saver)
    out = app.invoke({"items": []}, thread=f"t-{uuid.uuid4().hex[:6]}")
    assert sorted(out["items"]) == ["named", "send", "send"]
    assert sorted(calls) == ["named", "send", "send"]



def test_forks_made_in_the_same_millisecond_keep_their_own_journals(saver, monkeypatch):
    """Before: a fork's branch was the time part of a checkpoint id, so two forks of one
    checkpoint made within a millisecond shared task ids, and the second fork replayed the
    first one's journaled results instead of running its own step."""
    import graphflow.checkpoint.base as base

    frozen = base.time.time_ns()
    monkeypatch.setattr(base, "time", type("FrozenClock", (), {"time_ns": staticmethod(
        lambda: frozen)}))

    class State(TypedDict, total=False):
        x: int
        seen: int

    def read(state: State, ctx: RunContext) -> dict:
        return {"seen": ctx.step("read", lambda: state["x"])}

    g = StateGraph(State)
    g.add_node("a", lambda s: {})
    g.add_node("b", read)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    app = g.compile(checkpointer=saver)
    thread = f"t-{uuid.uuid4().hex[:6]}"
    assert app.invoke({"x": 0}, thread=thread)["seen"] == 0
    after_a = next(h for h in app.get_state_history(thread) if h.next == ("b",))
    for x in (1, 2):
        app.update_state(thread, {"x": x}, checkpoint=after_a.checkpoint_id)
        assert app.invoke(None, thread=thread)["seen"] == x


def _interrupting_subgraph():
    sub = StateGraph(Items)

    def ask(state: Items) -> dict:
        return {"items": [f"answer={interrupt('q')}"]}

    sub.add_node("ask", ask)
    sub.add_edge(START, "ask")
    sub.add_edge("ask", END)
    g = StateGraph(Items)
    g.add_node("sub", sub.compile(name="inner"))
    g.add_edge(START, "sub")
    g.add_edge("sub", END)
    return g


def test_thread_ids_never_reach_another_threads_subgraph_state(saver):
    """Before: thread ``alice:1:sub`` WAS the namespace of alice's subgraph run."""
    app = _interrupting_subgraph().compile(checkpointer=saver)
    alice = f"alice{uuid.uuid4().hex[:6]}"
    app.invoke({"items": ["alice"]}, thread=alice)  # pauses inside the subgraph
    assert saver.namespaces(alice)  # the subgraph's state is in the thread, under a namespace
    mallory = f"{alice}:1:sub"
    assert saver.get(mallory) is None  # nothing of alice's is visible under that thread id
    app.invoke({"items": ["mallory"]}, thread=mallory)
    app.invoke(Command(resume="m"), thread=mallory)
    # alice's paused subgraph is untouched and resumes with her own state
    assert app.invoke(Command(resume="a"), thread=alice)["items"] == ["alice", "answer=a"]
    assert app.get_state(mallory).values["items"] == ["mallory", "answer=m"]
    assert {alice, mallory} <= set(app.list_threads())
    # deleting a thread deletes its subgraphs' state, and nothing of the other thread
    app.delete_thread(alice)
    assert saver.namespaces(alice) == [] and app.get_state(alice) is None
    assert app.get_state(mallory).values["items"] == ["mallory", "answer=m"]


@pytest.mark.parametrize("thread", ["user:42:chat", "a/b@c#d%e", "x:1:sub@branch", " padded "])
def test_thread_ids_with_separators_just_work(saver, thread):
    app = _interrupting_subgraph().compile(checkpointer=saver)
    thread = f"{thread}{uuid.uuid4().hex[:4]}"
    app.invoke({"items": ["start"]}, thread=thread)
    assert app.get_state(thread).interrupts
    assert app.invoke(Command(resume="ok"), thread=thread)["items"] == ["start", "answer=ok"]
    assert thread in app.list_threads()


BAD_THREADS = [
    ("", "empty or blank"),
    ("   ", "empty or blank"),
    ("a\x00b", "NUL"),
    ("x" * (MAX_THREAD_ID_LENGTH + 1), "characters long"),
    ("bad\ud800", "lone surrogate"),
    (42, "must be a str"),
]


@pytest.mark.parametrize(("thread", "why"), BAD_THREADS)
def test_unstorable_thread_ids_are_refused_before_anything_runs(saver, thread, why):
    ran: list[str] = []
    g = StateGraph(Items)
    g.add_node("n", lambda s: ran.append("n") or {"items": ["n"]})
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    for call in (lambda: app.invoke({"items": []}, thread=thread),
                 lambda: list(app.stream({"items": []}, thread=thread)),
                 lambda: app.get_state(thread),
                 lambda: app.update_state(thread, {"items": []})):
        with pytest.raises(InvalidThreadIdError, match=why):
            call()
    assert ran == []


def test_the_longest_thread_id_works(saver):
    g = StateGraph(Items)
    g.add_node("n", lambda s: {"items": ["n"]})
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    thread = ("é" * MAX_THREAD_ID_LENGTH)[:-8] + uuid.uuid4().hex[:8]
    assert len(thread) == MAX_THREAD_ID_LENGTH
    assert app.invoke({"items": []}, thread=thread) == {"items": ["n"]}
    assert app.get_state(thread).values == {"items": ["n"]}


def test_nul_in_a_node_name_is_refused_at_build_time():
    g = StateGraph(Items)
    with pytest.raises(GraphValidationError, match="NUL"):
        g.add_node("a\x00b", lambda s: {})


def test_nul_in_a_checkpoint_id_is_refused(saver):
    g = StateGraph(Items)
    g.add_node("n", lambda s: {"items": ["n"]})
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    with pytest.raises(InvalidThreadIdError, match="checkpoint id"):
        app.invoke(None, thread="t", checkpoint="a\x00")


# -- the id scheme itself --------------------------------------------------------------------------

NAMES = st.text(alphabet=st.sampled_from("ab:/@#%1 é"), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None)
@given(NAMES, st.integers(0, 10_000), st.integers(-1, 50),
       st.sampled_from(["", "0a1b2c3d4e5f"]))
def test_task_ids_parse_back_to_their_parts(name, step, index, branch):
    task_id = make_task_id(step, escape_name(name), index, branch)
    assert parse_task_id(task_id) == (step, name, index, branch)


@settings(max_examples=300, deadline=None)
@given(st.tuples(NAMES, st.integers(-1, 3)), st.tuples(NAMES, st.integers(-1, 3)))
def test_distinct_tasks_have_distinct_ids_and_namespaces(a, b):
    ids = [make_task_id(1, escape_name(name), index, "") for name, index in (a, b)]
    assert (ids[0] == ids[1]) == (a == b)
    nested = [child_namespace(child_namespace("", i), "2:x") for i in ids]
    assert (nested[0] == nested[1]) == (a == b)
    # a journal slot key, a resume key and a nested namespace never equal a task id
    assert f"{ids[0]}/0" != ids[1] and f"{ids[0]}#resume" != ids[1]


def test_idempotency_keys_are_stable_per_call_and_distinct_otherwise(saver):
    seen: list[tuple[str, str]] = []

    def node(state: Items, ctx: RunContext) -> dict:
        for label in ("first", "second"):
            key = ctx.idempotency_key()
            ctx.step(label, lambda k=key, lb=label: seen.append((lb, k)) or k)
        answer = interrupt("continue?")
        return {"items": [answer]}

    g = StateGraph(Items)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    t1, t2 = f"a{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
    app.invoke({"items": []}, thread=t1)
    keys_before = [k for _, k in seen]
    seen.clear()
    app.invoke(Command(resume="yes"), thread=t1)  # the node runs again: steps replayed
    assert seen == []  # journaled: the effects did not run again
    app.invoke({"items": []}, thread=t2)
    keys_other = [k for _, k in seen]
    assert len(set(keys_before)) == 2  # two calls, two keys
    assert not set(keys_before) & set(keys_other)  # another thread, other keys
    assert all(k.startswith("gf_") and len(k) <= 64 for k in keys_before)


def test_an_effect_run_again_gets_the_same_key(saver):
    """A crash (or an error) after the effect and before its result is journaled runs the
    function again on resume: with the same key, so the API can deduplicate."""
    keys: list[str] = []
    fail = [True]

    def node(state: Items, ctx: RunContext) -> dict:
        key = ctx.idempotency_key()
        keys.append(key)
        if fail[0]:  # the effect happened, then the process died before journaling it
            fail[0] = False
            raise RuntimeError("lost before the journal entry")
        ctx.step("pay", lambda: key)
        return {"items": [key]}

    g = StateGraph(Items)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    thread = f"t{uuid.uuid4().hex[:6]}"
    with pytest.raises(Exception, match="lost before"):
        app.invoke({"items": []}, thread=thread)
    assert app.invoke(None, thread=thread)["items"] == [keys[0]]
    assert keys[0] == keys[1]


def test_a_new_input_after_a_failed_run_never_replays_the_failed_runs_journal(saver):
    """A task of a new run on a thread must not share its id with a task of an earlier run that
    failed at the same step number: the new input's results are computed, not replayed."""
    fail = [True]

    def node(state: Items, ctx: RunContext) -> dict:
        value = ctx.step("compute", lambda: f"computed from {state['items'][-1]}")
        if fail[0]:
            raise RuntimeError("after the journaled call")
        return {"items": [value]}

    g = StateGraph(Items)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=saver)
    thread = f"t{uuid.uuid4().hex[:6]}"
    with pytest.raises(Exception, match="after the journaled call"):
        app.invoke({"items": ["first input"]}, thread=thread)
    fail[0] = False
    out = app.invoke({"items": ["second input"]}, thread=thread)  # a new input, not a resume
    assert out["items"][-1] == "computed from second input"
