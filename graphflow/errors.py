"""Errors raised by graphflow.

Every error is a :class:`GraphflowError`; where a builtin fits, it is one too, so existing
``except ValueError`` code keeps working::

    GraphflowError(Exception)
     ├─ GraphValidationError(GraphflowError, ValueError)    the graph is malformed (build/compile)
     ├─ InvalidUpdateError(GraphflowError, ValueError)      a node's update breaks the state schema
     ├─ GraphRecursionError(GraphflowError, RecursionError) too many supersteps
     ├─ NodeError(GraphflowError)                           a node (or router) raised; see __cause__
     ├─ NodeTimeoutError(GraphflowError, TimeoutError)      an attempt ran past the node's timeout
     ├─ TokenBudgetExceeded(GraphflowError)                 a run used more tokens than allowed
     ├─ ThreadBusyError(GraphflowError)                     another run is writing the thread
     ├─ SignalTimeoutError(GraphflowError, TimeoutError)    ctx.wait_for_signal(timeout=) ran out
     ├─ RunCancelledError(GraphflowError)                   the run was cancelled (cancel=)
     ├─ InvalidThreadIdError(GraphflowError, ValueError)    a thread id that cannot be stored
     ├─ SerializationError(GraphflowError, TypeError)       a value cannot be stored (names node,
     │                                                      key and path: ``messages[3].content``)
     └─ CorruptCheckpointError(GraphflowError, ValueError)  a stored row cannot be read back
    GraphValidationWarning(UserWarning)                     a graph that works but is likely wrong

(``SerializationError`` and ``CorruptCheckpointError`` live in ``graphflow.checkpoint``.)

Messages say what went wrong, where (node, key, router) and what to do about it.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "GraphRecursionError",
    "GraphValidationError",
    "GraphValidationWarning",
    "GraphflowError",
    "InvalidUpdateError",
    "NodeError",
    "InvalidThreadIdError",
    "NodeTimeoutError",
    "RunCancelledError",
    "SignalTimeoutError",
    "ThreadBusyError",
    "TokenBudgetExceeded",
]


class GraphflowError(Exception):
    """Base class of every error graphflow raises."""


class GraphValidationError(GraphflowError, ValueError):
    """The graph is malformed: raised while building or compiling it."""


class GraphValidationWarning(UserWarning):
    """The graph compiles but probably does not do what was meant."""


class InvalidUpdateError(GraphflowError, ValueError):
    """A node's update does not fit the state schema.

    Attributes:
        node: the node whose update was rejected (``"__start__"`` for the run's input).
        key: the state key concerned, when there is one.
    """

    def __init__(self, message: str, *, node: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.node = node
        self.key = key


class GraphRecursionError(GraphflowError, RecursionError):
    """The run reached its recursion limit (counted in supersteps) without finishing.

    Attributes:
        limit: the limit that was reached.
        nodes: the nodes that ran in the last supersteps, most frequent first.
    """

    def __init__(self, limit: int, nodes: Iterable[tuple[str, int]]) -> None:
        self.limit = limit
        counts = list(nodes)
        self.nodes = [name for name, _ in counts]
        looping = ", ".join(f"{name!r} ({n}x)" for name, n in counts) or "none"
        super().__init__(
            f"recursion limit of {limit} supersteps reached without finishing; nodes running in "
            f"the last supersteps: {looping}. If the loop is intended, pass a larger "
            f"recursion_limit= to invoke/stream; otherwise add a condition that routes to END."
        )


class NodeError(GraphflowError):
    """A node (or a router on one of its edges) raised; the original exception is ``__cause__``.

    Attributes:
        node: the name of the node that failed.
    """

    def __init__(self, node: str, message: str) -> None:
        super().__init__(message)
        self.node = node


class NodeTimeoutError(GraphflowError, TimeoutError):
    """One attempt of a node ran longer than the node's ``timeout``.

    Attributes:
        node: the node that timed out.
        timeout: the limit in seconds.
    """

    def __init__(self, node: str, timeout: float) -> None:
        super().__init__(f"node {node!r} timed out after {timeout:g}s")
        self.node = node
        self.timeout = timeout


class TokenBudgetExceeded(GraphflowError):
    """The run's model calls used more tokens than its ``token_budget``.

    Raised as is (not wrapped in :class:`NodeError`) from the node whose call crossed the
    budget; that call's answer is journaled, so resuming with a larger budget does not pay
    for it again.

    Attributes:
        budget: the budget in tokens.
        used: the tokens used by the run so far.
        node: the node whose call crossed it.
    """

    def __init__(self, budget: int, used: int, node: str) -> None:
        super().__init__(
            f"the run used {used} tokens, over its token_budget of {budget} (crossed by a model "
            f"call in node {node!r}); raise token_budget= or resume later with a larger one")
        self.budget = budget
        self.used = used
        self.node = node


class ThreadBusyError(GraphflowError):
    """Another run is writing the thread: a thread has one writer at a time.

    Raised before anything runs when a run (or ``update_state`` / ``delete_thread``) finds the
    thread's lease held by a live writer, or when it waited for it (``wait=``) in vain. Raised
    mid-run, with ``lost=True``, by a writer whose lease another writer took over (it was not
    renewed in time: the process was frozen for longer than the lease's time to live); that
    run's last checkpoint is not stored and the new writer owns the thread.

    Attributes:
        thread: the thread id.
        holder: what the store knows of the current writer (a ``Holder``: ``owner.pid``,
            ``owner.host``, ``held_for``, ``expires_in``), or None.
        lost: True when this run had the thread and lost it.
    """

    def __init__(self, thread: str, holder: object | None, *, lost: bool = False,
                 waited: float | None = None) -> None:
        self.thread = thread
        self.holder = holder
        self.lost = lost
        if lost:
            message = (f"thread {thread!r} was taken over by another writer: this run's lease "
                       f"expired (was the process frozen longer than the lease's ttl?); its "
                       f"last step was not stored and the other writer now owns the thread")
        else:
            who = holder.describe() if hasattr(holder, "describe") else "another run writes it"
            waited_for = f" after waiting {waited:.1f} s" if waited else ""
            message = (f"thread {thread!r} is busy{waited_for}: {who}. A thread has one writer at "
                       f"a time; wait for it with invoke(..., wait=True) (or wait=seconds), or "
                       f"use another thread")
        super().__init__(message)


class RunCancelledError(GraphflowError):
    """The run was cancelled: its ``cancel=`` event was set, and it stopped where the next
    superstep would have begun.

    Nothing is lost: every finished step is checkpointed (and, in a parallel step that was
    cut short by a subgraph's cancellation, every finished task's outcome is stored), the
    thread's lease is released, and ``invoke(None, thread=...)`` continues the run from there.

    Attributes:
        thread: the thread (None for a run without one).
        step: the last superstep that finished.
        checkpoint_id: the thread's last checkpoint, where a resumed run starts (None without a
            thread).
    """

    def __init__(self, thread: str | None, step: int, checkpoint_id: str | None) -> None:
        self.thread = thread
        self.step = step
        self.checkpoint_id = checkpoint_id
        where = f"thread {thread!r}" if thread is not None else "the run"
        more = (f"; continue it with invoke(None, thread={thread!r})"
                if thread is not None else "")
        super().__init__(f"{where} was cancelled after step {step}, before the next step "
                         f"began{more}")


class InvalidThreadIdError(GraphflowError, ValueError):
    """A thread id that no checkpointer can store as given (empty, blank, too long, a NUL)."""


class SignalTimeoutError(GraphflowError, TimeoutError):
    """``ctx.wait_for_signal(name, timeout=...)``: the timeout passed before the signal came.

    Raised inside the waiting node (catch it there to go on without the signal); a run resumed
    later raises it again at the same call, as the outcome is journaled.

    Attributes:
        signal: the signal's name.
    """

    def __init__(self, signal: str) -> None:
        super().__init__(f"no signal {signal!r} arrived before the wait's timeout")
        self.signal = signal
