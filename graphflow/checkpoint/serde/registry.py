"""The type registry: the Enums, pydantic models and dataclasses checkpoint data may hold.

Each class is registered under a stable name (:func:`register_type`, or
:func:`register_schema_types` for every class a state schema's type hints mention). Encoding
writes that name; decoding looks it up here and nowhere else.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import threading
import typing
from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T", bound=type)

_KIND_ENUM = "enum"
_KIND_PYDANTIC = "pydantic"
_KIND_DATACLASS = "dataclass"


class _Entry:
    """How one registered class is written and rebuilt."""

    __slots__ = ("_validate", "all_fields", "cls", "fields", "kind", "name", "no_init")

    def __init__(self, cls: type, name: str, kind: str, fields: tuple[str, ...] = (),
                 no_init: tuple[str, ...] = ()) -> None:
        self.cls = cls
        self.name = name
        self.kind = kind
        self.fields = fields  # pydantic: field names; dataclass: fields taking part in __init__
        self.no_init = no_init  # dataclass fields with init=False (set after construction)
        self.all_fields = frozenset(fields + no_init)
        self._validate: Callable[[dict[str, Any]], Any] | None = None

    def validate(self, fields: dict[str, Any]) -> Any:
        """A pydantic model built from its fields (by name) through its validation."""
        validate = self._validate
        if validate is None:
            validate = self._validate = _model_validator(self.cls)
        return validate(fields)


def _model_validator(cls: Any) -> Callable[[dict[str, Any]], Any]:
    """How to validate a pydantic model from field values keyed by field *name* (what the
    encoder writes), whatever the model's aliases."""
    if getattr(cls, "__pydantic_root_model__", False):
        return lambda fields: cls.model_validate(fields["root"])
    renamed: dict[str, str] = {}  # field name -> the key validation expects (an alias)
    if not cls.model_config.get("populate_by_name") and not cls.model_config.get(
            "validate_by_name"):
        for fname, info in cls.model_fields.items():
            alias = info.validation_alias if info.validation_alias is not None else info.alias
            if isinstance(alias, str) and alias != fname:
                renamed[fname] = alias
            elif alias is not None and not isinstance(alias, str):  # AliasPath / AliasChoices
                return lambda fields: cls.model_validate(fields, by_name=True)  # pydantic 2.11+
    if not renamed:
        return cls.model_validate
    return lambda fields: cls.model_validate({renamed.get(k, k): v for k, v in fields.items()})


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


def _register_library_types() -> None:
    """The library's own stored types (messages join them with the LLM layer)."""
    from ...engine.interrupts import Interrupt
    from ...engine.waits import Wait

    register_type(Interrupt, "graphflow.Interrupt")
    register_type(Wait, "graphflow.Wait")


_register_library_types()
