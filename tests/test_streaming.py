"""Streaming: modes "updates", "values", "custom", "debug", lists of modes, astream, errors."""

import asyncio
import operator
import threading
from typing import Annotated, TypedDict

import pytest

from graphflow import END, START, Send, StateGraph

pytestmark = pytest.mark.timeout(30)


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    n: int
    item: int


def counting(name):
    def node(state):
        return {"log": [name], "n": state["n"] + 1}

    node.__name__ = name
    return node


def chain3():
    g = StateGraph(S)
    for name in ("a", "b", "c"):
        g.add_node(name, counting(name))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g.compile()


INPUT = {"log": [], "n": 0}


def collect_async(agen_factory):
    async def main():
        return [e async for e in agen_factory()]

    return asyncio.run(main())


# --------------------------------------------------------------------------- updates / values


def test_updates_mode_yields_one_event_per_task():
    events = list(chain3().stream(INPUT, mode="updates"))
    assert events == [
        {"a": {"log": ["a"], "n": 1}},
        {"b": {"log": ["b"], "n": 2}},
        {"c": {"log": ["c"], "n": 3}},
    ]


def test_default_stream_mode_is_updates():
    assert list(chain3().stream(INPUT)) == list(chain3().stream(INPUT, mode="updates"))


def test_updates_mode_node_returning_none_yields_none():
    g = StateGraph(S)
    g.add_node("quiet", lambda s: None)
    g.add_edge(START, "quiet")
    g.add_edge("quiet", END)
    assert list(g.compile().stream(INPUT, mode="updates")) == [{"quiet": None}]


def test_updates_mode_yields_every_send_task():
    def worker(state):
        return {"log": [state["item"]]}

    g = StateGraph(S)
    g.add_node("prep", lambda s: None)
    g.add_node("worker", worker)
    g.add_edge(START, "prep")
    g.add_conditional_edges("prep", lambda s: [Send("worker", {"item": i}) for i in (1, 2, 3)],
                            ["worker"])
    g.add_edge("worker", END)
    events = list(g.compile().stream({}, mode="updates"))
    assert events[0] == {"prep": None}
    worker_events = events[1:]
    assert len(worker_events) == 3
    assert all(list(e) == ["worker"] for e in worker_events)
    assert sorted(e["worker"]["log"][0] for e in worker_events) == [1, 2, 3]


def test_parallel_updates_yield_one_event_per_node():
    g = StateGraph(S)
    g.add_node("x", lambda s: {"log": ["x"]})
    g.add_node("y", lambda s: {"log": ["y"]})
    for name in ("x", "y"):
        g.add_edge(START, name)
        g.add_edge(name, END)
    events = list(g.compile().stream({}, mode="updates"))
    assert sorted(events, key=lambda e: next(iter(e))) == [
        {"x": {"log": ["x"]}},
        {"y": {"log": ["y"]}},
    ]


def test_values_mode_yields_state_after_input_and_after_each_step():
    events = list(chain3().stream(INPUT, mode="values"))
    assert events == [
        {"log": [], "n": 0},
        {"log": ["a"], "n": 1},
        {"log": ["a", "b"], "n": 2},
        {"log": ["a", "b", "c"], "n": 3},
    ]


def test_values_mode_last_event_equals_invoke_result():
    app = chain3()
    assert list(app.stream(INPUT, mode="values"))[-1] == app.invoke(INPUT)


# --------------------------------------------------------------------------- custom


def writer_chain():
    def a(state, ctx):
        ctx.write({"progress": 0.5})
        ctx.write("x")
        return {"log": ["a"]}

    def b(state, ctx):
        ctx.write("y")
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g.compile()


def test_custom_mode_yields_what_nodes_wrote():
    assert list(writer_chain().stream({}, mode="custom")) == [{"progress": 0.5}, "x", "y"]


def test_custom_event_arrives_before_the_same_nodes_update():
    events = list(writer_chain().stream({}, mode=["custom", "updates"]))
    assert events == [
        ("custom", {"progress": 0.5}),
        ("custom", "x"),
        ("updates", {"a": {"log": ["a"]}}),
        ("custom", "y"),
        ("updates", {"b": {"log": ["b"]}}),
    ]


def test_custom_events_are_live_while_parallel_nodes_still_run():
    consumer_saw_ping = threading.Event()

    def a(state, ctx):
        ctx.write("ping")
        # only returns "seen" if the consumer received "ping" while this node is still running
        seen = consumer_saw_ping.wait(timeout=3)
        return {"log": ["seen" if seen else "not seen"]}

    def b(state):
        return {"log": ["b"]}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", b)
    for n in ("a", "b"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    final = None
    for mode, payload in g.compile().stream({}, mode=["custom", "values"]):
        if mode == "custom" and payload == "ping":
            consumer_saw_ping.set()
        if mode == "values":
            final = payload
    assert final["log"] == ["seen", "b"]


def test_custom_events_are_live_in_astream_while_parallel_async_nodes_run():
    async def main():
        consumer_saw_ping = asyncio.Event()

        async def a(state, ctx):
            ctx.write("ping")
            try:
                await asyncio.wait_for(consumer_saw_ping.wait(), timeout=3)
                seen = True
            except TimeoutError:
                seen = False
            return {"log": ["seen" if seen else "not seen"]}

        async def b(state):
            return {"log": ["b"]}

        g = StateGraph(S)
        g.add_node("a", a)
        g.add_node("b", b)
        for n in ("a", "b"):
            g.add_edge(START, n)
            g.add_edge(n, END)
        final = None
        async for mode, payload in g.compile().astream({}, mode=["custom", "values"]):
            if mode == "custom" and payload == "ping":
                consumer_saw_ping.set()
            if mode == "values":
                final = payload
        return final

    assert asyncio.run(main())["log"] == ["seen", "b"]


# --------------------------------------------------------------------------- debug

TASK_KEYS = {"type", "step", "node", "task_id"}
RESULT_KEYS = {"type", "step", "node", "task_id", "update", "error"}


def test_debug_mode_yields_task_and_task_result_events():
    events = list(chain3().stream(INPUT, mode="debug"))
    tasks = [e for e in events if e["type"] == "task"]
    results = [e for e in events if e["type"] == "task_result"]
    assert [e["node"] for e in tasks] == ["a", "b", "c"]
    assert [e["node"] for e in results] == ["a", "b", "c"]
    for e in tasks:
        assert set(e) >= TASK_KEYS
    for e in results:
        assert set(e) >= RESULT_KEYS
        assert e["error"] is None
    assert [e["step"] for e in tasks] == [1, 2, 3]
    assert [e["step"] for e in results] == [1, 2, 3]
    assert [e["update"] for e in results] == [
        {"log": ["a"], "n": 1},
        {"log": ["b"], "n": 2},
        {"log": ["c"], "n": 3},
    ]
    for t, r in zip(tasks, results, strict=True):
        assert isinstance(t["task_id"], str)
        assert t["task_id"] == r["task_id"]
        assert events.index(t) < events.index(r), "task starts before its result"


def test_debug_task_result_carries_the_error_of_a_failing_node():
    def bad(state):
        raise ValueError("boom")

    g = StateGraph(S)
    g.add_node("bad", bad)
    g.add_edge(START, "bad")
    g.add_edge("bad", END)
    events = []
    with pytest.raises(ValueError, match="boom"):
        for e in g.compile().stream({}, mode="debug"):
            events.append(e)
    results = [e for e in events if e["type"] == "task_result"]
    assert [e["node"] for e in results] == ["bad"]
    assert results[0]["error"] is not None


# --------------------------------------------------------------------------- several modes


def test_list_of_modes_yields_mode_payload_tuples():
    events = list(chain3().stream(INPUT, mode=["updates", "values"]))
    assert events == [
        ("values", {"log": [], "n": 0}),
        ("updates", {"a": {"log": ["a"], "n": 1}}),
        ("values", {"log": ["a"], "n": 1}),
        ("updates", {"b": {"log": ["b"], "n": 2}}),
        ("values", {"log": ["a", "b"], "n": 2}),
        ("updates", {"c": {"log": ["c"], "n": 3}}),
        ("values", {"log": ["a", "b", "c"], "n": 3}),
    ]


def test_list_with_one_mode_still_yields_tuples():
    events = list(chain3().stream(INPUT, mode=["updates"]))
    assert events[0] == ("updates", {"a": {"log": ["a"], "n": 1}})


# --------------------------------------------------------------------------- astream


@pytest.mark.parametrize(
    "mode", ["updates", "values", "custom", ["updates", "values", "custom"]]
)
def test_astream_yields_the_same_events_as_stream(mode):
    app = writer_chain()
    sync_events = list(app.stream({}, mode=mode))
    async_events = collect_async(lambda: app.astream({}, mode=mode))
    assert sync_events
    assert async_events == sync_events


def test_astream_with_async_nodes_matches_stream():
    async def a(state):
        await asyncio.sleep(0)
        return {"log": ["a"], "n": state["n"] + 1}

    g = StateGraph(S)
    g.add_node("a", a)
    g.add_node("b", counting("b"))
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    app = g.compile()
    expected = [{"a": {"log": ["a"], "n": 1}}, {"b": {"log": ["b"], "n": 2}}]
    assert list(app.stream(INPUT)) == expected
    assert collect_async(lambda: app.astream(INPUT)) == expected


# --------------------------------------------------------------------------- errors


def failing_chain():
    def bad(state):
        raise RuntimeError("broken")

    g = StateGraph(S)
    g.add_node("ok", counting("ok"))
    g.add_node("bad", bad)
    g.add_edge(START, "ok")
    g.add_edge("ok", "bad")
    g.add_edge("bad", END)
    return g.compile()


def test_stream_reraises_the_node_exception_after_earlier_events():
    events = []
    with pytest.raises(RuntimeError, match="broken") as info:
        for e in failing_chain().stream(INPUT, mode="updates"):
            events.append(e)
    assert events == [{"ok": {"log": ["ok"], "n": 1}}]
    assert info.value.graphflow_node == "bad"


def test_astream_reraises_the_node_exception():
    events = []

    async def main():
        async for e in failing_chain().astream(INPUT, mode="updates"):
            events.append(e)

    with pytest.raises(RuntimeError, match="broken") as info:
        asyncio.run(main())
    assert events == [{"ok": {"log": ["ok"], "n": 1}}]
    assert info.value.graphflow_node == "bad"
