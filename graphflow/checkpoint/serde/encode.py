"""Encoding: :func:`dumps` and :func:`dumps_bytes`, and the error naming where a value fails.

One walk over the value (``_enc``) finds what needs a tag, checking whole lists at C speed, and
copies only the containers that change; the JSON library then writes the tree. When the walk
fails, the error names the path to the value (``messages[3].content``), a reference cycle, or
the nesting that is too deep.
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import json
import math
import sys
from collections.abc import Callable
from itertools import chain, repeat
from typing import Any

from ...types import Send
from .errors import SerializationError
from .json_format import TAG, _pydantic_core
from .registry import (
    _BY_NAME,
    _BY_TYPE,
    _KIND_ENUM,
    _KIND_PYDANTIC,
    _dotted,
    _Entry,
    _is_pydantic_class,
)


class _Fail(Exception):
    """Internal: an unsupported value; ``parts`` collects the path, innermost first."""

    def __init__(self, value: Any, hint: str) -> None:
        super().__init__(hint)
        self.value = value
        self.hint = hint
        self.parts: list[str] = []


_NONE_TYPE = type(None)
_SAFE = frozenset({str, bool, _NONE_TYPE})  # written as they are, whatever their value
_SCALARS = frozenset({str, int, bool, _NONE_TYPE})
_NUMBERS = frozenset({int, float, bool})
_STR_ONLY = frozenset({str})
_DICT_ONLY = frozenset({dict})
# Ints from 2**2000 (~600 digits) up are written as hex: Python refuses to convert ints of more
# than sys.get_int_max_str_digits() digits (4300 by default, 640 at the least) to and from str.
_BIG = 1 << 2000
_chain = chain.from_iterable
_isfinite = math.isfinite
_is_int = int.__instancecheck__


def _enc(x: Any) -> Any:
    """``x`` as a JSON-able tree; containers needing no change are returned as they are."""
    t = type(x)
    if t in _SAFE:
        return x
    if t is int:
        return x if -_BIG < x < _BIG else _enc_big_int(x)
    if t is float:
        return x if x - x == 0.0 else _enc_float(x)
    if t is list:
        return _enc_items(x)
    if t is dict:
        return _enc_dict(x)
    f = _ENCODERS.get(t)
    if f is not None:
        return f(x)
    entry = _BY_TYPE.get(t)
    if entry is not None:
        return _enc_registered(x, entry)
    if _load_lazy_encoders():
        f = _ENCODERS.get(t)
        if f is not None:
            return f(x)
    raise _Fail(x, _hint_for(x))


def _enc_items(seq: list[Any] | tuple[Any, ...]) -> list[Any] | tuple[Any, ...]:
    """The items of a list/tuple encoded; ``seq`` itself when none needed a change."""
    if not seq:
        return seq
    if _SAFE.issuperset(map(type, seq)):
        return seq
    if _NUMBERS.issuperset(map(type, seq)):
        try:
            if all(map(_isfinite, seq)):  # finite floats, and ints below 1e308
                return seq
        except OverflowError:  # an int beyond 1e308: check the items one by one
            pass
    elif _DICT_ONLY.issuperset(map(type, seq)) and _flat_plain_dicts(seq):
        return seq
    out = seq
    i = 0
    try:
        for i, x in enumerate(seq):
            t = type(x)
            if t in _SAFE or (t is int and -_BIG < x < _BIG):
                continue
            y = _enc_dict(x) if t is dict else _enc(x)
            if y is not x:
                if out is seq:
                    out = list(seq)
                out[i] = y  # type: ignore[index]
    except _Fail as e:
        e.parts.append(f"[{i}]")
        raise
    return out


def _flat_plain_dicts(dicts: list[Any] | tuple[Any, ...]) -> bool:
    """Whether these dicts (e.g. messages) need no change: str keys, no tag key, scalar values.

    Checked for all of them at once, without a Python-level step per dict.
    """
    types = set(map(type, _chain(map(dict.values, dicts))))
    if not types <= _SCALARS:
        return False
    if int in types:
        try:
            all(map(_isfinite, filter(_is_int, _chain(map(dict.values, dicts)))))
        except OverflowError:  # an int beyond 1e308
            return False
    return (_STR_ONLY.issuperset(map(type, _chain(dicts)))
            and not any(map(dict.__contains__, dicts, repeat(TAG))))


def _enc_dict(d: dict[Any, Any]) -> Any:
    if not d:
        return d
    if TAG in d or not _STR_ONLY.issuperset(map(type, d)):
        return _enc_pairs(d)
    if _SAFE.issuperset(map(type, d.values())):
        return d
    out = d
    k = ""
    try:
        for k, v in d.items():
            t = type(v)
            if t in _SAFE or (t is int and -_BIG < v < _BIG):
                continue
            y = _enc_dict(v) if t is dict else _enc(v)
            if y is not v:
                if out is d:
                    out = dict(d)
                out[k] = y
    except _Fail as e:
        e.parts.append("." + k)
        raise
    return out


def _key_part(k: Any) -> str:
    return "." + k if type(k) is str else f"[{k!r}]"


def _enc_pairs(d: dict[Any, Any]) -> dict[str, Any]:
    pairs = []
    for k, v in d.items():
        try:
            ek = _enc(k)
        except _Fail as e:
            e.hint = f"(it is a dict key) {e.hint}"
            e.parts.append(_key_part(k))
            raise
        try:
            ev = _enc(v)
        except _Fail as e:
            e.parts.append(_key_part(k))
            raise
        pairs.append([ek, ev])
    return {TAG: "dict", "v": pairs}


def _enc_big_int(x: int) -> dict[str, Any]:
    return {TAG: "int", "v": hex(x)}


def _enc_float(x: float) -> dict[str, Any]:
    return {TAG: "float", "v": "nan" if x != x else ("inf" if x > 0 else "-inf")}


def _enc_tuple(x: tuple[Any, ...]) -> dict[str, Any]:
    return {TAG: "tuple", "v": _enc_items(x)}


def _enc_set(x: set[Any] | frozenset[Any]) -> dict[str, Any]:
    items = list(x)
    types = set(map(type, items))
    if types == _STR_ONLY or types == {int}:
        items.sort()
        enc = _enc_items(items)
    else:  # mixed or unorderable items: order by their encoding, which is deterministic
        enc = list(_enc_items(items))
        enc.sort(key=_sort_key)
    return {TAG: "set" if type(x) is set else "frozenset", "v": enc}


def _sort_key(encoded: Any) -> str:
    return _ENCODER_ASCII.encode(encoded)


def _enc_bytes(x: bytes | bytearray) -> dict[str, Any]:
    return {TAG: "bytes" if type(x) is bytes else "bytearray",
            "v": binascii.b2a_base64(x, newline=False).decode("ascii")}


def _zone_key(tz: Any) -> str | None:
    zoneinfo = sys.modules.get("zoneinfo")
    if zoneinfo is not None and isinstance(tz, zoneinfo.ZoneInfo):
        return tz.key
    return None


def _enc_datetime(x: Any) -> dict[str, Any]:
    return _zoned({TAG: "datetime", "v": x.isoformat()}, x)


def _enc_time(x: Any) -> dict[str, Any]:
    return _zoned({TAG: "time", "v": x.isoformat()}, x)


def _zoned(out: dict[str, Any], x: Any) -> dict[str, Any]:
    if x.tzinfo is not None:
        key = _zone_key(x.tzinfo)
        if key is not None:
            out["tz"] = key
    if x.fold:
        out["fold"] = 1
    return out


def _enc_date(x: Any) -> dict[str, Any]:
    return {TAG: "date", "v": x.isoformat()}


def _enc_timedelta(x: Any) -> dict[str, Any]:
    return {TAG: "timedelta", "v": [x.days, x.seconds, x.microseconds]}


def _enc_uuid(x: Any) -> dict[str, Any]:
    return {TAG: "uuid", "v": str(x)}


def _enc_decimal(x: Any) -> dict[str, Any]:
    return {TAG: "decimal", "v": str(x)}


def _enc_send(x: Send) -> dict[str, Any]:
    node = x.node
    if type(node) is not str:
        raise _Fail(node, "a Send's node must be a str (a node name)")
    try:
        arg = _enc(x.arg)
    except _Fail as e:
        e.parts.append(".arg")
        raise
    return {TAG: "send", "v": [node, arg]}


def _enc_registered(x: Any, entry: _Entry) -> dict[str, Any]:
    if entry.kind == _KIND_ENUM:
        try:
            value = _enc(x.value)
        except _Fail as e:
            e.parts.append(".value")
            raise
        return {TAG: "enum", "t": entry.name, "v": value}
    if entry.kind == _KIND_PYDANTIC:
        data = x.__dict__
        fields = {k: data[k] for k in entry.fields if k in data}
        extra = x.__pydantic_extra__
        if extra:
            fields.update(extra)
        out = {TAG: "model", "t": entry.name, "v": _enc_dict(fields)}
        fields_set = x.__pydantic_fields_set__
        if fields_set != fields.keys():
            out["s"] = sorted(fields_set)
        return out
    fields = {k: getattr(x, k) for k in entry.fields}
    for k in entry.no_init:
        if hasattr(x, k):
            fields[k] = getattr(x, k)
    return {TAG: "model", "t": entry.name, "v": _enc_dict(fields)}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_set,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    Send: _enc_send,
}

# Modules whose types are encoded once the module is imported: until then no instance can exist,
# and not importing them keeps ``import graphflow`` fast.
_LAZY: dict[str, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
    "datetime": (("datetime", _enc_datetime), ("time", _enc_time),
                 ("date", _enc_date), ("timedelta", _enc_timedelta)),
    "uuid": (("UUID", _enc_uuid),),
    "decimal": (("Decimal", _enc_decimal),),
}


def _load_lazy_encoders() -> bool:
    """Add the encoders of newly imported modules; True if any was added."""
    added = False
    for modname in list(_LAZY):
        mod = sys.modules.get(modname)
        if mod is None:
            continue
        for attr, fn in _LAZY.pop(modname, ()):
            _ENCODERS[getattr(mod, attr)] = fn
        added = True
    return added


_JSON_TYPES = "dict (str keys), list, str, int, float, bool, None"


def _hint_for(x: Any) -> str:
    cls = type(x)
    name = cls.__name__
    what = ("an Enum" if isinstance(x, enum.Enum) else "a pydantic model"
            if _is_pydantic_class(cls) else "a dataclass" if dataclasses.is_dataclass(cls)
            else None)
    if what is not None:
        taken = _BY_NAME.get(cls.__qualname__)
        if taken is not None and taken.cls is not cls:
            return (f"{name} is {what} that is not registered for serialization, and its "
                    f"default name {cls.__qualname__!r} is taken by {_dotted(taken.cls)}: call "
                    f"register_type({name}, name={_dotted(cls)!r}) (any stable, unique name)")
        return (f"{name} is {what} that is not registered for serialization: call "
                f"register_type({name}) (or register_schema_types(<state schema>)) first")
    for base in (dict, list, str, float, int, tuple, set, frozenset, bytes):
        if isinstance(x, base):
            return (f"{name} is a subclass of {base.__name__} and would not come back as "
                    f"itself: convert it to a plain {base.__name__} ({base.__name__}(value))")
    if callable(x) or hasattr(x, "__next__") or hasattr(x, "__await__"):
        return ("functions, generators, coroutines and similar objects cannot be checkpointed: "
                "keep them out of the state (e.g. in the node's closure) or store data "
                "describing them instead")
    return (f"convert it to a JSON type ({_JSON_TYPES}), or make it a dataclass / pydantic "
            f"model and call register_type on it")


def _describe(x: Any) -> str:
    cls = type(x)
    mod = cls.__module__
    qual = cls.__qualname__ if mod in ("builtins", None) else f"{mod}.{cls.__qualname__}"
    return f"a value of type {qual}"


def _path(parts: list[str]) -> str:
    path = "".join(reversed(parts))
    return path[1:] if path.startswith(".") else path


def _fail_to_error(e: _Fail) -> SerializationError:
    path = _path(e.parts)
    where = path or "(top level)"
    return SerializationError(f"cannot serialize {_describe(e.value)} at {where}: {e.hint}",
                              path=path)


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False,
                            separators=(",", ":"))
_ENCODER_ASCII = json.JSONEncoder(allow_nan=False, check_circular=False, separators=(",", ":"))


def _encode_tree(value: Any) -> Any:
    try:
        return _enc(value)
    except _Fail as e:
        raise _fail_to_error(e) from None
    except RecursionError:
        raise _deep_error(value) from None


def _to_json(tree: Any, encoder: json.JSONEncoder) -> str:
    try:
        return encoder.encode(tree)
    except RecursionError:
        raise SerializationError("cannot serialize a value nested too deeply for JSON "
                                 "encoding; flatten the structure") from None


def _serialize(tree: Any) -> bytes:
    pc = _pydantic_core()
    if pc is not None:
        try:
            return pc.to_json(tree)
        except ValueError:  # a lone surrogate in a str: the stdlib escapes it
            pass
    text = _to_json(tree, _ENCODER)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a str: escape all non-ASCII
        return _to_json(tree, _ENCODER_ASCII).encode("ascii")


def dumps(value: Any) -> str:
    """``value`` as a JSON string (see the module docstring for the format).

    The string encodes to valid UTF-8. Raises :class:`SerializationError` (a ``TypeError``)
    naming the path of the first value that cannot be serialized.
    """
    return _serialize(_encode_tree(value)).decode("utf-8")


def dumps_bytes(value: Any) -> bytes:
    """``value`` as UTF-8 encoded JSON; see :func:`dumps`."""
    return _serialize(_encode_tree(value))


def dumps_each(values: list[Any]) -> list[bytes]:
    """Each of ``values`` as :func:`dumps_bytes` writes it, with one walk over them all
    (cheaper than a call each for many small values, e.g. the records of a batch)."""
    return list(map(_serialize, _encode_tree(values)))


def _deep_error(value: Any) -> SerializationError:
    path = _find_cycle(value)
    if path is not None:
        return SerializationError(
            f"cannot serialize a value containing a reference cycle: the value at "
            f"{path or '(top level)'} is one of the containers enclosing it; checkpoint data must "
            f"be a tree",
            path=path,
        )
    return SerializationError(
        "cannot serialize a value nested deeper than Python's recursion limit; flatten it"
    )


def _children(x: Any) -> list[tuple[str, Any]]:
    t = type(x)
    if t is list or t is tuple:
        return [(f"[{i}]", v) for i, v in enumerate(x)]
    if t is dict:
        return [(_key_part(k), v) for k, v in x.items()]
    if t is Send:
        return [(".arg", x.arg)]
    entry = _BY_TYPE.get(t)
    if entry is not None and entry.kind != _KIND_ENUM:
        return [("." + k, getattr(x, k, None)) for k in entry.fields + entry.no_init]
    return []


def _find_cycle(value: Any) -> str | None:
    """The path of a container that contains itself, found without recursion; None if none."""
    on_path = {id(value)}
    frames: list[tuple[int, str, Any]] = [(id(value), "", iter(_children(value)))]
    while frames:
        ident, path, it = frames[-1]
        child = next(it, None)
        if child is None:
            frames.pop()
            on_path.discard(ident)
            continue
        part, node = child
        grandchildren = _children(node)
        if not grandchildren:
            continue
        child_path = path + part
        if id(node) in on_path:
            return _path([child_path])
        on_path.add(id(node))
        frames.append((id(node), child_path, iter(grandchildren)))
    return None
