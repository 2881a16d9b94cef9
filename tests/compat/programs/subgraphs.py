# Subgraphs: shared keys, a different schema called from a node, Command.PARENT handoff.

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict


class SubgraphState(TypedDict):
    bar: str


def subgraph_node_1(state: SubgraphState):
    return {"bar": "hi! " + state["bar"]}


subgraph_builder = StateGraph(SubgraphState)
subgraph_builder.add_node(subgraph_node_1)
subgraph_builder.add_edge(START, "subgraph_node_1")
subgraph = subgraph_builder.compile()


class State(TypedDict):
    foo: str


def call_subgraph(state: State):
    subgraph_output = subgraph.invoke({"bar": state["foo"]})
    return {"foo": subgraph_output["bar"]}


builder = StateGraph(State)
builder.add_node("node_1", call_subgraph)
builder.add_edge(START, "node_1")
graph = builder.compile()
print(graph.invoke({"foo": "foo"}))


class Shared(TypedDict):
    foo: str
    hops: int


def inner(state: Shared):
    return Command(update={"foo": state["foo"] + "+inner", "hops": state["hops"] + 1},
                   goto="other", graph=Command.PARENT)


inner_graph = StateGraph(Shared)
inner_graph.add_node("inner", inner)
inner_graph.add_edge(START, "inner")


def other(state: Shared):
    return {"foo": state["foo"] + "+other"}


outer = StateGraph(Shared)
# (graphflow refuses nodes it cannot see a way to; the one-line change of docs/from-langgraph.md
# declares where the subgraph hands over)
outer.add_node("agent", inner_graph.compile(), destinations=["other"])
outer.add_node("other", other)
outer.add_edge(START, "agent")
outer.add_edge("other", END)
print(outer.compile().invoke({"foo": "x", "hops": 0}))
