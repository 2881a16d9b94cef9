"""JSON schemas of tool arguments, from type hints and Google-style docstrings.

:func:`analyze` reads a function's signature once and returns a :class:`Signature`: the
pydantic model that validates the model-visible arguments (built with
:func:`pydantic.create_model`), the injected parameters (graph state, run context, store) that
stay hidden from the model, and the description taken from the docstring.
:func:`json_schema` turns the pydantic model into the JSON schema sent to providers.
"""

from __future__ import annotations

import copy
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import typing_extensions
from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from graphflow import RunContext
from graphflow.errors import GraphflowError
from graphflow.graph.inject import INJECT_ATTR

__all__ = [
    "InjectedState",
    "InjectedStore",
    "Injection",
    "Param",
    "Signature",
    "ToolDefinitionError",
    "analyze",
    "json_schema",
    "parse_docstring",
]


class ToolDefinitionError(GraphflowError, ValueError):
    """A tool cannot be built from this function: bad name, unresolvable hints, ..."""


class InjectedState:
    """Marks a tool parameter that receives the graph state instead of a model argument.

    Use it as the annotation (``state: InjectedState``) or as ``Annotated`` metadata
    (``state: Annotated[dict, InjectedState]``). ``InjectedState("messages")`` injects one key of
    the state (``Annotated[list, InjectedState("messages")]``). A parameter named ``state`` is
    injected even without the marker. Injected parameters never appear in the schema and the
    model cannot set them.
    """

    __slots__ = ("key",)

    def __init__(self, key: str | None = None) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"InjectedState({self.key!r})" if self.key else "InjectedState()"


class InjectedStore:
    """Marks a tool parameter that receives the run's store object.

    The store is the run's (``ctx.store``: ``invoke(..., store=...)`` or
    ``compile(store=...)``); without one, ``ctx.context["store"]`` when the run's ``context=``
    is a mapping with a ``"store"`` key, else ``ctx.context.store``, else the parameter's default
    (or None). Use it as the annotation (``store: InjectedStore``) or as ``Annotated`` metadata
    (``store: Annotated[MyStore, InjectedStore]``). A parameter annotated with a
    :class:`graphflow.memory.BaseStore` class, or named ``store`` with no annotation, is
    injected the same way.
    """

    __slots__ = ()


Injection = Literal["state", "context", "store"]


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a tool function.

    Attributes:
        name: the parameter's name (and the argument's name in the schema).
        kind: the :class:`inspect.Parameter` kind (positional-only ones are passed by position).
        injected: None for an argument the model provides; else what is injected.
        default: the default value, or :data:`inspect.Parameter.empty`.
        state_key: for ``InjectedState("key")``, the state key to inject.
    """

    name: str
    kind: inspect._ParameterKind
    injected: Injection | None = None
    default: Any = inspect.Parameter.empty
    state_key: str | None = None


@dataclass(slots=True)
class Signature:
    """What :func:`analyze` learned about a tool function.

    Attributes:
        params: every parameter, in signature order (``*args``/``**kwargs`` are left out).
        model: the pydantic model validating the model-visible arguments (fields are named
            ``p0, p1, ...`` with the parameter names as aliases, so that any parameter name works).
        fields: pydantic field name -> parameter name.
        description: the docstring's first paragraph ("" without a docstring).
        arg_docs: parameter name -> description from the docstring's ``Args:`` section.
    """

    params: list[Param]
    model: type[BaseModel]
    fields: dict[str, str]
    description: str
    arg_docs: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- docstrings

_ARGS_HEADERS = {"args", "arguments", "parameters", "params", "keyword args",
                 "keyword arguments", "other parameters"}
_SECTION_HEADERS = _ARGS_HEADERS | {
    "returns", "return", "yields", "yield", "raises", "examples", "example", "note", "notes",
    "attributes", "see also", "warning", "warnings", "todo", "references", "methods",
}
_ENTRY = re.compile(r"^\*{0,2}(?P<name>\w+)\s*(?:\((?P<type>[^)]*)\))?\s*:\s*(?P<desc>.*)$")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _is_header(line: str) -> bool:
    text = line.strip()
    return text.endswith(":") and text[:-1].strip().lower() in _SECTION_HEADERS


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {argument: description}).

    The description is the first paragraph (its lines joined with spaces); argument
    descriptions come from an ``Args:`` (or ``Arguments:``/``Parameters:``) section, with
    continuation lines joined. ``name (type): text`` and ``name: text`` entries are understood.
    """
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    first: list[str] = []
    for line in lines:
        if not line.strip() or _is_header(line):
            break
        first.append(line.strip())
    description = " ".join(first)

    args: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not (_is_header(line) and line.strip()[:-1].strip().lower() in _ARGS_HEADERS):
            continue
        # cleandoc() dedents the lines after the first on their own: a header on the first
        # line has lost its relative indentation, so any indentation is inside its section.
        header_indent = _indent(line) if i > 1 else -1
        entry_indent: int | None = None
        current: str | None = None
        while i < len(lines):
            line = lines[i]
            if not line.strip():
                i += 1
                continue
            indent = _indent(line)
            if indent <= header_indent or (header_indent < 0 and _is_header(line)):
                break  # the section ended
            if entry_indent is None:
                entry_indent = indent
            match = _ENTRY.match(line.strip()) if indent <= entry_indent else None
            if match:
                current = match.group("name")
                args[current] = match.group("desc").strip()
            elif current is not None:
                args[current] = f"{args[current]} {line.strip()}".strip()
            i += 1
    return description, args


# --------------------------------------------------------------------------- hints

_TYPEDDICT_CACHE: dict[type, Any] = {}


def _is_typing_typeddict(tp: Any) -> bool:
    """A ``typing.TypedDict`` class (pydantic needs ``typing_extensions.TypedDict`` on 3.11)."""
    return (isinstance(tp, type) and typing.is_typeddict(tp)
            and type(tp).__module__ == "typing")


def _compat_typeddict(tp: type, seen: set[int]) -> Any:
    cached = _TYPEDDICT_CACHE.get(tp)
    if cached is not None:
        return cached
    if id(tp) in seen:  # a recursive TypedDict: leave it to pydantic
        return tp
    seen.add(id(tp))
    hints = typing.get_type_hints(tp, include_extras=True)
    fields: dict[str, Any] = {}
    for key, hint in hints.items():
        origin = get_origin(hint)
        if origin in (typing.Required, typing.NotRequired,
                      typing_extensions.Required, typing_extensions.NotRequired):
            hint = get_args(hint)[0]
        hint = compat_hint(hint, seen)
        if key in tp.__required_keys__:
            fields[key] = typing_extensions.Required[hint]
        else:
            fields[key] = typing_extensions.NotRequired[hint]
    new = typing_extensions.TypedDict(tp.__name__, fields)  # type: ignore[operator]
    new.__doc__ = tp.__doc__
    new.__module__ = tp.__module__
    new.__qualname__ = tp.__qualname__
    _TYPEDDICT_CACHE[tp] = new
    return new


def compat_hint(hint: Any, seen: set[int] | None = None) -> Any:
    """``hint`` with every ``typing.TypedDict`` replaced by a ``typing_extensions`` twin.

    Python 3.11's ``typing.TypedDict`` lacks what pydantic needs; users write it anyway.
    Hints without one are returned unchanged (the same object).
    """
    seen = set() if seen is None else seen
    if _is_typing_typeddict(hint):
        return _compat_typeddict(hint, seen)
    origin = get_origin(hint)
    if origin is None or origin is Literal:
        return hint
    args = get_args(hint)
    if origin is Annotated:
        inner = compat_hint(args[0], seen)
        return hint if inner is args[0] else Annotated[(inner, *hint.__metadata__)]
    new_args = tuple(compat_hint(a, seen) if not isinstance(a, list) else a for a in args)
    if all(n is o for n, o in zip(new_args, args, strict=True)):
        return hint
    if origin in (Union, types.UnionType):
        return Union[new_args]  # noqa: UP007 - rebuilding a union from a tuple of types
    try:
        return origin[new_args]
    except TypeError:  # an origin that cannot be subscripted again: keep the original
        return hint


def _strip_optional(hint: Any) -> Any:
    """``X | None`` -> ``X`` (for recognising ``RunContext | None``)."""
    if get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


def _injection(name: str, hint: Any, annotated: bool = True,
               ) -> tuple[Injection | None, str | None]:
    """What is injected into a parameter with this name and hint (None: a model argument)."""
    metadata: tuple[Any, ...] = ()
    base = hint
    if get_origin(hint) is Annotated:
        base = get_args(hint)[0]
        metadata = hint.__metadata__
    for marker in (*metadata, base, _strip_optional(base)):
        if marker is InjectedState:
            return "state", None
        if isinstance(marker, InjectedState):
            return "state", marker.key
        if marker is InjectedStore or isinstance(marker, InjectedStore):
            return "store", None
    target = _strip_optional(base)
    if isinstance(target, type) and issubclass(target, RunContext):
        return "context", None
    if isinstance(target, type) and getattr(target, INJECT_ATTR, None) == "store":
        return "store", None
    if name == "state":
        return "state", None
    if name == "store" and not annotated:
        return "store", None
    return None, None


def _annotated_description(hint: Any) -> bool:
    """Whether ``Annotated`` metadata already gives the field a description."""
    if get_origin(hint) is not Annotated:
        return False
    return any((isinstance(m, FieldInfo) and m.description) or isinstance(m, str)
               for m in hint.__metadata__)


def _string_description(hint: Any) -> tuple[Any, str | None]:
    """``Annotated[int, "text"]`` -> (``Annotated[int]`` without the string, "text")."""
    if get_origin(hint) is not Annotated:
        return hint, None
    texts = [m for m in hint.__metadata__ if isinstance(m, str)]
    if not texts:
        return hint, None
    rest = [m for m in hint.__metadata__ if not isinstance(m, str)]
    base = get_args(hint)[0]
    return (Annotated[(base, *rest)] if rest else base), texts[0]


def _hints(fn: Callable[..., Any], name: str) -> dict[str, Any]:
    target = fn
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        target = getattr(fn, "__call__", fn)  # noqa: B004 - callable objects: hints of __call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:  # NameError for an unresolvable forward reference, mostly
        raise ToolDefinitionError(
            f"tool {name!r}: cannot resolve the type hints of {fn!r} ({type(exc).__name__}: "
            f"{exc}); define the types the hints name at module level") from exc


def analyze(fn: Callable[..., Any], name: str) -> Signature:
    """Read ``fn``'s signature, hints and docstring (see :class:`Signature`)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ToolDefinitionError(f"tool {name!r}: cannot read the signature of {fn!r}: "
                                  f"{exc}") from exc
    hints = _hints(fn, name)
    description, arg_docs = parse_docstring(inspect.getdoc(fn))
    params: list[Param] = []
    definitions: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue  # not exposed to the model; nothing is passed to them
        hint = hints.get(p.name, Any)
        injected, key = _injection(p.name, hint, p.annotation is not p.empty)
        params.append(Param(p.name, p.kind, injected, p.default, key))
        if injected is not None:
            continue
        hint, text = _string_description(compat_hint(hint))
        doc = None if _annotated_description(hint) else (arg_docs.get(p.name) or text)
        default = ... if p.default is p.empty else p.default
        field_name = f"p{len(fields)}"
        fields[field_name] = p.name
        extra = {"description": doc} if doc else {}
        definitions[field_name] = (hint, Field(default, alias=p.name, **extra))
    config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=False)
    try:
        model = create_model(f"{name}_arguments", __config__=config, **definitions)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ToolDefinitionError(
            f"tool {name!r}: cannot build an argument model: {first} (argument types must be "
            f"JSON-describable: str, int, float, bool, Literal, enums, lists, dicts, "
            f"TypedDicts, pydantic models, ...; inject other objects with InjectedState, "
            f"RunContext or InjectedStore)") from exc
    return Signature(params, model, fields, description, arg_docs)


# --------------------------------------------------------------------------- JSON schema

# Keywords whose value is a schema / a list of schemas / a mapping name -> schema.
_SUB_SCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames",
               "unevaluatedItems", "unevaluatedProperties", "if", "then", "else")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _walk(node: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """Apply ``fn`` to every sub-schema of ``node`` (bottom-up), never to data values
    (``default``, ``enum``, ``const``, ``examples`` are left alone)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _SUB_SCHEMA:
        if isinstance(out.get(key), dict):
            out[key] = _walk(out[key], fn)
    for key in _SCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [_walk(s, fn) for s in out[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {k: _walk(s, fn) for k, s in out[key].items()}
    return fn(out)


def _drop_title(node: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node.get("title"), str):
        del node["title"]
    return node


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return ref[len("#/$defs/"):]
    return None


def _recursive_defs(defs: Mapping[str, Any]) -> set[str]:
    """The definitions that reach themselves through ``$ref`` (these must stay in ``$defs``)."""
    edges: dict[str, set[str]] = {}

    def refs(node: Any, acc: set[str]) -> set[str]:
        if isinstance(node, dict):
            name = _ref_name(node.get("$ref"))
            if name is not None:
                acc.add(name)
            for value in node.values():
                refs(value, acc)
        elif isinstance(node, list):
            for value in node:
                refs(value, acc)
        return acc

    for name, schema in defs.items():
        edges[name] = refs(schema, set())
    recursive: set[str] = set()
    for start in defs:
        stack, seen = list(edges.get(start, ())), set()
        while stack:
            cur = stack.pop()
            if cur == start:
                recursive.add(start)
                break
            if cur in seen:
                continue
            seen.add(cur)
            stack.extend(edges.get(cur, ()))
    return recursive


def _inline(node: Any, defs: Mapping[str, Any], keep: set[str]) -> Any:
    if isinstance(node, list):
        return [_inline(v, defs, keep) for v in node]
    if not isinstance(node, dict):
        return node
    name = _ref_name(node.get("$ref"))
    if name is not None and name in defs and name not in keep:
        merged = copy.deepcopy(_inline(defs[name], defs, keep))
        merged.update({k: _inline(v, defs, keep) for k, v in node.items() if k != "$ref"})
        return merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("default", "enum", "const", "examples"):
            out[key] = value  # data, not schemas
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {n: _inline(s, defs, keep) for n, s in value.items()}
        else:
            out[key] = _inline(value, defs, keep)
    return out


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of a tool's argument model, as providers want it.

    pydantic's schema, with the ``title`` keywords removed (noise for a model), references to
    non-recursive definitions inlined (some providers do not follow ``$ref``), and ``$defs``
    kept only for recursive types. Descriptions, defaults and the ``required`` list are kept.
    """
    schema = model.model_json_schema(by_alias=True, mode="validation")
    schema = _walk(schema, _drop_title)
    defs = schema.pop("$defs", {})
    keep = _recursive_defs(defs)
    schema = _inline(schema, defs, keep)
    if keep:
        schema["$defs"] = {name: _inline(defs[name], defs, keep) for name in sorted(keep)}
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema
