"""Records: what sources read, processors transform and sinks write.

:class:`Record` has LangStream's accessor methods (``value()``, ``key()``, ``origin()``,
``timestamp()``, ``headers()``) and its constructor order (``SimpleRecord(value, key=None,
origin=None, timestamp=None, headers=None)``), so agents written for it run unchanged. Agents may
also return plain values, tuples/lists (value, key, headers, origin, timestamp), dicts with those
keys, or any object with the accessor methods: :func:`to_record` reads them all.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Record", "SimpleRecord", "to_record"]


class Record:
    """A record: a value, an optional key, where it came from, when, and headers."""

    __slots__ = ("_headers", "_key", "_origin", "_timestamp", "_value", "offset")

    def __init__(self, value: Any, key: Any = None, origin: str | None = None,
                 timestamp: int | None = None,
                 headers: Sequence[tuple[str, Any]] | None = None) -> None:
        self._value = value
        self._key = key
        self._origin = origin
        self._timestamp = timestamp
        self._headers = list(headers) if headers else []
        self.offset: Any = None  # where a topic consumer read it (what it acknowledges)

    def value(self) -> Any:
        return self._value

    def key(self) -> Any:
        return self._key

    def origin(self) -> str | None:
        return self._origin

    def timestamp(self) -> int | None:
        """Milliseconds since the epoch."""
        return self._timestamp

    def headers(self) -> list[tuple[str, Any]]:
        return self._headers

    def header(self, name: str, default: Any = None) -> Any:
        """The last header called ``name`` (``default`` if none)."""
        for k, v in reversed(self._headers):
            if k == name:
                return v
        return default

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Record) and (
            self._value, self._key, self._origin, self._timestamp, self._headers) == (
            other._value, other._key, other._origin, other._timestamp, other._headers)

    __hash__ = object.__hash__  # records are tracked by identity

    def __repr__(self) -> str:
        return (f"Record(value={self._value!r}, key={self._key!r}, origin={self._origin!r}, "
                f"timestamp={self._timestamp!r}, headers={self._headers!r})")


#: LangStream's name for it.
SimpleRecord = Record


def to_record(item: Any, where: str = "") -> Record:
    """``item`` as a :class:`Record` (see the module docstring for what is read)."""
    if isinstance(item, Record):
        return item
    if isinstance(item, (tuple, list)):
        if not 1 <= len(item) <= 5:
            raise ValueError(f"{where}: a record as a tuple is (value, key, headers, origin, "
                             f"timestamp), got {len(item)} items")
        value, key, headers, origin, ts = (*item, None, None, None, None)[:5]
        return Record(value, key, origin, ts, headers)
    if isinstance(item, Mapping) and "value" in item and set(item) <= {
            "value", "key", "headers", "origin", "timestamp"}:
        return Record(item["value"], item.get("key"), item.get("origin"),
                      item.get("timestamp"), item.get("headers"))
    if all(callable(getattr(item, m, None)) for m in ("value", "key", "headers")):
        return Record(item.value(), item.key(), _call(item, "origin"), _call(item, "timestamp"),
                      item.headers())
    return Record(item, timestamp=int(time.time() * 1000))


def _call(item: Any, name: str) -> Any:
    fn = getattr(item, name, None)
    return fn() if callable(fn) else None
