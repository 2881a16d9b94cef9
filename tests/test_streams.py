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
