"""Topics between pipeline steps: in memory (the embedded default) or on Redis Streams.

Both have the semantics of Redis consumer groups: every group reads every record of a topic; in
a group each record goes to one consumer and stays *pending* until that consumer acknowledges it
(commits); a record pending with a consumer that went quiet for ``claim_idle`` seconds (it died)
is claimed by another consumer of the group and delivered again (``XAUTOCLAIM``). So stages run
in separate processes, scale by adding consumers, and a killed consumer loses nothing: its
records are processed again (at-least-once).

Values, keys and headers cross Redis as graphflow's JSON (``checkpoint.serde``: tagged types,
an allow-list, never pickle).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from typing import Any

from .record import Record

__all__ = ["MemoryTopics", "RedisTopics", "TopicSink", "TopicSource"]


class _Group:
    def __init__(self) -> None:
        self.next = 0
        self.pending: dict[int, tuple[str, float]] = {}  # index -> (consumer, delivered at)


class _MemoryTopic:
    def __init__(self) -> None:
        self.records: list[Record] = []
        self.groups: dict[str, _Group] = {}


class MemoryTopics:
    """Topics held by this object (one process); share one between pipelines to connect them."""

    def __init__(self, *, claim_idle: float = 30.0) -> None:
        self._topics: dict[str, _MemoryTopic] = {}
        self._lock = threading.Lock()
        self.claim_idle = claim_idle

    def _topic(self, name: str) -> _MemoryTopic:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics.setdefault(name, _MemoryTopic())
        return topic

    def producer(self, topic: str) -> _MemoryProducer:
        return _MemoryProducer(self, topic)

    def consumer(self, topic: str, group: str, name: str | None = None) -> _MemoryConsumer:
        return _MemoryConsumer(self, topic, group, name or _consumer_name())

    def records(self, topic: str) -> list[Record]:
        """Every record written to ``topic`` so far."""
        with self._lock:
            return list(self._topic(topic).records)

    def pending(self, topic: str, group: str) -> int:
        """How many records of ``topic`` are delivered to ``group`` and not acknowledged."""
        with self._lock:
            g = self._topic(topic).groups.get(group)
            return 0 if g is None else len(g.pending)

    async def close(self) -> None:
        pass


class _MemoryProducer:
    def __init__(self, topics: MemoryTopics, topic: str) -> None:
        self.topics, self.topic = topics, topic

    async def write(self, records: list[Record]) -> None:
        with self.topics._lock:
            self.topics._topic(self.topic).records.extend(
                Record(r.value(), r.key(), self.topic, r.timestamp(), r.headers())
                for r in records)


class _MemoryConsumer:
    def __init__(self, topics: MemoryTopics, topic: str, group: str, name: str) -> None:
        self.topics, self.topic, self.group, self.name = topics, topic, group, name

    async def read(self, count: int) -> list[Record]:
        topics = self.topics
        now = time.monotonic()
        with topics._lock:
            t = topics._topic(self.topic)
            g = t.groups.setdefault(self.group, _Group())
            out: list[Record] = []
            for index, (who, at) in list(g.pending.items()):  # claim a quiet consumer's records
                if len(out) >= count:
                    break
                if who != self.name and now - at >= topics.claim_idle:
                    g.pending[index] = (self.name, now)
                    out.append(_delivered(t.records[index], index))
            while len(out) < count and g.next < len(t.records):
                g.pending[g.next] = (self.name, now)
                out.append(_delivered(t.records[g.next], g.next))
                g.next += 1
        return out

    async def commit(self, records: list[Record]) -> None:
        with self.topics._lock:
            g = self.topics._topic(self.topic).groups.get(self.group)
            if g is not None:
                for r in records:
                    g.pending.pop(r.offset, None)

    async def close(self) -> None:
        pass


def _delivered(r: Record, offset: Any) -> Record:
    out = Record(r.value(), r.key(), r.origin(), r.timestamp(), r.headers())
    out.offset = offset
    return out


_SEQ = itertools.count()


def _consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{next(_SEQ)}"


class RedisTopics:
    """Topics on Redis Streams (``pip install "graphflow[streams]"``): one stream per topic,
    one consumer group per reading step.

    Args:
        url: e.g. ``"redis://127.0.0.1:6379/0"``.
        claim_idle: seconds a record may stay pending with a silent consumer before another
            consumer claims it.
        block: seconds a read waits for new records.
    """

    def __init__(self, url: str, *, claim_idle: float = 30.0, block: float = 0.2) -> None:
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise ImportError(f"RedisTopics needs redis-py ({exc}); install it with: "
                              f'pip install "graphflow[streams]"') from exc
        self.url = url
        self.claim_idle = claim_idle
        self.block = block
        self._clients: dict[int, Any] = {}

    def _client(self) -> Any:
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        client = self._clients.get(id(loop))
        if client is None:
            client = self._clients[id(loop)] = redis.Redis.from_url(self.url)
        return client

    def producer(self, topic: str) -> _RedisProducer:
        return _RedisProducer(self, topic)

    def consumer(self, topic: str, group: str, name: str | None = None) -> _RedisConsumer:
        return _RedisConsumer(self, topic, group, name or _consumer_name())

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()


def _encode(r: Record) -> dict[str, str]:
    """One field per entry (fewer bulk strings to parse): ``[value, key, headers, ts]``."""
    from ..checkpoint.serde import dumps

    ts = r.timestamp() if r.timestamp() is not None else int(time.time() * 1000)
    return {"r": dumps([r.value(), r.key(), r.headers(), ts])}


def _decode(topic: str, entry_id: Any, fields: dict[Any, Any]) -> Record:
    from ..checkpoint.serde import loads

    raw = fields.get(b"r", fields.get("r"))
    value, key, headers, ts = loads(raw.decode() if isinstance(raw, bytes) else raw)
    r = Record(value, key, topic, ts, [tuple(h) for h in headers])
    r.offset = entry_id
    return r


class _RedisProducer:
    def __init__(self, topics: RedisTopics, topic: str) -> None:
        self.topics, self.topic = topics, topic

    async def write(self, records: list[Record]) -> None:
        pipe = self.topics._client().pipeline(transaction=False)
        for r in records:
            pipe.xadd(self.topic, _encode(r))
        await pipe.execute()


class _RedisConsumer:
    def __init__(self, topics: RedisTopics, topic: str, group: str, name: str) -> None:
        self.topics, self.topic, self.group, self.name = topics, topic, group, name
        self._ready = False
        self._claim_at = 0.0
        self._cursor: Any = "0-0"

    async def _setup(self, client: Any) -> None:
        import redis

        try:
            await client.xgroup_create(self.topic, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._ready = True

    async def read(self, count: int) -> list[Record]:
        client = self.topics._client()
        if not self._ready:
            await self._setup(client)
        out: list[Record] = []
        now = time.monotonic()
        if now >= self._claim_at:  # records a dead consumer held: ours now
            self._claim_at = now + max(self.topics.claim_idle / 4, 0.05)
            cursor, claimed, *_ = await client.xautoclaim(
                self.topic, self.group, self.name, int(self.topics.claim_idle * 1000),
                self._cursor, count=count)
            self._cursor = cursor
            out.extend(_decode(self.topic, i, f) for i, f in claimed if f)
            if out:
                return out
        got = await client.xreadgroup(self.group, self.name, {self.topic: ">"}, count=count,
                                      block=int(self.topics.block * 1000))
        for _, entries in got or ():
            out.extend(_decode(self.topic, i, f) for i, f in entries)
        return out

    async def commit(self, records: list[Record]) -> None:
        if records:
            await self.topics._client().xack(self.topic, self.group,
                                             *[r.offset for r in records])

    async def close(self) -> None:
        pass


class TopicSource:
    """A pipeline source reading a topic as one consumer of ``group``; commits acknowledge."""

    def __init__(self, topics: Any, topic: str, group: str, *, batch: int = 500,
                 name: str | None = None) -> None:
        self.consumer = topics.consumer(topic, group, name)
        self.batch = batch
        self.topic = topic

    async def read(self) -> list[Record]:
        return await self.consumer.read(self.batch)

    async def commit(self, records: list[Record]) -> None:
        await self.consumer.commit(records)


class TopicSink:
    """A pipeline sink appending to a topic; a write is committed once the topic has it."""

    def __init__(self, topics: Any, topic: str) -> None:
        self.producer = topics.producer(topic)
        self.topic = topic

    async def write(self, records: list[Record]) -> None:
        await self.producer.write(records)
