"""Values nodes and routers return to steer a run: :class:`Send`, :class:`Command`, and the
node-level :class:`RetryPolicy` and :class:`CachePolicy`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

__all__ = ["CachePolicy", "Command", "RetryPolicy", "Send", "default_cache_key"]

N = TypeVar("N")


class Send:
    """A task for ``node`` whose input is ``arg`` instead of the graph state (map/fan-out).

    Return a list of them from a router (or a node) to run one task per item::

        g.add_conditional_edges("plan", lambda s: [Send("work", x) for x in s["items"]], ["work"])
    """

    __slots__ = ("arg", "node")

    def __init__(self, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Send) and other.node == self.node and other.arg == self.arg

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))


@dataclass(frozen=True, slots=True)
class Command(Generic[N]):
    """Update the state and choose where to go next, from inside a node.

    ``goto`` (a node name, a :class:`Send`, or a sequence of them) *replaces* the node's own
    outgoing edges for this step. Declare the possible targets with a return hint such as
    ``-> Command[Literal["a", "b"]]`` so the graph can be checked and drawn.

    ``graph=Command.PARENT`` (from a node of a graph that runs as a subgraph node of another)
    ends the subgraph after this step and applies ``update`` and ``goto`` in the *parent* graph,
    as if the subgraph node had returned them: ``goto`` names nodes of the parent, ``update``
    keys of the parent's state. The subgraph's own writes up to then are kept (handed to the
    parent as when it finishes), and ``update`` is applied after them. This is how an agent hands
    the conversation over to another one (``graphflow.agents.handoff_tool``). Declare where a
    subgraph node may go with ``add_node(..., destinations=[...])``.
    """

    PARENT: ClassVar[str] = "__parent__"

    update: dict[str, Any] | None = None
    goto: str | Send | Sequence[str | Send] = ()
    resume: Any = None
    graph: str | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How to retry a failing node (with exponential backoff, via tenacity).

    Args:
        max_attempts: attempts in all, the first included.
        initial_interval: seconds before the first retry.
        backoff_factor: multiplier of the interval after each retry.
        max_interval: cap of the interval in seconds.
        jitter: add a random 0..1 s to each interval.
        retry_on: an exception type, a tuple of types, or a predicate ``exc -> bool``.
    """

    max_attempts: int = 3
    initial_interval: float = 0.5
    backoff_factor: float = 2.0
    max_interval: float = 128.0
    jitter: bool = True
    retry_on: type[BaseException] | tuple[type[BaseException], ...] | Callable[
        [BaseException], bool
    ] = Exception

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` is one this policy retries."""
        if not isinstance(exc, Exception):  # interrupts, cancellation, KeyboardInterrupt
            return False
        on = self.retry_on
        if isinstance(on, (type, tuple)):
            return isinstance(exc, on)
        return bool(on(exc))


def default_cache_key(value: Any) -> str:
    """A node input's cache key: the SHA-256 of its JSON encoding (the checkpoint encoding, so
    the same types are supported; never pickle)."""
    import hashlib

    from .checkpoint.serde import dumps_bytes

    return hashlib.sha256(dumps_bytes(value)).hexdigest()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """Reuse a node's result for the same input: ``add_node("n", fn, cache_policy=...)`` with a
    cache given to ``compile(cache=InMemoryCache())`` (``graphflow.cache``).

    Args:
        key_func: the node's input -> its cache key (a str or bytes); by default a hash of
            the input's JSON encoding.
        ttl: seconds an entry lives; None: until the cache is cleared.
    """

    key_func: Callable[[Any], str | bytes] = default_cache_key
    ttl: float | None = None

    def __post_init__(self) -> None:
        if self.ttl is not None and self.ttl <= 0:
            raise ValueError(f"CachePolicy.ttl must be > 0 seconds (or None), got {self.ttl}")
