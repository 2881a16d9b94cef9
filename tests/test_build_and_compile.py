"""Building graphs, compile-time validation, and the networkx view from ``get_graph()``.

Written against docs/semantics.md ("Building", "CompiledGraph API").
"""

import operator
import re
import warnings
from collections import Counter
from typing import Annotated, Literal, TypedDict

import networkx as nx
import pytest

from graphflow import (
    END,
    START,
    Command,
    GraphValidationError,
    GraphValidationWarning,
    RetryPolicy,
    StateGraph,
)


class State(TypedDict, total=False):
    trail: Annotated[list, operator.add]
    choice: str


def noop(state):
    return None


def mark(name):
    """A node function that appends ``name`` to the trail; its __name__ is ``name``."""

    def fn(state):
        return {"trail": [name]}

    fn.__name__ = name
    return fn


def compile_quietly(graph, **kwargs):
    """Compile, failing the test if a GraphValidationWarning is emitted."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", GraphValidationWarning)
        return graph.compile(**kwargs)


def linear(*names):
    """START -> names[0] -> ... -> END, each node marking the trail."""
    graph = StateGraph(State)
    prev = START
    for name in names:
        graph.add_node(name, mark(name))
        graph.add_edge(prev, name)
        prev = name
    graph.add_edge(prev, END)
    return graph


def edges_between(G, u, v):
    """Attribute dicts of all edges u -> v in a MultiDiGraph."""
    return list((G.get_edge_data(u, v) or {}).values())


def only_edge(G, u, v):
    found = edges_between(G, u, v)
    assert len(found) == 1, f"expected one edge {u} -> {v}, found {found}"
    return found[0]


# --------------------------------------------------------------------------------------------
# add_node
# --------------------------------------------------------------------------------------------


def test_add_node_by_name_runs():
    result = compile_quietly(linear("alpha", "beta")).invoke({})
    assert result["trail"] == ["alpha", "beta"]


def test_add_node_by_function_uses_dunder_name():
    def greet(state):
        return {"trail": ["hello"]}

    graph = StateGraph(State)
    graph.add_node(greet)
    graph.add_edge(START, "greet")
    graph.add_edge("greet", END)
    app = compile_quietly(graph)

    assert "greet" in app.get_graph().nodes
    assert app.invoke({})["trail"] == ["hello"]


def test_add_node_returns_the_builder_for_chaining():
    graph = StateGraph(State)
    assert graph.add_node("one", mark("one")) is graph
    assert graph.add_node(mark("two")) is graph

    chained = StateGraph(State).add_node("x", mark("x")).add_node("y", mark("y"))
    assert isinstance(chained, StateGraph)
    chained.add_edge(START, "x")
    chained.add_edge("x", "y")
    chained.add_edge("y", END)
    assert compile_quietly(chained).invoke({})["trail"] == ["x", "y"]


def test_add_node_accepts_retry_timeout_and_metadata():
    graph = StateGraph(State)
    returned = graph.add_node(
        "careful",
        mark("careful"),
        retry=RetryPolicy(max_attempts=2, initial_interval=0.0, jitter=False),
        timeout=30.0,
        metadata={"owner": "team-a"},
    )
    assert returned is graph
    graph.add_edge(START, "careful")
    graph.add_edge("careful", END)
    app = compile_quietly(graph)
    assert app.invoke({})["trail"] == ["careful"]
    assert app.get_graph().nodes["careful"]["metadata"] == {"owner": "team-a"}


def test_compiled_graph_as_node_is_named_after_the_compiled_graph():
    child = compile_quietly(linear("inner"), name="child_flow")
    assert child.name == "child_flow"

    parent = StateGraph(State)
    parent.add_node(child)
    parent.add_edge(START, "child_flow")
    parent.add_edge("child_flow", END)
    app = compile_quietly(parent)

    G = app.get_graph()
    assert G.nodes["child_flow"]["kind"] == "subgraph"
    assert app.invoke({})["trail"] == ["inner"]


def test_duplicate_node_name_raises_at_add_time():
    graph = StateGraph(State)
    graph.add_node("twin", noop)
    with pytest.raises(GraphValidationError, match="twin"):
        graph.add_node("twin", mark("other"))


def test_duplicate_node_name_from_function_raises_at_add_time():
    def repeated(state):
        return None

    graph = StateGraph(State)
    graph.add_node(repeated)
    with pytest.raises(GraphValidationError, match="repeated"):
        graph.add_node(repeated)


@pytest.mark.parametrize("reserved", [START, END])
def test_reserved_names_raise_at_add_time(reserved):
    graph = StateGraph(State)
    with pytest.raises(GraphValidationError, match=re.escape(reserved)):
        graph.add_node(reserved, noop)


def test_reserved_name_from_function_raises_at_add_time():
    def sneaky(state):
        return None

    sneaky.__name__ = END
    graph = StateGraph(State)
    with pytest.raises(GraphValidationError):
        graph.add_node(sneaky)


# --------------------------------------------------------------------------------------------
# compile: errors
# --------------------------------------------------------------------------------------------


def test_edge_to_unknown_node_is_an_error():
    with pytest.raises(GraphValidationError) as info:
        graph = linear("real")
        graph.add_edge("real", "ghost_target")
        graph.compile()
    assert "ghost_target" in str(info.value)


def test_edge_from_unknown_node_is_an_error():
    with pytest.raises(GraphValidationError) as info:
        graph = linear("real")
        graph.add_edge("ghost_source", "real")
        graph.compile()
    assert "ghost_source" in str(info.value)


def test_join_with_unknown_source_is_an_error():
    with pytest.raises(GraphValidationError) as info:
        graph = linear("real", "after")
        graph.add_edge(["real", "ghost_source"], "after")
        graph.compile()
    assert "ghost_source" in str(info.value)


def test_conditional_edges_from_unknown_node_is_an_error():
    def route(state) -> Literal["real"]:
        return "real"

    with pytest.raises(GraphValidationError) as info:
        graph = linear("real")
        graph.add_conditional_edges("ghost_source", route)
        graph.compile()
    assert "ghost_source" in str(info.value)


def test_entry_edge_to_unknown_node_is_an_error():
    with pytest.raises(GraphValidationError) as info:
        graph = linear("real")
        graph.add_edge(START, "ghost_entry")
        graph.compile()
    assert "ghost_entry" in str(info.value)


def test_no_entry_point_is_an_error():
    graph = StateGraph(State)
    graph.add_node("lonely", noop)
    graph.add_edge("lonely", END)
    with pytest.raises(GraphValidationError) as info:
        graph.compile()
    assert re.search(r"entry|start", str(info.value), re.IGNORECASE)


def test_node_unreachable_from_start_is_an_error():
    graph = linear("main_line")
    graph.add_node("orphan_node", noop)
    graph.add_edge("orphan_node", END)
    with pytest.raises(GraphValidationError) as info:
        graph.compile()
    assert "orphan_node" in str(info.value)


def test_node_with_no_outgoing_edges_ends_its_branch_with_a_warning():
    # as in LangGraph: the branch ends there; the warning says how to make it explicit
    graph = linear("main_line")
    graph.add_node("dead_end", mark("dead_end"))
    graph.add_edge("main_line", "dead_end")
    with pytest.warns(GraphValidationWarning, match=r"'dead_end'.*add_edge\(node, END\)"):
        app = graph.compile()
    assert app.invoke({})["trail"] == ["main_line", "dead_end"]


def test_the_no_outgoing_edge_warning_is_silenced_by_an_edge_to_end():
    graph = linear("main_line")
    graph.add_node("dead_end", mark("dead_end"))
    graph.add_edge("main_line", "dead_end")
    graph.add_edge("dead_end", END)
    assert compile_quietly(graph).invoke({})["trail"] == ["main_line", "dead_end"]


def test_node_whose_only_edge_is_a_self_loop_has_no_path_to_end():
    graph = linear("main_line")
    graph.add_node("spinner", noop)
    graph.add_edge("main_line", "spinner")
    graph.add_edge("spinner", "spinner")
    with pytest.raises(GraphValidationError) as info:
        graph.compile()
    assert "spinner" in str(info.value)


def test_node_leading_into_a_cycle_that_never_reaches_end_is_an_error():
    graph = linear("main_line")
    graph.add_node("trap", noop).add_node("cycle_a", noop).add_node("cycle_b", noop)
    graph.add_edge("main_line", "trap")
    graph.add_edge("trap", "cycle_a")
    graph.add_edge("cycle_a", "cycle_b")
    graph.add_edge("cycle_b", "cycle_a")
    with pytest.raises(GraphValidationError) as info:
        graph.compile()
    message = str(info.value)
    assert any(name in message for name in ("trap", "cycle_a", "cycle_b")), message


def test_cycle_with_an_exit_to_end_is_fine():
    def route(state) -> Literal["looper", "__end__"]:
        return END if len(state.get("trail", [])) >= 3 else "looper"

    graph = StateGraph(State)
    graph.add_node("looper", mark("looper"))
    graph.add_edge(START, "looper")
    graph.add_conditional_edges("looper", route)
    result = compile_quietly(graph).invoke({})
    assert result["trail"] == ["looper", "looper", "looper"]


def test_router_path_map_dict_naming_unknown_node_is_an_error():
    def route(state):
        return "go"

    graph = StateGraph(State)
    graph.add_node("source", noop).add_node("target", noop)
    graph.add_edge(START, "source")
    graph.add_edge("target", END)
    with pytest.raises(GraphValidationError) as info:
        graph.add_conditional_edges("source", route, {"go": "target", "away": "ghost_target"})
        graph.compile()
    assert "ghost_target" in str(info.value)


def test_router_path_map_list_naming_unknown_node_is_an_error():
    def route(state):
        return "target"

    graph = StateGraph(State)
    graph.add_node("source", noop).add_node("target", noop)
    graph.add_edge(START, "source")
    graph.add_edge("target", END)
    with pytest.raises(GraphValidationError) as info:
        graph.add_conditional_edges("source", route, ["target", "ghost_target"])
        graph.compile()
    assert "ghost_target" in str(info.value)


def test_router_literal_hint_naming_unknown_node_is_an_error():
    def route(state) -> Literal["target", "ghost_target"]:
        return "target"

    graph = StateGraph(State)
    graph.add_node("source", noop).add_node("target", noop)
    graph.add_edge(START, "source")
    graph.add_edge("target", END)
    with pytest.raises(GraphValidationError) as info:
        graph.add_conditional_edges("source", route)
        graph.compile()
    assert "ghost_target" in str(info.value)


# --------------------------------------------------------------------------------------------
# compile: warnings
# --------------------------------------------------------------------------------------------


def test_router_without_declared_targets_warns_and_still_runs():
    def pick_next(state):
        return "picked"

    graph = StateGraph(State)
    graph.add_node("dispatcher", mark("dispatcher")).add_node("picked", mark("picked"))
    graph.add_edge(START, "dispatcher")
    graph.add_conditional_edges("dispatcher", pick_next)
    graph.add_edge("picked", END)

    with pytest.warns(GraphValidationWarning) as record:
        app = graph.compile()
    messages = [str(w.message) for w in record if issubclass(w.category, GraphValidationWarning)]
    assert any("dispatcher" in m or "pick_next" in m for m in messages), messages

    assert app.invoke({})["trail"] == ["dispatcher", "picked"]


def test_router_with_literal_hint_does_not_warn():
    def pick_next(state) -> Literal["picked", "__end__"]:
        return "picked"

    graph = StateGraph(State)
    graph.add_node("dispatcher", mark("dispatcher")).add_node("picked", mark("picked"))
    graph.add_edge(START, "dispatcher")
    graph.add_conditional_edges("dispatcher", pick_next)
    graph.add_edge("picked", END)
    assert compile_quietly(graph).invoke({})["trail"] == ["dispatcher", "picked"]


def test_router_with_path_map_does_not_warn():
    def pick_next(state):
        return "yes"

    graph = StateGraph(State)
    graph.add_node("dispatcher", mark("dispatcher")).add_node("picked", mark("picked"))
    graph.add_edge(START, "dispatcher")
    graph.add_conditional_edges("dispatcher", pick_next, {"yes": "picked", "no": END})
    graph.add_edge("picked", END)
    assert compile_quietly(graph).invoke({})["trail"] == ["dispatcher", "picked"]


def jumper(state) -> Command[Literal["landing"]]:
    return Command(update={"trail": ["jumper"]}, goto="landing")


def test_node_with_static_edges_and_command_hint_warns():
    graph = StateGraph(State)
    graph.add_node(jumper).add_node("landing", mark("landing"))
    graph.add_edge(START, "jumper")
    graph.add_edge("jumper", "landing")  # static edge AND a Command hint
    graph.add_edge("landing", END)
    with pytest.warns(GraphValidationWarning) as record:
        graph.compile()
    messages = [str(w.message) for w in record if issubclass(w.category, GraphValidationWarning)]
    assert any("jumper" in m for m in messages), messages


def test_command_hint_without_static_edges_does_not_warn_and_counts_for_reachability():
    graph = StateGraph(State)
    graph.add_node(jumper).add_node("landing", mark("landing"))
    graph.add_edge(START, "jumper")
    graph.add_edge("landing", END)
    # "landing" is reachable only through jumper's Command[Literal["landing"]] hint.
    app = compile_quietly(graph)
    assert app.invoke({})["trail"] == ["jumper", "landing"]


# --------------------------------------------------------------------------------------------
# add_sequence
# --------------------------------------------------------------------------------------------


def step_one(state):
    return {"trail": ["one"]}


def step_two(state):
    return {"trail": ["two"]}


def step_three(state):
    return {"trail": ["three"]}


def test_add_sequence_adds_and_chains_nodes():
    graph = StateGraph(State)
    graph.add_sequence([step_one, ("second", step_two), step_three])
    graph.add_edge(START, "step_one")
    graph.add_edge("step_three", END)
    app = compile_quietly(graph)

    assert app.invoke({})["trail"] == ["one", "two", "three"]

    G = app.get_graph()
    assert {"step_one", "second", "step_three"} <= set(G.nodes)
    assert "step_two" not in G.nodes
    assert only_edge(G, "step_one", "second")["kind"] == "static"
    assert only_edge(G, "second", "step_three")["kind"] == "static"
    assert not edges_between(G, "step_one", "step_three")


def test_add_sequence_duplicate_name_raises():
    graph = StateGraph(State)
    graph.add_node(step_one)
    with pytest.raises(GraphValidationError, match="step_one"):
        graph.add_sequence([step_one, step_two])


# --------------------------------------------------------------------------------------------
# get_graph
# --------------------------------------------------------------------------------------------


def pick(state):
    return "left"


def choose(state) -> Literal["f", "__end__"]:
    return "f"


def hop(state) -> Command[Literal["f", "sub"]]:
    return Command(goto="f")


def build_showcase():
    """A graph with every edge kind.

    START -> a, START -> b            static
    [a, b] -> c                        join
    c --pick {"left": d, "e": e}-->    conditional, path_map keys differ / equal targets
    d --choose Literal[f, END]-->      conditional from a Literal hint
    e  -> Command[Literal[f, sub]]     command
    f -> END, sub -> END               static; sub is a compiled subgraph
    """
    child = StateGraph(State)
    child.add_node("inner", noop)
    child.add_edge(START, "inner")
    child.add_edge("inner", END)
    child_app = compile_quietly(child, name="child")

    graph = StateGraph(State)
    graph.add_node("a", noop, metadata={"team": "red"}).add_node("b", noop).add_node("c", noop)
    graph.add_node("d", noop).add_node("e", hop).add_node("f", noop)
    graph.add_node("sub", child_app)
    graph.add_edge(START, "a")
    graph.add_edge(START, "b")
    graph.add_edge(["a", "b"], "c")
    graph.add_conditional_edges("c", pick, {"left": "d", "e": "e"})
    graph.add_conditional_edges("d", choose)
    graph.add_edge("f", END)
    graph.add_edge("sub", END)
    app = compile_quietly(graph, name="showcase")
    return app, child_app


def test_get_graph_returns_a_multidigraph_with_the_name():
    app, _ = build_showcase()
    G = app.get_graph()
    assert isinstance(G, nx.MultiDiGraph)
    assert G.graph["name"] == "showcase"


def test_get_graph_nodes_and_kinds():
    app, child_app = build_showcase()
    G = app.get_graph()

    assert set(G.nodes) == {START, END, "a", "b", "c", "d", "e", "f", "sub"}
    assert G.nodes[START]["kind"] == "start"
    assert G.nodes[END]["kind"] == "end"
    for name in "abcdef":
        assert G.nodes[name]["kind"] == "function", name
    assert G.nodes["sub"]["kind"] == "subgraph"
    assert G.nodes["sub"]["graph"] is child_app


def test_get_graph_node_metadata():
    app, _ = build_showcase()
    G = app.get_graph()
    assert G.nodes["a"]["metadata"] == {"team": "red"}
    for name in G.nodes:
        assert isinstance(G.nodes[name]["metadata"], dict), name


def test_get_graph_edge_kinds_are_exactly_as_built():
    app, _ = build_showcase()
    G = app.get_graph()
    actual = Counter((u, v, data["kind"]) for u, v, data in G.edges(data=True))
    expected = Counter(
        [
            (START, "a", "static"),
            (START, "b", "static"),
            ("a", "c", "join"),
            ("b", "c", "join"),
            ("c", "d", "conditional"),
            ("c", "e", "conditional"),
            ("d", "f", "conditional"),
            ("d", END, "conditional"),
            ("e", "f", "command"),
            ("e", "sub", "command"),
            ("f", END, "static"),
            ("sub", END, "static"),
        ]
    )
    assert actual == expected


def test_get_graph_every_edge_has_a_label_attribute():
    app, _ = build_showcase()
    G = app.get_graph()
    for u, v, data in G.edges(data=True):
        assert "label" in data, (u, v)
        assert data["label"] is None or isinstance(data["label"], str), (u, v)


def test_get_graph_static_edges_have_no_label():
    app, _ = build_showcase()
    G = app.get_graph()
    for u, v in [(START, "a"), (START, "b"), ("f", END), ("sub", END)]:
        assert only_edge(G, u, v)["label"] is None, (u, v)


def test_get_graph_join_edges_carry_their_sources():
    app, _ = build_showcase()
    G = app.get_graph()
    for src in ("a", "b"):
        data = only_edge(G, src, "c")
        assert data["kind"] == "join"
        assert data["join"] == ("a", "b")


def test_get_graph_conditional_edges_from_path_map_dict():
    app, _ = build_showcase()
    G = app.get_graph()

    to_d = only_edge(G, "c", "d")
    assert to_d["kind"] == "conditional"
    assert to_d["router"] == "pick"
    assert to_d["label"] == "left"  # key differs from target

    to_e = only_edge(G, "c", "e")
    assert to_e["kind"] == "conditional"
    assert to_e["router"] == "pick"
    assert to_e["label"] == "e"  # the key, even where it equals the target


def test_get_graph_conditional_edges_from_literal_hint():
    app, _ = build_showcase()
    G = app.get_graph()
    for target in ("f", END):
        data = only_edge(G, "d", target)
        assert data["kind"] == "conditional"
        assert data["router"] == "choose"
        assert data["label"] == target  # the Literal value the router returns


def test_get_graph_command_edges_from_return_hint():
    app, _ = build_showcase()
    G = app.get_graph()
    for target in ("f", "sub"):
        assert only_edge(G, "e", target)["kind"] == "command"


def test_get_graph_path_map_with_several_keys_to_one_target_gives_parallel_edges():
    def verdict(state):
        return "yes"

    graph = StateGraph(State)
    graph.add_node("judge", noop).add_node("accept", noop)
    graph.add_edge(START, "judge")
    graph.add_conditional_edges("judge", verdict, {"yes": "accept", "sure": "accept", "no": END})
    graph.add_edge("accept", END)
    G = compile_quietly(graph).get_graph()

    to_accept = edges_between(G, "judge", "accept")
    assert sorted(d["label"] for d in to_accept) == ["sure", "yes"]
    assert all(d["kind"] == "conditional" and d["router"] == "verdict" for d in to_accept)
    assert only_edge(G, "judge", END)["label"] == "no"


def test_get_graph_path_map_list_has_no_labels():
    def verdict(state):
        return "accept"

    graph = StateGraph(State)
    graph.add_node("judge", noop).add_node("accept", noop)
    graph.add_edge(START, "judge")
    graph.add_conditional_edges("judge", verdict, ["accept", END])
    graph.add_edge("accept", END)
    G = compile_quietly(graph).get_graph()

    for target in ("accept", END):
        data = only_edge(G, "judge", target)
        assert data["kind"] == "conditional"
        assert data["router"] == "verdict"
        assert data["label"] is None


def test_compile_name_sets_graph_name():
    for name in ("first_name", "second_name"):
        G = compile_quietly(linear("only"), name=name).get_graph()
        assert G.graph["name"] == name
