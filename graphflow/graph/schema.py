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
from typing import Any, get_origin, get_type_hints

from ..errors import GraphValidationError
from .managed import managed_kind
from .typecheck import Check, describe, empty_factory, is_typeddict, make_check, strip_annotated

__all__ = ["Channel", "StateSchema", "is_schema_class"]

_MISSING = object()


class Channel:
    """One key of the state."""

    __slots__ = ("annotation", "check", "coerce", "default", "empty", "expected", "name",
                 "reducer")

    def __init__(self, name: str, annotation: Any, default: Any = _MISSING,
                 default_factory: Callable[[], Any] | None = None) -> None:
        self.name = name
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
            self.channels = {k: Channel(k, tp) for k, tp in hints.items()}
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
            f"input must be a dict or a {self.cls.__name__} instance, got {type(value).__name__}"
        )

    def missing_required(self, values: dict[str, Any]) -> list[str]:
        if self.kind == "typeddict":
            return []
        return [k for k, ch in self.channels.items() if ch.required and k not in values]

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


