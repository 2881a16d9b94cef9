"""Entities: keyed state with methods, one writer at a time per key, kept by the checkpointer.

::

    @entity
    class Account:
        balance: int = 0

        def deposit(self, amount: int) -> int:
            self.balance += amount
            return self.balance

        @query
        def get_balance(self) -> int:
            return self.balance

    accounts = Entities(SqliteCheckpointer("runs.db"))
    accounts(Account, "alice").deposit(50)       # serialized per key, across processes
    accounts(Account, "alice").get_balance()     # concurrent, reads the committed state

A method call on a key is one transaction: take the key's lease (the one-writer mechanism of
:mod:`graphflow.checkpoint.lease`, on a key space of its own: a dead holder is taken over, a live
one waited for), load the state, run the method, store the new state with the method's result
(fenced: only while the lease holds). A method that raises stores nothing. ``@query`` methods
run on the committed state without a lease, concurrently; what they change is dropped.

Inside a node or a tool, ``ctx.entity(Account, "alice")`` gives the same object bound to the
run: each call is journaled (a node that runs again replays it) and a write carries the call's
``ctx.idempotency_key()``, stored with its result, so a call repeated after a crash is applied
once — exactly-once, not at-least-once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..checkpoint.durable import MISSING
from ..checkpoint.lease import Lease
from ..errors import GraphflowError

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer
    from ..engine.context import RunContext

__all__ = ["Entities", "EntityRef", "entity", "query"]

T = TypeVar("T")
_KIND = "__graphflow_entity__"
_QUERY = "__graphflow_query__"


def entity(cls: type[T] | None = None, *, name: str | None = None) -> Any:
    """Make ``cls`` an entity type: its fields are the state of each key, its methods the
    operations (``@query`` marks read-only ones). A class that is neither a dataclass nor a
    pydantic model becomes a dataclass; every field needs a default (a new key starts from
    ``cls()``). ``name`` is the stable kind stored with the state (default: the class's
    qualified name) — keep it when renaming the class."""
    def make(c: type[T]) -> type[T]:
        if not isinstance(c, type):
            raise TypeError(f"@entity decorates a class, not {c!r}")
        if not (dataclasses.is_dataclass(c) or hasattr(c, "model_validate")):
            c = dataclasses.dataclass(c)
        try:
            c()
        except TypeError as exc:
            raise TypeError(f"entity {c.__qualname__}: every field needs a default, so a new "
                            f"key can start from {c.__qualname__}() ({exc})") from exc
        setattr(c, _KIND, name or c.__qualname__)
        return c

    return make if cls is None else make(cls)


def query(fn: Callable[..., T]) -> Callable[..., T]:
    """Mark an entity method read-only: it runs on the committed state, concurrently with
    other calls, without the key's lease; changes it makes are not stored."""
    setattr(fn, _QUERY, True)
    return fn


def _kind(cls: type) -> str:
    kind = getattr(cls, _KIND, None)
    if kind is None:
        raise TypeError(f"{cls!r} is not an entity type: decorate it with @entity")
    return kind


def _state_of(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _load(cls: type, kind: str, key: str, stored: dict[str, Any] | None) -> Any:
    if stored is None:
        return cls()
    if hasattr(cls, "model_validate"):
        return cls.model_validate(stored)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(stored) - names)
    if unknown:
        raise GraphflowError(f"entity {kind}[{key!r}] holds field(s) {unknown} that "
                             f"{cls.__qualname__} no longer declares; add them back so that no "
                             f"data is dropped silently")
    return cls(**stored)


_LOCKS: weakref.WeakValueDictionary[tuple[int, str, str], threading.Lock] = \
    weakref.WeakValueDictionary()
_LOCKS_GUARD = threading.Lock()


def _local_lock(saver: Checkpointer, kind: str, key: str) -> threading.Lock:
    """The lock that queues this process's writers of one key before they take its lease."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get((id(saver), kind, key))
        if lock is None:
            lock = threading.Lock()
            _LOCKS[(id(saver), kind, key)] = lock
        return lock


class Entities:
    """The entities kept by ``checkpointer``: ``entities(Account, "alice")`` is the account
    of key ``"alice"`` (an :class:`EntityRef`).

    Args:
        checkpointer: where states live (``MemoryCheckpointer``: this process only;
            ``SqliteCheckpointer``/``PostgresCheckpointer``: shared by every process using it).
        wait: how long a writer waits for a key another process writes (True: as long as it
            takes; seconds; False: ``ThreadBusyError`` at once).
    """

    def __init__(self, checkpointer: Checkpointer, *, wait: bool | float = True) -> None:
        self.saver = checkpointer
        self.wait = wait

    def __call__(self, cls: type, key: str) -> EntityRef:
        return EntityRef(self, cls, key)

    def get(self, cls: type[T], key: str) -> T:
        """A copy of the committed state of ``key`` (a new ``cls()`` if it was never written)."""
        kind = _kind(cls)
        found = self.saver.get_entity(kind, key)
        return _load(cls, kind, key, None if found is None else found[0])

    def version(self, cls: type, key: str) -> int:
        """How many writes ``key`` has had (0: never written)."""
        found = self.saver.get_entity(_kind(cls), key)
        return 0 if found is None else found[1]

    def delete(self, cls: type, key: str) -> None:
        """Forget the state of ``key`` (and the results of its operations)."""
        self.saver.delete_entity(_kind(cls), key)

    # -- calls -------------------------------------------------------------------------------

    def call(self, cls: type, key: str, method: str, args: tuple[Any, ...] = (),
             kwargs: dict[str, Any] | None = None, *, op_id: str | None = None) -> Any:
        """Call ``method`` on ``key``: a write (serialized per key) or a ``@query``. With
        ``op_id``, a write already applied under that id returns its stored result instead of
        running again."""
        kind, fn = self._method(cls, method)
        if getattr(fn, _QUERY, False):
            return fn(self.get(cls, key), *args, **(kwargs or {}))
        with self._writer(kind, key) as lease:
            done = self._done(kind, key, op_id)
            if done is not MISSING:
                return done
            obj = self._current(cls, kind, key)
            result = fn(obj, *args, **(kwargs or {}))
            self.saver.put_entity(kind, key, _state_of(obj), lease=lease, op_id=op_id,
                                  result=result)
            return result

    async def acall(self, cls: type, key: str, method: str, args: tuple[Any, ...] = (),
                    kwargs: dict[str, Any] | None = None, *, op_id: str | None = None) -> Any:
        """:meth:`call` for ``async def`` methods (and from async code); the store is used from
        a worker thread."""
        kind, fn = self._method(cls, method)
        if getattr(fn, _QUERY, False):
            obj = await asyncio.to_thread(self.get, cls, key)
            return await _maybe_await(fn(obj, *args, **(kwargs or {})))
        lock = _local_lock(self.saver, kind, key)
        await asyncio.to_thread(lock.acquire)
        try:
            lease = await asyncio.to_thread(self._lease(kind, key).hold, self.wait)
            try:
                done = await asyncio.to_thread(self._done, kind, key, op_id)
                if done is not MISSING:
                    return done
                obj = await asyncio.to_thread(self._current, cls, kind, key)
                result = await _maybe_await(fn(obj, *args, **(kwargs or {})))
                await asyncio.to_thread(self.saver.put_entity, kind, key, _state_of(obj),
                                        lease=lease, op_id=op_id, result=result)
                return result
            finally:
                await asyncio.to_thread(lease.release)
        finally:
            lock.release()

    def _method(self, cls: type, method: str) -> tuple[str, Callable[..., Any]]:
        kind = _kind(cls)
        fn = getattr(cls, method, None)
        if method.startswith("_") or not callable(fn):
            raise AttributeError(f"entity {kind} has no method {method!r}")
        return kind, fn

    def _lease(self, kind: str, key: str) -> Lease:
        leases: Any = self.saver.entity_leases()  # the lease interface on entity keys
        return Lease(leases, json.dumps([kind, key]), self.saver.lease_ttl)

    def _writer(self, kind: str, key: str) -> _Writer:
        return _Writer(self, kind, key)

    def _done(self, kind: str, key: str, op_id: str | None) -> Any:
        return MISSING if op_id is None else self.saver.get_entity_op(kind, key, op_id)

    def _current(self, cls: type, kind: str, key: str) -> Any:
        found = self.saver.get_entity(kind, key)
        return _load(cls, kind, key, None if found is None else found[0])


class _Writer:
    """Held while one write runs: this process's lock of the key, then its lease."""

    def __init__(self, entities: Entities, kind: str, key: str) -> None:
        self.entities, self.kind, self.key = entities, kind, key
        self.lock = _local_lock(entities.saver, kind, key)
        self.lease: Lease | None = None

    def __enter__(self) -> Lease:
        self.lock.acquire()
        try:
            self.lease = self.entities._lease(self.kind, self.key).hold(self.entities.wait)
        except BaseException:
            self.lock.release()
            raise
        return self.lease

    def __exit__(self, *exc: object) -> None:
        try:
            if self.lease is not None:
                self.lease.release()
        finally:
            self.lock.release()


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class EntityRef:
    """One key of an entity type: its methods, called through the store (and, when made by
    ``ctx.entity``, journaled in the run with the call's idempotency key)."""

    __slots__ = ("cls", "ctx", "entities", "key")

    def __init__(self, entities: Entities, cls: type, key: str,
                 ctx: RunContext | None = None) -> None:
        _kind(cls)
        if not isinstance(key, str) or not key:
            raise ValueError(f"an entity key is a non-empty str, got {key!r}")
        self.entities = entities
        self.cls = cls
        self.key = key
        self.ctx = ctx

    def __repr__(self) -> str:
        return f"EntityRef({_kind(self.cls)}, {self.key!r})"

    def get(self) -> Any:
        """A copy of the committed state."""
        return self.entities.get(self.cls, self.key)

    def __getattr__(self, method: str) -> Callable[..., Any]:
        kind, fn = self.entities._method(self.cls, method)
        is_async = inspect.iscoroutinefunction(fn)
        entities, cls, key, ctx = self.entities, self.cls, self.key, self.ctx
        writes = not getattr(fn, _QUERY, False)

        if ctx is None:
            call = entities.acall if is_async else entities.call
            return lambda *args, **kwargs: call(cls, key, method, args, kwargs)

        label = f"entity {kind}[{key}].{method}"

        def journaled(*args: Any, **kwargs: Any) -> Any:
            op_id = ctx.idempotency_key() if writes else None
            call = entities.acall if is_async else entities.call
            return ctx.step(label, call, cls, key, method, args, kwargs, op_id=op_id)

        return journaled


def bound(ctx: RunContext, saver: Checkpointer | None, cls: type, key: str) -> EntityRef:
    """``ctx.entity(cls, key)``: an :class:`EntityRef` journaled in the run."""
    if saver is None:
        raise GraphflowError(f"node {ctx.node!r}: ctx.entity() needs the run's checkpointer "
                             f"(compile(checkpointer=...) and a thread); outside a run use "
                             f"Entities(checkpointer)")
    return EntityRef(Entities(saver), cls, key, ctx)
