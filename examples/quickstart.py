"""graphflow quickstart: a typed state graph with fan-out, a join, a loop and streaming.

Run: python examples/quickstart.py
"""

import operator
from typing import Annotated, Literal, TypedDict

from graphflow import END, START, RunContext, Send, StateGraph
from graphflow.checkpoint import MemoryCheckpointer


class State(TypedDict):
    topic: str
    questions: list[str]
    notes: Annotated[list[str], operator.add]  # a reducer: parallel writes are appended
    drafts: int
    report: str


def plan(state: State) -> dict:
    t = state["topic"]
    return {"questions": [f"what is {t}?", f"who uses {t}?", f"why {t}?"]}


def fan_out(state: State) -> list[Send]:
    # one "research" task per question, run in parallel, merged in Send order
    return [Send("research", q) for q in state["questions"]]


def research(question: str, ctx: RunContext) -> dict:
    ctx.write(f"researching: {question}")  # shows up on the "custom" stream
    return {"notes": [f"{question} -> answer #{len(question)}"]}


def write(state: State) -> dict:
    draft = state["drafts"] + 1
    return {"drafts": draft, "report": f"draft {draft}: " + "; ".join(state["notes"])}


def review(state: State) -> Literal["write", "__end__"]:
    return "write" if state["drafts"] < 2 else END


g = StateGraph(State)
g.add_node("plan", plan)
g.add_node("research", research)
g.add_node("write", write)
g.add_edge(START, "plan")
g.add_conditional_edges("plan", fan_out, ["research"])
g.add_edge("research", "write")
g.add_conditional_edges("write", review)
app = g.compile(checkpointer=MemoryCheckpointer(), name="quickstart")

if __name__ == "__main__":
    for mode, event in app.stream({"topic": "graphs", "drafts": 0}, mode=["updates", "custom"],
                                  thread="demo"):
        print(f"{mode:>8}: {event}")
    final = app.get_state("demo")
    print("\nfinal report:", final.values["report"])
    print("supersteps:", final.step, "| graph nodes:", sorted(app.get_graph().nodes))
