"""Topics between pipeline steps: in memory (the embedded default) or on Redis Streams.

Both have the semantics of Redis consumer groups: every group reads every record of a topic; in
a group each record goes to one consumer and stays *pending* until that consumer acknowledges it
(commits); a record pending with a consumer that went quiet for ``claim_idle`` seconds (it died)
is claimed by another consumer of the group and delivered again (``XAUTOCLAIM``). So stages run
in separate processes, scale by adding consumers, and a killed consumer loses nothing: its
records are processed again (at-least-once).

Values, keys and headers cross Redis as graphflow's JSON (``checkpoint.serde``: tagged types,
an allow-list, never pickle), one stream entry per record.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import os
import socket
import threading
import time
from collections import deque
from itertools import repeat
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

    Each step costs one round trip per batch, whatever its size: a batch is appended by one
    call of a small server-side script (an ``XADD`` per record, one reply), read by one
    ``XREADGROUP`` (``COUNT`` the batch size, blocking up to ``block``), and acknowledged by
    one ``XACK`` per commit. Records are one stream entry each (field ``r``).

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
        self._clients: dict[int, tuple[Any, Any]] = {}

    def _client(self) -> Any:
        return self._connection()[0]

    def _connection(self) -> tuple[Any, Any]:
        """This event loop's client, and the append script registered with it."""
        import redis.asyncio as redis

        loop = asyncio.get_running_loop()
        found = self._clients.get(id(loop))
        if found is None:
            client = redis.Redis.from_url(self.url)
            # stream replies as they come (lists of [id, fields]): read in one pass here,
            # instead of a dict built per entry
            client.set_response_callback("XREADGROUP", _raw)
            client.set_response_callback("XAUTOCLAIM", _raw)
            found = self._clients[id(loop)] = (client, client.register_script(_APPEND))
        return found

    def producer(self, topic: str) -> _RedisProducer:
        return _RedisProducer(self, topic)

    def consumer(self, topic: str, group: str, name: str | None = None) -> _RedisConsumer:
        return _RedisConsumer(self, topic, group, name or _consumer_name())

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        for client, _ in clients.values():
            await client.aclose()


# XADD of every argument, one entry each, in one call (one reply, not one per record)
_APPEND = """
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[i])
end
return #ARGV
"""
_APPEND_MOST = 1000  # records per call: the server runs nothing else meanwhile


def _raw(response: Any, **options: Any) -> Any:
    return response


def _encode(records: list[Record]) -> list[bytes]:
    """Each record as graphflow's JSON of ``[value, key, headers, timestamp]``, written a column
    at a time (one walk over all the values, one over the keys and headers if any)."""
    from ..checkpoint.serde import dumps_each

    n = len(records)
    values = dumps_each([r._value for r in records])
    keys = [r._key for r in records]
    keys = dumps_each(keys) if keys.count(None) != n else [b"null"] * n
    headers = [r._headers for r in records]
    headers = (dumps_each([[list(h) for h in hs] for hs in headers]) if any(headers)
               else [b"[]"] * n)  # pairs as JSON arrays (a tuple would be tagged)
    now = int(time.time() * 1000)
    stamps = [r._timestamp for r in records]
    if stamps.count(None):
        stamps = [now if t is None else t for t in stamps]
    if _INT.issuperset(map(type, stamps)) and min(stamps) > -_LONG and max(stamps) < _LONG:
        return list(map(_ROW.__mod__, zip(values, keys, headers, stamps, strict=True)))
    return list(map(_ROW_ANY.__mod__, zip(values, keys, headers, dumps_each(stamps),
                                          strict=True)))


_ROW = b"[%b,%b,%b,%d]"
_ROW_ANY = b"[%b,%b,%b,%b]"
_INT = frozenset({int})
_LONG = 1 << 63


def _entries(reply: Any) -> list[Any]:
    """The ``[id, fields]`` entries of a one-stream XREADGROUP reply (RESP2 or RESP3)."""
    if not reply:
        return []
    streams = reply.values() if isinstance(reply, dict) else (s[1] for s in reply)
    return [e for entries in streams for e in entries]


def _decode(topic: str, entries: list[Any]) -> list[Record]:
    """Records from stream entries; an entry deleted meanwhile (no fields) is left out."""
    from ..checkpoint.serde import loads_each

    entries = list(filter(_second, entries))
    if not entries:
        return []
    ids = list(map(_first, entries))
    fields = list(map(_second, entries))
    if (_LIST.issuperset(map(type, fields)) and all(map(_is_two, map(len, fields)))
            and all(map(_FIELD.__eq__, map(_first, fields)))):
        raws = list(map(_second, fields))  # the usual shape: [b"r", record]
    else:
        raws = [_field(topic, i, f) for i, f in entries]
    rows = loads_each(raws)
    if not (_LIST.issuperset(map(type, rows)) and all(map(_is_four, map(len, rows)))):
        for i, row in zip(ids, rows, strict=True):
            if not (type(row) is list and len(row) == 4):
                raise ValueError(f"topic {topic!r}: entry {i!r} is not a graphflow record "
                                 f"[value, key, headers, timestamp]")
    values, keys, headers, stamps = zip(*rows, strict=True)
    if any(headers):
        headers = tuple(_headers(topic, i, h) for i, h in zip(ids, headers, strict=True))
    out = list(map(Record, values, keys, repeat(topic), stamps, headers))
    deque(map(setattr, out, repeat("offset"), ids), maxlen=0)  # where each was read
    return out


def _field(topic: str, entry_id: Any, fields: Any) -> bytes:
    found = dict(fields.items() if isinstance(fields, dict) else
                 zip(fields[::2], fields[1::2], strict=True)).get(_FIELD)
    if found is None:
        raise ValueError(f"topic {topic!r}: entry {entry_id!r} is not a graphflow record "
                         f"(it has no 'r' field)")
    return found  # type: ignore[no-any-return]


def _headers(topic: str, entry_id: Any, headers: Any) -> list[tuple[str, Any]]:
    if type(headers) is list and all(type(h) in (list, tuple) and len(h) == 2 for h in headers):
        return [tuple(h) for h in headers]  # type: ignore[misc]
    raise ValueError(f"topic {topic!r}: entry {entry_id!r} has malformed headers "
                     f"{headers!r:.60} (a list of [name, value] pairs)")


_FIELD = b"r"
_LIST = frozenset({list})
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_is_two = (2).__eq__
_is_four = (4).__eq__


class _RedisProducer:
    def __init__(self, topics: RedisTopics, topic: str) -> None:
        self.topics, self.topic = topics, topic

    async def write(self, records: list[Record]) -> None:
        append = self.topics._connection()[1]
        payloads = _encode(records)
        for i in range(0, len(payloads), _APPEND_MOST):
            await append(keys=[self.topic], args=payloads[i:i + _APPEND_MOST])


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
        now = time.monotonic()
        if now >= self._claim_at:  # records a dead consumer held: ours now
            self._claim_at = now + max(self.topics.claim_idle / 4, 0.05)
            cursor, claimed, *_ = await client.xautoclaim(
                self.topic, self.group, self.name, int(self.topics.claim_idle * 1000),
                self._cursor, count=count)
            self._cursor = cursor
            out = _decode(self.topic, claimed)
            if out:
                return out
        got = await client.xreadgroup(self.group, self.name, {self.topic: ">"}, count=count,
                                      block=int(self.topics.block * 1000))
        return _decode(self.topic, _entries(got))

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
