# Persistence: config with thread_id, get_state, get_state_history, update_state(as_node),
# snapshot.config, positional config, recursion_limit in config.
import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    foo: str
    bar: Annotated[list[str], operator.add]


def node_a(state: State):
    return {"foo": "a", "bar": ["a"]}


def node_b(state: State):
    return {"foo": "b", "bar": ["b"]}


workflow = StateGraph(State)
workflow.add_node(node_a)
workflow.add_node(node_b)
workflow.add_edge(START, "node_a")
workflow.add_edge("node_a", "node_b")
workflow.add_edge("node_b", END)

checkpointer = InMemorySaver()
graph = workflow.compile(checkpointer=checkpointer)

config = {"configurable": {"thread_id": "1"}}
print(graph.invoke({"foo": "", "bar": []}, config))
snapshot = graph.get_state(config)
print(snapshot.values)
print(snapshot.next)
print(sorted(snapshot.config["configurable"]))
print(snapshot.config["configurable"]["thread_id"])
history = list(graph.get_state_history(config))
print(len(history))
print([h.next for h in history])
print([h.values for h in history])
graph.update_state(config, {"foo": "2", "bar": ["b"]})
print(graph.get_state(config).values)
new_config = graph.update_state(config, {"foo": "x", "bar": ["z"]}, as_node="node_a")
print(graph.get_state(new_config).next)
print(graph.invoke(None, config))
print(graph.invoke({"foo": "", "bar": []}, config={"configurable": {"thread_id": "2"}}))


def loop(state: State):
    return {"bar": ["again"]}


looping = StateGraph(State)
looping.add_node("loop", loop)
looping.add_edge(START, "loop")
# (graphflow refuses at compile a cycle that can never reach END; the one-line change of
# docs/from-langgraph.md is a router that declares END, even if it never goes there)
looping.add_conditional_edges("loop", lambda state: "loop", ["loop", END])
try:
    looping.compile().invoke({"foo": "", "bar": []}, {"recursion_limit": 4})
except GraphRecursionError as exc:
    print("recursion", type(exc).__name__)
