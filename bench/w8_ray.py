"""W8 -- graphflow on a Ray cluster of two local nodes (1 CPU each, ``LocalRayCluster``).

- A fan-out of 1,000 ``Send`` tasks (quick: 200) of a CPU-bound node (~2 ms of integer
  arithmetic each), in one process (the engine's thread pool: the GIL makes it serial) and on
  the two Ray nodes (``RayExecutor``). Wall times; the pure work done serially (the floor);
  the Ray overhead per task = (Ray wall x 2 CPUs - the floor) / tasks.
- Runs per second through ``submit``: 100 runs (quick: 20) of a 3-node graph, each on its own
  thread of a PostgreSQL checkpointer (``GRAPHFLOW_PG_DSN``, skipped without a server), all
  submitted at once, until the last one has finished.

Ray workers import this module as ``w8_ray`` (the cluster's ``PYTHONPATH`` holds bench/).
"""

from __future__ import annotations

import operator
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Annotated, TypedDict

from _common import check, log, rnd

from graphflow import END, START, Send, StateGraph

SPIN = 12_000
DSN = os.environ.get("GRAPHFLOW_PG_DSN") or "postgresql://postgres@127.0.0.1:5432/postgres"


def spin(i: int) -> int:
    x = i
    for _ in range(SPIN):
        x = (x * 31 + 7) % 1_000_003
    return x


class Fan(TypedDict):
    n: int
    results: Annotated[list[int], operator.add]


def crunch(i: int) -> dict:
    return {"results": [spin(i)]}


def _fan():
    g = StateGraph(Fan)
    g.add_node("crunch", crunch)
    g.add_conditional_edges(START, lambda s: [Send("crunch", i) for i in range(s["n"])],
                            ["crunch"])
    g.add_edge("crunch", END)
    return g.compile()


fan = _fan()


class Line(TypedDict):
    n: int


def _line(checkpointer=None):
    g = StateGraph(Line)
    g.add_sequence([("a", lambda s: {"n": s["n"] + 1}), ("b", lambda s: {"n": s["n"] * 2}),
                    ("c", lambda s: {"n": s["n"] - 1})])
    g.add_edge(START, "a")
    g.add_edge("c", END)
    return g.compile(checkpointer=checkpointer)


def line(checkpointer):
    """The factory the workers call with the PostgreSQL checkpointer (``store=``)."""
    return _line(checkpointer)


def _pg_ok() -> bool:
    try:
        import psycopg

        with psycopg.connect(DSN, connect_timeout=3):
            return True
    except Exception:
        return False


def _median_wall(fn, times: int) -> float:
    walls = []
    for _ in range(times):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def run(quick: bool) -> dict:
    import ray

    from graphflow.distributed import RayExecutor, submit
    from graphflow.testing.ray_cluster import RAY_ENV, LocalRayCluster

    n = 200 if quick else 1_000
    runs = 20 if quick else 100
    times = 1 if quick else 3
    expected = [spin(i) for i in range(n)]
    out = fan.invoke({"n": n, "results": []})
    check(out["results"] == expected, "the local fan-out's results are wrong")
    local = _median_wall(lambda: fan.invoke({"n": n, "results": []}), times)
    floor = _median_wall(lambda: [spin(i) for i in range(n)], times)

    os.environ.update(RAY_ENV)
    bench_dir = str(Path(__file__).resolve().parent)
    env = {"PYTHONPATH": bench_dir, "GRAPHFLOW_PG_DSN": DSN}
    result: dict = {}
    with LocalRayCluster(2, cpus=1, env=env) as cluster:
        log(f"W8: cluster up at {cluster.address}")
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            on_ray = fan.with_executor(RayExecutor("w8_ray:fan"))
            out = on_ray.invoke({"n": n, "results": []})  # warm: workers start
            check(out["results"] == expected, "the Ray fan-out's results differ from local")
            wall = _median_wall(lambda: on_ray.invoke({"n": n, "results": []}), times)
            result.update({
                "W8_fanout_tasks": n,
                "W8_task_ms": rnd(floor / n * 1e3),
                "W8_local_s": rnd(local),
                "W8_ray_2nodes_s": rnd(wall),
                "W8_speedup": rnd(local / wall),
                "W8_ray_overhead_ms_per_task": rnd((wall * 2 - floor) / n * 1e3),
            })
            if _pg_ok():
                from graphflow.checkpoint.postgres import PostgresCheckpointer

                with PostgresCheckpointer(DSN) as saver:
                    app = _line(saver).with_executor(
                        RayExecutor("w8_ray:line", store=DSN, default="local"))
                    tag = uuid.uuid4().hex[:8]
                    submit(app, {"n": 0}, thread=f"w8-warm-{tag}").result()
                    t = time.perf_counter()
                    handles = [submit(app, {"n": i}, thread=f"w8-{tag}-{i}")
                               for i in range(runs)]
                    got = [h.result()["n"] for h in handles]
                    wall = time.perf_counter() - t
                    check(got == [(i + 1) * 2 - 1 for i in range(runs)], "submit: wrong results")
                    result["W8_submit_runs"] = runs
                    result["W8_submit_runs_per_s"] = rnd(runs / wall)
            else:
                log("W8: no PostgreSQL server at GRAPHFLOW_PG_DSN: runs/s through submit skipped")
        finally:
            ray.shutdown()
    return result
