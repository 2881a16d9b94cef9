"""One writer per thread: leases on threads, decided atomically by the checkpointer's database.

A run that writes a thread (``invoke``/``stream`` with ``thread=``, ``update_state``,
``delete_thread``) first takes the thread's lease: a row saying who writes it and until when. A
second writer finds the row and fails at once with :class:`~graphflow.errors.ThreadBusyError`
(or waits, if asked). The lease is fenced: every checkpoint the holder stores is inserted only
if the row still names it, so a writer that lost its lease can never move the thread's head.

A lease lasts ``ttl`` seconds and a background thread of the holder's process renews it while
the run lives, so a long node keeps its thread. When the holder dies (``kill -9``, a lost
machine) nothing renews it: another writer takes the thread over once it has expired, or at
once when the holder was a process on the same machine that no longer exists.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ThreadBusyError

if TYPE_CHECKING:
    from .base import Checkpointer

__all__ = ["DEFAULT_LEASE_TTL", "Holder", "Lease", "Owner", "host_key", "keeper", "this_process"]

#: Seconds a lease lasts without renewal (the holder renews it every third of that).
DEFAULT_LEASE_TTL = 30.0


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None if it is
    gone, a zombie, or unknowable here."""
    stat = _read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    fields = stat[stat.rfind(")") + 2:].split()  # after "pid (comm) "
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # zombie or dead: it holds nothing
        return None
    return fields[19]


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a lease: a run's random token, and the process it runs in.

    ``host`` names the machine and its boot (hostname + boot id), so a process id is only ever
    compared with processes of the same machine and boot.
    """

    token: str
    host: str
    pid: int
    started: str


def _host_key() -> str:
    boot = (_read("/proc/sys/kernel/random/boot_id") or "").strip()
    return f"{socket.gethostname()}/{boot}" if boot else socket.gethostname()


_HOST: str | None = None


def host_key() -> str:
    """This machine and boot, as lease owners record it."""
    global _HOST
    if _HOST is None:
        _HOST = _host_key()
    return _HOST


def this_process(token: str | None = None) -> Owner:
    """An :class:`Owner` for a new lease taken by this process."""
    pid = os.getpid()
    return Owner(token or os.urandom(12).hex(), host_key(), pid, _start_time(pid) or "")


@dataclass(frozen=True, slots=True)
class Holder:
    """What a checkpointer reports about the current holder of a busy thread."""

    owner: Owner
    expires_in: float  # seconds until the lease expires if not renewed (may be negative)
    held_for: float  # seconds since it was taken

    def is_dead(self) -> bool:
        """True when the holder was a process of this machine (same boot) that is gone."""
        o = self.owner
        if not o.started or o.host != host_key():
            return False
        return _start_time(o.pid) != o.started

    def describe(self) -> str:
        where = f"process {self.owner.pid} on {self.owner.host.split('/')[0]}"
        return (f"another run ({where}) has written it for {self.held_for:.1f} s; its lease "
                f"expires in {max(self.expires_in, 0):.1f} s unless renewed")


class Lease:
    """A thread's lease held by one run (and the subgraph runs inside it).

    ``heads`` caches, per namespace, the id and storage bookkeeping of the newest checkpoint
    this holder stored: while the lease is held nobody else writes the thread, so the cache is
    the truth and a put needs no lookup of its parent.
    """

    __slots__ = ("__weakref__", "heads", "lost", "owner", "saver", "thread", "ttl")

    def __init__(self, saver: Checkpointer, thread: str, ttl: float,
                 owner: Owner | None = None) -> None:
        self.saver = saver
        self.thread = thread
        self.ttl = ttl
        self.owner = owner or this_process()
        self.heads: dict[str, tuple[str, Any]] = {}
        self.lost = False

    def try_acquire(self) -> Holder | None:
        """Take the lease if the thread is free (or its holder is dead); None on success, else
        the holder that keeps it."""
        holder = self.saver.acquire_lease(self.thread, self.owner, self.ttl)
        if holder is not None and holder.is_dead():
            holder = self.saver.acquire_lease(self.thread, self.owner, self.ttl,
                                              takeover=holder.owner)
        if holder is None:
            self.heads.clear()  # another writer may have stored checkpoints since
            keeper().add(self)
        return holder

    def acquire(self, wait: bool | float = False) -> Iterator[float]:
        """Take the lease, yielding the pauses to sleep while the thread is busy (a sync caller
        sleeps them with ``time.sleep``, an async one with ``asyncio.sleep``).

        ``wait``: False fails at once with :class:`ThreadBusyError`; True waits as long as it
        takes; a number of seconds waits that long at most.
        """
        limit = None if wait is True else float(wait or 0)
        started = time.monotonic()
        pause = 0.005
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            waited = time.monotonic() - started
            if limit is not None and waited >= limit:
                raise ThreadBusyError(self.thread, holder, waited=waited if wait else None)
            yield max(pause if limit is None else min(pause, limit - waited), 0.0)
            pause = min(pause * 2, 0.25)

    def hold(self, wait: bool | float = False) -> Lease:
        """:meth:`acquire`, sleeping in this thread while it waits; returns the lease."""
        for pause in self.acquire(wait):
            time.sleep(pause)
        return self

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give the thread back (idempotent)."""
        keeper().discard(self)
        self.heads.clear()
        self.saver.release_lease(self.thread, self.owner)

    def renew(self) -> None:
        if not self.saver.renew_lease(self.thread, self.owner, self.ttl):
            self.lost = True

    def __repr__(self) -> str:
        return f"Lease({self.thread!r}, pid={self.owner.pid}, token={self.owner.token[:8]})"


class _Keeper:
    """The one background thread of a process that renews its live leases."""

    def __init__(self) -> None:
        self._leases: weakref.WeakSet[Lease] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, lease: Lease) -> None:
        with self._lock:
            self._leases.add(lease)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="graphflow-leases",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def discard(self, lease: Lease) -> None:
        with self._lock:
            self._leases.discard(lease)

    def _loop(self) -> None:
        last: dict[int, float] = {}
        while True:
            with self._lock:
                leases = list(self._leases)
            if not leases:  # asleep until a lease is added
                self._wake.wait()
                self._wake.clear()
                continue
            now = time.monotonic()
            nap = min(lease.ttl for lease in leases) / 3
            for lease in leases:
                due = last.setdefault(id(lease), now) + lease.ttl / 3  # fresh: just acquired
                if now >= due and not lease.lost:
                    # a closed store or a lost connection: the fence decides what happens
                    with contextlib.suppress(Exception):
                        lease.renew()
                    last[id(lease)] = now
            live = {id(lease) for lease in leases}
            last = {k: v for k, v in last.items() if k in live}
            del leases
            self._wake.wait(max(nap, 0.05))
            self._wake.clear()


_KEEPER: _Keeper | None = None
_KEEPER_LOCK = threading.Lock()


def keeper() -> _Keeper:
    """The process's lease keeper (started on first use)."""
    global _KEEPER
    if _KEEPER is None:
        with _KEEPER_LOCK:
            if _KEEPER is None:
                _KEEPER = _Keeper()
    return _KEEPER
