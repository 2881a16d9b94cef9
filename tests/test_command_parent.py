"""``Command(graph=Command.PARENT, goto=..., update=...)`` from a node inside a subgraph: the
subgraph's task ends and the parent applies the update and goes to the goto instead of the
subgraph node's own edges. Written against the docstring of :class:`graphflow.Command`."""

import asyncio
import operator
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from graphflow import (
    END,
    START,
    Command,
    GraphValidationError,
    InvalidUpdateError,
    Send,
    StateGraph,
)
from graphflow.testing import crash_test

SUPPORT = str(Path(__file__).parent / "support")
# the subgraph node keeps its static edge (taken when it ends without a handover)
pytestmark = pytest.mark.filterwarnings("ignore:node 'inner' has static edges")


class State(TypedDict):
    log: Annotated[list[str], operator.add]
    owner: str


def inner_graph(goto="b", *, update=None, calls=None, name="inner", extra_node=True,
                owner="worked"):
    """START -> work -> handover (Command.PARENT) -> never -> END."""

    def work(s):
        if calls is not None:
            calls.append(s["owner"])
        return {"log": [f"work({s['owner']})"], "owner": owner or s["owner"]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_node("handover", lambda s: Command(graph=Command.PARENT, goto=goto,
                                             update=update or {"log": ["handed"]}))
    g.add_edge(START, "work")
    g.add_edge("work", "handover")
    if extra_node:
        g.add_node("never", lambda s: {"log": ["never"]})
        g.add_edge("handover", "never")
        g.add_edge("never", END)
    else:
        g.add_edge("handover", END)
    return g.compile(name=name)


def outer_graph(inner, *, checkpointer=None, destinations=("b",)):
    g = StateGraph(State)
    g.add_node("inner", inner, destinations=destinations)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(START, "inner")
    g.add_edge("inner", "a")
    g.add_edge("a", END)
    g.add_edge("b", END)
    return g.compile(checkpointer=checkpointer, name="outer")


def test_goto_and_update_apply_in_the_parent_instead_of_the_subgraph_node_edges():
    out = outer_graph(inner_graph()).invoke({"log": [], "owner": "root"})
    # the subgraph's writes so far are kept (work), then the command's update (handed);
    # its later node never runs, and the parent goes to b instead of the static edge to a
    assert out == {"log": ["work(root)", "handed", "b"], "owner": "worked"}


def test_the_update_wins_over_the_subgraph_value_of_the_same_key():
    inner = inner_graph(update={"owner": "from-command"})
    out = outer_graph(inner).invoke({"log": [], "owner": "root"})
    assert out == {"log": ["work(root)", "b"], "owner": "from-command"}


def test_goto_to_a_node_the_parent_does_not_have_names_both_graphs():
    app = outer_graph(inner_graph(goto="nowhere"))
    with pytest.raises(InvalidUpdateError) as info:  # raised inside the subgraph: as itself
        app.invoke({"log": [], "owner": "root"})
    text = str(info.value)
    assert "'handover'" in text and "'inner'" in text and "'outer'" in text
    assert "'nowhere'" in text and "its nodes: a, b, inner" in text


def test_command_parent_at_the_top_level_is_a_clear_error():
    with pytest.raises(InvalidUpdateError, match="no parent graph") as info:
        inner_graph().invoke({"log": [], "owner": "root"})
    assert "'handover'" in str(info.value) and "'inner'" in str(info.value)


def test_an_unknown_graph_value_is_rejected():
    g = StateGraph(State)
    g.add_node("x", lambda s: Command(graph="grandparent", goto="y"))
    g.add_edge(START, "x")
    g.add_edge("x", END)
    with pytest.raises(InvalidUpdateError, match=r"Command\.PARENT"):
        g.compile().invoke({"log": [], "owner": ""})


def test_destinations_are_checked_at_compile_and_drawn():
    with pytest.raises(GraphValidationError, match="'zzz'"):
        outer_graph(inner_graph(), destinations=["zzz"])
    app = outer_graph(inner_graph(), destinations=["b"])
    edges = {(u, v, d["kind"]) for u, v, d in app.get_graph().edges(data=True)}
    assert ("inner", "b", "command") in edges


def test_a_goto_outside_the_declared_destinations_is_an_error():
    app = outer_graph(inner_graph(goto="a"), destinations=["b"])
    with pytest.raises(InvalidUpdateError, match="does not declare"):
        app.invoke({"log": [], "owner": "root"})


def test_parent_goto_under_send_applies_per_send_task():
    def fan(s) -> list[Send]:
        return [Send("inner", {"log": [], "owner": f"s{i}"}) for i in range(3)]

    g = StateGraph(State)
    g.add_node("fan", fan)
    g.add_node("inner", inner_graph(goto="b", extra_node=False, owner=None),
               destinations=["b"])
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_edge(START, "fan")
    g.add_edge("inner", END)
    g.add_edge("b", END)
    out = g.compile().invoke({"log": [], "owner": "root"})
    # three tasks each hand over to b; b runs once, after all of them
    assert out["log"] == ["work(s0)", "handed", "work(s1)", "handed", "work(s2)", "handed", "b"]


def test_parent_goes_one_level_up_only():
    middle = StateGraph(State)
    middle.add_node("inner", inner_graph(goto="m2"), destinations=["m2"])
    middle.add_node("m1", lambda s: {"log": ["m1"]})
    middle.add_node("m2", lambda s: {"log": ["m2"]})
    middle.add_edge(START, "inner")
    middle.add_edge("inner", "m1")
    middle.add_edge("m1", END)
    middle.add_edge("m2", END)
    out = outer_graph(middle.compile(name="middle")).invoke({"log": [], "owner": "root"})
    assert out["log"] == ["work(root)", "handed", "m2", "a"]


def test_async_run_hands_over_the_same_way():
    async def work(s):
        return {"log": ["async work"]}

    g = StateGraph(State)
    g.add_node("work", work)
    g.add_node("handover", lambda s: Command(graph=Command.PARENT, goto="b"))
    g.add_edge(START, "work")
    g.add_edge("work", "handover")
    g.add_edge("handover", END)
    app = outer_graph(g.compile(name="inner"))
    out = asyncio.run(app.ainvoke({"log": [], "owner": "root"}))
    assert out["log"] == ["async work", "b"]


def test_stream_shows_the_handover_as_the_subgraph_node_update():
    events = list(outer_graph(inner_graph()).stream({"log": [], "owner": "root"}))
    assert events == [{"inner": {"log": ["handed"], "owner": "worked"}}, {"b": {"log": ["b"]}}]


def test_a_resumed_run_does_not_run_the_finished_subgraph_again(saver):
    """The step after the handover fails; resuming runs only that step."""
    calls = []
    failures = []

    def flaky_b(s):
        if not failures:
            failures.append(1)
            raise RuntimeError("b is down")
        return {"log": ["b"]}

    g = StateGraph(State)
    g.add_node("inner", inner_graph(calls=calls), destinations=["b"])
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", flaky_b)
    g.add_edge(START, "inner")
    g.add_edge("inner", "a")
    g.add_edge("a", END)
    g.add_edge("b", END)
    app = g.compile(checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="b is down"):
        app.invoke({"log": [], "owner": "root"}, thread=thread)
    assert app.get_state(thread).next == ("b",)
    out = app.invoke(None, thread=thread)
    assert out["log"] == ["work(root)", "handed", "b"]
    assert calls == ["root"]


def test_crash_at_every_boundary(tmp_path):
    """SIGKILL at every boundary (including between the subgraph's last checkpoint and the
    parent storing its task): the resumed run ends like an uninterrupted one, and no finished
    task runs twice."""
    report = crash_test("parent_command_graph:make", {"log": []},
                        store=f"sqlite:{tmp_path / 'runs.db'}", pythonpath=[SUPPORT],
                        workdir=tmp_path)
    report.check()
    assert report.reference == '{"log":["first","work","handed","after(3)"]}'
    assert report.counts["checkpoint"] >= 6 and report.counts["node"] == 4
