"""Compile a type annotation into a fast ``value -> bool`` check (shallow, prepared once).

Checks are shallow on purpose: ``list[int]`` checks ``isinstance(v, list)`` and not every item, so
a step costs the same whatever the size of the state.
"""

from __future__ import annotations

import collections.abc as cabc
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, Literal, Union, get_args, get_origin

Check = Callable[[Any], bool]

_ABC_ORIGINS = {
    cabc.Sequence: cabc.Sequence,
    cabc.MutableSequence: cabc.MutableSequence,
    cabc.Mapping: cabc.Mapping,
    cabc.MutableMapping: cabc.MutableMapping,
    cabc.Set: cabc.Set,
    cabc.Iterable: cabc.Iterable,
    cabc.Collection: cabc.Collection,
}


def is_typeddict(tp: Any) -> bool:
    """Whether ``tp`` is a TypedDict class, from ``typing`` or ``typing_extensions`` (whose
    TypedDicts ``typing.is_typeddict`` does not recognize before Python 3.13)."""
    if typing.is_typeddict(tp):
        return True
    ext = sys.modules.get("typing_extensions")  # a class made by it means it is imported
    return ext is not None and ext.is_typeddict(tp)


def strip_annotated(tp: Any) -> Any:
    """``Annotated[T, ...]`` -> ``T`` (and ``Required[T]`` / ``NotRequired[T]`` -> ``T``)."""
    while get_origin(tp) in (typing.Annotated, typing.Required, typing.NotRequired):
        tp = get_args(tp)[0]
    return tp


def describe(tp: Any) -> str:
    """A short human name of a type annotation."""
    tp = strip_annotated(tp)
    if isinstance(tp, type) and not get_args(tp):
        return tp.__name__
    return repr(tp).replace("typing.", "")


def article(word: str) -> str:
    """``word`` with its indefinite article: "an int", "a str", "an Order", "a UUID"."""
    low = word.lower()
    vowel = low[:1] in ("a", "e", "i", "o") or (
        low[:1] == "u" and not low.startswith(("uni", "use", "usa", "usu", "uti", "uuid", "ur")))
    return f"{'an' if vowel else 'a'} {word}"


def make_check(tp: Any) -> Check | None:
    """Return a predicate accepting values of ``tp``, or None when anything goes."""
    tp = strip_annotated(tp)
    if tp is Any or tp is object or isinstance(tp, (typing.TypeVar, str, typing.ForwardRef)):
        return None
    if tp is None or tp is type(None):
        return lambda v: v is None
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        return lambda v: any(v == a and type(v) is type(a) for a in allowed)
    if origin is Union or origin is types.UnionType:
        checks = [make_check(a) for a in get_args(tp)]
        if any(c is None for c in checks):
            return None
        return lambda v: any(c(v) for c in checks)  # type: ignore[misc]
    if origin is not None:
        if origin is typing.ClassVar or origin is typing.Final:
            return make_check(get_args(tp)[0])
        if origin is type:
            return lambda v: isinstance(v, type)
        target = _ABC_ORIGINS.get(origin, origin)
        if isinstance(target, type):
            return _isinstance_check(target)
        return None
    if hasattr(tp, "__supertype__"):  # typing.NewType
        return make_check(tp.__supertype__)
    if is_typeddict(tp):
        return lambda v: isinstance(v, dict)
    if isinstance(tp, type):
        return _isinstance_check(tp)
    return None


def _isinstance_check(cls: type) -> Check:
    if cls is float:
        return lambda v: type(v) is float or (isinstance(v, (int, float)) and type(v) is not bool)
    if cls is complex:
        return lambda v: isinstance(v, (int, float, complex)) and type(v) is not bool
    if cls is int:
        return lambda v: type(v) is int or (isinstance(v, int) and type(v) is not bool)
    return lambda v: type(v) is cls or isinstance(v, cls)


_EMPTY_FACTORIES: dict[Any, Callable[[], Any]] = {
    list: list,
    dict: dict,
    set: set,
    frozenset: frozenset,
    tuple: tuple,
    int: int,
    float: float,
    str: str,
    bytes: bytes,
    cabc.Sequence: list,
    cabc.MutableSequence: list,
    cabc.Mapping: dict,
    cabc.MutableMapping: dict,
}


def empty_factory(tp: Any) -> Callable[[], Any] | None:
    """The empty value a reducer key starts from (``list[int]`` -> ``list``), if there is one."""
    tp = strip_annotated(tp)
    return _EMPTY_FACTORIES.get(get_origin(tp) or tp)
