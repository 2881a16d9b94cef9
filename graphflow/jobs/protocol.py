"""The agent protocols of long-running jobs, their statuses and errors, and the registry.

An **async agent** (the shape of Flyte's async agents) starts a job elsewhere and follows it:

- ``create(inputs, *, idempotency_key=...) -> handle``: submit the job; the handle is small,
  serializable metadata (an id, a dict, a registered dataclass) saying how to find it again.
  Idempotency is the contract: ``create`` may be called again with the same key (a crash
  between the submission and its journal entry) and must then return the same job.
- ``get(handle) -> status``: a :class:`JobStatus` (or a dict / an object with ``phase``,
  ``outputs``, ``message``, ``log_links``); safe to repeat.
- ``delete(handle)``: cancel the job; safe to repeat.

A **sync agent** answers at once: ``do(inputs) -> outputs``. A **sensor** says whether what it
watches is there yet: ``poke(inputs) -> bool``. Any of them may be ``async def``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphflowError

__all__ = [
    "AgentRegistry", "JobCancelledError", "JobError", "JobFailedError", "JobStatus",
    "JobTimeoutError", "get_agent", "register", "registry", "to_status",
]

SUCCEEDED, FAILED, CANCELLED, RUNNING = "succeeded", "failed", "cancelled", "running"
_PHASES = {
    "succeeded": SUCCEEDED, "success": SUCCEEDED, "done": SUCCEEDED, "completed": SUCCEEDED,
    "failed": FAILED, "failure": FAILED, "error": FAILED, "timeout": FAILED, "timedout": FAILED,
    "cancelled": CANCELLED, "canceled": CANCELLED, "aborted": CANCELLED, "deleted": CANCELLED,
    "running": RUNNING, "pending": RUNNING, "queued": RUNNING, "initializing": RUNNING,
    "submitted": RUNNING, "waiting": RUNNING,
}


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What ``get(handle)`` says about a job.

    Attributes:
        phase: ``"running"``, ``"succeeded"``, ``"failed"`` or ``"cancelled"`` (other
            spellings are read: ``"done"``, ``"success"``, ``"canceled"``, ``"pending"``, ...).
        outputs: the job's outputs once it succeeded.
        message: what the service says (why it failed, progress).
        log_links: links to the job's logs.
    """

    phase: str
    outputs: Any = None
    message: str = ""
    log_links: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.phase != RUNNING


def to_status(value: Any, where: str) -> JobStatus:
    """A :class:`JobStatus` from what an agent's ``get`` returned."""
    if isinstance(value, JobStatus):
        raw = value.phase
        outputs, message, links = value.outputs, value.message, value.log_links
    elif isinstance(value, Mapping):
        raw = value.get("phase", value.get("state"))
        outputs, message = value.get("outputs"), value.get("message") or ""
        links = list(value.get("log_links") or ())
    elif hasattr(value, "phase"):
        raw = value.phase
        outputs, message = getattr(value, "outputs", None), getattr(value, "message", "") or ""
        links = list(getattr(value, "log_links", None) or ())
    else:
        raise JobError(f"{where} returned {type(value).__name__} {value!r:.80}; expected a "
                       f"JobStatus, a dict with 'phase', or an object with .phase")
    name = getattr(raw, "name", raw)  # an Enum member: its name
    phase = _PHASES.get(str(name).lower()) if name is not None else None
    if phase is None:
        raise JobError(f"{where} returned the unknown phase {raw!r}; use one of "
                       f"{sorted(set(_PHASES.values()))}")
    return JobStatus(phase, outputs, str(message), [str(x) for x in links])


class JobError(GraphflowError):
    """A job node could not finish its job (the base of the job errors)."""


class JobFailedError(JobError):
    """The job ended in failure (or was cancelled elsewhere).

    Attributes:
        status: its last :class:`JobStatus` (``message``, ``log_links``).
    """

    def __init__(self, node: str, status: JobStatus) -> None:
        links = f" (logs: {', '.join(status.log_links)})" if status.log_links else ""
        super().__init__(f"node {node!r}: the job {status.phase}: {status.message or 'no message'}"
                         f"{links}")
        self.status = status


class JobTimeoutError(JobError, TimeoutError):
    """The job did not finish within the node's ``timeout``; it was deleted."""


class JobCancelledError(JobError):
    """The run cancelled the job (``graphflow.jobs.cancel``); it was deleted."""


class AgentRegistry:
    """Agents by task type (as Flyte's registry), so a graph can name a job by its type:
    ``JobNode("bigquery")``."""

    def __init__(self) -> None:
        self._agents: dict[str, Any] = {}
        self._lock = threading.Lock()

    def register(self, agent: Any, task_type: str | None = None, *,
                 override: bool = False) -> Any:
        """Register ``agent`` for ``task_type`` (default: its ``task_type`` or
        ``task_type_name`` attribute); returns the agent. A second agent for one type raises
        ``ValueError`` unless ``override``."""
        name = task_type or getattr(agent, "task_type", None) or getattr(
            agent, "task_type_name", None)
        if not isinstance(name, str) or not name:
            raise ValueError(f"register({agent!r}): give task_type=... (the agent has no "
                             f"task_type attribute)")
        if not any(callable(getattr(agent, m, None)) for m in ("create", "do", "poke")):
            raise TypeError(f"register({agent!r}): an agent has create/get/delete (async), "
                            f"do (sync) or poke (sensor)")
        with self._lock:
            if name in self._agents and self._agents[name] is not agent and not override:
                raise ValueError(f"an agent is already registered for task type {name!r}: "
                                 f"{self._agents[name]!r} (pass override=True to replace it)")
            self._agents[name] = agent
        return agent

    def get(self, task_type: str) -> Any:
        with self._lock:
            try:
                return self._agents[task_type]
            except KeyError:
                raise JobError(f"no agent is registered for task type {task_type!r}; "
                               f"registered: {sorted(self._agents)}") from None

    def task_types(self) -> list[str]:
        with self._lock:
            return sorted(self._agents)


#: The process's registry (``register`` / ``get_agent`` use it).
registry = AgentRegistry()


def register(agent: Any, task_type: str | None = None, *, override: bool = False) -> Any:
    """Register ``agent`` in the process's registry (see :meth:`AgentRegistry.register`)."""
    return registry.register(agent, task_type, override=override)


def get_agent(task_type: str) -> Any:
    """The agent registered for ``task_type``."""
    return registry.get(task_type)
