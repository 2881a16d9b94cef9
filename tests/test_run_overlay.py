"""A run's path drawn over the graph, including inside expanded subgraphs."""

import operator
import uuid
from typing import Annotated, Any, Literal, TypedDict
from xml.etree import ElementTree

from graphflow import END, START, StateGraph
from graphflow.checkpoint import MemoryCheckpointer

SVG = "{http://www.w3.org/2000/svg}"


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


# ---------------------------------------------------------------------------------------------
# the edges a run fired, as each checkpoint records them (metadata["edges"])


class F(TypedDict):
    log: Annotated[list, operator.add]
    n: int


def fired(app, thread: str) -> list[list]:
    """Each checkpoint's recorded edges, oldest first."""
    return [cp.metadata.get("edges") for cp in app.checkpointer.list(thread)[::-1]]


def test_checkpoints_record_static_router_goto_send_and_join_edges(saver):
    from graphflow import Command, Send

    def a(s: F) -> dict:
        return {"log": ["a"], "n": s["n"] + 1}

    def route(s: F) -> Literal["b", "fan", "__end__"]:
        return "b" if s["n"] == 1 else "fan" if s["n"] == 2 else END

    def b(s: F) -> Command[Literal["a"]]:
        return Command(update={"log": ["b"]}, goto="a")

    def fan(s: F) -> list[Send]:
        return [Send("work", i) for i in range(3)]

    g = StateGraph(F)
    g.add_node("a", a)
    g.add_node("b", b)
    g.add_node("fan", lambda s: {"log": ["fan"]})
    g.add_node("work", lambda i: {"log": [f"w{i}"]})
    g.add_node("side", lambda s: {"log": ["side"]})
    g.add_node("join", lambda s: {"log": ["join"]})
    g.add_edge(START, "a")
    g.add_conditional_edges("a", route)
    g.add_conditional_edges("fan", fan, ["work"])
    g.add_edge("fan", "side")
    g.add_edge(["work", "side"], "join")
    g.add_edge("join", "a")
    app = g.compile(checkpointer=saver)
    thread = uuid.uuid4().hex  # the PostgreSQL database is shared between tests
    app.invoke({"log": [], "n": 0}, thread=thread)
    assert fired(app, thread) == [
        None,  # the input checkpoint: nothing fired yet
        [[START, "a"]],  # the checkpoint after the input
        [["a", "b"]],  # a router's answer
        [["b", "a"]],  # a Command's goto
        [["a", "fan"]],
        [["fan", "side"], ["fan", "work", 3]],  # a static edge and three Sends
        [["side", "join"], ["work", "join"]],  # the join fired: all its sources' edges
        [["join", "a"]],
        [["a", END]],  # the router returned END
    ]


def logger(name: str) -> Any:
    return lambda s: {"log": [name]}


def chain(*nodes: str | tuple[str, Any]) -> StateGraph:
    """START -> nodes... -> END: a name is a node logging its name, a pair is (name, node)."""
    g = StateGraph(S)
    names = []
    for item in nodes:
        name, fn = item if isinstance(item, tuple) else (item, logger(item))
        g.add_node(name, fn)
        names.append(name)
    for a, b in zip((START, *names), (*names, END), strict=True):
        g.add_edge(a, b)
    return g


def test_static_edges_to_end_and_from_update_state_are_recorded():
    g = chain("a", "b")
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"log": []}, thread="t")
    assert fired(app, "t") == [None, [[START, "a"]], [["a", "b"]], [["b", END]]]
    app.update_state("t", {"log": ["x"]}, as_node="a")
    assert app.checkpointer.list("t")[0].metadata["edges"] == [["a", "b"]]
    without = g.compile()  # no checkpointer: nothing recorded, nothing kept
    assert without.invoke({"log": []}) == {"log": ["a", "b"]}


# ---------------------------------------------------------------------------------------------
# overlays draw exactly the edges taken


def parallel_then_join() -> StateGraph:
    """START -> a and b; a's router goes to c or END; b -> c."""
    g = StateGraph(S)
    g.add_node("a", lambda s: {"log": ["a"]})
    g.add_node("b", lambda s: {"log": ["b"]})
    g.add_node("c", lambda s: {"log": ["c"]})
    g.add_edge(START, "a")
    g.add_edge(START, "b")
    g.add_conditional_edges("a", lambda s: "end", {"c": "c", "end": END})
    g.add_edge("b", "c")
    g.add_edge("c", END)
    return g


def test_overlay_shows_the_edge_taken_not_one_guessed_from_consecutive_steps():
    app = parallel_then_join().compile(checkpointer=MemoryCheckpointer())
    app.invoke({"log": []}, thread="t")
    nodes, edges = app.run_path("t")
    assert edges == {(START, "a"), (START, "b"), ("a", END), ("b", "c"), ("c", END)}
    assert ("a", "c") not in edges  # a's router returned END: c was reached from b
    assert nodes == {START, "a", "b", "c", END}
    svg = ElementTree.fromstring(app.to_svg(run="t"))
    lit = {g.get("data-name") for g in svg.iter(f"{SVG}g") if g.get("class") == "edge"
           and any(p.get("stroke") == "#f97316" for p in g.iter(f"{SVG}path"))}
    assert "a -> c (conditional)" not in lit and "b -> c (static)" in lit


def test_expanded_overlay_lights_only_edges_taken_inside_the_subgraph():
    sub = parallel_then_join().compile(name="inner")
    g = StateGraph(S)
    g.add_node("inner", sub)
    g.add_edge(START, "inner")
    g.add_edge("inner", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"log": []}, thread="t")
    nodes, edges = app.run_path("t", expand=True)
    assert {"inner:a", "inner:b", "inner:c"} <= nodes
    assert ("inner:b", "inner:c") in edges
    assert ("inner:a", "inner:c") not in edges  # both ends ran; the edge was never taken
    assert (START, "inner:a") in edges and ("inner:c", END) in edges


def test_subgraph_named_with_a_colon_keeps_its_overlay_edges():
    sub = chain("s1", "s2").compile(name="stage: 2")
    app = chain("a", ("stage: 2", sub)).compile(checkpointer=MemoryCheckpointer())
    app.invoke({"log": []}, thread="t")
    nodes, edges = app.run_path("t", expand=True)
    assert {("a", "stage: 2:s1"), ("stage: 2:s1", "stage: 2:s2"), ("stage: 2:s2", END)} <= edges
    expanded = app.get_graph(expand_subgraphs=True)
    assert edges <= set(expanded.edges())
    assert {n for n in nodes if n.startswith("stage")} == {"stage: 2:s1", "stage: 2:s2"}


def test_overlay_counts_loops_and_sends():
    from graphflow import Send

    class L(TypedDict):
        log: Annotated[list, operator.add]
        n: int

    def again(s: L) -> Literal["work", "__end__"]:
        return "work" if s["n"] < 3 else END

    def fan(s: L) -> list[Send]:
        return [Send("leaf", i) for i in range(4)]

    g = StateGraph(L)
    g.add_node("work", lambda s: {"n": s["n"] + 1})
    g.add_node("fan", lambda s: {"log": ["fan"]})
    g.add_node("leaf", lambda i: {"log": [i]})
    g.add_edge(START, "fan")
    g.add_conditional_edges("fan", fan, ["leaf"])
    g.add_edge("leaf", "work")
    g.add_conditional_edges("work", again)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"log": [], "n": 0}, thread="t")
    counts = app.run_edges("t")
    assert counts == {(START, "fan"): 1, ("fan", "leaf"): 4, ("leaf", "work"): 1,
                      ("work", "work"): 2, ("work", END): 1}
    svg = app.to_svg(run="t")
    assert "\u00d74" in svg and "\u00d72" in svg  # Send fan-out and loop count
    for text in (app.to_mermaid(run="t"), app.to_dot(run="t"), app.to_ascii(run="t")):
        assert "\u00d74" in text and "\u00d72" in text
