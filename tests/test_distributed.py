"""graphflow.distributed on a real two-node Ray cluster (started once for the session, on this
machine) with PostgreSQL as the shared checkpointer: the same graphs in-process and on Ray,
a killed worker's task retried, a killed run resumed, one writer per thread, backpressure,
shutdown, errors."""

from __future__ import annotations

import operator
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from graphflow import Command, NodeError, ThreadBusyError
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.distributed import (
    BlobRef,
    ExecutorBusyError,
    FileBlobStore,
    RayExecutor,
    RemoteError,
    RunStoppedError,
    ray_node,
    submit,
)
from graphflow.distributed.errors import decode_error, encode_error
from graphflow.errors import GraphflowError, InvalidUpdateError

SUPPORT = str(Path(__file__).parent / "support")
sys.path.insert(0, SUPPORT)
sys.path.insert(0, str(Path(__file__).parent))

from support.waiting import wait_until  # noqa: E402


def _need(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the Ray tests must run)", pytrace=False)
    pytest.skip(what)


@pytest.fixture(scope="session")
def cluster():
    """A head and a second node (which alone has the custom resource "special")."""
    try:
        import ray
    except ImportError:
        _need('ray is not installed (pip install -e ".[dev]" installs it)')
    dsn = os.environ.get("GRAPHFLOW_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=3):
            pass
    except Exception as exc:
        _need(f"no PostgreSQL server at GRAPHFLOW_PG_DSN ({type(exc).__name__})")
    import ray_graphs

    from graphflow.testing.ray_cluster import RAY_ENV, LocalRayCluster

    ray_graphs.create_table()

    os.environ.update(RAY_ENV)
    env = {"PYTHONPATH": os.pathsep.join([SUPPORT, os.environ.get("PYTHONPATH", "")]),
           "GRAPHFLOW_PG_DSN": dsn}
    with LocalRayCluster(2, cpus=1, env=env, resources=[{}, {"special": 1}]) as c:
        ray.init(address=c.address, log_to_driver=False)
        try:
            yield c
        finally:
            ray.shutdown()


@pytest.fixture
def tag():
    return uuid.uuid4().hex[:12]


def fan_input(tag: str, n: int, hold_at: int = -1, hold: str = "") -> dict:
    return {"tag": tag, "n": n, "hold_at": hold_at, "hold": hold, "squares": [], "where": [],
            "total": 0}


def _pids(where: list[str], node: str) -> set[int]:
    return {int(w.split(":")[1]) for w in where if w.startswith(node + ":")}


def test_fanout_on_ray_equals_local(cluster, tag):
    import ray_graphs as rg

    here = rg.fanout_plain.invoke(fan_input(tag, 12))
    app = rg.on_ray(rg.fanout_plain, "ray_graphs:fanout_plain")
    there = app.invoke(fan_input(tag, 12))
    assert there["squares"] == here["squares"] == [i * i for i in range(12)]
    assert there["total"] == here["total"] == sum(i * i for i in range(12))
    me = os.getpid()
    assert _pids(there["where"], "split") == {me}  # ray_node(local=True)
    assert me not in _pids(there["where"], "square") | _pids(there["where"], "total")


def test_fanout_with_a_thread_streams_and_checkpoints(cluster, tag):
    import ray_graphs as rg

    app = rg.on_ray(rg.fanout, "ray_graphs:fanout")
    events = list(app.stream(fan_input(tag, 5), thread=f"ray-{tag}", mode=["updates", "custom"]))
    custom = sorted(p["square"] for m, p in events if m == "custom")
    assert custom == [0, 1, 2, 3, 4]
    updates = [p for m, p in events if m == "updates"]
    assert sorted(u["square"]["squares"][0] for u in updates if "square" in u) == \
        [0, 1, 4, 9, 16]
    local = rg.fanout.invoke(fan_input(tag + "l", 5), thread=f"local-{tag}")
    state = rg.fanout.get_state(f"ray-{tag}")
    assert state.values["squares"] == local["squares"] and state.next == ()
    assert rg.counts(tag)["pay:square3"] == 1


def test_a_task_killed_with_its_worker_is_retried_alone(cluster, tag, tmp_path):
    import ray_graphs as rg

    app = rg.on_ray(rg.fanout, "ray_graphs:fanout")
    hold = str(tmp_path / "release")
    out: dict = {}
    runner = threading.Thread(target=lambda: out.update(
        app.invoke(fan_input(tag, 6, hold_at=3, hold=hold), thread=f"kill-{tag}")))
    runner.start()
    wait_until(lambda: Path(hold + ".pid").exists(), "the held task to start", 120)
    os.kill(int(Path(hold + ".pid").read_text()), signal.SIGKILL)
    Path(hold).touch()
    runner.join(180)
    assert not runner.is_alive()
    assert out["squares"] == [i * i for i in range(6)] and out["total"] == 55
    ran = rg.counts(tag)
    assert ran["square3"] == 2, ran  # killed mid-task, run again by Ray
    assert all(ran[f"square{i}"] == 1 for i in (0, 1, 2, 4, 5)), ran  # siblings: once
    assert all(ran[f"pay:square{i}"] == 1 for i in range(6)), ran  # journaled: never again


def line_input(tag: str, hold: str = "") -> dict:
    return {"tag": tag, "hold": hold, "log": []}


def test_a_submitted_run_resumes_after_its_worker_is_killed(cluster, tag, tmp_path):
    import ray_graphs as rg

    app = rg.on_ray(rg.pipeline, "ray_graphs:pipeline", default="local")
    hold = str(tmp_path / "release")
    handle = submit(app, line_input(tag, hold), thread=f"run-{tag}")
    wait_until(lambda: Path(hold + ".pid").exists(), "the run to reach its held node", 120)
    victim = int(Path(hold + ".pid").read_text())
    assert victim != os.getpid()
    os.kill(victim, signal.SIGKILL)
    Path(hold).touch()
    result = handle.result(timeout=180)
    assert result["log"] == ["first", "second:receipt-second", "third"]
    assert result == rg.pipeline.invoke(line_input(tag), thread=f"local-{tag}") | {"hold": hold}
    ran = rg.counts(tag)
    # "first" ran once in the killed run (its step was checkpointed), once in the local run;
    # "second" was killed mid-node: run again, its journaled payment not paid again
    assert ran["first"] == 2 and ran["third"] == 2, ran
    assert ran["second"] == 3 and ran["pay:second"] == 2, ran


def test_one_writer_per_thread_and_backpressure(cluster, tag, tmp_path):
    import ray_graphs as rg

    app = rg.on_ray(rg.pipeline, "ray_graphs:pipeline", default="local", max_runs=1)
    hold = str(tmp_path / "release")
    first = submit(app, line_input(tag, hold), thread=f"busy-{tag}")
    with pytest.raises(ThreadBusyError, match="busy"):
        submit(app, line_input(tag), thread=f"busy-{tag}")
    with pytest.raises(ExecutorBusyError, match="max_runs"):
        submit(app, line_input(tag), thread=f"other-{tag}", timeout=0.2)
    assert app.executor.in_flight() == (1, 0)
    Path(hold).touch()
    assert first.result(timeout=180)["log"][-1] == "third"
    wait_until(lambda: app.executor.in_flight() == (0, 0), "the slot to free", 30)
    second = submit(app, line_input(tag), thread=f"other-{tag}", timeout=60)
    assert second.result(timeout=180)["log"][-1] == "third"


def test_tasks_in_flight_are_bounded(cluster, tag):
    import ray_graphs as rg

    app = rg.on_ray(rg.fanout_plain, "ray_graphs:fanout_plain", max_tasks=2)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(app.executor.in_flight()[1])
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        out = app.invoke(fan_input(tag, 8))
    finally:
        done.set()
        watcher.join()
    assert out["total"] == sum(i * i for i in range(8))
    assert max(seen) <= 2 and max(seen) >= 1


def test_shutdown_stops_runs_and_leaves_them_resumable(cluster, tag, tmp_path):
    import ray_graphs as rg

    app = rg.on_ray(rg.pipeline, "ray_graphs:pipeline", default="local")
    hold = str(tmp_path / "release")
    handle = submit(app, line_input(tag, hold), thread=f"stop-{tag}")
    wait_until(lambda: Path(hold + ".pid").exists(), "the run to reach its held node", 120)
    assert app.executor.shutdown(grace=0.1) == [f"stop-{tag}"]
    with pytest.raises(RunStoppedError):
        handle.result(timeout=120)
    with pytest.raises(GraphflowError, match="shut down"):
        submit(app, line_input(tag), thread=f"late-{tag}")
    Path(hold).touch()
    out = rg.pipeline.invoke(None, thread=f"stop-{tag}", wait=60)  # resumed here
    assert out["log"] == ["first", "second:receipt-second", "third"]
    ran = rg.counts(tag)
    assert ran["first"] == 1 and ran["pay:second"] == 1 and ran["third"] == 1, ran


def misc_input(x: int) -> dict:
    return {"x": x, "out": []}


def test_errors_interrupts_async_nodes_and_custom_resources(cluster, tag):
    import ray_graphs as rg

    app = rg.on_ray(rg.misc, "ray_graphs:misc")
    with pytest.raises(NodeError, match="x is negative") as info:
        app.invoke(misc_input(-1), thread=f"err-{tag}")
    assert info.value.node == "fails"
    assert isinstance(info.value.__cause__, RemoteError)
    assert info.value.__cause__.remote_type == "builtins.ValueError"
    assert "x is negative" in info.value.__cause__.remote_traceback

    paused = app.invoke(misc_input(2), thread=f"ask-{tag}")
    assert paused["__interrupt__"][0].value == {"question": "double 2?"}
    out = app.invoke(Command(resume="yes"), thread=f"ask-{tag}")
    assert out["out"][-1] == "asked:yes"
    assert "ok" in out["out"]
    assert f"ip:{cluster.ips[1]}" in out["out"]  # only the second node has "special"
    (pid,) = [int(o.split(":")[1]) for o in out["out"] if o.startswith("async:")]
    assert pid != os.getpid()


def test_submit_needs_a_ray_executor_and_a_shared_store(cluster):
    import ray_graphs as rg

    with pytest.raises(GraphflowError, match="needs a graph with a RayExecutor"):
        submit(rg.pipeline, line_input("x"), thread="t")
    app = rg.build_pipeline(MemoryCheckpointer()).with_executor(RayExecutor("ray_graphs:x"))
    with pytest.raises(GraphflowError, match="share its checkpointer"):
        submit(app, line_input("x"), thread="t")


def test_unreachable_cluster_is_a_clear_error_at_once(tmp_path):
    pytest.importorskip("ray", reason="ray is not installed")
    code = (
        "import socket, time\n"
        "from graphflow.distributed import RayExecutor, ClusterUnavailableError\n"
        "import ray_graphs as rg\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "app = rg.fanout_plain.with_executor(RayExecutor('ray_graphs:fanout_plain', "
        "address=f'127.0.0.1:{port}'))\n"
        "t = time.monotonic()\n"
        "try:\n"
        "    app.invoke({'tag': 'x', 'n': 2, 'hold_at': -1, 'hold': '', 'squares': [], "
        "'where': [], 'total': 0})\n"
        "except ClusterUnavailableError as e:\n"
        "    print('ERR', round(time.monotonic() - t), e)\n")
    env = {**os.environ, "PYTHONPATH": SUPPORT, "RAY_ADDRESS": ""}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120)
    assert out.stdout.startswith("ERR"), out.stderr[-2000:]
    assert "cannot reach the Ray cluster at 127.0.0.1:" in out.stdout
    assert int(out.stdout.split()[1]) < 10


# -- pieces that need no cluster ---------------------------------------------------------------

def test_ray_node_options_are_checked():
    from graphflow.distributed.executor import _node_options
    from graphflow.graph.nodes import NodeSpec

    def make(meta):
        return NodeSpec("n", lambda s: {}, retry=None, timeout=None, metadata=meta)

    assert _node_options(make(ray_node(num_cpus=2, memory=10, resources={"gpu_box": 1})),
                         "local") == {"num_cpus": 2, "max_retries": 3, "memory": 10,
                                      "resources": {"gpu_box": 1}}
    assert _node_options(make(ray_node(local=True)), "ray") is None
    assert _node_options(make({}), "ray") == {"num_cpus": 1, "max_retries": 3}
    assert _node_options(make({}), "local") is None
    with pytest.raises(GraphflowError, match=r"node 'n'.*cpus"):
        _node_options(make({"ray": {"cpus": 2}}), "ray")
    with pytest.raises(GraphflowError, match="num_cpus=-1"):
        _node_options(make({"ray": {"num_cpus": -1}}), "ray")
    with pytest.raises(GraphflowError, match="module:attr"):
        RayExecutor("not a reference")


def test_errors_travel_as_json_by_name():
    cause = ValueError("bad value")
    err = InvalidUpdateError("node 'a' wrote key 'x' twice", node="a", key="x")
    err.__cause__ = cause
    back = decode_error(encode_error(err))
    assert type(back) is InvalidUpdateError
    assert (str(back), back.node, back.key) == (str(err), "a", "x")
    assert isinstance(back.__cause__, RemoteError)
    assert back.__cause__.remote_type == "builtins.ValueError"
    busy = decode_error(encode_error(ThreadBusyError("t", None)))
    assert type(busy) is ThreadBusyError and busy.thread == "t" and busy.holder is None


def test_a_dead_attempt_on_another_machine_is_waited_out(tmp_path):
    """A run retried after its worker died takes over the dead attempt's lease: at once when
    the attempt was a process of this machine that is gone; after the lease expires when it
    was on another machine (whose processes this one cannot see)."""
    from graphflow.checkpoint.lease import Owner, this_process
    from graphflow.checkpoint.sqlite import SqliteCheckpointer
    from graphflow.distributed.worker import claim_thread

    saver = SqliteCheckpointer(tmp_path / "runs.db")
    saver.lease_ttl = 0.5
    reservation = this_process("sub1/submit")
    elsewhere = Owner("sub1/abc", "other-host/boot", 4242, "123")
    assert saver.acquire_lease("t", elsewhere, 0.5) is None
    lease = claim_thread(saver, "t", "sub1", reservation, patience=30)
    assert lease.owner.token.startswith("sub1/") and saver.holds_lease("t", lease.owner)
    lease.release()
    # a foreign writer is not waited for: the thread is busy
    foreign = Owner("zzz", "other-host/boot", 1, "1")
    assert saver.acquire_lease("t", foreign, 60) is None
    with pytest.raises(ThreadBusyError):
        claim_thread(saver, "t", "sub1", reservation, patience=30)
    # our own dead attempt on this machine: taken over at once
    saver.release_lease("t", foreign)
    dead = Owner("sub1/dead", this_process().host, 2**22 + 7, "1")
    assert saver.acquire_lease("t", dead, 60) is None
    lease = claim_thread(saver, "t", "sub1", reservation, patience=0.01)
    assert saver.holds_lease("t", lease.owner)
    lease.release()


class Blobs(TypedDict):
    refs: Annotated[list, operator.add]
    size: int


def test_blobs_keep_large_values_out_of_checkpoints(tmp_path):
    from graphflow import END, START, StateGraph
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    blobs = FileBlobStore(tmp_path / "blobs")
    big = {"rows": [[i, str(i) * 20] for i in range(5000)]}
    S = Blobs

    def load(state: S) -> dict:
        return {"refs": [blobs.put(big)]}

    def measure(state: S) -> dict:
        return {"size": len(blobs.get(state["refs"][0])["rows"])}

    g = StateGraph(S)
    g.add_sequence([load, measure])
    g.add_edge(START, "load")
    g.add_edge("measure", END)
    saver = SqliteCheckpointer(tmp_path / "runs.db")
    out = g.compile(checkpointer=saver).invoke({"refs": [], "size": 0}, thread="t")
    assert out["size"] == 5000 and isinstance(out["refs"][0], BlobRef)
    assert saver.stored_bytes("t") < 5000  # the state holds a reference, not the rows
    assert blobs.put(big) == out["refs"][0]  # content-addressed: stored once
    path = blobs._path(out["refs"][0].key)
    path.write_bytes(path.read_bytes()[:-1] + b" ")
    with pytest.raises(GraphflowError, match="corrupt"):
        blobs.get(out["refs"][0])


def test_the_package_exports_its_names_and_imports_no_ray():
    code = ("import sys, graphflow.distributed as d\n"
            "assert list(d.__all__) == sorted(d.__all__), d.__all__\n"
            "assert all(getattr(d, n, None) is not None for n in d.__all__)\n"
            "print('ray' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


def test_the_example_runs_the_same_graph_in_process_and_on_ray(cluster):
    example = Path(__file__).parent.parent / "examples" / "distributed.py"
    env = {**os.environ, "RAY_ADDRESS": cluster.address}
    out = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.stdout.strip().splitlines()[-1:] == ["same results: True"], out.stderr[-3000:]
