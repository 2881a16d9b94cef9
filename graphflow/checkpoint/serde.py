"""Serialization of checkpoint data: JSON with tags for the types JSON lacks.

Plain JSON values (dicts with str keys, lists, str, int, float, bool, None) are written as they
are. Everything else is tagged as ``{"__gf__": TAG, "v": ...}``::

    tuple / set / frozenset   {"__gf__": "tuple", "v": [...]}   (sets in a deterministic order)
    bytes / bytearray         {"__gf__": "bytes", "v": "<base64>"}
    datetime / date / time    {"__gf__": "datetime", "v": "<isoformat>"}  (+ "tz": zone key,
                              "fold": 1 when they matter)
    timedelta                 {"__gf__": "timedelta", "v": [days, seconds, microseconds]}
    UUID / Decimal            {"__gf__": "uuid", "v": "<str>"}   ("decimal": exact str)
    float nan / inf / -inf    {"__gf__": "float", "v": "nan"}   (the JSON stays standard)
    int with |i| >= 2**2000   {"__gf__": "int", "v": "<hex>"}   (str(int) has limits)
    dict with a non-str key,
    or with a "__gf__" key    {"__gf__": "dict", "v": [[key, value], ...]}
    Enum member               {"__gf__": "enum", "t": NAME, "v": value}
    pydantic model/dataclass  {"__gf__": "model", "t": NAME, "v": {field: value, ...}}
    Send                      {"__gf__": "send", "v": [node, arg]}

Enums, pydantic models and dataclasses must be registered first (:func:`register_type`, or
:func:`register_schema_types` for everything a state schema mentions). Decoding looks names up
in that registry only: it never imports a module or resolves a class by a name read from data.

Anything else raises :class:`SerializationError` naming where in the value it sits, e.g.
``messages[3].content``. Types are matched exactly: subclasses of dict, list, str, int, float,
... (``OrderedDict``, a ``str`` subclass, a subclass of a registered class) are refused rather
than silently coming back as something else.

Speed: one walk over the value finds what needs a tag, checking whole lists (of strings, numbers
or flat dicts) at C speed, and copies only the containers that change; pydantic_core's JSON
writer and parser (pydantic is a dependency) do the rest, with the stdlib json module as the
fallback (lone surrogates, nesting deeper than pydantic_core allows). Decoding revives tags
bottom-up in the freshly parsed tree.
"""

from __future__ import annotations

import binascii
import dataclasses
import enum
import json
import math
import sys
import threading
import typing
from collections.abc import Callable
from itertools import chain, repeat
from typing import Any, TypeVar, overload

from ..errors import GraphflowError
from ..types import Send

__all__ = [
    "SerializationError",
    "dumps",
    "dumps_bytes",
    "loads",
    "loads_bytes",
    "register_schema_types",
    "register_type",
    "registered",
]

T = TypeVar("T", bound=type)

TAG = "__gf__"


class SerializationError(GraphflowError, TypeError):
    """A value cannot be written to, or read back from, checkpoint data.

    Attributes:
        path: where in the value the problem is, e.g. ``"messages[3].content"`` (dict keys and
            fields joined with ``.``, list and tuple indexes in brackets); ``""`` for the value
            itself, and for errors while decoding.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


# -- the registry -----------------------------------------------------------------------------

_KIND_ENUM = "enum"
_KIND_PYDANTIC = "pydantic"
_KIND_DATACLASS = "dataclass"


class _Entry:
    """How one registered class is written and rebuilt."""

    __slots__ = ("cls", "fields", "kind", "name", "no_init")

    def __init__(self, cls: type, name: str, kind: str, fields: tuple[str, ...] = (),
                 no_init: tuple[str, ...] = ()) -> None:
        self.cls = cls
        self.name = name
        self.kind = kind
        self.fields = fields  # pydantic: field names; dataclass: fields taking part in __init__
        self.no_init = no_init  # dataclass fields with init=False (set after construction)


_BY_NAME: dict[str, _Entry] = {}
_BY_TYPE: dict[type, _Entry] = {}
_LOCK = threading.Lock()


def _pydantic_base() -> type | None:
    mod = sys.modules.get("pydantic")  # a pydantic class or instance means pydantic is imported
    return getattr(mod, "BaseModel", None) if mod else None


def _is_pydantic_class(cls: Any) -> bool:
    base = _pydantic_base()
    return base is not None and isinstance(cls, type) and issubclass(cls, base) and cls is not base


def _kind_of(cls: type) -> str | None:
    if issubclass(cls, enum.Enum):
        return _KIND_ENUM
    if _is_pydantic_class(cls):
        return _KIND_PYDANTIC
    if dataclasses.is_dataclass(cls):
        return _KIND_DATACLASS
    return None


def _make_entry(cls: type, name: str, kind: str) -> _Entry:
    if kind == _KIND_PYDANTIC:
        return _Entry(cls, name, kind, tuple(cls.model_fields))
    if kind == _KIND_DATACLASS:
        fs = dataclasses.fields(cls)
        return _Entry(cls, name, kind, tuple(f.name for f in fs if f.init),
                      tuple(f.name for f in fs if not f.init))
    return _Entry(cls, name, kind)


@overload
def register_type(cls: T, name: str | None = None) -> T: ...
@overload
def register_type(cls: None = None, name: str | None = None) -> Callable[[T], T]: ...


def register_type(cls: T | None = None, name: str | None = None) -> T | Callable[[T], T]:
    """Allow instances of ``cls`` (an Enum, a pydantic model or a dataclass) in checkpoints.

    ``name`` is the stable name written into the data (default ``cls.__qualname__``); keep it
    when renaming or moving the class, or old checkpoints no longer load. Use as a function or a
    decorator (``@register_type`` or ``@register_type(name="billing.Invoice")``). Returns ``cls``.

    Registering a class again is a no-op; so is registering a class that redefines the
    registered one (same module and qualified name, e.g. a re-run notebook cell), which then
    replaces it. Raises ``ValueError`` if ``name`` is taken by another class or ``cls`` is
    already registered under another name, and ``TypeError`` for an unsupported class.
    """
    if cls is None:
        return lambda c: register_type(c, name)
    if not isinstance(cls, type):
        raise TypeError(f"register_type expects a class, got {cls!r}")
    kind = _kind_of(cls)
    if kind is None:
        raise TypeError(
            f"register_type supports Enum classes, pydantic models and dataclasses, not "
            f"{cls.__qualname__}; convert its instances to JSON types (or to a dataclass) "
            f"before putting them into the state"
        )
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"register_type name must be a non-empty str, got {name!r}")
    with _LOCK:
        current = _BY_TYPE.get(cls)
        if current is not None and _BY_NAME.get(current.name) is current:
            if name is None or name == current.name:
                return cls
            raise ValueError(
                f"{cls.__qualname__} is already registered for serialization as "
                f"{current.name!r}; it cannot also be registered as {name!r}"
            )
        key = cls.__qualname__ if name is None else name
        other = _BY_NAME.get(key)
        if other is not None and other.cls is not cls and not _redefines(cls, other.cls):
            raise ValueError(
                f"cannot register {_dotted(cls)} for serialization as {key!r}: that name is "
                f"taken by {_dotted(other.cls)}. Register one of them under another stable "
                f"name first, e.g. register_type({cls.__name__}, name={_dotted(cls)!r})"
            )
        entry = _make_entry(cls, key, kind)
        _BY_NAME[key] = entry
        _BY_TYPE[cls] = entry
    return cls


def _dotted(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _redefines(new: type, old: type) -> bool:
    return new.__module__ == old.__module__ and new.__qualname__ == old.__qualname__


def registered(name: str) -> type | None:
    """The class registered under ``name``, or None."""
    entry = _BY_NAME.get(name)
    return entry.cls if entry is not None else None


def register_schema_types(annotation: Any) -> list[type]:
    """Register every Enum, pydantic model and dataclass that ``annotation`` mentions.

    Walks ``Annotated``, ``Optional``/``Union``, generic containers (``list[...]``,
    ``dict[...]``, ...), ``Literal`` enum members, TypedDict keys and the fields of pydantic
    models and dataclasses, recursively; a pydantic or dataclass schema is registered itself.
    Classes already registered (under any name) are left as they are; the others are registered
    under their module-qualified name (``pkg.graphs.State``), so two modules' ``State`` classes
    never clash and the name written into stored data does not depend on which graph happened
    to be compiled first. (``register_type`` by hand keeps its short default name.) Returns the
    classes found, in discovery order.
    """
    found: list[type] = []
    _walk(annotation, set(), found)
    for cls in found:
        if cls not in _BY_TYPE:
            register_type(cls, name=_dotted(cls))
    return found


def _walk(tp: Any, seen: set[type], found: list[type]) -> None:
    if tp is None or isinstance(tp, (str, typing.ForwardRef, typing.TypeVar)):
        return
    if isinstance(tp, (list, tuple)):  # Callable[[args], result]
        for item in tp:
            _walk(item, seen, found)
        return
    supertype = getattr(tp, "__supertype__", None)  # NewType
    if supertype is not None:
        _walk(supertype, seen, found)
        return
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        _walk(tp.__origin__, seen, found)
        return
    if origin is typing.Literal:
        for value in typing.get_args(tp):
            if isinstance(value, enum.Enum):
                _walk(type(value), seen, found)
        return
    if origin is not None:
        if isinstance(origin, type):
            _walk(origin, seen, found)  # a generic dataclass / class parametrized
        for arg in typing.get_args(tp):
            _walk(arg, seen, found)
        return
    if not isinstance(tp, type) or tp in seen:
        return
    seen.add(tp)
    if typing.is_typeddict(tp):
        for hint in _hints(tp).values():
            _walk(hint, seen, found)
    elif issubclass(tp, enum.Enum):
        if len(tp.__members__):  # Enum, IntEnum, ...: bases without members have no instances
            found.append(tp)
    elif _is_pydantic_class(tp):
        if not tp.__module__.startswith("pydantic."):  # RootModel and the like
            found.append(tp)
        hints = _hints(tp)
        for fname, field in tp.model_fields.items():
            _walk(hints.get(fname, field.annotation), seen, found)
    elif dataclasses.is_dataclass(tp):
        found.append(tp)
        hints = _hints(tp)
        for f in dataclasses.fields(tp):
            _walk(hints.get(f.name, f.type), seen, found)


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # some forward reference does not resolve: resolve the others one by one
        pass
    import inspect

    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = sys.modules.get(klass.__module__)
        globalns = dict(getattr(module, "__dict__", {}))
        for name, ann in inspect.get_annotations(klass).items():
            if isinstance(ann, str):  # source code of the class, as get_type_hints does it
                try:
                    ann = eval(ann, globalns, dict(vars(klass)))
                except Exception:
                    continue
            hints[name] = ann
    return hints


# -- encoding -----------------------------------------------------------------------------------

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


def _pydantic_core() -> Any:
    """pydantic_core (a dependency of pydantic) for its fast JSON, imported on first use."""
    global _PC
    if _PC is _UNSET:
        try:
            import pydantic_core
        except ImportError:  # pragma: no cover - pydantic is a dependency of graphflow
            pydantic_core = None
        _PC = pydantic_core if hasattr(pydantic_core, "from_json") else None
    return _PC


_UNSET: Any = object()
_PC: Any = _UNSET  # the module, None (use the stdlib json module only), or _UNSET


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


# -- decoding -----------------------------------------------------------------------------------

def _dec_registered(d: dict[str, Any], tag: str) -> Any:
    name = d["t"]
    entry = _BY_NAME.get(name) if type(name) is str else None
    if entry is None:
        raise SerializationError(
            f"cannot load a {tag!r} value of type {name!r}: no class is registered under that "
            f"name. Register it with register_type(cls, name={name!r}) (or "
            f"register_schema_types(<state schema>)) before loading; graphflow never imports "
            f"classes named in checkpoint data"
        )
    if (tag == "enum") != (entry.kind == _KIND_ENUM):
        raise SerializationError(
            f"corrupted checkpoint data: a {tag!r} value names {name!r}, which is registered "
            f"as a {entry.kind}"
        )
    cls: Any = entry.cls
    v = d["v"]
    if entry.kind == _KIND_ENUM:
        return cls(v)
    if type(v) is not dict:
        raise ValueError(f"fields must be an object, got {type(v).__name__}")
    if entry.kind == _KIND_PYDANTIC:
        s = d.get("s")
        return cls.model_construct(_fields_set=set(v) if s is None else set(s), **v)
    obj = cls(**{k: v[k] for k in entry.fields if k in v})
    for k in entry.no_init:
        if k in v:
            object.__setattr__(obj, k, v[k])
    return obj


def _dec_datetime(d: dict[str, Any]) -> Any:
    from datetime import datetime

    value = datetime.fromisoformat(d["v"])
    return _with_zone(value, d)


def _dec_time(d: dict[str, Any]) -> Any:
    from datetime import time

    return _with_zone(time.fromisoformat(d["v"]), d)


def _with_zone(value: Any, d: dict[str, Any]) -> Any:
    key = d.get("tz")
    if key is not None:
        from zoneinfo import ZoneInfo

        value = value.replace(tzinfo=ZoneInfo(key))
    if d.get("fold"):
        value = value.replace(fold=1)
    return value


def _dec_date(d: dict[str, Any]) -> Any:
    from datetime import date

    return date.fromisoformat(d["v"])


def _dec_timedelta(d: dict[str, Any]) -> Any:
    from datetime import timedelta

    days, seconds, micro = d["v"]
    return timedelta(days=days, seconds=seconds, microseconds=micro)


def _dec_uuid(d: dict[str, Any]) -> Any:
    from uuid import UUID

    return UUID(d["v"])


def _dec_decimal(d: dict[str, Any]) -> Any:
    from decimal import Decimal

    v = d["v"]
    if type(v) is not str:
        raise ValueError("a decimal must be a str")
    return Decimal(v)


def _dec_float(d: dict[str, Any]) -> float:
    v = d["v"]
    if v not in ("nan", "inf", "-inf"):
        raise ValueError(f"unknown float {v!r}")
    return float(v)


def _dec_int(d: dict[str, Any]) -> int:
    v = d["v"]
    if type(v) is not str:
        raise ValueError("a big int must be a hex str")
    return int(v, 16)


def _dec_bytes(d: dict[str, Any]) -> bytes:
    return binascii.a2b_base64(d["v"], strict_mode=True)


def _dec_send(d: dict[str, Any]) -> Send:
    node, arg = d["v"]
    if type(node) is not str:
        raise ValueError("a Send's node must be a str")
    return Send(node, arg)


def _dec_list_of(d: dict[str, Any]) -> list[Any]:
    v = d["v"]
    if type(v) is not list:
        raise ValueError(f"expected a list, got {type(v).__name__}")
    return v


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "tuple": lambda d: tuple(_dec_list_of(d)),
    "set": lambda d: set(_dec_list_of(d)),
    "frozenset": lambda d: frozenset(_dec_list_of(d)),
    "dict": lambda d: dict(_dec_list_of(d)),
    "bytes": _dec_bytes,
    "bytearray": lambda d: bytearray(_dec_bytes(d)),
    "datetime": _dec_datetime,
    "date": _dec_date,
    "time": _dec_time,
    "timedelta": _dec_timedelta,
    "uuid": _dec_uuid,
    "decimal": _dec_decimal,
    "float": _dec_float,
    "int": _dec_int,
    "send": _dec_send,
    "enum": lambda d: _dec_registered(d, "enum"),
    "model": lambda d: _dec_registered(d, "model"),
}


def _hook(d: dict[str, Any]) -> Any:
    if TAG not in d:
        return d
    tag = d[TAG]
    decoder = _DECODERS.get(tag) if type(tag) is str else None
    if decoder is None:
        raise SerializationError(
            f"cannot load checkpoint data with the unknown tag {tag!r}: it was written by a "
            f"newer or different version of graphflow, or it is corrupted"
        )
    try:
        return decoder(d)
    except SerializationError:
        raise
    except Exception as e:
        raise SerializationError(
            f"corrupted checkpoint data: cannot decode a {tag!r} value "
            f"({type(e).__name__}: {e})"
        ) from e


_PLAIN = frozenset({str, int, float, bool, _NONE_TYPE})


def _revive(x: Any) -> Any:
    """Decode the tags of a freshly parsed JSON tree, bottom-up, in place."""
    t = type(x)
    if t is dict:
        if not _PLAIN.issuperset(map(type, x.values())):
            for k, v in x.items():
                tv = type(v)
                if tv is dict or tv is list:
                    x[k] = _revive(v)  # same keys: safe while iterating
        return _hook(x) if TAG in x else x
    if t is list and not _PLAIN.issuperset(map(type, x)):
        if (_DICT_ONLY.issuperset(map(type, x))
                and _PLAIN.issuperset(map(type, _chain(map(dict.values, x))))
                and not any(map(dict.__contains__, x, repeat(TAG)))):
            return x  # flat dicts without tags (e.g. messages)
        for i, v in enumerate(x):
            tv = type(v)
            if tv is dict:
                if _PLAIN.issuperset(map(type, v.values())):
                    if TAG in v:
                        x[i] = _hook(v)
                else:
                    x[i] = _revive(v)
            elif tv is list:
                x[i] = _revive(v)
    return x


def _parse_int(s: str) -> int:
    if len(s) < 4000:
        return int(s)
    from decimal import Decimal  # not subject to the int/str conversion limit

    return int(Decimal(s))


_DECODER = json.JSONDecoder(object_hook=_hook)
_DECODER_BIG_INTS = json.JSONDecoder(object_hook=_hook, parse_int=_parse_int)


def _parse(data: str | bytes) -> Any:
    pc = _pydantic_core()
    if pc is not None:
        try:
            tree = pc.from_json(data)
        except ValueError:  # invalid, or beyond its limits (nesting, huge ints): ask the stdlib
            pass
        else:
            return _revive(tree)
    if not isinstance(data, str):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SerializationError(f"corrupted checkpoint data: not valid UTF-8 ({e})") from e
    try:
        try:
            return _DECODER.decode(data)
        except SerializationError:
            raise
        except ValueError as e:
            if "integer string conversion" not in str(e):
                raise
            return _DECODER_BIG_INTS.decode(data)
    except SerializationError:
        raise
    except ValueError as e:  # JSONDecodeError
        raise SerializationError(f"corrupted checkpoint data: not valid JSON ({e})") from e
    except RecursionError:
        raise SerializationError("corrupted checkpoint data: nested too deeply to decode") from None


def loads(text: str) -> Any:
    """The value :func:`dumps` wrote as ``text``.

    Raises :class:`SerializationError` for malformed JSON ("corrupted ..."), an unknown tag, or
    a type name that is not registered.
    """
    if isinstance(text, str):
        return _parse(text)
    if isinstance(text, (bytes, bytearray, memoryview)):
        return loads_bytes(text)
    raise TypeError(f"loads expects a str, got {type(text).__name__}")


def loads_bytes(data: bytes | bytearray | memoryview) -> Any:
    """The value :func:`dumps_bytes` wrote as ``data`` (UTF-8 JSON); see :func:`loads`."""
    return _parse(data if type(data) is bytes else bytes(data))


def _register_library_types() -> None:
    """The library's own stored types (messages join them with the LLM layer)."""
    from ..engine.interrupts import Interrupt

    register_type(Interrupt, "graphflow.Interrupt")


_register_library_types()
