# Send map-reduce, a deferred node that waits for every branch, RemainingSteps.
import operator
from typing import Annotated

from langgraph.graph import END, START, StateGraph
from langgraph.managed import RemainingSteps
from langgraph.types import Send
from typing_extensions import TypedDict


class OverallState(TypedDict):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    summary: str


def continue_to_jokes(state: OverallState):
    return [Send("generate_joke", {"subject": s}) for s in state["subjects"]]


def generate_joke(state: dict):
    return {"jokes": [f"Joke about {state['subject']}"]}


def summarize(state: OverallState):
    return {"summary": f"{len(state['jokes'])} jokes"}


builder = StateGraph(OverallState)
builder.add_node("generate_joke", generate_joke)
builder.add_node("summarize", summarize)
builder.add_conditional_edges(START, continue_to_jokes, ["generate_joke"])
builder.add_edge("generate_joke", "summarize")
builder.add_edge("summarize", END)
print(builder.compile().invoke({"subjects": ["lions", "elephants", "penguins"], "jokes": []}))


class DeferState(TypedDict):
    aggregate: Annotated[list, operator.add]


def a(state):
    return {"aggregate": ["A"]}


def b(state):
    return {"aggregate": ["B"]}


def b_2(state):
    return {"aggregate": ["B_2"]}


def c(state):
    return {"aggregate": ["C"]}


def d(state):
    return {"aggregate": ["D"]}


db = StateGraph(DeferState)
db.add_node(a)
db.add_node(b)
db.add_node(b_2)
db.add_node(c)
db.add_node(d, defer=True)
db.add_edge(START, "a")
db.add_edge("a", "b")
db.add_edge("a", "c")
db.add_edge("b", "b_2")
db.add_edge("b_2", "d")
db.add_edge("c", "d")
db.add_edge("d", END)
print(db.compile().invoke({"aggregate": []}))


class LoopState(TypedDict):
    count: int
    remaining_steps: RemainingSteps


def counter(state: LoopState):
    return {"count": state["count"] + 1}


def keep_going(state: LoopState):
    return END if state["remaining_steps"] <= 2 else "counter"


lb = StateGraph(LoopState)
lb.add_node("counter", counter)
lb.add_edge(START, "counter")
lb.add_conditional_edges("counter", keep_going, ["counter", END])
print(lb.compile().invoke({"count": 0}, {"recursion_limit": 10}))
