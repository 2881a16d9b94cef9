"""The state schema: which keys a graph's state has, their types and their reducers.

A schema is a ``TypedDict``, a pydantic v2 model or a dataclass. Everything a step needs (the
reducer, a fast type check, the empty value of a reducer key) is prepared here once, so that
running a step does no introspection.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from typing import Any, get_args, get_origin, get_type_hints

from ..constants import START
from ..errors import GraphValidationError, InvalidUpdateError
from .managed import managed_kind
from .typecheck import (
    Check,
    article,
    describe,
    empty_factory,
    is_typeddict,
    make_check,
    strip_annotated,
)

__all__ = ["Channel", "StateSchema", "is_schema_class"]

_MISSING = object()


class Channel:
    """One key of the state."""

    __slots__ = ("annotation", "check", "coerce", "declared_required", "default", "empty",
                 "expected", "name", "reducer")

    def __init__(self, name: str, annotation: Any, default: Any = _MISSING,
                 default_factory: Callable[[], Any] | None = None, *,
                 declared_required: bool = False) -> None:
        self.name = name
        # a TypedDict key written Required[...]: the input of a new thread must give it
        self.declared_required = declared_required
        self.annotation = annotation
        self.reducer: Callable[[Any, Any], Any] | None = _reducer_of(annotation)
        self.check: Check | None = make_check(annotation)
        self.expected = describe(annotation)
        self.empty = empty_factory(annotation) if self.reducer else None
        if default_factory is not None:
            self.default: Callable[[], Any] | None = default_factory
        elif default is not _MISSING:
            self.default = lambda: default
        else:
            self.default = None
        self.coerce: Callable[[Any], Any] | None = None

    @property
    def required(self) -> bool:
        return self.default is None and self.reducer is None





def _qualified(tp: Any) -> tuple[Any, bool]:
    """``(T, True)`` for a TypedDict key written ``Required[T]``; ``NotRequired[T]`` -> ``(T,
    False)``; anything else as it is."""
    origin = get_origin(tp)
    if origin is typing.Required or origin is typing.NotRequired:
        return get_args(tp)[0], origin is typing.Required
    return tp, False


def _reducer_of(annotation: Any) -> Callable[[Any, Any], Any] | None:
    if get_origin(annotation) is typing.Annotated:
        for meta in annotation.__metadata__:
            if callable(meta) and not isinstance(meta, type):
                return meta
    return None


def _pydantic_base() -> type | None:
    mod = sys.modules.get("pydantic")  # a pydantic schema means pydantic is already imported
    return getattr(mod, "BaseModel", None) if mod else None


def is_schema_class(tp: Any) -> bool:
    """Whether ``tp`` can be a state schema: a TypedDict, a pydantic model or a dataclass."""
    if not isinstance(tp, type):
        return False
    base = _pydantic_base()
    return is_typeddict(tp) or dataclasses.is_dataclass(tp) or (
        base is not None and issubclass(tp, base))


class StateSchema:
    """The parsed schema of a graph's state."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        base = _pydantic_base()
        if isinstance(cls, type) and is_typeddict(cls):
            self.kind = "typeddict"
            hints = get_type_hints(cls, include_extras=True)
            self.channels = {}
            for k, tp in hints.items():
                tp, declared = _qualified(tp)
                self.channels[k] = Channel(k, tp, declared_required=declared)
            # keys a complete input gives: those of a total TypedDict, Required[...] ones,
            # without the reducer keys (they start empty)
            total = getattr(cls, "__required_keys__", frozenset())
            self.total_keys = tuple(k for k in self.channels
                                    if k in total and self.channels[k].reducer is None)
        elif base is not None and isinstance(cls, type) and issubclass(cls, base):
            self.kind = "pydantic"
            self.channels = self._pydantic_channels(cls)
        elif isinstance(cls, type) and dataclasses.is_dataclass(cls):
            self.kind = "dataclass"
            hints = get_type_hints(cls, include_extras=True)
            self.channels = {}
            for f in dataclasses.fields(cls):
                factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
                default = _MISSING if f.default is dataclasses.MISSING else f.default
                self.channels[f.name] = Channel(f.name, hints.get(f.name, Any), default, factory)
        else:
            raise GraphValidationError(
                f"state schema must be a TypedDict, a pydantic model or a dataclass, got {cls!r}"
            )
        # managed keys (RemainingSteps, ...): computed for each step, never stored
        self.managed = {k: kind for k, c in self.channels.items()
                        if (kind := managed_kind(c.annotation)) is not None}
        for k in self.managed:
            del self.channels[k]
        if not self.channels and not self.managed:
            raise GraphValidationError(f"state schema {cls.__name__} declares no keys")
        if self.kind != "typeddict":
            self.total_keys = tuple(k for k, c in self.channels.items() if c.required)
        self.total_keys = tuple(k for k in self.total_keys if k not in self.managed)
        self.own_keys = tuple(self.channels)  # the schema's own keys, in order
        self.keys = frozenset(self.channels)
        self.reducer_keys = frozenset(k for k, c in self.channels.items() if c.reducer)

    def extend(self, other: StateSchema) -> None:
        """Add the keys of ``other`` that this schema lacks: the graph's private state, and the
        keys of its input and output schemas (they all live in one state)."""
        for k, ch in other.channels.items():
            self.channels.setdefault(k, ch)
        for k, kind in other.managed.items():
            if k not in self.channels:
                self.managed.setdefault(k, kind)
        self.keys = frozenset(self.channels)
        self.reducer_keys = frozenset(k for k, c in self.channels.items() if c.reducer)

    @staticmethod
    def _pydantic_channels(cls: Any) -> dict[str, Channel]:
        from pydantic import TypeAdapter
        from pydantic_core import PydanticUndefined

        hints = get_type_hints(cls, include_extras=True)
        channels = {}
        for name, field in cls.model_fields.items():
            annotation = hints.get(name, field.annotation)
            default = _MISSING if field.default is PydanticUndefined else field.default
            ch = Channel(name, annotation, default, field.default_factory)
            ch.coerce = TypeAdapter(strip_annotated(annotation)).validate_python
            channels[name] = ch
        return channels

    # -- values <-> user objects ---------------------------------------------------------------

    def defaults(self) -> dict[str, Any]:
        """The state a new thread starts from: declared defaults and empty reducer values."""
        out = {}
        for k, ch in self.channels.items():
            if ch.default is not None:
                out[k] = ch.default()
            elif ch.empty is not None:
                out[k] = ch.empty()
        return out

    def input_writes(self, value: Any) -> dict[str, Any]:
        """Turn what the user passed to invoke into START's writes."""
        if isinstance(value, dict):
            return value
        if self.kind == "pydantic" and isinstance(value, self.cls):
            return {k: getattr(value, k) for k in value.model_fields_set}
        if self.kind == "dataclass" and isinstance(value, self.cls):
            return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        raise TypeError(
            f"input must be a dict or {article(self.cls.__name__)} instance, got "
            f"{article(type(value).__name__)}")

    def check_input(self, value: Any, base: dict[str, Any]) -> dict[str, Any]:
        """The writes of a run's input ``value``, checked against the schema before anything
        runs: :class:`InvalidUpdateError` (``node="__start__"``) worded as an input error for
        an input that is not a dict, an unknown key, a value of the wrong type, or a missing
        required key. ``base`` is the state the input lands on (the thread's, or the defaults).

        Required: the fields of a pydantic or dataclass schema without a default; the keys of
        a TypedDict written ``Required[...]``; and, for an input that gives nothing at all (a
        forgotten ``--input``) while the state holds none of them, all the keys of a total
        TypedDict. (A total TypedDict's keys are not all demanded of an input that gives some:
        many are the graph's outputs, written by its nodes.) Reducer keys are never required:
        they start empty.
        """
        try:
            writes = self.input_writes(value)
        except TypeError as exc:
            raise InvalidUpdateError(str(exc), node=START) from None
        for key, v in writes.items():
            ch = self.channels.get(key)
            if ch is None:
                raise InvalidUpdateError(
                    f"input key {key!r} is not in the state {self.cls.__name__}, which has: "
                    f"{', '.join(self.channels)}", node=START, key=key)
            if ch.check is not None and not ch.check(v):
                problem = f"input key {key!r}: expected {ch.expected}, got " \
                          f"{type(v).__name__} {v!r:.80}"
                if ch.coerce is None:
                    raise InvalidUpdateError(problem, node=START, key=key)
                try:
                    ch.coerce(v)  # pydantic schemas coerce the way pydantic would
                except Exception as exc:
                    raise InvalidUpdateError(f"{problem}: {exc}", node=START, key=key) from None
        missing = self.missing_input({**base, **writes}, given=bool(writes))
        if missing:
            raise InvalidUpdateError(
                f"input is missing required key{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} of the state {self.cls.__name__}",
                node=START, key=missing[0])
        return writes

    def missing_input(self, values: dict[str, Any], given: bool = True) -> list[str]:
        """The required keys (see :meth:`check_input`) that ``values`` lacks; ``given``: the
        input gave at least one key."""
        missing = [k for k in self.total_keys if k not in values]
        if self.kind != "typeddict" or (missing and not given
                                         and len(missing) == len(self.total_keys)):
            return missing  # TypedDict: an input of nothing, to a state holding none of them
        return [k for k in missing if self.channels[k].declared_required]

    def view(self, values: dict[str, Any]) -> Any:
        """The object a node receives: a fresh dict, or a schema instance."""
        if self.kind == "typeddict":
            return values.copy()
        if self.kind == "pydantic":
            return self.cls.model_construct(**values)
        obj = object.__new__(self.cls)
        for k, v in values.items():
            object.__setattr__(obj, k, v)
        return obj

    def describe_key(self, key: str) -> str:
        return self.channels[key].expected


