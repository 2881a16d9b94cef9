"""Instrumentation of a graph and its checkpointer in the crash-test child process.

Counts the events a run goes through, and SIGKILLs the process at the chosen one:
``node`` (a node function was entered), ``journal`` (a ``ctx.step`` result was stored: the
middle of a node), ``writes`` (a task's writes were stored), ``checkpoint`` (a step boundary
was stored). A task counts as finished once its writes are stored (before that, a crash may
legitimately run it again); every finish is recorded with its task id in a side table.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import threading
from typing import Any

from ..checkpoint.base import Checkpointer

KINDS = ("node", "journal", "writes", "checkpoint")


class Tally:
    """Counts events; kills the process when the chosen one happens."""

    def __init__(self, kill_kind: str | None, kill_at: int, side_db: str) -> None:
        self.kill_kind = kill_kind
        self.kill_at = kill_at
        self.counts = dict.fromkeys(KINDS, 0)
        self.lock = threading.Lock()
        self.side = sqlite3.connect(side_db, check_same_thread=False, isolation_level=None)
        self.side.execute("CREATE TABLE IF NOT EXISTS done (task TEXT, node TEXT)")

    def hit(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1
            n = self.counts[kind]
        if kind == self.kill_kind and n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def completed(self, task: str, node: str) -> None:
        with self.lock:
            self.side.execute("INSERT INTO done VALUES (?, ?)", (task, node))


def wrap_checkpointer(saver: Checkpointer, tally: Tally) -> None:
    """Make the store report ``writes``, ``journal`` and ``checkpoint`` events after storing."""
    for method, kind in (("put_writes", "writes"), ("put_journal", "journal"),
                         ("put", "checkpoint")):
        original = getattr(saver, method)

        def stored(*args: Any, _original: Any = original, _kind: str = kind, **kw: Any) -> Any:
            result = _original(*args, **kw)
            # a checkpoint may carry the outcome of its step's lone task: stored with it
            write = args[-1] if _kind == "writes" else kw.get("pending")
            if write is not None:
                if not any(key == "__interrupt__" for key, _ in write.writes):
                    tally.completed(write.task_id, write.node)
                if _kind != "writes":
                    tally.hit("writes")
            tally.hit(_kind)
            return result

        setattr(saver, method, stored)


def wrap_nodes(graph: Any, tally: Tally) -> None:
    """Make every node (subgraphs' too) report ``node`` when it is entered."""
    for spec in graph._program.specs.values():
        if spec.subgraph is not None:
            wrap_nodes(spec.subgraph, tally)
            continue
        fn = spec.fn
        if spec.is_async:
            @functools.wraps(fn)
            async def node(*args: Any, _fn: Any = fn) -> Any:
                tally.hit("node")
                return await _fn(*args)
        else:
            @functools.wraps(fn)
            def node(*args: Any, _fn: Any = fn) -> Any:
                tally.hit("node")
                return _fn(*args)
        spec.fn = node
