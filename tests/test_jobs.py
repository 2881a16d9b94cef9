"""Job nodes and sensors against a real HTTP job service: created once (also across kill -9),
polled with durable pauses, outputs into the state, deleted on timeout and cancel."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import httpx
import pytest

from graphflow import END, START, NodeError, StateGraph
from graphflow.durable import Worker
from graphflow.engine.waits import Wait
from graphflow.jobs import (
    AgentNode,
    AgentRegistry,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobNode,
    JobStatus,
    JobTimeoutError,
    Poll,
    SensorNode,
    cancel,
    register,
)
from graphflow.testing.job_service import HttpJobAgent, JobService

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))
from job_graphs import make  # noqa: E402
from waiting import wait_until  # noqa: E402


@pytest.fixture
def service():
    with JobService() as svc:
        yield svc


@pytest.fixture
def t() -> str:
    return f"t-{uuid.uuid4().hex}"


def _cause(exc: BaseException) -> BaseException:
    return exc.__cause__ if isinstance(exc, NodeError) and exc.__cause__ else exc


def test_a_job_is_created_once_polled_durably_and_its_outputs_land_in_the_state(
        saver, service, t):
    app = make(saver, service.url)
    out = app.invoke({"task": {"n": 1}}, thread=t)
    (intr,) = out["__interrupt__"]
    assert isinstance(intr.value, Wait) and intr.value.kind == "poll"
    worker = Worker(app, poll=0.05)
    worker.run(until=lambda: service.stats["gets"] >= 3)  # polls again and again, durably
    assert app.get_state(t).next == ("job",)
    httpx.post(f"{service.url}/jobs/job-1/finish", json={"outputs": {"echo": "done"}})
    states = worker.wait_for(t, timeout=60)
    assert states[t].values["result"] == {"echo": "done"}
    assert service.stats["jobs"] == 1 and service.stats["create_requests"] == 1
    assert service.stats["gets"] >= 2  # polled more than once, across wakes


def test_a_failed_job_fails_the_node_with_its_message(saver, service, t):
    app = make(saver, service.url, inline=60)

    def finish() -> None:
        wait_until(lambda: service.stats["jobs"] == 1, "the job")
        httpx.post(f"{service.url}/jobs/job-1/finish",
                   json={"phase": "failed", "message": "out of memory"})

    threading.Thread(target=finish).start()
    with pytest.raises(JobFailedError) as info:  # raised in the node: as itself
        app.invoke({"task": {"n": 1}}, thread=t)
    assert isinstance(_cause(info.value), JobFailedError)
    assert "out of memory" in str(info.value)
    assert service.stats["deletes"] == 0


def test_a_timeout_deletes_the_job(saver, service, t):
    app = make(saver, service.url, timeout=0.5)
    try:
        app.invoke({"task": {"n": 1}}, thread=t)  # pauses (or, on a slow machine, times out)
    except JobError as exc:
        error: BaseException | None = exc
    else:
        woken = []
        Worker(app, poll=0.05).run(until=lambda: bool(woken) and woken[-1].outcome == "failed",
                                   on_wake=lambda w: woken.append(w) if w.thread == t else None)
        error = woken[-1].error
    assert isinstance(_cause(error), JobTimeoutError)
    assert service.stats["deletes"] == 1 and service.job("job-1")["phase"] == "cancelled"


def test_cancelling_the_run_deletes_the_job(saver, service, t):
    app = make(saver, service.url, poll=Poll(60, 1, 60))
    app.invoke({"task": {"n": 1}}, thread=t)
    cancel(app, t)
    # the cancel signal wakes it at once (other tests' due threads may be woken too)
    (woken,) = [w for w in Worker(app).wake_due() if w.thread == t]
    assert woken.outcome == "failed" and isinstance(_cause(woken.error), JobCancelledError)
    assert service.job("job-1")["phase"] == "cancelled"


def test_kill_9_between_create_and_completion_resumes_the_same_job(tmp_path, service, t):
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    db = tmp_path / "runs.db"
    proc = subprocess.Popen([sys.executable, str(SUPPORT / "job_graphs.py"), str(db),
                             service.url, t], cwd=SUPPORT)
    try:
        wait_until(lambda: service.stats["gets"] >= 1, "the run to create and poll its job")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert service.stats["jobs"] == 1 and service.job("job-1")["phase"] == "running"
    with SqliteCheckpointer(db) as saver:
        app = make(saver, service.url, inline=3600)
        result: list = []
        resumed = threading.Thread(target=lambda: result.append(app.invoke(None, thread=t)))
        resumed.start()
        gets = service.stats["gets"]
        wait_until(lambda: service.stats["gets"] > gets, "the resumed run to poll the job")
        httpx.post(f"{service.url}/jobs/job-1/finish", json={"outputs": {"model": "m1"}})
        resumed.join(timeout=120)
    assert result == [{"task": {"name": "train"}, "result": {"model": "m1"}}]
    assert service.stats["jobs"] == 1  # re-attached, never submitted twice
    assert service.stats["create_requests"] == 1  # create was journaled before the kill


class FileSensor:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.pokes = 0

    def poke(self, inputs) -> bool:
        self.pokes += 1
        return self.path.exists()


def test_a_sensor_waits_durably_until_it_fires(saver, tmp_path, t):
    class S(TypedDict, total=False):
        ready: bool

    sensor = FileSensor(tmp_path / "flag")
    g = StateGraph(S)
    g.add_node("wait", SensorNode(sensor, interval=0.05, output="ready"))
    g.add_edge(START, "wait")
    g.add_edge("wait", END)
    app = g.compile(checkpointer=saver)
    assert "__interrupt__" in app.invoke({}, thread=t)
    worker = Worker(app, poll=0.05)
    worker.run(until=lambda: sensor.pokes >= 3)
    assert app.get_state(t).next == ("wait",)
    (tmp_path / "flag").write_text("1")
    assert worker.wait_for(t, timeout=60)[t].values == {"ready": True}


def test_a_sync_agent_runs_once_and_a_registry_names_agents(saver, t):
    class Echo:
        task_type = "echo"
        calls = 0

        def do(self, inputs):
            Echo.calls += 1
            return {"out": inputs["x"] * 2}

    reg = AgentRegistry()
    agent = reg.register(Echo())
    assert reg.get("echo") is agent and reg.task_types() == ["echo"]
    with pytest.raises(ValueError, match="already registered"):
        reg.register(Echo())

    class S(TypedDict, total=False):
        x: int
        out: int

    g = StateGraph(S)
    g.add_node("echo", AgentNode(agent, inputs=["x"]))
    g.add_edge(START, "echo")
    g.add_edge("echo", END)
    app = g.compile(checkpointer=saver)
    assert app.invoke({"x": 21}, thread=t) == {"x": 21, "out": 42}
    assert Echo.calls == 1


@dataclass
class Meta:  # a Flyte-style handle: a dataclass, allowed in the journal via metadata_type
    job_id: str


class AsyncAgent:
    """An async agent with a dataclass handle, registered by task type."""

    task_type = f"async-{uuid.uuid4().hex[:6]}"
    metadata_type = Meta

    def __init__(self, url: str) -> None:
        self.http = HttpJobAgent(url)

    async def create(self, inputs, **kwargs) -> Meta:
        await asyncio.sleep(0)
        return Meta(self.http.create(inputs, **kwargs)["id"])

    async def get(self, meta: Meta) -> JobStatus:
        got = self.http.get({"id": meta.job_id})
        return JobStatus(got["phase"], got["outputs"], got["message"])

    async def delete(self, meta: Meta) -> None:
        self.http.delete({"id": meta.job_id})


def test_an_async_agent_named_by_its_task_type(saver, service, t):
    agent = register(AsyncAgent(service.url), override=True)  # once per backend

    class S(TypedDict, total=False):
        task: dict
        echo: dict

    g = StateGraph(S)
    g.add_node("job", JobNode(agent.task_type, inputs=lambda s: s["task"],
                              poll=Poll(0.05, 1, 0.05), inline=1))
    g.add_edge(START, "job")
    g.add_edge("job", END)
    app = g.compile(checkpointer=saver)
    assert app.invoke({"task": {"seconds": 0.1}}, thread=t)["echo"] == {"seconds": 0.1}


def test_the_service_dedupes_creates_by_idempotency_key(service):
    agent = HttpJobAgent(service.url)
    assert agent.create({"a": 1}, idempotency_key="k") == agent.create({"a": 1},
                                                                       idempotency_key="k")
    assert service.stats == {**service.stats, "create_requests": 2, "jobs": 1}
