"""Graphs that sleep and wait for signals, for the durable-wait tests and the worker process.

``make_sleeper(saver)``: ``before`` (logs an effect) -> ``nap`` (ctx.sleep(SLEEP_SECONDS), then
logs an effect and records the wall time it woke) -> ``after``. ``make_approval(saver)``: waits
for the signal ``approve`` and stores its payload. Effects are appended to the file named by
``DURABLE_EFFECTS`` (one line each), so a test in another process can count them.

``sleeper_app`` / ``approval_app``: the same on the SQLite file ``DURABLE_DB`` (for
``graphflow worker tests/support/durable_graphs:sleeper_app``).
"""

from __future__ import annotations

import os
import time
from typing import TypedDict

from graphflow import END, START, RunContext, StateGraph


class Nap(TypedDict, total=False):
    seconds: float
    log: list[str]
    woke_at: float


def effect(name: str) -> None:
    path = os.environ.get("DURABLE_EFFECTS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(name + "\n")


def before(state: Nap, ctx: RunContext) -> dict:
    ctx.step("before", effect, "before")
    return {"log": ["before"]}


def nap(state: Nap, ctx: RunContext) -> dict:
    ctx.sleep(state.get("seconds", 0.3))
    woke = ctx.step("woke", time.time)
    ctx.step("after-sleep", effect, "nap")
    if os.environ.get("DURABLE_HANG_AFTER_WAKE"):  # the test kills the process here
        with open(os.environ["DURABLE_HANG_AFTER_WAKE"], "w") as f:
            f.write("woken")
        time.sleep(3600)
    return {"log": [*state["log"], "nap"], "woke_at": woke}


def after(state: Nap) -> dict:
    return {"log": [*state["log"], "after"]}


def make_sleeper(saver, name: str = "sleeper"):
    g = StateGraph(Nap)
    g.add_node("before", before)
    g.add_node("nap", nap)
    g.add_node("after", after)
    g.add_edge(START, "before")
    g.add_edge("before", "nap")
    g.add_edge("nap", "after")
    g.add_edge("after", END)
    return g.compile(checkpointer=saver, name=name)


class Approval(TypedDict, total=False):
    request: str
    answer: object


def ask(state: Approval, ctx: RunContext) -> dict:
    answer = ctx.wait_for_signal("approve")
    ctx.step("approved", effect, f"approved {answer}")
    return {"answer": answer}


def make_approval(saver, name: str = "approval"):
    g = StateGraph(Approval)
    g.add_node("ask", ask)
    g.add_edge(START, "ask")
    g.add_edge("ask", END)
    return g.compile(checkpointer=saver, name=name)


def _db():
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    return SqliteCheckpointer(os.environ["DURABLE_DB"])


def sleeper_app():
    return make_sleeper(_db())


def approval_app():
    return make_approval(_db())
