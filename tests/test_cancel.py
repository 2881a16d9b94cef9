"""Cancelling a run (``cancel=`` event): it stops where the next superstep would begin, with a
typed error, its last checkpoint intact and resumable, and the thread's lease released — the
same for the sync and the async driver, on every checkpointer, inside subgraphs too."""

from __future__ import annotations

import asyncio
import operator
import threading
import uuid
from typing import Annotated, TypedDict

import pytest

from graphflow import END, START, RunCancelledError, Send, StateGraph


class State(TypedDict):
    log: Annotated[list[str], operator.add]


def chain(saver, cancel_in: str, event: threading.Event, ran: list[str], *, use_async=False):
    """a -> b -> c; node ``cancel_in`` sets the event while it runs (a cancel arriving
    mid-step)."""
    def make(name: str):
        def node(state: State) -> dict:
            ran.append(name)
            if name == cancel_in:
                event.set()
            return {"log": [name]}

        async def anode(state: State) -> dict:
            return node(state)

        return anode if use_async else node

    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile(checkpointer=saver)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_cancel_stops_at_the_next_step_and_the_thread_resumes(saver, use_async):
    event, ran = threading.Event(), []
    app = chain(saver, "b", event, ran, use_async=use_async)
    thread = f"t-{uuid.uuid4().hex}"
    with pytest.raises(RunCancelledError) as err:
        if use_async:
            asyncio.run(app.ainvoke({"log": []}, thread=thread, cancel=event))
        else:
            app.invoke({"log": []}, thread=thread, cancel=event)
    assert ran == ["a", "b"]  # the step running when cancelled finished; c never started
    assert err.value.thread == thread and err.value.step == 2
    snap = app.get_state(thread)
    assert snap.values == {"log": ["a", "b"]} and snap.next == ("c",)
    assert err.value.checkpoint_id == snap.checkpoint_id
    # the lease is released: a new run on the thread starts at once (wait=False), and resumes
    out = app.invoke(None, thread=thread)
    assert out == {"log": ["a", "b", "c"]} and ran == ["a", "b", "c"]


def test_cancel_set_before_the_run_keeps_the_input_checkpoint(saver):
    event, ran = threading.Event(), []
    event.set()
    app = chain(saver, "-", event, ran)
    thread = f"t-{uuid.uuid4().hex}"
    with pytest.raises(RunCancelledError) as err:
        list(app.stream({"log": ["in"]}, thread=thread, cancel=event))
    assert ran == [] and err.value.step == 0
    assert app.get_state(thread).next == ("a",)
    event.clear()
    assert app.invoke(None, thread=thread, cancel=event) == {"log": ["in", "a", "b", "c"]}


def test_cancel_from_another_thread_while_streaming():
    from graphflow.checkpoint import MemoryCheckpointer

    started, go, event = threading.Event(), threading.Event(), threading.Event()

    def slow(state: State) -> dict:
        started.set()
        assert go.wait(60)
        return {"log": ["slow"]}

    g = StateGraph(State)
    g.add_node("slow", slow)
    g.add_node("after", lambda s: {"log": ["after"]})
    g.add_edge(START, "slow")
    g.add_edge("slow", "after")
    g.add_edge("after", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    seen: list[object] = []
    failure: list[BaseException] = []

    def consume() -> None:
        try:
            for event_ in app.stream({"log": []}, thread="s", cancel=event):
                seen.append(event_)
        except BaseException as exc:
            failure.append(exc)

    t = threading.Thread(target=consume)
    t.start()
    assert started.wait(60)
    event.set()  # the canceller: another thread, while "slow" runs
    go.set()
    t.join(60)
    assert isinstance(failure[0], RunCancelledError)
    assert seen == [{"slow": {"log": ["slow"]}}]
    assert app.get_state("s").next == ("after",)


def test_a_parallel_step_and_a_subgraph_stop_at_their_next_step(saver):
    """A cancel seen inside a subgraph (its own step boundary) ends the parent run too, as a
    RunCancelledError, not a node failure; the sibling task's outcome is stored, so resuming
    runs neither it nor the subgraph's finished step again."""
    event = threading.Event()
    ran: list[str] = []

    def inner_one(state: State) -> dict:
        ran.append("inner_one")
        event.set()
        return {"log": ["inner_one"]}

    def inner_two(state: State) -> dict:
        ran.append("inner_two")
        return {"log": ["inner_two"]}

    sub = StateGraph(State)
    sub.add_node("inner_one", inner_one)
    sub.add_node("inner_two", inner_two)
    sub.add_edge(START, "inner_one")
    sub.add_edge("inner_one", "inner_two")
    sub.add_edge("inner_two", END)

    def sibling(state: State) -> dict:
        ran.append("sibling")
        return {"log": ["sibling"]}

    g = StateGraph(State)
    g.add_node("sub", sub.compile())
    g.add_node("sibling", sibling)
    g.add_node("join", lambda s: {"log": ["join"]})
    g.add_edge(START, "sub")
    g.add_edge(START, "sibling")
    g.add_edge(["sub", "sibling"], "join")
    g.add_edge("join", END)
    app = g.compile(checkpointer=saver)
    thread = f"t-{uuid.uuid4().hex}"
    with pytest.raises(RunCancelledError):
        app.invoke({"log": []}, thread=thread, cancel=event)
    assert sorted(ran) == ["inner_one", "sibling"]
    out = app.invoke(None, thread=thread)
    assert sorted(ran) == ["inner_one", "inner_two", "sibling"]
    assert sorted(out["log"]) == ["inner_one", "inner_two", "join", "sibling"]


def test_send_fanout_is_not_cut_and_a_bad_cancel_argument_is_named():
    event = threading.Event()
    g = StateGraph(State)
    g.add_node("fan", lambda s: {"log": ["fan"]})
    g.add_node("work", lambda x: (event.set(), {"log": [f"w{x}"]})[1])
    g.add_conditional_edges("fan", lambda s: [Send("work", i) for i in range(3)], ["work"])
    g.add_edge(START, "fan")
    g.add_edge("work", END)
    app = g.compile()
    out = app.invoke({"log": []}, cancel=event)  # the fan-out was the last step: it finishes
    assert sorted(out["log"]) == ["fan", "w0", "w1", "w2"]
    with pytest.raises(TypeError, match="cancel= takes an event"):
        app.invoke({"log": []}, cancel=True)
