"""W10 -- the added latency of a durable timer's wake-up.

- ``W10_timer_wake_latency_ms``: a run sleeps (``ctx.sleep``) for 0.2 s on a SQLite file; a
  Worker in this process (``poll=1``) wakes it. The time from the deadline to the moment the node
  runs again, median of several runs.
- On PostgreSQL (when a server is reachable, as for W4), the wait comes from *another process*:
  a worker (``poll=1``) idles in a thread on one checkpointer while the run is started (or
  signalled) through a second checkpointer, which this process's worker does not watch, at a
  random moment of the worker's poll cycle. ``W10_pg_other_process_timer_ms``: deadline to node,
  for a 0.2 s sleep; ``W10_pg_other_process_signal_ms``: ``app.signal`` to node. Each with the
  worker listening (``LISTEN``/``NOTIFY``, the default) and, ``..._poll_ms``, without
  (``listen=False``: what it was before, seen at the next poll).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TypedDict

from _common import check, log

from graphflow import END, START, RunContext, StateGraph
from graphflow.checkpoint.sqlite import SqliteCheckpointer
from graphflow.durable import Worker


class S(TypedDict, total=False):
    woke: float
    deadline: float


def build(saver, name: str = "w10", wait=lambda ctx: ctx.sleep(0.2)):
    """One node that waits (``wait(ctx)``: a 0.2 s sleep) and records when it woke."""
    def node(state: S, ctx: RunContext) -> dict:
        wait(ctx)
        return {"woke": time.time()}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    return g.compile(checkpointer=saver, name=name)


def build_signalled(saver):
    return build(saver, "w10-signal", lambda ctx: ctx.wait_for_signal("go"))


def lateness(app, worker: Worker) -> float:
    thread = uuid.uuid4().hex
    out = app.invoke({}, thread=thread)
    deadline = out["__interrupt__"][0].value.until
    stop = threading.Event()
    worker.run(stop=stop, until=lambda: app.get_state(thread).next == ())
    woke = app.get_state(thread).values["woke"]
    check(woke >= deadline, "woken before its deadline")
    return (woke - deadline) * 1000


def other_process(dsn: str, listen: bool, samples: int) -> tuple[float, float]:
    """(timer lateness ms, signal latency ms), medians, of waits made by "another process"."""
    from graphflow.checkpoint.postgres import PostgresCheckpointer

    poll = 1.0
    with PostgresCheckpointer(dsn) as mine, PostgresCheckpointer(dsn) as theirs:
        finished: dict[str, threading.Event] = {}

        def on_wake(woken) -> None:
            if woken.outcome == "finished" and woken.thread in finished:
                finished[woken.thread].set()

        worker = Worker(build(mine), build_signalled(mine), poll=poll, listen=listen)
        stop = threading.Event()
        runner = threading.Thread(target=worker.run, kwargs={"stop": stop, "on_wake": on_wake})
        runner.start()
        timer_app, signal_app = build(theirs), build_signalled(theirs)
        timers, signals = [], []
        try:
            for _ in range(samples):
                thread = uuid.uuid4().hex
                finished[thread] = threading.Event()
                time.sleep(random.uniform(0, poll))  # anywhere in the worker's poll cycle
                deadline = timer_app.invoke({}, thread=thread)["__interrupt__"][0].value.until
                check(finished[thread].wait(60), "the timer was not woken")
                woke = timer_app.get_state(thread).values["woke"]
                check(woke >= deadline, "woken before its deadline")
                timers.append((woke - deadline) * 1000)

                thread = uuid.uuid4().hex
                finished[thread] = threading.Event()
                signal_app.invoke({}, thread=thread)
                time.sleep(random.uniform(0, poll))
                sent = time.time()
                signal_app.signal(thread, "go", 1)
                check(finished[thread].wait(60), "the signal did not wake the thread")
                signals.append((signal_app.get_state(thread).values["woke"] - sent) * 1000)
        finally:
            stop.set()
            worker.notify()
            runner.join(60)
            worker.close()
    return statistics.median(timers), statistics.median(signals)


def run(quick: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        saver = SqliteCheckpointer(Path(tmp) / "runs.db")
        app = build(saver)
        worker = Worker(app, poll=1.0)
        samples = [lateness(app, worker) for _ in range(3 if quick else 9)]
        saver.close()
    out = {"W10_timer_wake_latency_ms": round(statistics.median(samples), 2)}
    from graphflow.testing.postgres import configured_dsn, ensure_database

    dsn = configured_dsn()  # GRAPHFLOW_PG_DSN, else a graphflow_test database, made if missing
    try:
        ensure_database(dsn)
    except Exception as exc:
        log(f"W10: no PostgreSQL server ({exc}); the other-process measurements are skipped")
        return out
    n = 3 if quick else 9
    for listen, suffix in ((True, ""), (False, "_poll")):
        timer, signal = other_process(dsn, listen, n)
        out[f"W10_pg_other_process_timer{suffix}_ms"] = round(timer, 2)
        out[f"W10_pg_other_process_signal{suffix}_ms"] = round(signal, 2)
    return out
