"""Durable waits: ctx.sleep / sleep_until / wait_for_signal pause a run, a Worker wakes it at the
right time, one writer per thread holds, signals are never lost. Every checkpointer."""

from __future__ import annotations

import asyncio
import operator
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from graphflow import (
    END,
    START,
    Command,
    GraphflowError,
    RunContext,
    SignalTimeoutError,
    StateGraph,
)
from graphflow.checkpoint.lease import Lease
from graphflow.durable import Worker
from graphflow.engine.waits import Wait

sys.path.insert(0, str(Path(__file__).parent / "support"))
from durable_graphs import make_approval, make_sleeper
from waiting import wait_until


@pytest.fixture
def t() -> str:
    """A thread name of the test's own (the PostgreSQL database is shared)."""
    return f"t-{uuid.uuid4().hex}"


def mine(woken, t) -> list[str]:
    """The outcomes of waking thread ``t`` (the database is shared by the whole suite: a worker
    also wakes other tests' due threads of the same graph)."""
    return [w.outcome for w in woken if w.thread == t]


def _interrupt(result):
    (intr,) = result["__interrupt__"]
    return intr


def test_sleep_pauses_and_the_worker_wakes_it_after_the_deadline(saver, t):
    app = make_sleeper(saver)
    out = app.invoke({"seconds": 0.2, "log": []}, thread=t)
    intr = _interrupt(out)
    assert isinstance(intr.value, Wait) and intr.value.kind == "sleep"
    deadline = intr.value.until
    assert app.get_state(t).next == ("nap",)
    worker = Worker(app)
    wait_until(lambda: time.time() >= deadline, "the deadline")
    assert mine(worker.wake_due(), t) == ["finished"]
    state = app.get_state(t).values
    assert state["log"] == ["before", "nap", "after"]
    assert state["woke_at"] >= deadline
    assert saver.waits(t) == []


def test_a_sleeping_thread_is_not_woken_before_its_time(saver, t):
    app = make_sleeper(saver)
    app.invoke({"seconds": 3600, "log": []}, thread=t)
    worker = Worker(app)
    assert mine(worker.wake_due(), t) == []
    (row,) = saver.waits(t)
    assert row.wake_at > time.time() + 3000 and row.graph == "sleeper"
    # continuing it by hand sleeps only the rest: the deadline was journaled
    again = app.invoke(None, thread=t)
    assert _interrupt(again).value.until == row.wake_at
    with pytest.raises(GraphflowError, match="durable timer"):
        app.invoke(Command(resume="now"), thread=t)


def test_sleep_until_a_past_time_passes_at_once(saver, t):
    class S(TypedDict):
        n: int

    def node(state: S, ctx: RunContext) -> dict:
        ctx.sleep_until(datetime.now(UTC) - timedelta(seconds=1))
        ctx.sleep(0)
        return {"n": state["n"] + 1}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    assert g.compile(checkpointer=saver).invoke({"n": 1}, thread=t) == {"n": 2}
    assert saver.waits(t) == []


def test_a_signal_sent_before_the_wait_is_not_lost(saver, t):
    app = make_approval(saver)
    app.signal(t, "approve", {"ok": True})
    assert app.invoke({"request": "r"}, thread=t) == {"request": "r", "answer": {"ok": True}}


def test_a_signal_wakes_the_waiting_thread(saver, t):
    app = make_approval(saver)
    out = app.invoke({"request": "r"}, thread=t)
    assert _interrupt(out).value == Wait(None, "approve", "signal")
    worker = Worker(app)
    assert mine(worker.wake_due(), t) == []  # no signal yet, no timeout: nothing is due
    app.signal(t, "other", 1)  # another name wakes nothing
    assert mine(worker.wake_due(), t) == []
    app.signal(t, "approve", "yes")
    assert mine(worker.wake_due(), t) == ["finished"]
    assert app.get_state(t).values["answer"] == "yes"
    assert saver.waits(t) == []


def test_each_wait_takes_one_signal_in_the_order_sent(saver, t):
    class S(TypedDict):
        got: list

    def node(state: S, ctx: RunContext) -> dict:
        first = ctx.wait_for_signal("item")
        second = ctx.wait_for_signal("item")
        return {"got": [first, second]}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    app = g.compile(checkpointer=saver)
    app.signal(t, "item", 1)
    out = app.invoke({"got": []}, thread=t)  # takes 1, waits for the second
    assert _interrupt(out).value.signal == "item"
    app.signal(t, "item", 2)
    app.signal(t, "item", 3)  # stays in the mailbox for a later wait
    Worker(app).wake_due()
    assert app.get_state(t).values["got"] == [1, 2]


def test_a_signal_timeout_raises_in_the_node(saver, t):
    class S(TypedDict):
        answer: str

    def node(state: S, ctx: RunContext) -> dict:
        try:
            return {"answer": ctx.wait_for_signal("approve", timeout=0.1)}
        except SignalTimeoutError as exc:
            return {"answer": f"timed out: {exc.signal}"}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    app = g.compile(checkpointer=saver)
    deadline = _interrupt(app.invoke({"answer": ""}, thread=t)).value.until
    wait_until(lambda: time.time() >= deadline, "the timeout")
    assert mine(Worker(app).wake_due(), t) == ["finished"]
    assert app.get_state(t).values["answer"] == "timed out: approve"
    app.signal(t, "approve", "late")  # too late: the journaled outcome stands
    assert app.invoke(None, thread=t)["answer"] == "timed out: approve"


def test_command_resume_answers_a_signal_wait(saver, t):
    app = make_approval(saver)
    app.invoke({"request": "r"}, thread=t)
    assert app.invoke(Command(resume="by hand"), thread=t)["answer"] == "by hand"


def test_a_busy_thread_is_woken_later(saver, t):
    app = make_approval(saver)
    app.invoke({"request": "r"}, thread=t)
    app.signal(t, "approve", "yes")
    other = Lease(saver, t, saver.lease_ttl).hold()  # another writer holds the thread
    worker = Worker(app)
    assert mine(worker.wake_due(), t) == ["busy"]
    assert app.get_state(t).next == ("ask",)
    other.release()
    woken: list = []
    stop = threading.Event()
    worker.run(stop=stop, until=lambda: bool(woken), on_wake=woken.append)
    assert woken[-1].outcome == "finished"
    assert app.get_state(t).values["answer"] == "yes"


def test_parallel_branches_sleep_and_wake_separately(saver, t):
    class S(TypedDict):
        log: Annotated[list, operator.add]

    def fast(state: S, ctx: RunContext) -> dict:
        ctx.sleep(0.05)
        return {"log": ["fast"]}

    def slow(state: S, ctx: RunContext) -> dict:
        ctx.sleep(0.3)
        return {"log": ["slow"]}

    g = StateGraph(S)
    g.add_node("fast", fast)
    g.add_node("slow", slow)
    g.add_node("join", lambda s: {"log": ["join"]})
    g.add_edge(START, "fast")
    g.add_edge(START, "slow")
    g.add_edge(["fast", "slow"], "join")
    g.add_edge("join", END)
    app = g.compile(checkpointer=saver)
    assert len(app.invoke({"log": []}, thread=t)["__interrupt__"]) == 2
    woken: list = []
    Worker(app, poll=0.05).run(until=lambda: not saver.waits(t), on_wake=woken.append)
    assert app.get_state(t).values["log"] == ["fast", "slow", "join"]
    assert woken[-1].outcome == "finished"


def test_a_subgraph_sleeps_inside_its_parent(saver, t):
    class S(TypedDict):
        n: int

    def inner(state: S, ctx: RunContext) -> dict:
        ctx.sleep(0.05)
        return {"n": state["n"] + 1}

    sub = StateGraph(S)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner")
    sub.add_edge("inner", END)
    g = StateGraph(S)
    g.add_node("sub", sub.compile())
    g.add_edge(START, "sub")
    g.add_edge("sub", END)
    app = g.compile(checkpointer=saver, name="outer")
    app.invoke({"n": 1}, thread=t)
    (row,) = saver.waits(t)
    assert row.graph == "outer" and row.ns  # the root graph resumes it; the wait is nested
    assert Worker(app, poll=0.05).wait_for(t, timeout=60)[t].values == {"n": 2}


def test_async_nodes_await_the_waits(saver, t):
    class S(TypedDict):
        got: object

    async def node(state: S, ctx: RunContext) -> dict:
        await ctx.sleep(0)
        return {"got": await ctx.wait_for_signal("go")}

    g = StateGraph(S)
    g.add_node("node", node)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    app = g.compile(checkpointer=saver)

    async def scenario() -> dict:
        await app.ainvoke({"got": None}, thread=t)
        await app.asignal(t, "go", [1, 2])
        stop = asyncio.Event()
        serving = asyncio.ensure_future(Worker(app, poll=5).serve(stop))
        while saver.waits(t):  # notify() wakes the server at once, not after poll
            await asyncio.sleep(0.01)
        stop.set()
        await serving
        return app.get_state(t).values

    assert asyncio.run(asyncio.wait_for(scenario(), 60)) == {"got": [1, 2]}


def test_waits_need_a_thread():
    class S(TypedDict):
        n: int

    g = StateGraph(S)
    g.add_node("node", lambda s, ctx: ctx.sleep(1))
    g.add_edge(START, "node")
    g.add_edge("node", END)
    with pytest.raises(GraphflowError, match="durable wait needs"):
        g.compile().invoke({"n": 1})


def test_deleting_a_thread_forgets_its_waits_and_signals(saver, t):
    app = make_approval(saver)
    app.invoke({"request": "r"}, thread=t)
    app.signal(t, "unused", 1)
    app.delete_thread(t)
    assert saver.waits(t) == []
    from graphflow.checkpoint.durable import MISSING

    assert saver.claim_signal(t, "unused", "w") is MISSING


def test_a_restarted_process_wakes_the_thread(tmp_path, t):
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    db = tmp_path / "runs.db"
    with SqliteCheckpointer(db) as first:
        make_sleeper(first).invoke({"seconds": 0.1, "log": []}, thread=t)
    with SqliteCheckpointer(db) as second:  # "the process stops and starts again later"
        app = make_sleeper(second)
        assert Worker(app, poll=0.05).wait_for(t, timeout=60)[t].values["log"] == [
            "before", "nap", "after"]


# -- other processes' waits and signals (PostgreSQL: LISTEN/NOTIFY) -----------------------------

def _idle_worker(worker: Worker, mode: str, approval):
    """Run ``worker`` in a thread (``run``, or ``serve`` on a loop of its own) until it has
    woken a thread that was due when it started (so it has made its first pass and sleeps);
    what it woke, and a function that stops it."""
    woken: list = []
    stop = threading.Event()
    first = f"t-{uuid.uuid4().hex}"
    approval.invoke({"request": "r"}, thread=first)
    approval.signal(first, "approve", "first")
    loop = asyncio.new_event_loop()
    done = asyncio.Event()  # serve's stop, set from `stop` below
    if mode == "run":
        runner = threading.Thread(target=worker.run,
                                  kwargs={"stop": stop, "on_wake": woken.append})
    else:
        runner = threading.Thread(target=loop.run_until_complete,
                                  args=(worker.serve(done, on_wake=woken.append),))
    runner.start()
    wait_until(lambda: (first, "finished") in {(w.thread, w.outcome) for w in woken},
               "the worker's first pass")

    def halt() -> None:
        stop.set()
        if mode == "serve":
            loop.call_soon_threadsafe(done.set)
        worker.notify()
        runner.join(timeout=60)
        assert not runner.is_alive()
        loop.close()

    return woken, halt


@pytest.mark.parametrize("mode", ["run", "serve"])
def test_another_process_s_timer_and_signal_wake_an_idle_worker_on_postgres(pg_dsn, mode):
    """The worker would next look in an hour: only the other process's NOTIFY can wake it."""
    from graphflow.checkpoint.postgres import PostgresCheckpointer

    napper, asker = f"t-{uuid.uuid4().hex}", f"t-{uuid.uuid4().hex}"
    with PostgresCheckpointer(pg_dsn) as mine, PostgresCheckpointer(pg_dsn) as theirs:
        worker = Worker(make_sleeper(mine), make_approval(mine), poll=3600)
        woken, halt = _idle_worker(worker, mode, make_approval(mine))
        try:
            # "another process": a checkpointer this process's worker does not watch
            make_sleeper(theirs).invoke({"seconds": 0.2, "log": []}, thread=napper)
            approval = make_approval(theirs)
            approval.invoke({"request": "r"}, thread=asker)
            approval.signal(asker, "approve", "yes")
            wait_until(lambda: {(w.thread, w.outcome) for w in woken} >= {
                (napper, "finished"), (asker, "finished")}, "both threads woken")
        finally:
            halt()
        assert approval.get_state(asker).values["answer"] == "yes"
        assert make_sleeper(theirs).get_state(napper).values["log"] == ["before", "nap",
                                                                         "after"]


def test_the_wake_listener_reconnects_and_reports_what_it_may_have_missed(pg_dsn):
    import psycopg

    from graphflow.checkpoint.postgres import LISTENER_NAME, PostgresCheckpointer

    calls: list = []
    with PostgresCheckpointer(pg_dsn) as saver:
        stop = saver.listen_wakes(["g-listen"], lambda: calls.append(1))
        try:
            with psycopg.connect(pg_dsn, autocommit=True) as admin:
                def listening() -> list:
                    return admin.execute(
                        "SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                        "AND datname = current_database()", (LISTENER_NAME,)).fetchall()

                (pid,), = listening()
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                wait_until(lambda: calls and listening() and listening()[0][0] != pid,
                           "the listener back, and told to look")
                before = len(calls)
                admin.execute("SELECT pg_notify('graphflow_wake', 'another-graph')")
                admin.execute("SELECT pg_notify('graphflow_wake', 'g-listen')")
                wait_until(lambda: len(calls) > before, "the notice for its graph")
                assert len(calls) == before + 1  # the other graph's notice was not passed on
        finally:
            stop()
