"""Applying a superstep's writes to the state: deterministic, checked, all-or-nothing."""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidUpdateError
from ..graph.schema import Channel, StateSchema
from ..graph.typecheck import article

__all__ = ["apply_writes", "items_of"]


def items_of(writes: Any) -> Iterable[tuple[str, Any]]:
    """A task's writes as ``(key, value)`` pairs (they are stored as a dict or a list of pairs)."""
    return writes.items() if type(writes) is dict else writes


def _bad_key(schema: StateSchema, node: str, key: Any) -> InvalidUpdateError:
    known = ", ".join(sorted(schema.keys))
    return InvalidUpdateError(
        f"node {node!r} wrote unknown key {key!r}; the state {schema.cls.__name__} has: {known}",
        node=node, key=key)


def _checked(ch: Channel, node: str, value: Any) -> Any:
    """``value`` once it failed ``ch.check``: coerced (pydantic schemas) or rejected."""
    if ch.coerce is not None:  # pydantic schemas coerce the way pydantic would
        try:
            return ch.coerce(value)
        except Exception as exc:
            raise InvalidUpdateError(
                f"node {node!r} wrote key {ch.name!r} = {value!r:.80}, expected {ch.expected}: "
                f"{exc}", node=node, key=ch.name) from None
    raise InvalidUpdateError(
        f"node {node!r} wrote key {ch.name!r} {article(type(value).__name__)} ({value!r:.80}), "
        f"expected {ch.expected}; graphflow checks the type of every write (LangGraph does "
        f"not): fix the value, or widen the key's annotation in the state schema (a union, or "
        f"Any to accept anything)", node=node, key=ch.name)


def apply_writes(
    schema: StateSchema,
    values: dict[str, Any],
    writes: Iterable[tuple[str, Any]],
    log: list[tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return a new state: ``values`` with ``writes`` applied in order.

    ``writes`` yields ``(node, task_writes)`` in merge order. A key without a reducer accepts one
    write per call; reducers fold every write. ``values`` itself is never modified, so an error
    leaves the previous state intact. ``log`` (if given) receives every applied ``(key, value)``.
    """
    new = values.copy()
    channels = schema.channels
    written: dict[str, str] = {}  # non-reducer key -> node that wrote it
    fresh: set[str] | None = None  # list values created by this merge: safe to extend in place
    for node, task_writes in writes:
        for key, value in task_writes.items() if type(task_writes) is dict else task_writes:
            ch = channels.get(key)
            if ch is None:
                raise _bad_key(schema, node, key)
            reducer = ch.reducer
            if reducer is None:
                first = written.get(key)
                if first is not None:
                    a, b = sorted((first, node))
                    raise InvalidUpdateError(
                        f"key {key!r} was written by {a!r} and {b!r} in the same step, but it "
                        f"has no reducer; give it one (Annotated[{ch.expected}, reducer]) or "
                        f"let one node write it", node=node, key=key)
                written[key] = node
                check = ch.check
                new[key] = value if check is None or check(value) else _checked(ch, node, value)
            else:
                if fresh and key in fresh and reducer is operator.add and type(value) is list:
                    new[key] += value  # same result as list + list, without the quadratic copy
                else:
                    try:
                        if key in new:
                            result = reducer(new[key], value)
                        elif ch.empty is not None:
                            result = reducer(ch.empty(), value)
                        else:
                            result = value
                    except Exception as exc:
                        raise InvalidUpdateError(
                            f"reducer {getattr(reducer, '__name__', reducer)!r} of key {key!r} "
                            f"failed on the update from node {node!r}: "
                            f"{type(exc).__name__}: {exc}", node=node, key=key) from exc
                    new[key] = result
                    if type(result) is list and result is not value:
                        if fresh is None:
                            fresh = set()
                        fresh.add(key)
            if log is not None:
                log.append((key, value))
    return new
