"""Serve graphs over HTTP: ``graphflow serve module:graph`` (``pip install "graphflow[serve]"``).

A FastAPI application (:func:`create_app`) with threads, runs in the background or waited for,
Server-Sent Event streams resumable with ``Last-Event-ID``, cancel, API keys, limits, recovery
of unfinished runs after a restart, and a run inspector at ``/ui``. See ``docs/serving.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import ApiError, create_app
    from .config import ServeConfig
    from .runner import RunExecutor, RunJob, ThreadRunExecutor

__all__ = ["ApiError", "RunExecutor", "RunJob", "ServeConfig", "ThreadRunExecutor",
           "create_app"]

_LAZY = {"ApiError": ".app", "create_app": ".app", "ServeConfig": ".config",
         "RunExecutor": ".runner", "RunJob": ".runner", "ThreadRunExecutor": ".runner"}

EXTRA_HINT = 'pip install "graphflow[serve]"'


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'graphflow.serve' has no attribute {name!r}")
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"graphflow.serve needs FastAPI and uvicorn, which are not installed "
                          f"({exc}); install them with: {EXTRA_HINT}") from exc
    from importlib import import_module

    return getattr(import_module(module, __name__), name)
