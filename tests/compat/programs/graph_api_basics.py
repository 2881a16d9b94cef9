# The graph API basics: TypedDict state from typing_extensions, reducers, conditional edges,
# a node with no outgoing edge (ends its branch), set_entry_point / set_finish_point.
import operator
from typing import Annotated, Literal

from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict


class State(TypedDict):
    topic: str
    steps: Annotated[list[str], operator.add]
    count: int


def plan(state: State):
    return {"steps": [f"plan {state['topic']}"], "count": state["count"] + 1}


def route(state: State) -> Literal["write", "review"]:
    return "write" if state["count"] < 3 else "review"


def write(state: State):
    return {"steps": ["write"], "count": state["count"] + 1}


def review(state: State):
    return {"steps": ["review"]}


builder = StateGraph(State)
builder.add_node("plan", plan)
builder.add_node("write", write)
builder.add_node("review", review)
builder.add_edge(START, "plan")
builder.add_conditional_edges("plan", route)
builder.add_edge("write", "plan")
# (a compiled graph's default name is "LangGraph" in LangGraph and "graph" in graphflow: the
# one-line change of docs/from-langgraph.md is to name it)
graph = builder.compile(name="writer")
print(graph.invoke({"topic": "cats", "steps": [], "count": 0}))
print(graph.get_name())

b2 = StateGraph(State)
b2.add_node("plan", plan)
b2.add_node("review", review)
b2.set_entry_point("plan")
b2.add_edge("plan", "review")
b2.set_finish_point("review")
print(b2.compile().invoke({"topic": "dogs", "steps": [], "count": 5}))


def pick(state: State) -> Literal["write", "review"]:
    return "review" if state["count"] > 1 else "write"


b3 = StateGraph(State)
b3.add_node("write", write)
b3.add_node("review", review)
b3.set_conditional_entry_point(pick)
print(b3.compile().invoke({"topic": "x", "steps": [], "count": 2}))
print(b3.compile().invoke({"topic": "x", "steps": [], "count": 0}))
