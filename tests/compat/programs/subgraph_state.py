# Human in the loop inside a subgraph: the parent's snapshot with subgraphs=True shows where the
# subgraph stopped (tasks[0].state), then Command(resume=...) finishes both.
import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict


class Inner(TypedDict):
    draft: str
    notes: Annotated[list[str], operator.add]


def write(state: Inner):
    return {"draft": state["draft"] + " v2", "notes": ["written"]}


def review(state: Inner):
    verdict = interrupt({"review": state["draft"]})
    return {"notes": [f"review: {verdict}"]}


inner = StateGraph(Inner)
inner.add_node("write", write)
inner.add_node("review", review)
inner.add_edge(START, "write")
inner.add_edge("write", "review")
inner.add_edge("review", END)


class Outer(TypedDict):
    draft: str
    notes: Annotated[list[str], operator.add]


def publish(state: Outer):
    return {"notes": ["published"]}


outer = StateGraph(Outer)
outer.add_node("editor", inner.compile())
outer.add_node("publish", publish)
outer.add_edge(START, "editor")
outer.add_edge("editor", "publish")
outer.add_edge("publish", END)
graph = outer.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "doc"}}
print(graph.invoke({"draft": "v1", "notes": []}, config)["__interrupt__"][0].value)
snapshot = graph.get_state(config, subgraphs=True)
print(snapshot.next, [t.name for t in snapshot.tasks])
sub = snapshot.tasks[0].state
print(sub.values)
print(sub.next, sub.tasks[0].interrupts[0].value)
print(graph.invoke(Command(resume="ok"), config))
print(graph.get_state(config, subgraphs=True).tasks)
