"""What a node or router receives besides the state, read once from its signature.

The first parameter gets the state (or a ``Send``'s argument). Every later parameter is filled
by *name* or *annotation* from the table :data:`INJECTABLES`:

===========  =================================  =========================================
key          parameter name                     annotation (a class, or a subclass of it)
===========  =================================  =========================================
``ctx``      ``ctx``                            :class:`~graphflow.RunContext`
``store``    ``store``                          :class:`~graphflow.memory.BaseStore`
``config``   ``config``                         :class:`~graphflow.RunnableConfig`
``runtime``  ``runtime``                        :class:`~graphflow.Runtime` (``Runtime[C]``)
===========  =================================  =========================================

``config`` and ``runtime`` are LangGraph's: the run's config dict (``ctx.config``) and its
``Runtime`` (``ctx.runtime``: the context, the store, the stream writer).

For compatibility, a second positional parameter with neither an annotation nor a default
(``def node(state, c)``) receives the :class:`RunContext`, whatever its name. Nothing is ever
injected into another parameter with a default (``def node(state, ret=ret)`` keeps ``ret``),
and a parameter without a default that nothing can fill is an error when the node is added.

A class receives injection by annotation when it carries ``__graphflow_inject__ = "<key>"``;
the value for a key is read from the :class:`RunContext` (``ctx.<key>``, the context itself for
``ctx``). Adding an injectable is one row here, one attribute on ``RunContext`` and the marker
on its class.
"""

from __future__ import annotations

import functools
import inspect
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from ..errors import GraphflowError, GraphValidationError

__all__ = ["INJECTABLES", "INJECT_ATTR", "Injectable", "Injection", "injection"]

INJECT_ATTR = "__graphflow_inject__"


@dataclass(frozen=True, slots=True)
class Injectable:
    """One kind of value graphflow passes to nodes, routers and tools.

    Attributes:
        key: the value's key: the :class:`RunContext` attribute it is read from (``"ctx"``: the
            context itself).
        names: parameter names that receive it without an annotation.
        classes: names of the classes that receive it by annotation, for annotations that are
            text graphflow cannot resolve (``from __future__ import annotations`` with imports
            under ``TYPE_CHECKING``). Resolved annotations use the class marker instead.
        missing: what to do when a required parameter finds no value (None: it always has one).
    """

    key: str
    names: tuple[str, ...]
    classes: tuple[str, ...]
    missing: str | None = None


INJECTABLES: tuple[Injectable, ...] = (
    Injectable("ctx", ("ctx",), ("RunContext",)),
    Injectable("store", ("store",), ("BaseStore", "SqliteStore", "PostgresStore"),
               missing="give the graph a store: compile(store=SqliteStore(...)) or "
                       "invoke(..., store=...)"),
    Injectable("config", ("config",), ("RunnableConfig",)),
    Injectable("runtime", ("runtime",), ("Runtime",)),
)
_BY_NAME = {name: inj for inj in INJECTABLES for name in inj.names}
_BY_CLASS = {cls: inj for inj in INJECTABLES for cls in inj.classes}
_BY_KEY = {inj.key: inj for inj in INJECTABLES}
_IDENT = re.compile(r"[A-Za-z_][\w.]*")


class Injection:
    """How to call one callable: which keys go to which parameters.

    Attributes:
        args: ``(parameter, key)`` passed by position after the state, in order.
        kwargs: ``(parameter, key, has_default)`` passed by keyword.
    """

    __slots__ = ("args", "kwargs", "only_ctx")

    def __init__(self, args: tuple[tuple[str, str], ...],
                 kwargs: tuple[tuple[str, str, bool], ...]) -> None:
        self.args = args
        self.kwargs = kwargs
        self.only_ctx = len(args) == 1 and args[0][1] == "ctx" and not kwargs

    @property
    def keys(self) -> frozenset[str]:
        """Every key this callable receives."""
        return frozenset((*(k for _, k in self.args), *(k for _, k, _ in self.kwargs)))

    def call(self, fn: Callable[..., Any], arg: Any, ctx: Any) -> Any:
        """``fn(arg, <injected values>)``, the values read from ``ctx``."""
        if self.only_ctx:
            return fn(arg, ctx)
        args = [_value(ctx, key, name) for name, key in self.args]
        kwargs = {}
        for name, key, has_default in self.kwargs:
            value = ctx if key == "ctx" else getattr(ctx, key)
            if value is None:
                if has_default:
                    continue  # nothing to give: the parameter keeps its default
                value = _value(ctx, key, name)
            kwargs[name] = value
        return fn(arg, *args, **kwargs)

    def __repr__(self) -> str:
        parts = [*(f"{n}={k}" for n, k in self.args), *(f"{n}={k}" for n, k, _ in self.kwargs)]
        return f"Injection({', '.join(parts)})"


def _value(ctx: Any, key: str, param: str) -> Any:
    value = ctx if key == "ctx" else getattr(ctx, key)
    if value is None:
        hint = _BY_KEY[key].missing or "nothing provides it"
        raise GraphflowError(f"node {ctx.node!r}: parameter {param!r} needs the run's "
                             f"{key}, and this run has none: {hint}")
    return value


def _target(fn: Any) -> Any:
    """What to read hints from: the function, a partial's function, an object's __call__."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    if not (inspect.isfunction(fn) or inspect.ismethod(fn)) and callable(fn):
        return type(fn).__call__
    return fn


def _hints(fn: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(_target(fn))
    except Exception:  # unresolvable forward references: read the annotations as text
        return {}


def _by_annotation(annotation: Any) -> Injectable | None:
    """The injectable an annotation names (``X``, ``X | None``, ``Optional[X]``, text)."""
    if annotation is inspect.Parameter.empty or annotation is None:
        return None
    if isinstance(annotation, str):
        for word in _IDENT.findall(annotation):
            found = _BY_CLASS.get(word.rsplit(".", 1)[-1])
            if found is not None:
                return found
        return None
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _by_annotation(arg)
            if found is not None:
                return found
        return None
    if get_origin(annotation) is typing.Annotated:
        return _by_annotation(get_args(annotation)[0])
    if isinstance(get_origin(annotation), type):  # a generic's parameters: Runtime[Context]
        return _by_annotation(get_origin(annotation))
    if isinstance(annotation, type):
        key = getattr(annotation, INJECT_ATTR, None)
        if isinstance(key, str):
            return _BY_KEY.get(key)
    return None


def injection(fn: Any, where: str) -> Injection | None:
    """How ``fn`` is called (None: as ``fn(state)``, the fast path).

    ``where`` names the callable in errors (``"node 'x'"``). Raises
    :class:`GraphValidationError` for a parameter with no default that nothing fills.
    """
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    hints: dict[str, Any] | None = None
    args: list[tuple[str, str]] = []
    kwargs: list[tuple[str, str, bool]] = []
    empty = inspect.Parameter.empty
    for position, p in enumerate(params):
        if p.kind is p.VAR_KEYWORD or (position == 0 and p.kind is not p.KEYWORD_ONLY):
            continue
        if p.kind is p.VAR_POSITIONAL:
            if not args and position == 1:  # def node(state, *rest): the context, as before
                args.append((p.name, "ctx"))
            continue
        annotation = p.annotation
        if isinstance(annotation, str) and annotation:
            if hints is None:
                hints = _hints(fn)
            annotation = hints.get(p.name, annotation)
        found = _by_annotation(annotation) or _BY_NAME.get(p.name)
        if found is None and position == 1 and p.kind is not p.KEYWORD_ONLY and (
                p.default is empty and p.annotation is empty):
            found = _BY_KEY["ctx"]  # def node(state, c): the context by position, as before
        if found is None:
            if p.default is empty:
                names = ", ".join(f"{n!r}" for n in _BY_NAME)
                raise GraphValidationError(
                    f"{where}: parameter {p.name!r} has no default and graphflow has nothing "
                    f"to pass to it; parameters after the state are filled by name ({names}) "
                    f"or by annotation (RunContext, BaseStore): rename or annotate it, or give "
                    f"it a default")
            continue
        in_slot = p.kind is not p.KEYWORD_ONLY and position == len(args) + 1
        if in_slot and (p.default is empty or found.key == "ctx"):
            args.append((p.name, found.key))  # by position, the next argument after the state
        elif p.kind is p.POSITIONAL_ONLY:
            raise GraphValidationError(
                f"{where}: positional-only parameter {p.name!r} cannot be filled after a "
                f"parameter graphflow leaves to its default; make it a keyword parameter")
        else:
            kwargs.append((p.name, found.key, p.default is not empty))
    if not args and not kwargs:
        return None
    return Injection(tuple(args), tuple(kwargs))
