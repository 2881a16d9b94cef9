"""Checkpointers: where threads keep their state between supersteps and between runs."""

from .base import Checkpoint, Checkpointer, PendingWrite, StateSnapshot
from .memory import MemoryCheckpointer

__all__ = ["Checkpoint", "Checkpointer", "MemoryCheckpointer", "PendingWrite", "StateSnapshot"]
