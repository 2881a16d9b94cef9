"""W9 -- records per second through a 3-stage pipeline (source -> 3 trivial processors -> sink):
in memory (one segment, in-process queues) and on Redis Streams (every step reads and writes a
topic: 3 consumer groups, XADD/XREADGROUP/XACK per batch), when ``redis-server`` is installed.
"""

from __future__ import annotations

import shutil
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


def memory(n: int) -> float:
    source, sink = Numbers(n), Count()
    t0 = time.perf_counter()
    Pipeline([source, Step(Same(), name="a"), Step(Same(), name="b"), Step(Same(), name="c"),
              sink]).run()
    dt = time.perf_counter() - t0
    check(sink.n == n and source.committed == n, f"memory pipeline lost records: {sink.n}/{n}")
    return n / dt


def redis(n: int, url: str) -> float:
    name = uuid.uuid4().hex
    source, sink = Numbers(n), Count()
    steps = [Step(source, name="src", output=f"{name}-0"),
             Step(Same(), name="a", input=f"{name}-0", output=f"{name}-1", batch_size=500),
             Step(Same(), name="b", input=f"{name}-1", output=f"{name}-2", batch_size=500),
             Step(Same(), name="c", input=f"{name}-2", batch_size=500), Step(sink, name="out")]
    t0 = time.perf_counter()
    Pipeline(steps, topics=RedisTopics(url, block=0.01), name=name).run()
    dt = time.perf_counter() - t0
    check(sink.n == n and source.committed == n, f"redis pipeline lost records: {sink.n}/{n}")
    return n / dt


def run(quick: bool) -> dict:
    n = 20_000 if quick else 100_000
    memory(2_000)  # warm-up
    rates = sorted(memory(n) for _ in range(1 if quick else 3))
    out = {"W9_memory_records_per_s": round(rates[len(rates) // 2])}
    if shutil.which("redis-server") is None:
        log("W9: redis-server not installed; the Redis measurement is skipped")
        return out
    import redis_server

    with tempfile.TemporaryDirectory() as tmp, redis_server.redis_server(Path(tmp)) as url:
        rates = sorted(redis(n // 2, url) for _ in range(1 if quick else 3))
    out["W9_redis_records_per_s"] = round(rates[len(rates) // 2])
    return out
