"""Errors of :mod:`graphflow.distributed`, and how errors travel between Ray workers and the
driver: as JSON (type name, message, plain attributes, traceback text), never pickled.

::

    GraphflowError
     ├─ ClusterUnavailableError(GraphflowError, ConnectionError)  no Ray cluster to reach, or lost
     ├─ WorkerLostError(GraphflowError)          a task's or run's Ray worker died, retries spent
     ├─ ExecutorBusyError(GraphflowError, TimeoutError)  no room for another run in time
     ├─ RunStoppedError(GraphflowError)          a run stopped by shutdown(); resumable
     └─ RemoteError(GraphflowError)              an exception raised on a worker, by type name
"""

from __future__ import annotations

import traceback
from typing import Any

from ..errors import (
    GraphflowError,
    GraphRecursionError,
    GraphValidationError,
    InvalidThreadIdError,
    InvalidUpdateError,
    NodeError,
    NodeTimeoutError,
    ThreadBusyError,
    TokenBudgetExceeded,
)

__all__ = [
    "ClusterUnavailableError",
    "ExecutorBusyError",
    "RemoteError",
    "RunStoppedError",
    "WorkerLostError",
    "decode_error",
    "encode_error",
]


class ClusterUnavailableError(GraphflowError, ConnectionError):
    """The Ray cluster cannot be reached (at start, or it went away while work was running).

    Work already finished is kept (checkpoints, pending writes, journal): once the cluster is
    back, resume the thread (``invoke(None, thread=...)`` or ``submit(app, None, thread=...)``).
    """


class WorkerLostError(GraphflowError):
    """A Ray worker died while running a task or a run, and Ray's retries were spent.

    Attributes:
        what: the node (for a task) or the thread (for a run) concerned.
    """

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class ExecutorBusyError(GraphflowError, TimeoutError):
    """``submit`` found the bound on in-flight runs reached and no slot freed in time."""


class RunStoppedError(GraphflowError):
    """A submitted run was stopped by ``shutdown()`` before it finished. Everything it had
    finished is stored; resume it with ``submit(app, None, thread=...)`` (or ``invoke``).

    Attributes:
        thread: the thread of the run.
    """

    def __init__(self, message: str, *, thread: str = "") -> None:
        super().__init__(message)
        self.thread = thread


class RemoteError(GraphflowError):
    """An exception raised on a Ray worker, carried back by name (never unpickled).

    Attributes:
        remote_type: ``module.QualName`` of the original exception.
        remote_traceback: its traceback as text, as printed on the worker.
    """

    def __init__(self, message: str, *, remote_type: str = "", remote_traceback: str = "") -> None:
        super().__init__(message)
        self.remote_type = remote_type
        self.remote_traceback = remote_traceback


def _known() -> dict[str, type[BaseException]]:
    from ..checkpoint._sql import CorruptCheckpointError
    from ..checkpoint.serde import SerializationError

    classes: tuple[type[BaseException], ...] = (
        GraphflowError, GraphRecursionError, GraphValidationError, InvalidThreadIdError,
        InvalidUpdateError, NodeError, NodeTimeoutError, ThreadBusyError, TokenBudgetExceeded,
        SerializationError, CorruptCheckpointError, ClusterUnavailableError, WorkerLostError,
        ExecutorBusyError, RunStoppedError, RemoteError)
    return {f"{c.__module__}.{c.__qualname__}": c for c in classes}


_KNOWN: dict[str, type[BaseException]] | None = None
_PLAIN = (str, int, float, bool, type(None))


def _plain_attrs(exc: BaseException) -> dict[str, Any]:
    """The attributes of ``exc`` that are plain JSON (node, key, thread, limit, ...)."""
    out: dict[str, Any] = {}
    for k, v in vars(exc).items():
        if k.startswith("_"):
            continue
        if isinstance(v, _PLAIN) or (isinstance(v, list) and all(isinstance(x, _PLAIN)
                                                                 for x in v)):
            out[k] = v
    return out


def encode_error(exc: BaseException, depth: int = 0) -> dict[str, Any]:
    """``exc`` (and its cause chain) as plain JSON."""
    cls = type(exc)
    cause = exc.__cause__
    return {
        "type": f"{cls.__module__}.{cls.__qualname__}",
        "message": str(exc),
        "attrs": _plain_attrs(exc),
        "traceback": "".join(traceback.format_exception(cls, exc, exc.__traceback__,
                                                        chain=False))[-8000:],
        "cause": encode_error(cause, depth + 1) if cause is not None and depth < 8 else None,
    }


def decode_error(data: dict[str, Any]) -> BaseException:
    """The exception :func:`encode_error` describes: a graphflow error of the same class (with
    its message and plain attributes), or a :class:`RemoteError` naming any other type. Never
    imports anything named in the data."""
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = _known()
    name, message = str(data.get("type", "")), str(data.get("message", ""))
    cls = _KNOWN.get(name)
    if cls is not None:
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        for k, v in (data.get("attrs") or {}).items():
            setattr(exc, k, v)
        if isinstance(exc, ThreadBusyError) and not hasattr(exc, "holder"):
            exc.holder = None
    else:
        exc = RemoteError(f"{name}: {message}", remote_type=name,
                          remote_traceback=str(data.get("traceback", "")))
    cause = data.get("cause")
    if cause:
        exc.__cause__ = decode_error(cause)
    return exc
