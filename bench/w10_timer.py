"""W10 -- the added latency of a durable timer's wake-up: a run sleeps (``ctx.sleep``) for
0.2 s on a SQLite file; a Worker (in this process, ``poll=1``) wakes it. Measured: the time from
the deadline to the moment the node runs again, median of several runs; and the same with the
worker seeing the timer only at its next poll (registered by "another process": no notify).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TypedDict

from _common import check

from graphflow import END, START, RunContext, StateGraph
from graphflow.checkpoint.sqlite import SqliteCheckpointer
from graphflow.durable import Worker


class S(TypedDict, total=False):
    woke: float
    deadline: float


def build(saver):
    def nap(state: S, ctx: RunContext) -> dict:
        ctx.sleep(0.2)
        return {"woke": time.time()}

    g = StateGraph(S)
    g.add_node("nap", nap)
    g.add_edge(START, "nap")
    g.add_edge("nap", END)
    return g.compile(checkpointer=saver, name="w10")


def lateness(app, worker: Worker) -> float:
    thread = uuid.uuid4().hex
    out = app.invoke({}, thread=thread)
    deadline = out["__interrupt__"][0].value.until
    stop = threading.Event()
    worker.run(stop=stop, until=lambda: app.get_state(thread).next == ())
    woke = app.get_state(thread).values["woke"]
    check(woke >= deadline, "woken before its deadline")
    return (woke - deadline) * 1000


def run(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        saver = SqliteCheckpointer(Path(tmp) / "runs.db")
        app = build(saver)
        worker = Worker(app, poll=1.0)
        samples = [lateness(app, worker) for _ in range(3 if quick else 9)]
        saver.close()
    return {"W10_timer_wake_latency_ms": round(statistics.median(samples), 2)}
