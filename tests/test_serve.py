"""The HTTP server, end to end: ``graphflow serve`` as a real process on 127.0.0.1, driven with
httpx the way a client drives it — threads, runs (background, wait, stream), SSE with
reconnection, interrupts, cancel, busy threads, auth, limits and structured errors."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install "
                                      "'graphflow[serve]')")
pytest.importorskip("uvicorn", reason="the serve extra is not installed")

import httpx

sys.path.insert(0, str(Path(__file__).parent / "support"))
from serving import Server, gate_started, ran, sse, wait_status
from waiting import SCALE

KEY_A, KEY_B = "key-a-" + uuid.uuid4().hex, "key-b-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def gates(tmp_path_factory):
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def server(gates):
    srv = Server(["chain=serve_graphs:chain", "gated=serve_graphs:gated", "ask=serve_graphs:ask",
                  "--db", str(gates / "runs.db"), "--api-key", KEY_A, "--api-key", KEY_B,
                  "--heartbeat", "0.2", "--max-body", "20000"],
                 {"GRAPHFLOW_TEST_GATES": str(gates)}).start()
    yield srv
    srv.stop()


def client(server, key=KEY_A) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"X-Api-Key": key}, timeout=60 * SCALE)


def new_thread(c: httpx.Client, graph: str = "chain") -> str:
    r = c.post("/threads", json={"graph": graph})
    assert r.status_code == 201, r.text
    return r.json()["thread_id"]


# -- resources -----------------------------------------------------------------------------------

def test_health_is_public_and_graphs_describe_themselves(server):
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    with client(server) as c:
        graphs = {g["name"]: g for g in c.get("/graphs").json()}
        assert set(graphs) == {"chain", "gated", "ask"}
        chain = graphs["chain"]
        assert chain["nodes"] == ["n1", "n2", "n3", "n4", "n5"]
        assert chain["input_schema"]["properties"]["n"] == {"type": "integer"}
        assert chain["input_schema"]["properties"]["log"]["items"] == {"type": "string"}
        assert "n1 --> n2" in chain["mermaid"].replace("-->|", "-->")  # an edge of the diagram
        svg = c.get("/graphs/chain/svg")
        assert svg.headers["content-type"].startswith("image/svg+xml")
        assert svg.text.lstrip().startswith("<?xml") and "n5" in svg.text
        assert c.get("/graphs/nope").json()["error"] == "not_found"


def test_a_run_waited_for_returns_the_state_and_the_thread_remembers(server):
    with client(server) as c:
        thread = new_thread(c)
        r = c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": 10, "log": []}})
        assert r.status_code == 200, r.text
        run = r.json()
        assert run["status"] == "success" and run["attempts"] == 1
        assert run["output"]["values"] == {"n": 15, "log": ["n1", "n2", "n3", "n4", "n5"]}
        assert run["output"]["next"] == [] and run["error"] is None
        assert run["usage"]["input_tokens"] == 0
        state = c.get(f"/threads/{thread}/state").json()
        assert state["values"]["n"] == 15 and state["step"] == 5
        history = c.get(f"/threads/{thread}/history").json()
        assert [h["step"] for h in history] == [5, 4, 3, 2, 1, 0, -1]  # -1: the input's
        assert [h["metadata"]["source"] for h in history][-1] == "input"
        # background: 202 at once, then the run can be joined
        r = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}})
        assert r.status_code == 202 and r.json()["status"] in ("pending", "running", "success")
        run_id = r.json()["run_id"]
        joined = c.get(f"/threads/{thread}/runs/{run_id}/wait").json()
        assert joined["status"] == "success" and joined["output"]["values"]["n"] == 5
        runs = c.get(f"/threads/{thread}/runs").json()
        assert runs[0]["run_id"] == run_id and len(runs) == 2
        assert c.get(f"/threads/{thread}").json()["status"] == "idle"


def test_update_state_and_delete_thread(server):
    with client(server) as c:
        thread = new_thread(c)
        c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": 1}})
        r = c.post(f"/threads/{thread}/state", json={"values": {"n": 100, "log": ["edit"]}})
        assert r.status_code == 200, r.text
        state = c.get(f"/threads/{thread}/state").json()
        assert state["values"]["n"] == 100 and state["values"]["log"][-1] == "edit"
        assert state["checkpoint_id"] == r.json()["checkpoint_id"]
        bad = c.post(f"/threads/{thread}/state", json={"values": {"nope": 1}})
        assert bad.status_code == 422 and "nope" in bad.json()["message"]
        assert c.delete(f"/threads/{thread}").status_code == 204
        assert c.get(f"/threads/{thread}").status_code == 404


# -- streams -------------------------------------------------------------------------------------

def test_the_stream_carries_the_same_events_as_app_stream(server):
    sys.path.insert(0, str(Path(__file__).parent / "support"))
    import serve_graphs

    from graphflow.checkpoint import MemoryCheckpointer
    from graphflow.serve.runner import jsonable

    modes = ["updates", "values", "custom", "debug"]
    local = serve_graphs.chain.with_checkpointer(MemoryCheckpointer())
    expected = [(m, jsonable(d)) for m, d in local.stream({"n": 0}, mode=modes, thread="x")]
    with client(server) as c:
        thread = new_thread(c)
        with c.stream("POST", f"/threads/{thread}/runs/stream",
                      json={"input": {"n": 0}, "stream_mode": modes}) as r:
            assert r.status_code == 200
            events = list(sse(r))
    assert events[0].event == "metadata" and events[-1].event == "end"
    assert events[-1].data["status"] == "success"
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    got = [(e.event, e.data) for e in events[1:-1]]

    def comparable(items):  # task ids are the same; debug timings are not in the payloads
        return [(m, d) for m, d in items]

    assert comparable(got) == comparable(expected)


def test_a_dropped_stream_resumes_with_last_event_id(server, gates):
    with client(server) as c:
        thread = new_thread(c, "gated")
        first: list = []
        with c.stream("POST", f"/threads/{thread}/runs/stream",
                      json={"input": {"n": 0}, "stream_mode": ["updates", "values"]}) as r:
            for event in sse(r):
                first.append(event)
                if event.event == "updates" and "first" in event.data:
                    break  # the connection drops here, mid-run
        run_id = first[0].data["run_id"]
        gate_started(gates, thread)
        (gates / f"{thread}.go").touch()
        wait_status(c, thread, run_id, ("success",))
        last = first[-1].id
        with c.stream("GET", f"/threads/{thread}/runs/{run_id}/stream",
                      headers={"Last-Event-ID": str(last)}) as r:
            rest = list(sse(r))
        with c.stream("GET", f"/threads/{thread}/runs/{run_id}/stream") as r:
            whole = list(sse(r))
    assert [e.id for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert [(e.id, e.event, e.data) for e in first + rest] == \
        [(e.id, e.event, e.data) for e in whole]
    updates = [next(iter(e.data)) for e in whole if e.event == "updates"]
    assert updates == ["first", "gate", "after", "last"] and whole[-1].event == "end"


def test_a_stream_followed_live_while_the_run_waits(server, gates):
    """A reader that joins a running run gets what happened so far, then the rest live."""
    with client(server) as c:
        thread = new_thread(c, "gated")
        run_id = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}}).json()["run_id"]
        gate_started(gates, thread)
        seen: list = []
        with c.stream("GET", f"/threads/{thread}/runs/{run_id}/stream") as r:
            for event in sse(r):
                seen.append(event)
                if event.event == "updates" and "first" in event.data:
                    (gates / f"{thread}.go").touch()  # only now does the run go on
        assert [next(iter(e.data)) for e in seen if e.event == "updates"] == \
            ["first", "gate", "after", "last"]


# -- interrupts, cancel, busy threads ------------------------------------------------------------

def test_an_interrupt_is_answered_with_a_command(server):
    with client(server) as c:
        thread = new_thread(c, "ask")
        run = c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": 1}}).json()
        assert run["status"] == "interrupted"
        (pending,) = run["output"]["interrupts"]
        assert pending["node"] == "ask" and pending["value"] == {"question": "how many?", "n": 2}
        assert c.get(f"/threads/{thread}").json()["status"] == "interrupted"
        state = c.get(f"/threads/{thread}/state").json()
        assert state["interrupts"][0]["id"] == pending["id"] and state["next"] == ["ask"]
        both = c.post(f"/threads/{thread}/runs", json={"input": {"n": 1},
                                                       "command": {"resume": 1}})
        assert both.status_code == 422 and both.json()["error"] == "invalid_request"
        done = c.post(f"/threads/{thread}/runs/wait",
                      json={"command": {"resume": {pending["id"]: 40}}}).json()
        assert done["status"] == "success"
        assert done["output"]["values"] == {"n": 43, "log": ["before", "asked: 40", "done"]}
        again = c.post(f"/threads/{thread}/runs/wait", json={"command": {"resume": 1}}).json()
        assert again["status"] == "error" and "nothing to resume" in again["error"]["message"]


def test_cancel_stops_the_run_at_the_next_step_and_the_thread_continues(server, gates):
    with client(server) as c:
        thread = new_thread(c, "gated")
        run_id = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}}).json()["run_id"]
        gate_started(gates, thread)
        r = c.post(f"/threads/{thread}/runs/{run_id}/cancel")
        assert r.status_code == 202 and r.json()["cancel_requested"] is True
        (gates / f"{thread}.go").touch()  # the running step finishes; the next never starts
        run = wait_status(c, thread, run_id, ("cancelled", "success", "error"))
        assert run["status"] == "cancelled", run
        assert run["output"]["next"] == ["after"] and run["output"]["values"]["n"] == 2
        assert ran(gates, thread) == ["first", "gate"]
        events = [e.event for e in sse_all(c, thread, run_id)]
        assert events[-1] == "end"
        assert c.post(f"/threads/{thread}/runs/{run_id}/cancel").status_code == 409
        # nothing was lost: a run with input null continues from the last checkpoint
        cont = c.post(f"/threads/{thread}/runs/wait", json={"input": None}).json()
        assert cont["status"] == "success" and cont["output"]["values"]["n"] == 4
        assert ran(gates, thread) == ["first", "gate", "after", "last"]


def sse_all(c, thread, run_id):
    with c.stream("GET", f"/threads/{thread}/runs/{run_id}/stream") as r:
        return list(sse(r))


def test_a_busy_thread_is_rejected_or_queued_and_a_queued_run_can_be_cancelled(server, gates):
    with client(server) as c:
        thread = new_thread(c, "gated")
        first = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}}).json()["run_id"]
        gate_started(gates, thread)
        busy = c.post(f"/threads/{thread}/runs", json={"input": {"n": 0}})
        assert busy.status_code == 409
        body = busy.json()
        assert body["error"] == "thread_busy" and body["detail"]["run_id"] == first
        assert thread in body["message"]
        queued = c.post(f"/threads/{thread}/runs",
                        json={"input": None, "multitask_strategy": "enqueue"}).json()
        dropped = c.post(f"/threads/{thread}/runs",
                         json={"input": None, "multitask_strategy": "enqueue"}).json()
        assert queued["status"] == "pending" and dropped["status"] == "pending"
        cancelled = c.post(f"/threads/{thread}/runs/{dropped['run_id']}/cancel").json()
        assert cancelled["status"] == "cancelled"
        assert c.delete(f"/threads/{thread}").status_code == 409  # a run is active
        (gates / f"{thread}.go").touch()
        assert c.get(f"/threads/{thread}/runs/{first}/wait").json()["status"] == "success"
        after = c.get(f"/threads/{thread}/runs/{queued['run_id']}/wait").json()
        assert after["status"] == "success"  # it ran after the first, on the finished thread
        assert after["started_at"] >= c.get(f"/threads/{thread}/runs/{first}").json()["ended_at"]
        assert c.get(f"/threads/{thread}/runs/{dropped['run_id']}").json()["attempts"] == 0


# -- auth, limits, errors ------------------------------------------------------------------------

def test_api_keys_and_threads_visible_only_to_their_key(server):
    r = httpx.get(server.url + "/threads")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    assert "X-Api-Key" in r.json()["message"]
    r = httpx.get(server.url + "/graphs", headers={"X-Api-Key": "wrong"})
    assert r.status_code == 401 and "wrong API key" in r.json()["message"]
    with client(server, KEY_A) as a, client(server, KEY_B) as b:
        thread = new_thread(a)
        assert a.get(f"/threads/{thread}").status_code == 200
        for method, path in [("GET", f"/threads/{thread}"), ("GET", f"/threads/{thread}/state"),
                             ("POST", f"/threads/{thread}/runs"),
                             ("DELETE", f"/threads/{thread}"),
                             ("GET", f"/graphs/chain/svg?thread_id={thread}")]:
            r = b.request(method, path, json={"input": {"n": 1}} if method == "POST" else None)
            assert r.status_code == 404, (method, path, r.text)
        assert thread in [t["thread_id"] for t in a.get("/threads").json()]
        assert thread not in [t["thread_id"] for t in b.get("/threads").json()]
        taken = b.post("/threads", json={"graph": "chain", "thread_id": thread})
        assert taken.status_code == 409
    bearer = httpx.get(server.url + "/threads", headers={"Authorization": f"Bearer {KEY_B}"})
    assert bearer.status_code == 200


def test_limits_and_errors_name_what_was_wrong(server):
    with client(server) as c:
        big = c.post("/threads", json={"graph": "chain", "metadata": {"x": "y" * 30000}})
        assert big.status_code == 413 and big.json()["error"] == "too_large"
        assert "20000 bytes" in big.json()["message"]

        def chunks():
            yield b'{"graph": "chain", "metadata": {"x": "'
            for _ in range(30):
                yield b"y" * 1000
            yield b'"}}'

        streamed = c.post("/threads", content=chunks(),
                          headers={"content-type": "application/json"})
        assert streamed.status_code == 413  # no Content-Length: counted as it arrives
        bad = c.post("/threads", json={"graph": "chain", "thread_id": ""})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "thread_id"]
        assert "thread_id" in bad.json()["message"]
        thread = new_thread(c)
        r = c.post(f"/threads/{thread}/runs", json={"input": {"n": 1}, "stream_mode": ["bad"]})
        assert r.status_code == 422 and "stream_mode" in r.json()["message"]
        r = c.post(f"/threads/{thread}/runs", json={"input": {"n": 1}, "recursion_limit": 0})
        assert r.status_code == 422 and "recursion_limit" in r.json()["message"]
        r = c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": "x"}}).json()
        assert r["status"] == "error" and r["error"]["type"] == "InvalidUpdateError"
        assert "'n'" in r["error"]["message"]
        assert c.get("/nowhere").json() == {"error": "not_found", "detail": None,
                                            "message": "no route GET /nowhere"}
        assert c.get(f"/threads/{thread}/runs/nope").json()["error"] == "not_found"
        r = c.post("/threads", json={"graph": "nope"})
        assert r.status_code == 404 and "nope" in r.json()["message"]


def test_a_thread_written_outside_the_server_is_busy_for_its_runs(server, gates):
    """A script or the CLI writing the thread holds its lease: the server's run ends `error`
    with ThreadBusyError naming the thread, and nothing ran."""
    from graphflow.checkpoint import SqliteCheckpointer
    from graphflow.checkpoint.lease import Lease

    with client(server) as c:
        thread = new_thread(c)
        with SqliteCheckpointer(gates / "runs.db") as saver, \
                Lease(saver, thread, saver.lease_ttl).hold():
            run = c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": 0}}).json()
        assert run["status"] == "error" and run["error"]["type"] == "ThreadBusyError"
        assert thread in run["error"]["message"] and run["output"] is None
        assert ran(gates, thread) == []
        again = c.post(f"/threads/{thread}/runs/wait", json={"input": {"n": 0}}).json()
        assert again["status"] == "success"  # the lease was given back: the thread is free
