"""A graph to serve: plan a trip, ask a human to approve it, book it.

    graphflow serve examples.serve.app:graph          # then open http://127.0.0.1:8123/ui

Five nodes: ``intake`` -> ``draft`` (a model call whose tokens stream) -> ``review`` (an
``interrupt``: a human approves or asks for changes) -> ``book`` -> ``confirm``; a rejected draft
goes back to ``draft``. The model is scripted (offline, deterministic, with a price so the run
shows tokens and cost); swap in ``chat_model("openai:gpt-4o-mini")`` for a real one. Each node
pauses ``GRAPHFLOW_EXAMPLE_DELAY`` seconds (default 0.4) so that you can watch the run move.
"""

from __future__ import annotations

import operator
import os
import time
from typing import Annotated, Literal, TypedDict

from graphflow import END, START, StateGraph, interrupt
from graphflow.models import ScriptedModel

DELAY = float(os.environ.get("GRAPHFLOW_EXAMPLE_DELAY", "0.4"))


class Trip(TypedDict):
    request: str
    plan: str
    approved: bool
    feedback: str
    log: Annotated[list[str], operator.add]


def _planner(messages: list) -> str:
    ask = messages[-1].content
    return (f"Day 1: arrive and walk the old town. Day 2: museum and river cruise. "
            f"Day 3: market, then home. ({ask})")


model = ScriptedModel(_planner, model="planner", price=(0.15, 0.60))


def _pause() -> None:
    if DELAY > 0:
        time.sleep(DELAY)


def intake(state: Trip) -> dict:
    _pause()
    return {"log": [f"request: {state['request']}"]}


def draft(state: Trip) -> dict:
    _pause()
    ask = state["request"] + (f"; change: {state['feedback']}" if state.get("feedback") else "")
    plan = model.invoke([("user", ask)]).content
    return {"plan": plan, "log": ["drafted a plan"]}


def review(state: Trip) -> dict:
    answer = interrupt({"question": "Book this plan? Answer yes, or say what to change.",
                        "plan": state["plan"]})
    approved = str(answer).strip().lower() in ("yes", "y", "ok", "approve", "true")
    return {"approved": approved, "feedback": "" if approved else str(answer),
            "log": [f"review: {answer}"]}


def after_review(state: Trip) -> Literal["book", "draft"]:
    return "book" if state["approved"] else "draft"


def book(state: Trip) -> dict:
    _pause()
    return {"log": ["booked hotel and trains"]}


def confirm(state: Trip) -> dict:
    _pause()
    return {"log": ["sent the confirmation"]}


builder = StateGraph(Trip)
builder.add_node("intake", intake)
builder.add_node("draft", draft)
builder.add_node("review", review)
builder.add_node("book", book)
builder.add_node("confirm", confirm)
builder.add_edge(START, "intake")
builder.add_edge("intake", "draft")
builder.add_edge("draft", "review")
builder.add_conditional_edges("review", after_review)
builder.add_edge("book", "confirm")
builder.add_edge("confirm", END)
graph = builder.compile(name="trip")
