"""W9 -- records per second through a 3-stage pipeline (source -> 3 trivial processors -> sink):
in memory (one segment, in-process queues) and on Redis Streams (every step reads and writes a
topic: 3 consumer groups; per batch one append call, one XREADGROUP, one XACK per commit), when
``redis-server`` is installed.

Each measurement is repeated (the median is reported) and also reported as CPU time: the
``time.process_time`` of this process (which runs every step) per record, and for Redis the
server's own CPU time per record (``INFO cpu``). On a shared machine the rate moves with the
load; the CPU time per record barely does. ``W9_load_avg`` is the 1-minute load average over
the runs.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _common import check, log

from graphflow.streams import Pipeline, RedisTopics, SingleRecordProcessor, Step

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))


class Numbers:
    def __init__(self, n: int) -> None:
        self.n, self.i, self.committed = n, 0, 0

    def read(self):
        if self.i >= self.n:
            return None
        out = [(x,) for x in range(self.i, min(self.i + 500, self.n))]
        self.i += len(out)
        return out

    def commit(self, records) -> None:
        self.committed += len(records)


class Same(SingleRecordProcessor):
    def process_record(self, record):
        return [record]


class Count:
    def __init__(self) -> None:
        self.n = 0

    def write(self, records) -> None:
        self.n += len(records)


def _timed(n: int, run) -> tuple[float, float]:
    """(records/s, CPU µs of this process per record) of ``run()``."""
    cpu, t0 = time.process_time(), time.perf_counter()
    run()
    dt, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return n / dt, cpu / n * 1e6


def memory(n: int) -> tuple[float, float]:
    source, sink = Numbers(n), Count()
    pipeline = Pipeline([source, Step(Same(), name="a"), Step(Same(), name="b"),
                         Step(Same(), name="c"), sink])
    out = _timed(n, pipeline.run)
    check(sink.n == n and source.committed == n, f"memory pipeline lost records: {sink.n}/{n}")
    return out


def redis(n: int, url: str, server=None) -> tuple[float, float, float]:
    """(records/s, client CPU µs/record, server CPU µs/record)."""
    name = uuid.uuid4().hex
    source, sink = Numbers(n), Count()
    steps = [Step(source, name="src", output=f"{name}-0"),
             Step(Same(), name="a", input=f"{name}-0", output=f"{name}-1", batch_size=500),
             Step(Same(), name="b", input=f"{name}-1", output=f"{name}-2", batch_size=500),
             Step(Same(), name="c", input=f"{name}-2", batch_size=500), Step(sink, name="out")]
    pipeline = Pipeline(steps, topics=RedisTopics(url, block=0.01), name=name)
    before = _server_cpu(server)
    rate, cpu = _timed(n, pipeline.run)
    used = _server_cpu(server) - before
    check(sink.n == n and source.committed == n, f"redis pipeline lost records: {sink.n}/{n}")
    if server is not None:
        server.delete(*(f"{name}-{i}" for i in range(3)))
    return rate, cpu, used / n * 1e6


def _segment(url: str, name: str, step: str, n: int, ready, go, done, stop, out) -> None:
    """One step of the Redis pipeline in this (child) process, until ``stop`` is set (the
    source step: until its records are committed); reports its CPU time on ``out``."""
    import threading

    source, sink = Numbers(n), _Counted(n, done)
    agents = {"src": source, "out": sink}
    steps = [Step(source, name="src", output=f"{name}-0"),
             Step(Same(), name="a", input=f"{name}-0", output=f"{name}-1", batch_size=500),
             Step(Same(), name="b", input=f"{name}-1", output=f"{name}-2", batch_size=500),
             Step(Same(), name="c", input=f"{name}-2", batch_size=500), Step(sink, name="out")]
    pipeline = Pipeline(steps, topics=RedisTopics(url, block=0.01), name=name)
    halt = threading.Event()
    threading.Thread(target=lambda: (stop.acquire(), halt.set()), daemon=True).start()
    ready.release()
    go.acquire()
    cpu = time.process_time()
    pipeline.run(steps=[step], stop=None if step == "src" else halt)
    out.put((step, time.process_time() - cpu, agents.get(step) and
             getattr(agents[step], "committed", None)))


class _Counted(Count):
    def __init__(self, n: int, done) -> None:
        super().__init__()
        self.goal, self.done = n, done

    def write(self, records) -> None:
        super().write(records)
        if self.n >= self.goal:
            self.done.release()


def redis_processes(n: int, url: str, server=None) -> tuple[float, float, float]:
    """:func:`redis` with each step in its own process (as ``graphflow pipeline run --step``
    runs them): (records/s, CPU µs/record of the 4 processes together, server CPU)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    name = uuid.uuid4().hex
    # (semaphores, not events: multiprocessing's Event.set can hang when a child has exited)
    ready, go, done, stop = (ctx.Semaphore(0) for _ in range(4))
    out = ctx.Queue()
    steps = ["src", "a", "b", "c"]
    procs = [ctx.Process(target=_segment, args=(url, name, s, n, ready, go, done, stop, out))
             for s in steps]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    before = _server_cpu(server)
    t0 = time.perf_counter()
    for _ in procs:
        go.release()
    done.acquire()
    dt = time.perf_counter() - t0
    for _ in procs:
        stop.release()
    reports = [out.get(timeout=120) for _ in procs]
    used = _server_cpu(server) - before
    for p in procs:
        p.join(timeout=120)
    committed = {step: c for step, _, c in reports}
    check(committed["src"] == n, f"redis pipeline (processes) lost records: {committed}")
    if server is not None:
        server.delete(*(f"{name}-{i}" for i in range(3)))
    return n / dt, sum(c for _, c, _ in reports) / n * 1e6, used / n * 1e6


def _server_cpu(server) -> float:
    if server is None:
        return 0.0
    info = server.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _median(xs: list[float], digits: int = 0) -> float:
    return round(statistics.median(xs), digits)


def run(quick: bool) -> dict:
    n = 20_000 if quick else 100_000
    loads = [os.getloadavg()[0]]
    memory(2_000)  # warm-up
    mem = [memory(n) for _ in range(1 if quick else 7)]
    loads.append(os.getloadavg()[0])
    out = {"W9_memory_records_per_s": _median([r for r, _ in mem]),
           "W9_memory_cpu_us_per_record": _median([c for _, c in mem], 2)}
    if shutil.which("redis-server") is None:
        log("W9: redis-server not installed; the Redis measurement is skipped")
    else:
        import redis as redis_py
        import redis_server

        with tempfile.TemporaryDirectory() as tmp, redis_server.redis_server(Path(tmp)) as url:
            server = redis_py.Redis.from_url(url)
            redis(2_000, url, server)  # warm-up
            runs = [redis(n // 2, url, server) for _ in range(1 if quick else 5)]
            loads.append(os.getloadavg()[0])
            procs = [redis_processes(n // 2, url, server) for _ in range(1 if quick else 5)]
            loads.append(os.getloadavg()[0])
        out["W9_redis_records_per_s"] = _median([r for r, _, _ in runs])
        out["W9_redis_cpu_us_per_record"] = _median([c for _, c, _ in runs], 2)
        out["W9_redis_server_cpu_us_per_record"] = _median([s for _, _, s in runs], 2)
        out["W9_redis_4proc_records_per_s"] = _median([r for r, _, _ in procs])
        out["W9_redis_4proc_cpu_us_per_record"] = _median([c for _, c, _ in procs], 2)
    out["W9_load_avg"] = round(statistics.mean(loads), 2)
    return out
