"""Servers that die, restart and share a database: a run is never lost.

- ``kill -9`` of the server mid-run, then a new server on the same SQLite file: the run is
  resumed from its last checkpoint (finished nodes do not run again) and its event stream goes
  on after ``Last-Event-ID``; with ``--on-restart mark`` it is marked instead.
- a graceful stop (SIGTERM) mid-run: the run stops at its next step boundary and the next
  server resumes it.
- two server processes on one PostgreSQL database: either serves any thread, a thread has one
  writer, a cancel sent to one stops a run executing in the other, and when one dies the other
  takes its runs over.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install "
                                      "'graphflow[serve]')")

import httpx

sys.path.insert(0, str(Path(__file__).parent / "support"))
from serving import Server, gate_started, ran, sse, wait_status
from waiting import SCALE, wait_until

KEY = "key-" + uuid.uuid4().hex


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Api-Key": KEY}, timeout=60 * SCALE)


def serve(gates: Path, db: str, *extra: str) -> Server:
    return Server(["gated=serve_graphs:gated", "chain=serve_graphs:chain", "--db", db,
                   "--api-key", KEY, "--heartbeat", "0.2", *extra],
                  {"GRAPHFLOW_TEST_GATES": str(gates)}).start()


def start_gated(c: httpx.Client, gates: Path) -> tuple[str, str]:
    thread = c.post("/threads", json={"graph": "gated"}).json()["thread_id"]
    run = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}}).json()["run_id"]
    gate_started(gates, thread)
    return thread, run


def gated_run_then(tmp_path: Path, db: str, end) -> tuple[str, str]:
    """A server runs a gated run; ``end(server, thread, run)`` stops the server while the gate
    holds it; (thread, run)."""
    first = serve(tmp_path, db)
    try:
        with client(first) as c:
            thread, run = start_gated(c, tmp_path)
        end(first, thread, run)
    finally:
        first.kill()
    return thread, run


def events(c: httpx.Client, thread: str, run: str, after: int = 0) -> list:
    headers = {"Last-Event-ID": str(after)} if after else {}
    with c.stream("GET", f"/threads/{thread}/runs/{run}/stream", headers=headers) as r:
        return list(sse(r))


def test_a_server_killed_mid_run_resumes_it_after_a_restart(tmp_path):
    db = str(tmp_path / "runs.db")
    seen: dict[str, int] = {}

    def crash(server: Server, thread: str, run: str) -> None:
        with client(server) as c, c.stream("GET", f"/threads/{thread}/runs/{run}/stream") as r:
            for event in sse(r):
                if event.event == "updates" and "first" in event.data:
                    seen["last"] = event.id
                    break
        server.kill()  # mid-run: "gate" is running, "first" has finished

    thread, run = gated_run_then(tmp_path, db, crash)
    events_so_far = seen["last"]
    (tmp_path / f"{thread}.go").touch()
    second = serve(tmp_path, db)
    try:
        with client(second) as c:
            done = wait_status(c, thread, run, ("success", "error"))
            assert done["status"] == "success", done
            assert done["attempts"] == 2
            assert done["output"]["values"] == {"n": 4, "log": ["first", "gate", "after",
                                                                "last"]}
            # "first" finished before the crash: it never ran again; "gate" was cut short
            assert ran(tmp_path, thread) == ["first", "gate", "gate", "after", "last"]
            rest = events(c, thread, run, after=events_so_far)
            assert rest[0].id == events_so_far + 1  # the stream goes on across the restart
            assert any(e.event == "metadata" and e.data.get("resumed") for e in rest)
            assert [next(iter(e.data)) for e in rest if e.event == "updates"] == \
                ["gate", "after", "last"]
            assert rest[-1].event == "end" and rest[-1].data["status"] == "success"
            before = c.get(f"/threads/{thread}/history").json()
            assert [h["metadata"]["source"] for h in before][-1] == "input"
    finally:
        second.stop()


def test_with_the_mark_policy_an_unfinished_run_is_marked_and_its_thread_continues(tmp_path):
    db = str(tmp_path / "runs.db")
    thread, run = gated_run_then(tmp_path, db, lambda server, thread, run: server.kill())
    second = serve(tmp_path, db, "--on-restart", "mark")
    try:
        with client(second) as c:
            marked = wait_status(c, thread, run, ("error", "success"))
            assert marked["status"] == "error"
            assert marked["error"]["type"] == "ServerStopped"
            assert f"/threads/{thread}/runs" in marked["error"]["message"]
            (tmp_path / f"{thread}.go").touch()
            cont = c.post(f"/threads/{thread}/runs/wait", json={"input": None}).json()
            assert cont["status"] == "success" and cont["output"]["values"]["n"] == 4
    finally:
        second.stop()


def test_a_graceful_stop_pauses_runs_at_a_step_boundary_for_the_next_server(tmp_path):
    db = str(tmp_path / "runs.db")

    def graceful(server: Server, thread: str, run: str) -> None:
        server.proc.terminate()  # SIGTERM while "gate" runs
        wait_until(lambda: "stopping worker" in server.log.read_text(), "the worker to stop")
        (tmp_path / f"{thread}.go").touch()  # the step finishes; the next does not start
        server.proc.wait(60 * SCALE)

    thread, run = gated_run_then(tmp_path, db, graceful)
    assert ran(tmp_path, thread) == ["first", "gate"]
    second = serve(tmp_path, db)
    try:
        with client(second) as c:
            done = wait_status(c, thread, run, ("success", "error", "cancelled"))
            assert done["status"] == "success" and done["attempts"] == 2
            assert ran(tmp_path, thread) == ["first", "gate", "after", "last"]
    finally:
        second.stop()


def _pg_dsn() -> str:
    dsn = os.environ.get("GRAPHFLOW_PG_DSN")
    try:
        import psycopg

        with psycopg.connect(dsn or "postgresql://postgres@127.0.0.1:5432/postgres",
                             connect_timeout=3):
            pass
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL server ({exc}); CI must test it", pytrace=False)
        pytest.skip(f"no PostgreSQL server at GRAPHFLOW_PG_DSN ({type(exc).__name__})")
    return dsn or "postgresql://postgres@127.0.0.1:5432/postgres"


def test_two_servers_share_one_postgres_with_one_writer_per_thread(tmp_path):
    dsn = _pg_dsn()
    a = serve(tmp_path, dsn)
    b = serve(tmp_path, dsn)
    try:
        with client(a) as ca, client(b) as cb:
            thread, run = start_gated(ca, tmp_path)  # executes in a
            assert cb.get(f"/threads/{thread}").json()["status"] == "busy"
            busy = cb.post(f"/threads/{thread}/runs", json={"input": {"n": 0}})
            assert busy.status_code == 409 and busy.json()["detail"]["run_id"] == run
            # b queues a run behind a's: it is handed to a, which runs the thread's queue
            queued = cb.post(f"/threads/{thread}/runs", json={
                "input": None, "multitask_strategy": "enqueue"}).json()
            # a cancel sent to b stops the run executing in a (at its next step)
            assert cb.post(f"/threads/{thread}/runs/{run}/cancel").status_code == 202
            with cb.stream("GET", f"/threads/{thread}/runs/{run}/stream") as r:
                for event in sse(r):  # b streams a's run; a says when the cancel took hold
                    if event.event == "metadata" and event.data.get("cancelling"):
                        (tmp_path / f"{thread}.go").touch()
                    last = event
            assert last.event == "end" and last.data["status"] == "cancelled"
            cancelled = cb.get(f"/threads/{thread}/runs/{run}").json()
            assert cancelled["status"] == "cancelled" and cancelled["output"]["next"] == ["after"]
            after = wait_status(cb, thread, queued["run_id"], ("success", "error"))
            assert after["status"] == "success" and after["output"]["values"]["n"] == 4
            # a dies mid-run: b finds a's run (a dead local process) and finishes it
            thread2, run2 = start_gated(ca, tmp_path)
            a.kill()
            (tmp_path / f"{thread2}.go").touch()
            taken = wait_status(cb, thread2, run2, ("success", "error"))
            assert taken["status"] == "success" and taken["attempts"] == 2
            assert ran(tmp_path, thread2) == ["first", "gate", "gate", "after", "last"]
    finally:
        a.kill()
        b.stop()
