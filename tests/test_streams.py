"""Streaming pipelines: records through processors to sinks with ordered commits, error
policies, compiled graphs as processors, pipeline files; Redis Streams topics with stages in
separate processes and a killed consumer's records claimed by another."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import TypedDict

import pytest

from graphflow import END, START, StateGraph
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.streams import (
    MemoryTopics,
    Pipeline,
    PipelineError,
    Record,
    RedisTopics,
    SimpleRecord,
    SingleRecordProcessor,
    Step,
    graph_processor,
    load_pipeline,
)

SUPPORT = Path(__file__).parent / "support"
sys.path.insert(0, str(SUPPORT))
import redis_server  # noqa: E402
from waiting import wait_until  # noqa: E402


class Source:
    """Reads ``values`` in small batches; logs commits."""

    def __init__(self, values, batch=5):
        self.values = list(values)
        self.batch = batch
        self.committed: list = []

    def read(self):
        if not self.values:
            return None
        out, self.values = self.values[:self.batch], self.values[self.batch:]
        return [SimpleRecord(v, key=str(v)) for v in out]

    def commit(self, records):
        self.committed.extend(r.value() for r in records)


class LateSink:
    """Commits through its callback, later, from another thread; logs what it committed."""

    def __init__(self):
        self.written: list = []
        self.callback = None

    def set_commit_callback(self, callback):
        self.callback = callback

    def write(self, records):
        self.written.extend(r.value() for r in records)
        threading.Timer(random.random() / 100, self.callback.commit, (list(records),)).start()


class Jitter:
    """An async processor whose batches finish out of order; fans 3 out to two, drops 5s."""

    async def process(self, records):
        await asyncio.sleep(random.random() / 50)
        out = []
        for r in records:
            v = r.value()
            out.append((r, [] if v % 5 == 0 else [v, v] if v % 3 == 0 else [v]))
        return out


def test_records_flow_and_sources_commit_in_read_order_after_the_sink():
    source, sink = Source(range(200)), LateSink()
    stats = Pipeline([source, Step(Jitter(), name="jitter", concurrency=4, batch_size=3),
                      Step(SingleRecordDouble(), name="double", concurrency=2), sink]).run()
    expected = [2 * v for v in range(200) if v % 5] + [2 * v for v in range(200)
                                                      if v % 3 == 0 and v % 5]
    assert sorted(sink.written) == sorted(expected)
    assert source.committed == list(range(200))  # every record, in read order
    assert stats["read"] == stats["committed"] == 200


class SingleRecordDouble(SingleRecordProcessor):
    def process_record(self, record):
        return [record.value() * 2]


class Flaky(SingleRecordProcessor):
    """Fails ``fail`` times on each odd value, then passes it."""

    def __init__(self, fail):
        self.fail = fail
        self.seen: dict = {}

    def process_record(self, record):
        v = record.value()
        self.seen[v] = self.seen.get(v, 0) + 1
        if v % 2 and self.seen[v] <= self.fail:
            raise ValueError(f"bad {v}")
        return [v]


@pytest.mark.parametrize("policy", ["retry", "skip", "dead-letter", "fail"])
def test_error_policies(policy):
    topics = MemoryTopics()
    source, sink = Source(range(10)), LateSink()
    errors = {"retry": {"retries": 2, "backoff": 0.001},
              "skip": {"on-failure": "skip"},
              "dead-letter": {"on-failure": "dead-letter", "dead-letter-topic": "dlq"},
              "fail": {"on-failure": "fail"}}[policy]
    pipeline = Pipeline([source, Step(Flaky(2), name="flaky", errors=errors), sink],
                        topics=topics)
    if policy == "fail":
        with pytest.raises(PipelineError, match=r"flaky.*bad 1"):
            pipeline.run()
        assert 1 not in source.committed  # the failed record is not committed
        return
    stats = pipeline.run()
    assert source.committed == list(range(10))
    if policy == "retry":
        assert sorted(sink.written) == list(range(10))
    else:
        assert sorted(sink.written) == [0, 2, 4, 6, 8]
    if policy == "skip":
        assert stats["skipped"] == 5
    if policy == "dead-letter":
        dead = topics.records("dlq")
        assert [r.value() for r in dead] == [1, 3, 5, 7, 9]
        assert dead[0].header("error-msg") == "bad 1"
        assert dead[0].header("error-class") == "ValueError"
        assert dead[0].header("error-step") == "flaky"


class Sizes(SingleRecordProcessor):
    """Passes records on; logs the size of each batch it is given."""

    def __init__(self):
        self.sizes: list[int] = []

    def process(self, records):
        self.sizes.append(len(records))
        return super().process(records)

    def process_record(self, record):
        return [record]


def test_small_reads_are_merged_up_to_the_batch_size_and_large_batches_split():
    source, sink = Source(range(200), batch=5), LateSink()
    merged, split = Sizes(), Sizes()
    stats = Pipeline([Step(source, batch_size=50, linger=3600),  # merge until 50 are read
                      Step(merged, name="merged", batch_size=1000),
                      Step(split, name="split", batch_size=7), sink]).run()
    assert merged.sizes == [50, 50, 50, 50]
    assert max(split.sizes) <= 7 and sum(split.sizes) == 200
    assert sorted(sink.written) == list(range(200))
    assert source.committed == list(range(200)) and stats["committed"] == 200


def test_outputs_leave_a_concurrent_step_in_their_input_order():
    source, sink = Source(range(300), batch=4), LateSink()
    Pipeline([source, Step(Jitter(), name="jitter", concurrency=8, batch_size=4),
              Step(SingleRecordDouble(), name="double", concurrency=3, batch_size=5),
              sink]).run()
    kept = [v for v in range(300) if v % 5]
    assert sink.written == [2 * x for v in kept for x in ([v, v] if v % 3 == 0 else [v])]
    assert source.committed == list(range(300))


class Twice(SingleRecordProcessor):
    """Returns each record object twice (the sink gets the same object two times)."""

    def process_record(self, record):
        return [record, record]


def test_the_same_record_object_written_twice_is_committed_once_both_are():
    source, sink = Source(range(20)), LateSink()
    stats = Pipeline([source, Step(Twice(), name="twice"), sink]).run()
    assert sorted(sink.written) == sorted(list(range(20)) * 2)
    assert source.committed == list(range(20))
    assert stats["written"] == 40


class FailOdd(SingleRecordProcessor):
    """Fans even values out to two records; fails on odd ones."""

    def process_record(self, record):
        if record.value() % 2:
            raise ValueError(f"odd {record.value()}")
        return [record.value(), record.value() + 0.5]


def test_a_dead_lettered_record_among_fanned_out_ones_commits_in_order():
    topics = MemoryTopics()
    source, sink = Source(range(30), batch=30), LateSink()
    Pipeline([source, Step(FailOdd(), name="fan", batch_size=4,
                           errors={"on-failure": "dead-letter", "dead-letter-topic": "dlq"}),
              sink], topics=topics).run()
    assert sink.written == [x for v in range(0, 30, 2) for x in (v, v + 0.5)]
    assert [r.value() for r in topics.records("dlq")] == list(range(1, 30, 2))
    assert source.committed == list(range(30))


class Greedy:
    """Empties the list it is given (agents may do anything with their arguments)."""

    def process(self, records):
        out = [(r, [r.value()]) for r in records]
        records.clear()
        return out


def test_an_agent_changing_its_batch_changes_no_commit():
    source, sink = Source(range(50), batch=50), LateSink()
    Pipeline([source, Step(Greedy(), name="greedy"), sink]).run()
    assert sorted(sink.written) == list(range(50))
    assert source.committed == list(range(50))


class Q(TypedDict, total=False):
    question: str
    answer: str


def _qa_graph(saver=None, *, use_async=False):
    calls = []

    def answer(state: Q) -> dict:
        calls.append(state["question"])
        return {"answer": state["question"].upper()}

    async def aanswer(state: Q) -> dict:
        await asyncio.sleep(0)
        return answer(state)

    g = StateGraph(Q)
    g.add_node("answer", aanswer if use_async else answer)
    g.add_edge(START, "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=saver), calls


@pytest.mark.parametrize("use_async", [False, True])
def test_a_compiled_graph_is_a_processor(use_async):
    app, _ = _qa_graph(use_async=use_async)
    sink = LateSink()
    Pipeline([Source(["a", "b", "c"]),
              Step(graph_processor(app, input="question", output="answer"), name="qa"),
              sink]).run()
    assert sorted(sink.written) == ["A", "B", "C"]


def test_a_redelivered_record_reuses_its_graph_run():
    app, calls = _qa_graph(MemoryCheckpointer())
    proc = graph_processor(app, input="question", output="answer",
                           thread=lambda r: f"rec-{r.key()}")
    rec = Record("x", key="1")
    first = asyncio.run(proc.process([rec]))
    again = asyncio.run(proc.process([rec]))  # delivered again after a crash
    assert first[0][1][0].value() == again[0][1][0].value() == "X"
    assert calls == ["x"]


def test_a_pipeline_file_runs_with_the_cli(tmp_path):
    out = tmp_path / "out.jsonl"
    (tmp_path / "pipeline.yaml").write_text(f"""
name: demo
pipeline:
  - name: numbers
    type: source
    className: stream_agents.Numbers
    output: numbers
    configuration: {{count: 30}}
  - name: double
    type: python-processor
    configuration: {{className: stream_agents.Double}}
    concurrency: 2
  - name: store
    type: sink
    className: stream_agents.JsonLines
    configuration: {{path: "{out}"}}
""")
    proc = subprocess.run([sys.executable, "-m", "graphflow.cli", "pipeline", "run",
                           str(tmp_path / "pipeline.yaml")], cwd=SUPPORT,
                          env={**os.environ, "PYTHONPATH": str(SUPPORT)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert stats["read"] == 60  # 30 from the source, 30 through the topic
    assert sorted(json.loads(x) for x in out.read_text().split()) == [2 * n for n in range(30)]


def test_pipeline_file_errors_name_the_step(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline:\n  - name: x\n    type: processor\n    className: nope.Nope\n")
    with pytest.raises(ImportError, match="step #1 'x'"):
        load_pipeline(bad)
    bad.write_text("pipeline:\n  - name: x\n    type: sink\n"
                   "    className: stream_agents.Double\n")
    with pytest.raises(ValueError, match="declared a sink but its agent is a processor"):
        load_pipeline(bad)


def test_a_pipeline_file_sets_batching(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("pipeline:\n"
                    "  - {name: n, type: source, className: stream_agents.Numbers, linger: 0.5,"
                    " batch-size: 20}\n"
                    "  - {name: d, type: processor, className: stream_agents.Double}\n")
    source, double = load_pipeline(path).steps
    assert (source.linger, source.batch_size) == (0.5, 20)
    assert (double.linger, double.batch_size) == (Step.linger, 1000)
    path.write_text("pipeline:\n"
                    "  - {name: n, type: source, className: stream_agents.Numbers, linger: -1}\n")
    with pytest.raises(ValueError, match="step 'n': linger must be >= 0"):
        load_pipeline(path)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if not redis_server.available():
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (CI=true: .ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with redis_server.redis_server(tmp_path_factory.mktemp("redis")) as url:
        yield url


def test_redis_topics_connect_steps(redis_url):
    topics = RedisTopics(redis_url, block=0.05)
    name = uuid.uuid4().hex
    source, sink = Source(range(50)), LateSink()
    stop = threading.Event()
    reader = Pipeline([Step(SingleRecordDouble(), name="double", input=f"{name}-in"), sink],
                      topics=RedisTopics(redis_url, block=0.05), name=name)
    done = threading.Thread(target=reader.run, kwargs={"stop": stop})
    done.start()
    try:
        Pipeline([source, Step(SingleRecordDouble(), name="first", output=f"{name}-in")],
                 topics=topics, name=name).run()
        wait_until(lambda: len(sink.written) >= 50 and reader.stats.get("committed") == 50,
                   "the second process's records")
    finally:
        stop.set()
        done.join(timeout=60)
    assert sorted(sink.written) == [4 * v for v in range(50)]
    assert source.committed == list(range(50))


def test_a_killed_consumer_loses_nothing(redis_url, tmp_path):
    import redis

    name = uuid.uuid4().hex
    (tmp_path / "p.yaml").write_text(f"""
name: {name}
streamingCluster: {{type: redis, configuration: {{url: "{redis_url}", claim-idle: 1}}}}
pipeline:
  - name: upper
    type: processor
    className: stream_agents.Upper
    input: {name}-in
    output: {name}-out
    batch-size: 5
""")
    client = redis.Redis.from_url(redis_url)
    words = [f"w{i}" for i in range(120)]
    asyncio.run(RedisTopics(redis_url).producer(f"{name}-in").write(
        [Record(w) for w in words]))
    cmd = [sys.executable, "-m", "graphflow.cli", "pipeline", "run", str(tmp_path / "p.yaml")]
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    first = subprocess.Popen(cmd, cwd=SUPPORT, env={**env, "SLOW_UPPER": "0.02"})
    try:
        wait_until(lambda: client.xlen(f"{name}-out") >= 10, "the first consumer's output")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert client.xlen(f"{name}-out") < len(words)  # killed midway, records pending
    second = subprocess.Popen(cmd, cwd=SUPPORT, env=env)

    def outputs() -> set:
        return {json.loads(f[b"r"])[0] for _, f in client.xrange(f"{name}-out")}

    try:
        wait_until(lambda: outputs() >= {w.upper() for w in words}, "every word, once at least")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    assert client.xpending(f"{name}-in", f"{name}.upper")["pending"] == 0


def test_records_cross_redis_intact(redis_url):
    from datetime import UTC, datetime

    topics = RedisTopics(redis_url, block=0.05)
    name = uuid.uuid4().hex
    sent = [Record({"at": datetime(2024, 5, 1, tzinfo=UTC), "n": (1, 2)}, key="k1",
                   timestamp=1700000000000, headers=[("h", "x"), ("n", 2)]),
            Record("plain"), Record(3.5, key=7, timestamp=12),
            Record(None, timestamp=1.5), Record(b"\x00bytes", key=("a", 1))]

    async def roundtrip():
        await topics.producer(name).write(sent)
        consumer = topics.consumer(name, "g")
        got = await consumer.read(100)
        await consumer.commit(got)
        await topics.close()
        return got

    got = asyncio.run(roundtrip())
    assert [(r.value(), r.key(), r.headers(), r.origin()) for r in got] == [
        (r.value(), r.key(), r.headers(), name) for r in sent]
    stamps = [r.timestamp() for r in got]
    assert (stamps[0], stamps[2], stamps[3]) == (1700000000000, 12, 1.5)
    assert isinstance(got[1].timestamp(), int)  # stamped when written


def test_a_batch_costs_one_round_trip_each_way(redis_url):
    """Appending, reading and acknowledging a batch are one command each, whatever its size."""
    import redis

    client = redis.Redis.from_url(redis_url)
    topics = RedisTopics(redis_url, block=0.05)
    name = uuid.uuid4().hex

    async def run():
        consumer = topics.consumer(name, "g")
        await consumer.read(10)  # creates the group (and claims nothing)
        client.config_resetstat()
        await topics.producer(name).write([Record(i) for i in range(600)])
        got = await consumer.read(1000)
        await consumer.commit(got)
        await topics.close()
        return got

    got = asyncio.run(run())
    calls = {k.removeprefix("cmdstat_"): v["calls"]
             for k, v in client.info("commandstats").items()}
    assert [r.value() for r in got] == list(range(600))
    assert calls.get("xadd") == 600  # one entry per record ...
    assert calls.get("evalsha") == 1  # ... appended by one call
    assert calls.get("xreadgroup") == 1 and calls.get("xack") == 1
    assert client.xpending(name, "g")["pending"] == 0


def test_an_entry_that_is_not_a_record_is_named(redis_url):
    import redis

    name = uuid.uuid4().hex
    redis.Redis.from_url(redis_url).xadd(name, {"other": "x"})
    topics = RedisTopics(redis_url, block=0.05)

    async def read():
        try:
            return await topics.consumer(name, "g").read(10)
        finally:
            await topics.close()

    with pytest.raises(ValueError, match=rf"topic '{name}': entry .* has no 'r' field"):
        asyncio.run(read())
