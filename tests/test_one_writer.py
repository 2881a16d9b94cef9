"""One writer per thread, on every checkpointer: a second run on a busy thread fails fast with
ThreadBusyError before anything runs (or waits, when asked); leases are decided in the
database, across processes; a writer that died does not lock its thread; a writer that lost its
lease cannot move the thread's head."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TypedDict

import pytest

from graphflow import END, START, RunContext, StateGraph, ThreadBusyError
from graphflow.checkpoint.lease import Lease, Owner

sys.path.insert(0, str(Path(__file__).parent / "support"))
from waiting import wait_until

SUPPORT = Path(__file__).parent / "support"


class State(TypedDict):
    log: list[str]
    by: str


class Gate:
    """A node that announces it is running and waits to be let go; counts its side effects."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.go = threading.Event()
        self.effects: list[str] = []
        self.lock = threading.Lock()

    def node(self, state: State, ctx: RunContext) -> dict:
        def effect() -> str:
            with self.lock:
                self.effects.append(state["by"])
            return f"paid by {state['by']}"

        receipt = ctx.step("pay", effect)
        self.started.set()
        assert self.go.wait(60), "the test never let the node go"
        return {"log": [*state["log"], receipt]}


def graph(saver, gate: Gate):
    g = StateGraph(State)
    g.add_node("work", gate.node)
    g.add_edge(START, "work")
    g.add_edge("work", END)
    return g.compile(checkpointer=saver)


def _thread() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def test_second_run_on_a_busy_thread_fails_fast_and_runs_nothing(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    result: dict = {}
    first = threading.Thread(target=lambda: result.update(
        app.invoke({"log": [], "by": "first"}, thread=thread)))
    first.start()
    assert gate.started.wait(60)
    with pytest.raises(ThreadBusyError) as info:
        app.invoke({"log": [], "by": "second"}, thread=thread)
    assert info.value.thread == thread and not info.value.lost
    assert "busy" in str(info.value) and "wait=True" in str(info.value)
    assert info.value.holder.owner.pid == os.getpid()
    gate.go.set()
    first.join(60)
    # the second run ran nothing: no side effect, and the thread holds the first run's state
    assert gate.effects == ["first"]
    assert result["log"] == ["paid by first"]
    assert app.get_state(thread).values == {"log": ["paid by first"], "by": "first"}
    # the thread is free again once the first run ended
    gate.go.set()
    assert app.invoke({"log": [], "by": "third"}, thread=thread)["log"] == ["paid by third"]


def _count_attempts(saver) -> list[int]:
    """Count the lease attempts made through ``saver`` (to know a run is waiting)."""
    attempts = [0]
    acquire = saver.acquire_lease

    def counted(*args, **kw):
        attempts[0] += 1
        return acquire(*args, **kw)

    saver.acquire_lease = counted
    return attempts


def test_a_run_can_wait_for_the_thread(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    first = threading.Thread(target=app.invoke, args=({"log": [], "by": "first"},),
                             kwargs={"thread": thread})
    first.start()
    assert gate.started.wait(60)
    attempts = _count_attempts(saver)
    second_out: dict = {}
    second = threading.Thread(target=lambda: second_out.update(
        app.invoke({"by": "second"}, thread=thread, wait=True)))
    second.start()
    wait_until(lambda: attempts[0] >= 3, "the second run to try the busy thread again")
    assert second.is_alive() and not second_out  # waiting, not failed
    gate.go.set()
    first.join(60)
    second.join(60)
    # both ran, one after the other: the second continued the first's state
    assert gate.effects == ["first", "second"]
    assert second_out["log"] == ["paid by first", "paid by second"]


def test_a_bounded_wait_ends_with_thread_busy(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    first = threading.Thread(target=app.invoke, args=({"log": [], "by": "first"},),
                             kwargs={"thread": thread})
    first.start()
    assert gate.started.wait(60)
    with pytest.raises(ThreadBusyError, match=r"busy after waiting 0\.[0-9] s"):
        app.invoke({"by": "second"}, thread=thread, wait=0.05)
    gate.go.set()
    first.join(60)
    assert gate.effects == ["first"]


def test_update_state_and_delete_thread_are_writers_too(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    gate.go.set()
    app.invoke({"log": [], "by": "zero"}, thread=thread)
    gate.go.clear()
    gate.started.clear()
    first = threading.Thread(target=app.invoke, args=({"by": "first"},),
                             kwargs={"thread": thread})
    first.start()
    assert gate.started.wait(60)
    with pytest.raises(ThreadBusyError):
        app.update_state(thread, {"by": "editor"})
    with pytest.raises(ThreadBusyError):
        app.delete_thread(thread)
    gate.go.set()
    first.join(60)
    app.update_state(thread, {"by": "editor"})
    assert app.get_state(thread).values["by"] == "editor"
    app.delete_thread(thread)
    assert app.get_state(thread) is None


def test_async_runs_on_one_thread_one_fails(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()

    async def main() -> list:
        async def release_later() -> None:
            while not gate.started.is_set():
                await asyncio.sleep(0.005)
            await asyncio.sleep(0)
            gate.go.set()

        return await asyncio.gather(
            app.ainvoke({"log": [], "by": "a"}, thread=thread),
            app.ainvoke({"log": [], "by": "b"}, thread=thread),
            release_later(), return_exceptions=True)

    a, b, _ = asyncio.run(main())
    outcomes = [a, b]
    assert sum(isinstance(o, ThreadBusyError) for o in outcomes) == 1
    assert len(gate.effects) == 1


def test_a_stream_closed_early_gives_the_thread_back(saver):
    gate = Gate()
    gate.go.set()
    app = graph(saver, gate)
    thread = _thread()
    events = app.stream({"log": [], "by": "reader"}, thread=thread, mode="values")
    next(events)  # the run started (it holds the thread) ...
    with pytest.raises(ThreadBusyError):
        app.invoke({"by": "other"}, thread=thread)
    events.close()  # ... and gives it back when the caller stops reading
    assert app.invoke({"log": [], "by": "other"}, thread=thread)["by"] == "other"


def test_a_writer_that_lost_its_lease_cannot_move_the_head(saver):
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            app.invoke({"log": [], "by": "first"}, thread=thread)
        except BaseException as exc:
            errors.append(exc)

    runner = threading.Thread(target=first)
    runner.start()
    assert gate.started.wait(60)
    head = app.get_state(thread)
    # another writer takes the thread over (as it would once the first's lease expired)
    holder = saver.acquire_lease(thread, Owner("intruder", "elsewhere/boot", 1, "1"), 30)
    assert holder is not None
    assert saver.acquire_lease(thread, Owner("intruder", "elsewhere/boot", 1, "1"), 30,
                               takeover=holder.owner) is None
    gate.go.set()
    runner.join(60)
    assert len(errors) == 1 and isinstance(errors[0], ThreadBusyError) and errors[0].lost
    # the first run's step was not stored: the head is where it was
    assert app.get_state(thread).checkpoint_id == head.checkpoint_id


def test_an_expired_lease_of_another_machine_is_taken_over(saver):
    gate = Gate()
    gate.go.set()
    app = graph(saver, gate)
    thread = _thread()
    ghost = Owner("ghost", "another-host/boot", 4242, "99")
    assert saver.acquire_lease(thread, ghost, 0.3) is None  # a writer elsewhere, then silence
    with pytest.raises(ThreadBusyError, match="another-host"):
        app.invoke({"log": [], "by": "me"}, thread=thread)
    # nobody renews it: once it expires, the thread is taken over
    assert app.invoke({"log": [], "by": "me"}, thread=thread, wait=True)["by"] == "me"
    assert gate.effects == ["me"]


def test_a_long_node_keeps_its_lease(saver, monkeypatch):
    """The holder's process renews its lease while the run lives, however long a node takes."""
    monkeypatch.setattr(type(saver), "lease_ttl", 0.3)
    gate = Gate()
    app = graph(saver, gate)
    thread = _thread()
    runner = threading.Thread(target=app.invoke, args=({"log": [], "by": "slow"},),
                              kwargs={"thread": thread})
    runner.start()
    assert gate.started.wait(60)
    # several ttls pass; the lease is renewed, so the thread stays busy the whole time
    probe = Lease(saver, thread, 0.3)
    for _ in range(3):
        assert probe.try_acquire() is not None
        assert not gate.go.wait(0.3)
    gate.go.set()
    runner.join(60)
    assert app.get_state(thread).values["log"] == ["paid by slow"]


# -- across processes ------------------------------------------------------------------------------

def _store_spec(saver, tmp_path) -> str:
    from graphflow.checkpoint import MemoryCheckpointer

    if isinstance(saver, MemoryCheckpointer):
        pytest.skip("a MemoryCheckpointer lives in one process")
    if hasattr(saver, "path"):
        return f"sqlite:{saver.path}"
    return f"postgres:{os.environ.get('GRAPHFLOW_PG_DSN', '')}"


def _writer(store: str, thread: str, gate: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    return subprocess.Popen([sys.executable, str(SUPPORT / "busy_writer.py"), store, thread,
                             str(gate)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_thread_busy_in_another_process_fails_fast(saver, tmp_path):
    store = _store_spec(saver, tmp_path)
    if store == "postgres:":
        pytest.skip("GRAPHFLOW_PG_DSN is not set")
    thread = _thread()
    proc = _writer(store, thread, tmp_path)
    try:
        wait_until(lambda: (tmp_path / "started").exists() or proc.poll() is not None,
                   "the writer process to start its node")
        assert proc.poll() is None, proc.communicate()
        gate = Gate()
        gate.go.set()
        app = graph(saver, gate)
        with pytest.raises(ThreadBusyError) as info:
            app.invoke({"log": [], "by": "here"}, thread=thread)
        assert info.value.holder.owner.pid == proc.pid
        assert gate.effects == []
        (tmp_path / "go").write_text("1")
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert app.get_state(thread).values["by"] == "writer process"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_writer_does_not_lock_its_thread(saver, tmp_path):
    store = _store_spec(saver, tmp_path)
    if store == "postgres:":
        pytest.skip("GRAPHFLOW_PG_DSN is not set")
    thread = _thread()
    proc = _writer(store, thread, tmp_path)
    wait_until(lambda: (tmp_path / "started").exists() or proc.poll() is not None,
               "the writer process to start its node")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    gate = Gate()
    gate.go.set()
    app = graph(saver, gate)
    # the holder was a process of this machine and it is gone: taken over at once, no waiting
    out = app.invoke({"log": [], "by": "after the crash"}, thread=thread)
    assert out["log"] == ["paid by after the crash"]
