"""What the builder records about nodes and routers, prepared once for the engine."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any, Literal, get_args, get_origin

from ..types import CachePolicy, Command, RetryPolicy, Send
from .inject import Injection, injection
from .inject import _hints as _type_hints

__all__ = ["Branch", "NodeSpec", "declared_targets", "input_hint", "is_async_callable"]

NODE_KINDS = frozenset({"function", "subgraph", "agent", "tool", "router", "memory"})


def is_async_callable(fn: Any) -> bool:
    """True for ``async def`` functions, partials of them and objects with ``async __call__``."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn) or not callable(fn):
        return False
    return inspect.iscoroutinefunction(type(fn).__call__)


def _return_hint(fn: Any) -> Any:
    return _type_hints(fn).get("return")


def input_hint(fn: Any) -> Any:
    """The annotation of ``fn``'s first parameter (the state it reads), or None."""
    hints = _type_hints(fn)
    if not hints:
        return None
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    return hints.get(params[0].name) if params else None


def _literals(tp: Any) -> list[Any]:
    """Every ``Literal`` value anywhere inside a type (``list[Literal["a"]] | Send`` -> ["a"])."""
    if get_origin(tp) is Literal:
        return list(get_args(tp))
    out: list[Any] = []
    for arg in get_args(tp):
        out.extend(_literals(arg))
    return out


def declared_targets(fn: Any) -> tuple[Any, ...] | None:
    """Targets a router declares with a ``Literal[...]`` return hint (None if it declares none)."""
    found = _literals(_return_hint(fn))
    return tuple(found) if found else None


def _mentions(tp: Any, cls: type) -> bool:
    if tp is cls or get_origin(tp) is cls:
        return True
    return any(_mentions(a, cls) for a in get_args(tp))


class NodeSpec:
    """A node as the engine sees it."""

    __slots__ = ("cache_policy", "command_targets", "defer", "dynamic", "fn", "inject",
                 "input_schema", "is_async", "kind", "metadata", "name", "plain", "retry",
                 "subgraph", "timeout")

    def __init__(self, name: str, fn: Any, *, retry: RetryPolicy | None, timeout: float | None,
                 metadata: Mapping[str, Any] | None, subgraph: Any = None,
                 destinations: Sequence[str] | None = None, defer: bool = False,
                 cache_policy: CachePolicy | None = None, input_schema: Any = None) -> None:
        self.name = name
        self.fn = fn
        self.retry = retry
        self.timeout = timeout
        self.defer = defer  # runs only when no other task is due (LangGraph's defer=True)
        self.cache_policy = cache_policy
        self.input_schema = input_schema  # a StateSchema of what the node reads, if not the state
        self.metadata = dict(metadata or {})
        self.subgraph = subgraph
        self.kind = "subgraph" if subgraph is not None else str(
            self.metadata.get("kind") or getattr(fn, "graphflow_kind", "function"))
        self.is_async = subgraph is None and is_async_callable(fn)
        # what the node receives besides the state (None: nothing; see graph/inject.py)
        self.inject: Injection | None = None if subgraph is not None else injection(
            fn, f"node {name!r}")
        # called as fn(state) with nothing around it: the engine's fast path
        self.plain = (subgraph is None and self.inject is None and retry is None
                      and timeout is None and cache_policy is None)
        hint = None if subgraph is not None else _return_hint(fn)
        self.command_targets: tuple[str, ...] | None = None
        self.dynamic = False  # may route itself (Command/Send) to targets it does not declare
        if destinations is not None:  # declared by add_node: what a return hint would say
            self.command_targets = tuple(dict.fromkeys(destinations))
        elif hint is not None and (_mentions(hint, Command) or _mentions(hint, Send)):
            lits = [x for x in _literals(hint) if isinstance(x, str)]
            if lits:
                self.command_targets = tuple(lits)
            else:
                self.dynamic = True


class Branch:
    """A conditional edge: a router on ``source`` and where it may lead."""

    __slots__ = ("inject", "is_async", "name", "path_map", "router", "sends", "source",
                 "targets")

    def __init__(self, source: str, router: Callable[..., Any],
                 path_map: Mapping[Hashable, str] | Sequence[str] | None) -> None:
        self.source = source
        self.router = router
        self.name = getattr(router, "__name__", type(router).__name__)
        self.is_async = is_async_callable(router)
        self.inject = injection(router, f"router {self.name!r} on node {source!r}")
        # a fan-out: its path_map lists the nodes it sends to, its return hint says Send
        hint = _return_hint(router) if path_map is not None else None
        self.sends = (hint is not None and not isinstance(path_map, Mapping)
                      and _mentions(hint, Send))
        self.path_map: dict[Hashable, str] | None = None
        if isinstance(path_map, Mapping):
            self.path_map = dict(path_map)
            self.targets: tuple[str, ...] | None = tuple(dict.fromkeys(self.path_map.values()))
        elif path_map is not None:
            self.targets = tuple(dict.fromkeys(path_map))
        else:
            hinted = declared_targets(router)
            self.targets = tuple(str(t) for t in hinted) if hinted else None

    def labels(self) -> list[tuple[str, str | None]]:
        """``(target, label)`` pairs for the diagram: the label is what the router returns to
        go there, a path-map key or a ``Literal`` value; None for targets given as a list."""
        if self.path_map is not None:
            return [(t, str(k)) for k, t in self.path_map.items()]
        listed = self.targets is not None and declared_targets(self.router) is None
        return [(t, None if listed else t) for t in self.targets or ()]

    def declares(self, target: str) -> bool:
        return self.targets is None or target in self.targets
