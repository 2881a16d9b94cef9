"""A task of a superstep, and turning what a node returned into writes."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidUpdateError
from ..graph.nodes import NodeSpec
from ..types import Command, Send

__all__ = ["SubgraphUpdate", "Task", "normalize", "parent_commands"]


class Task:
    """One node invocation within a superstep."""

    __slots__ = ("done", "error", "goto", "id", "index", "input", "interrupts", "n_interrupts",
                 "n_steps", "name", "spec", "update", "writes")

    def __init__(self, spec: NodeSpec, index: int = -1, input: Any = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.index = index  # position among the step's Sends; -1 for an edge-triggered task
        self.input = input  # the Send's argument
        self.writes: Any = ()  # a dict, or a list of (key, value) pairs
        self.update: Any = None  # what "updates" streams for this task
        self.goto: list[str | Send] | None = None
        self.error: BaseException | None = None
        self.done = False  # restored from a pending write: not to be run again
        self.interrupts: list[Any] = []  # Interrupts raised by this task (the run pauses)
        self.n_interrupts = 0  # interrupt() calls so far in this attempt
        self.n_steps = 0  # ctx.step() calls so far in this attempt
        self.id: str | None = None  # its task id, once the run has made it (Run.id_of)

    @property
    def is_send(self) -> bool:
        return self.index >= 0

    def sort_key(self) -> tuple[str, int]:
        return (self.name, self.index)

    def __repr__(self) -> str:
        return f"Task({self.name!r}, index={self.index})"


class SubgraphUpdate:
    """What a subgraph node hands its parent: the ordered writes, a dict to show, and where to
    go instead of the node's edges (from a ``Command(graph=Command.PARENT)`` inside it)."""

    __slots__ = ("goto", "update", "writes")

    def __init__(self, writes: list[tuple[str, Any]], update: dict[str, Any],
                 goto: list[str | Send] | None = None) -> None:
        self.writes = writes
        self.update = update
        self.goto = goto


def _goto_list(goto: Any) -> list[str | Send]:
    if isinstance(goto, (str, Send)):
        return [goto]
    return list(goto)


def _to_parent(task: Task, out: Command) -> None:
    """Record a ``Command(graph=Command.PARENT)``: a goto entry ``Send(PARENT, {"update",
    "goto"})`` that the run hands to its parent graph instead of routing on it (a Send so that
    it is stored with the task's outcome like any goto)."""
    if out.graph != Command.PARENT:
        raise InvalidUpdateError(
            f"node {task.name!r} returned Command(graph={out.graph!r}); graph= is None (this "
            f"graph) or Command.PARENT (the graph this one runs inside)", node=task.name)
    task.goto = [Send(Command.PARENT, {"update": dict(out.update or {}),
                                       "goto": _goto_list(out.goto)})]


def parent_commands(goto: list[Any] | None) -> list[dict[str, Any]]:
    """The ``{"update", "goto"}`` of the ``Command.PARENT`` s recorded in a task's goto."""
    return [t.arg for t in goto or () if isinstance(t, Send) and t.node == Command.PARENT]


def normalize(task: Task, out: Any) -> None:
    """Record on ``task`` the writes, stream update and goto that ``out`` stands for."""
    if type(out) is dict:
        task.writes = task.update = out
    elif out is None:
        pass
    elif isinstance(out, Command):
        if out.update is not None and not isinstance(out.update, dict):
            raise InvalidUpdateError(
                f"node {task.name!r} returned Command(update=...) with a "
                f"{type(out.update).__name__}; it must be a dict", node=task.name)
        if out.graph is not None:
            _to_parent(task, out)
            return
        if out.update is not None:
            task.writes = task.update = out.update
        if out.goto:
            task.goto = _goto_list(out.goto)
    elif isinstance(out, SubgraphUpdate):
        task.writes = out.writes
        task.update = out.update
        if out.goto:
            task.goto = out.goto
    elif isinstance(out, Send) or (
        isinstance(out, (list, tuple)) and out and all(isinstance(x, Send) for x in out)
    ):
        task.goto = _goto_list(out)
    elif isinstance(out, dict):
        task.writes = task.update = dict(out)
    else:
        raise InvalidUpdateError(
            f"node {task.name!r} returned {type(out).__name__} {out!r:.80}; a node returns a "
            f"dict of the keys it updates, None, a Command, or Send(s)", node=task.name)
