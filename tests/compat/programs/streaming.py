# Streaming: stream_mode (one mode, a list of modes), subgraphs=True, invoke(stream_mode=...).
import operator
from typing import Annotated

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    topic: str
    joke: str


def refine_topic(state: State):
    return {"topic": state["topic"] + " and cats"}


def generate_joke(state: State):
    return {"joke": f"This is a joke about {state['topic']}"}


graph = (
    StateGraph(State)
    .add_node(refine_topic)
    .add_node(generate_joke)
    .add_edge(START, "refine_topic")
    .add_edge("refine_topic", "generate_joke")
    .compile()
)

for chunk in graph.stream({"topic": "ice cream"}, stream_mode="updates"):
    print(chunk)
for chunk in graph.stream({"topic": "ice cream"}, stream_mode="values"):
    print(chunk)
for mode, chunk in graph.stream({"topic": "ice cream"}, stream_mode=["updates", "values"]):
    print(mode, chunk)


class SubState(TypedDict):
    foo: str
    bar: str


def sub1(state: SubState):
    return {"bar": "bar"}


def sub2(state: SubState):
    return {"foo": state["foo"] + state["bar"]}


sub = StateGraph(SubState)
sub.add_node(sub1)
sub.add_node(sub2)
sub.add_edge(START, "sub1")
sub.add_edge("sub1", "sub2")
subgraph = sub.compile()


class ParentState(TypedDict):
    foo: str


def node_1(state: ParentState):
    return {"foo": "hi! " + state["foo"]}


parent = StateGraph(ParentState)
parent.add_node("node_1", node_1)
parent.add_node("node_2", subgraph)
parent.add_edge(START, "node_1")
parent.add_edge("node_1", "node_2")
pgraph = parent.compile()
for chunk in pgraph.stream({"foo": "foo"}, stream_mode="updates", subgraphs=True):
    ns, update = chunk
    print([n.split(":")[0] for n in ns], update)
print(pgraph.invoke({"foo": "foo"}))


class Counter(TypedDict):
    items: Annotated[list[int], operator.add]


def add_one(state: Counter):
    return {"items": [len(state["items"])]}


cgraph = StateGraph(Counter).add_node(add_one).add_edge(START, "add_one").compile()
print(cgraph.invoke({"items": [7]}, stream_mode="values"))
