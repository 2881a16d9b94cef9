"""Durable timers, signals and entities around compiled graphs.

- ``ctx.sleep(seconds)`` / ``ctx.sleep_until(when)`` / ``ctx.wait_for_signal(name)`` inside a
  node pause the run durably; ``app.signal(thread, name, payload)`` sends a signal;
  :class:`Worker` (``graphflow worker``) wakes the threads when their time or signal comes.
- :func:`entity` classes hold keyed state with methods, one writer at a time per key, stored by
  the checkpointer (SQLite, PostgreSQL, or in memory).

See ``docs/jobs.md``.
"""

from .entities import Entities, EntityRef, entity, query
from .worker import Woken, Worker

__all__ = ["Entities", "EntityRef", "Woken", "Worker", "entity", "query"]
