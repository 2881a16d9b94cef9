"""Long-running jobs and sensors as graph nodes (the shape of Flyte's agents).

- Protocols: async agents (``create``/``get``/``delete``), sync agents (``do``), sensors
  (``poke``); :class:`JobStatus`; a registry of agents by task type (:func:`register`).
- Nodes: :class:`JobNode` (create journaled once, durable polling with backoff, outputs into the
  state, delete on cancel/failure/timeout), :class:`SensorNode`, :class:`AgentNode`;
  :func:`cancel` cancels a thread's jobs.

See ``docs/jobs.md``.
"""

from .node import AgentNode, JobNode, Poll, SensorNode, acancel, cancel
from .protocol import (
    AgentRegistry,
    JobCancelledError,
    JobError,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    get_agent,
    register,
    registry,
)

__all__ = [
    "AgentNode",
    "AgentRegistry",
    "JobCancelledError",
    "JobError",
    "JobFailedError",
    "JobNode",
    "JobStatus",
    "JobTimeoutError",
    "Poll",
    "SensorNode",
    "acancel",
    "cancel",
    "get_agent",
    "register",
    "registry",
]
