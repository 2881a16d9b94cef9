"""A run's path drawn over the graph, including inside expanded subgraphs."""

import operator
from typing import Annotated, TypedDict
from xml.etree import ElementTree

from graphflow import END, START, StateGraph
from graphflow.checkpoint import MemoryCheckpointer


class S(TypedDict):
    log: Annotated[list, operator.add]


def build(choice: str):
    sub = StateGraph(S)
    sub.add_node("s1", lambda s: {"log": ["s1"]})
    sub.add_node("s2", lambda s: {"log": ["s2"]})
    sub.add_node("s3", lambda s: {"log": ["s3"]})
    sub.add_edge(START, "s1")
    sub.add_conditional_edges("s1", lambda s: choice, ["s2", "s3"])
    sub.add_edge("s2", END)
    sub.add_edge("s3", END)
    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("review", sub.compile(name="review"))
    g.add_edge(START, "a")
    g.add_edge("a", "review")
    g.add_edge("review", END)
    return g.compile(checkpointer=MemoryCheckpointer())


def test_run_path_follows_the_run_into_the_subgraph_when_expanded():
    app = build("s3")
    app.invoke({"log": []}, thread="t")
    flat_nodes, flat_edges = app.run_path("t")
    assert flat_nodes == {"__start__", "a", "review", "__end__"}
    assert ("a", "review") in flat_edges
    nodes, edges = app.run_path("t", expand=True)
    assert {"review:s1", "review:s3"} <= nodes and "review:s2" not in nodes
    assert ("review:s1", "review:s3") in edges and ("review:s1", "review:s2") not in edges
    assert ("a", "review:s1") in edges


def test_expanded_overlay_renders(tmp_path):
    app = build("s2")
    app.invoke({"log": []}, thread="t")
    svg = app.to_svg(run="t", expand=True)
    ElementTree.fromstring(svg)
    assert "highlighted path" in svg
    assert app.draw(tmp_path / "run.png", run="t", expand=True).read_bytes()[:8] == \
        b"\x89PNG\r\n\x1a\n"
