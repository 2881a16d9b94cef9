"""The settings of a graphflow server (``graphflow serve`` flags map onto these fields)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["ServeConfig", "key_owner"]


def key_owner(key: str) -> str:
    """The owner id stored for an API key: a hash, never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


@dataclass
class ServeConfig:
    """How a server authenticates, limits and recovers.

    Attributes:
        api_keys: keys accepted in the ``X-Api-Key`` header (or ``Authorization: Bearer``).
            Empty: no authentication (for a server on 127.0.0.1 only); every request is the
            same anonymous owner. A thread is visible only to the key that created it.
        max_body_bytes: the largest request body accepted (413 beyond).
        max_runs: runs executing at once in this process; later ones wait, ``pending``.
        max_queued: runs waiting in this process at most; beyond, a new run gets 429.
        multitask_strategy: what a new run on a thread that has an active run does by default:
            ``"reject"`` (409 ``thread_busy``) or ``"enqueue"`` (it runs after the others, in
            order). A request may choose with ``multitask_strategy``.
        on_restart: what a server does with the unfinished runs of a server that died (itself
            before a restart, or another process on the same database): ``"resume"`` them from
            their last checkpoint, or ``"mark"`` them ``error`` (type ``ServerStopped``) and
            leave their threads to be continued by hand. Runs that never started are started
            either way.
        heartbeat: seconds between a worker's heartbeats (and its checks for cancel requests,
            queued runs and dead workers).
        worker_ttl: seconds without a heartbeat after which a worker on another machine counts
            as dead (a dead process on this machine counts at once).
        poll: seconds between reads of the database by a stream or a wait whose run executes
            in another process (a run of this process wakes them at once).
        ui: serve the run inspector at ``/ui``.
    """

    api_keys: tuple[str, ...] = ()
    max_body_bytes: int = 1 << 20
    max_runs: int = 8
    max_queued: int = 1000
    multitask_strategy: Literal["reject", "enqueue"] = "reject"
    on_restart: Literal["resume", "mark"] = "resume"
    heartbeat: float = 1.0
    worker_ttl: float = 15.0
    poll: float = 0.25
    ui: bool = True
    owners: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.multitask_strategy not in ("reject", "enqueue"):
            raise ValueError(f"multitask_strategy must be 'reject' or 'enqueue', not "
                             f"{self.multitask_strategy!r}")
        if self.on_restart not in ("resume", "mark"):
            raise ValueError(f"on_restart must be 'resume' or 'mark', not {self.on_restart!r}")
        for name in ("max_body_bytes", "max_runs", "max_queued"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, not {getattr(self, name)!r}")
        if any(not k or k != k.strip() for k in self.api_keys):
            raise ValueError("API keys must be non-empty and have no surrounding spaces")
        self.owners = {key_owner(k): k for k in self.api_keys}

    def owner_of(self, key: str | None) -> str | None:
        """The owner id of a presented key; None if it is not accepted. Without keys
        configured every request is the anonymous owner ``""``."""
        if not self.api_keys:
            return ""
        if not key:
            return None
        owner = key_owner(key)
        known = self.owners.get(owner)
        return owner if known is not None and hmac.compare_digest(known, key) else None
