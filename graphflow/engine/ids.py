"""Identity: task ids, journal keys, subgraph namespaces and idempotency keys, built so that no
user-chosen name can alias another.

Ids are joined from parts with separators (``:`` between a task's step, node and ``Send``
index, ``@`` before a branch, ``/`` between the levels of a namespace or a journal slot, ``#``
before a journal suffix), and every user-chosen part is escaped first: ``%``, ``:``, ``/``,
``@`` and ``#`` in a node name become ``%25``, ``%3A``, ``%2F``, ``%40`` and ``%23``. So a node
named ``work:1`` has the task id ``3:work%3A1``, never the id ``3:work:1`` of ``Send("work")``
number 1. Thread ids are not part of any of these ids: a checkpointer keys every record by
``(thread, namespace)``, so a thread named ``alice:1:sub`` is a thread like any other and can
never reach the subgraph state of thread ``alice``.

What cannot be represented is refused early, on every backend alike: thread ids that are empty
or blank, longer than :data:`MAX_THREAD_ID_LENGTH` characters, or hold a NUL character or a
lone surrogate (PostgreSQL text cannot store NUL; neither SQLite nor PostgreSQL stores text that
is not valid Unicode); node names with a NUL character (they are stored in task ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote

from ..errors import InvalidThreadIdError

__all__ = [
    "MAX_THREAD_ID_LENGTH", "check_checkpoint_id", "check_thread_id", "child_namespace",
    "child_tasks", "escape_name", "idempotency_key", "make_task_id", "parse_task_id",
]

#: The longest thread id, in characters (the same limit on every checkpointer).
MAX_THREAD_ID_LENGTH = 256

_ESCAPES = str.maketrans({"%": "%25", ":": "%3A", "/": "%2F", "@": "%40", "#": "%23"})
_SPECIAL = frozenset("%:/@#")


def escape_name(name: str) -> str:
    """``name`` with the id separators percent-escaped (unchanged when it has none)."""
    if _SPECIAL.isdisjoint(name):
        return name
    return name.translate(_ESCAPES)


def make_task_id(step: int, name_id: str, index: int, branch: str) -> str:
    """The id of a task: step, escaped node name, ``Send`` index (if any), branch (if any)."""
    base = f"{step}:{name_id}:{index}" if index >= 0 else f"{step}:{name_id}"
    return f"{base}@{branch}" if branch else base


def parse_task_id(task_id: str) -> tuple[int, str, int, str]:
    """``(step, node name, Send index or -1, branch)`` of a task id made by :func:`make_task_id`
    (ValueError for anything else)."""
    base, _, branch = task_id.partition("@")
    parts = base.split(":")
    if len(parts) not in (2, 3) or not parts[0].isdigit() or (
            len(parts) == 3 and not parts[2].isdigit()):
        raise ValueError(f"not a task id: {task_id!r}")
    return int(parts[0]), unquote(parts[1]), int(parts[2]) if len(parts) == 3 else -1, branch


def child_tasks(ns: str, namespaces: Iterable[str]) -> Iterator[tuple[str, str]]:
    """``(namespace, node name)`` of each direct child namespace of ``ns`` among
    ``namespaces`` (the subgraph runs made by the tasks of the run in ``ns``)."""
    prefix = f"{ns}/" if ns else ""
    for child in namespaces:
        if not child.startswith(prefix) or "/" in child[len(prefix):]:
            continue
        try:
            _, name, _, _ = parse_task_id(child[len(prefix):])
        except ValueError:
            continue
        yield child, name


def child_namespace(ns: str, task_id: str) -> str:
    """The namespace of a subgraph run by task ``task_id`` of a run in namespace ``ns``."""
    return f"{ns}/{task_id}" if ns else task_id


def idempotency_key(thread: str, ns: str, key: str, index: int) -> str:
    """A stable key for the ``index``-th journaled call under ``key``: the same every time that
    call is made again (retry, resume, crash recovery), different for any other call, thread,
    namespace or branch. Pass it to payment or e-mail APIs to make their effects exactly-once."""
    digest = hashlib.sha256("\x00".join((thread, ns, key, str(index))).encode())
    return "gf_" + digest.hexdigest()[:40]


def check_thread_id(thread: Any) -> str:
    """``thread`` if a checkpointer can store it; :class:`InvalidThreadIdError` saying why not."""
    if not isinstance(thread, str):
        raise InvalidThreadIdError(
            f"thread id must be a str, got {type(thread).__name__} {thread!r:.60}")
    if not thread or thread.isspace():
        raise InvalidThreadIdError(f"thread id {thread!r} is empty or blank; name the thread")
    if len(thread) > MAX_THREAD_ID_LENGTH:
        raise InvalidThreadIdError(
            f"thread id {thread[:40]!r}... is {len(thread)} characters long; the most is "
            f"{MAX_THREAD_ID_LENGTH} (hash a longer key into one)")
    if "\x00" in thread:
        raise InvalidThreadIdError(
            f"thread id {thread!r} holds a NUL character, which PostgreSQL cannot store; "
            f"graphflow refuses it on every checkpointer alike")
    try:
        thread.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidThreadIdError(
            f"thread id {thread!r} is not valid Unicode text (it holds a lone surrogate)"
        ) from None
    return thread


def check_checkpoint_id(checkpoint: Any) -> str:
    """A checkpoint id given by the caller: a non-empty str without NUL."""
    if not isinstance(checkpoint, str) or not checkpoint or "\x00" in checkpoint:
        raise InvalidThreadIdError(f"checkpoint id must be a non-empty str without NUL "
                                   f"characters, got {checkpoint!r:.80}")
    return checkpoint
