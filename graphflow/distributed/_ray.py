"""Importing Ray (the ``ray`` extra) and connecting to a cluster, with clear errors."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from .errors import ClusterUnavailableError

__all__ = ["connect", "import_ray"]

_INSTALL = 'pip install "graphflow[ray]"'
_lock = threading.Lock()


def import_ray() -> Any:
    """The ``ray`` module, or an ImportError naming the extra that installs it."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(
            f"graphflow.distributed runs on Ray, which is not installed ({exc}); install it "
            f"with: {_INSTALL}") from exc
    return ray


def _probe(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at ``host:port`` (Ray would retry for a minute)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise ClusterUnavailableError(
            f"cannot reach the Ray cluster at {address} ({exc}); start one there with "
            f"`ray start --head --port={port}`, or pass the address of a running cluster "
            f"(RAY_ADDRESS, or address=...)") from None


def connect(address: str | None, *, timeout: float = 5.0, **init: Any) -> Any:
    """Connect this process to Ray once; return the ``ray`` module.

    ``address``: None uses the connection this process already has (``ray.init`` called by the
    application or a Ray worker), else ``RAY_ADDRESS`` or the cluster started on this machine
    with ``ray start`` (``"auto"``); ``"host:port"`` a cluster's head; ``"local"`` starts a
    one-machine cluster inside this process. ``init``: more ``ray.init`` keywords.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    with _lock:
        if ray.is_initialized():
            return ray
        target = address or os.environ.get("RAY_ADDRESS") or "auto"
        if target == "local":
            target = None
            init.setdefault("include_dashboard", False)
            init.setdefault("object_store_memory", 200_000_000)  # not ~30% of RAM in /dev/shm
        elif "://" not in target and target != "auto":
            _probe(target, timeout)
        try:
            ray.init(address=target, log_to_driver=False, **init)
        except ConnectionError as exc:
            raise ClusterUnavailableError(
                f"cannot reach a Ray cluster at {target!r}: {exc}. Start one (`ray start "
                f"--head`), set RAY_ADDRESS, or pass address='host:port' (or 'local' for a "
                f"cluster inside this process)") from exc
        except Exception as exc:
            raise ClusterUnavailableError(
                f"connecting to the Ray cluster at {target!r} failed: "
                f"{type(exc).__name__}: {exc}") from exc
    return ray
