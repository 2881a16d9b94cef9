"""Instrumentation of a graph and its checkpointer in the crash-test child process.

Counts the events a run goes through, and SIGKILLs the process at the chosen one:
``node`` (a node function was entered), ``effect`` (a ``ctx.step`` function returned and its
result is about to be stored: the window where a crash repeats the effect), ``journal`` (a
``ctx.step`` result was stored: the middle of a node), ``writes`` (a task's writes were stored),
``checkpoint`` (a step boundary was stored).

A task counts as finished once its outcome is durable: its writes stored (a task of a parallel
step), or the checkpoint that ends its step stored (a step's lone task, whose outcome that
checkpoint records). Before that, a crash may legitimately run it again. Every finish is
recorded with its namespace and task id in a side table, and so is every call of a journaled
function (an effect), keyed by its journal slot.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3
import threading
from typing import Any

from ..checkpoint.base import Checkpointer
from ..engine.interrupts import current

KINDS = ("node", "effect", "journal", "writes", "checkpoint")


class Tally:
    """Counts events; kills the process when the chosen one happens."""

    def __init__(self, kill_kind: str | None, kill_at: int, side_db: str) -> None:
        self.kill_kind = kill_kind
        self.kill_at = kill_at
        self.counts = dict.fromkeys(KINDS, 0)
        self.lock = threading.Lock()
        self.returned: dict[tuple[str, str], str] = {}  # (ns, task id) -> node, not yet durable
        self.side = sqlite3.connect(side_db, check_same_thread=False, isolation_level=None)
        self.side.execute("CREATE TABLE IF NOT EXISTS done (ns TEXT, task TEXT, node TEXT)")
        self.side.execute(
            "CREATE TABLE IF NOT EXISTS effects (ns TEXT, task TEXT, idx INTEGER)")

    def hit(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1
            n = self.counts[kind]
        if kind == self.kill_kind and n == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def completed(self, ns: str, task: str, node: str) -> None:
        with self.lock:
            self.returned.pop((ns, task), None)
            self.side.execute("INSERT INTO done VALUES (?, ?, ?)", (ns, task, node))

    def node_returned(self, ns: str, task: str, node: str) -> None:
        with self.lock:
            self.returned[(ns, task)] = node

    def step_stored(self, ns: str) -> None:
        """A checkpoint of ``ns`` was stored: the lone task that returned there is durable."""
        with self.lock:
            done = [(key, node) for key, node in self.returned.items() if key[0] == ns]
        for (task_ns, task), node in done:
            self.completed(task_ns, task, node)

    def effect(self, ns: str, task: str, index: int) -> None:
        with self.lock:
            self.side.execute("INSERT INTO effects VALUES (?, ?, ?)", (ns, task, index))


def wrap_checkpointer(saver: Checkpointer, tally: Tally) -> None:
    """Make the store report ``effect`` (before storing a journaled result), ``journal``,
    ``writes`` and ``checkpoint`` events (after storing)."""
    put_writes, put_journal, put = saver.put_writes, saver.put_journal, saver.put

    def stored_writes(thread: str, checkpoint_id: str, write: Any, *, ns: str = "") -> None:
        put_writes(thread, checkpoint_id, write, ns=ns)
        if not any(key in ("__interrupt__", "__error__") for key, _ in write.writes):
            tally.completed(ns, write.task_id, write.node)
        tally.hit("writes")

    def stored_journal(thread: str, task_id: str, index: int, value: Any, *,
                       ns: str = "") -> None:
        effect = not task_id.endswith("#resume")  # a resume answer is not an effect
        if effect:
            tally.effect(ns, task_id, index)
            tally.hit("effect")
        put_journal(thread, task_id, index, value, ns=ns)
        tally.hit("journal")

    def stored(checkpoint: Any, **kw: Any) -> None:
        put(checkpoint, **kw)
        tally.step_stored(checkpoint.ns)
        tally.hit("checkpoint")

    saver.put_writes = stored_writes  # type: ignore[method-assign]
    saver.put_journal = stored_journal  # type: ignore[method-assign]
    saver.put = stored  # type: ignore[method-assign]


def _returned(tally: Tally) -> None:
    run, task = current()
    tally.node_returned(run.ns, run.id_of(task), task.name)


def wrap_nodes(graph: Any, tally: Tally) -> None:
    """Make every node (subgraphs' too) report ``node`` when it is entered."""
    for spec in graph._program.specs.values():
        if spec.subgraph is not None:
            wrap_nodes(spec.subgraph, tally)
            continue
        fn = spec.fn
        if spec.is_async:
            @functools.wraps(fn)
            async def node(*args: Any, _fn: Any = fn, **kw: Any) -> Any:
                tally.hit("node")
                out = await _fn(*args, **kw)
                _returned(tally)
                return out
        else:
            @functools.wraps(fn)
            def node(*args: Any, _fn: Any = fn, **kw: Any) -> Any:
                tally.hit("node")
                out = _fn(*args, **kw)
                _returned(tally)
                return out
        spec.fn = node
