"""Decoding: :func:`loads` and :func:`loads_bytes`.

The JSON library parses the text; tags are then revived bottom-up in the freshly parsed tree,
registered classes by the name written into the data (see :mod:`.registry`).
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Callable
from itertools import chain, repeat
from typing import Any

from ...types import Send
from .errors import SerializationError
from .json_format import TAG, _pydantic_core
from .registry import _BY_NAME, _KIND_ENUM, _KIND_PYDANTIC, _Entry

MAX_INT_DIGITS = 5_000
"""Longest integer literal read from JSON, in digits (graphflow itself writes at most ~600: larger
integers are hex-tagged). Converting decimal digits to an int takes time quadratic in their
number, so longer literals are refused at once as corrupted data."""

MAX_NUMBER_CHARS = 5_000
"""Longest text of a tagged ``Decimal`` accepted."""

MAX_DECIMAL_EXPONENT = 999_999
"""Largest (adjusted) exponent of a ``Decimal`` accepted either way: the range of the default
``decimal`` context, beyond which arithmetic overflows (and ``int(d)`` would build a huge
number)."""

_STR_ONLY = frozenset({str})

_KIND_NAMES = {"enum": "an Enum", "pydantic": "a pydantic model", "dataclass": "a dataclass"}


def _dec_registered(d: dict[str, Any], tag: str) -> Any:
    name = d["t"]
    entry = _BY_NAME.get(name) if type(name) is str else None
    if entry is None:
        raise SerializationError(
            f"cannot load a value tagged {tag!r} of type {name!r}: no class is registered under "
            f"that name. Register it with register_type(cls, name={name!r}) (or "
            f"register_schema_types(<state schema>)) before loading; graphflow never imports "
            f"classes named in checkpoint data"
        )
    if (tag == "enum") != (entry.kind == _KIND_ENUM):
        raise SerializationError(
            f"corrupted checkpoint data: a value tagged {tag!r} names {name!r}, which is "
            f"registered as {_KIND_NAMES.get(entry.kind, entry.kind)}"
        )
    cls: Any = entry.cls
    v = d["v"]
    if entry.kind == _KIND_ENUM:
        return cls(v)
    if type(v) is not dict:
        raise ValueError(f"fields must be an object, got {type(v).__name__}")
    if entry.kind == _KIND_PYDANTIC:
        return _validated_model(entry, v, d.get("s"))
    unknown = v.keys() - entry.all_fields
    if unknown:
        raise ValueError(f"{name!r} has no field(s) {sorted(map(str, unknown))}")
    obj = cls(**{k: v[k] for k in entry.fields if k in v})
    for k in entry.no_init:
        if k in v:
            object.__setattr__(obj, k, v[k])
    return obj


def _validated_model(entry: _Entry, fields: dict[str, Any], fields_set: Any) -> Any:
    """A registered pydantic model rebuilt from stored fields *through its validation*
    (stored data is untrusted input): a field of the wrong type, a failing validator or a
    forbidden extra is an error, as it would be for ``Model(**fields)`` in user code."""
    if fields_set is not None and not (type(fields_set) is list
                                       and _STR_ONLY.issuperset(map(type, fields_set))):
        raise ValueError("the set fields ('s') must be a list of field names")
    obj = entry.validate(fields)
    if fields_set is not None:  # which fields the user set explicitly, as encoded
        object.__setattr__(obj, "__pydantic_fields_set__", set(fields_set))
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
        value = value.replace(tzinfo=_zone(key))
    if d.get("fold"):
        value = value.replace(fold=1)
    return value


# An IANA time-zone key: "UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5".
# No dots (so no "..", no module-like names), no leading "/" (no absolute paths), no empty parts.
_ZONE_PART = r"[A-Za-z0-9_+][A-Za-z0-9_+-]{0,29}"
_ZONE_KEY = rf"{_ZONE_PART}(?:/{_ZONE_PART}){{0,3}}"
_ZONES_OK: set[str] = set()  # keys found to name a zone (at most the few hundred that exist)
_TZDATA_ZONES: frozenset[str] | None = None


def _zone(key: Any) -> Any:
    """The ``ZoneInfo`` for a stored zone key, accepted only if it names a zone that exists.

    ``ZoneInfo(key)`` looks ``key`` up as a file under ``zoneinfo.TZPATH`` and then imports
    ``tzdata.zoneinfo.<parts of key>`` packages: so a stored key is first checked to be a
    well-formed IANA name, then found as a file in TZPATH or in the list of zones the
    ``tzdata`` package ships, and only then handed to ``ZoneInfo`` (which caches it, so equal
    keys give the same object, as in user code).
    """
    from zoneinfo import ZoneInfo

    if type(key) is str and key in _ZONES_OK:
        return ZoneInfo(key)
    if type(key) is not str or not re.fullmatch(_ZONE_KEY, key):
        raise ValueError(f"{key!r} is not a time-zone name")
    if not _zone_exists(key):
        raise ValueError(f"no time zone is named {key!r} here")
    zone = ZoneInfo(key)
    _ZONES_OK.add(key)
    return zone


def _zone_exists(key: str) -> bool:
    import os
    import zoneinfo

    for root in zoneinfo.TZPATH:
        if os.path.isfile(os.path.join(root, key)):
            return True
    return key in _tzdata_zones()


def _tzdata_zones() -> frozenset[str]:
    """The zone names the ``tzdata`` package ships (empty if it is not installed)."""
    global _TZDATA_ZONES
    if _TZDATA_ZONES is None:
        try:
            from importlib import resources

            text = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
        except (ImportError, OSError, ValueError):
            _TZDATA_ZONES = frozenset()
        else:
            _TZDATA_ZONES = frozenset(text.split())
    return _TZDATA_ZONES


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
    if len(v) > MAX_NUMBER_CHARS:
        raise ValueError(f"a decimal of {len(v)} characters; at most {MAX_NUMBER_CHARS} are "
                         f"accepted")
    value = Decimal(v)
    if value.is_finite() and not -MAX_DECIMAL_EXPONENT <= value.adjusted() <= \
            MAX_DECIMAL_EXPONENT:
        raise ValueError(f"a decimal with the exponent {value.adjusted()}; at most "
                         f"{MAX_DECIMAL_EXPONENT} either way is accepted")
    return value


def _dec_float(d: dict[str, Any]) -> float:
    v = d["v"]
    if v not in ("nan", "inf", "-inf"):
        raise ValueError(f"unknown float {v!r}")
    return float(v)


def _dec_int(d: dict[str, Any]) -> int:
    v = d["v"]
    if type(v) is not str:
        raise ValueError("a big int must be a hex str")
    return int(v, 16)  # linear time in the length (a power-of-two base)


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


_PLAIN = frozenset({str, int, float, bool, type(None)})
_TAG_BYTES = TAG.encode()
_DICT_ONLY = frozenset({dict})
_chain = chain.from_iterable


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
    """A JSON integer literal (the stdlib path): bounded, so hostile data cannot make reading
    slow (``int(str)`` is quadratic in the digits; Python guards it, and so do we)."""
    if len(s) < 4000:
        return int(s)
    if len(s) > MAX_INT_DIGITS + (s[0] == "-"):
        raise SerializationError(
            f"corrupted checkpoint data: an integer literal of {len(s)} characters; at most "
            f"{MAX_INT_DIGITS} digits are accepted (graphflow writes integers from 2**2000 up "
            f"as hex-tagged values)")
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


def loads_each(datas: list[bytes]) -> list[Any]:
    """The values :func:`dumps_each` wrote as ``datas``, parsed each, revived in one walk;
    see :func:`loads`."""
    pc = _pydantic_core()
    if pc is not None:
        try:
            trees = list(map(pc.from_json, datas))
        except ValueError:  # one is invalid or beyond its limits: each on its own, below
            pass
        else:
            blob = b"".join(datas)
            if _TAG_BYTES not in blob and b"\\u" not in blob:
                return trees  # no tag can be in them (a key spells it, or escapes a letter)
            return _revive(trees)  # type: ignore[no-any-return]
    return [loads_bytes(d) for d in datas]
