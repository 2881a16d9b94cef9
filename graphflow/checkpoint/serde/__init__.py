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

Stored data is untrusted input: pydantic models are rebuilt through their validation
(``model_validate``), dataclasses only from their own fields, time-zone keys only when they name
a zone that exists (checked before ``ZoneInfo`` sees them), and numbers are bounded
(:data:`~.decode.MAX_INT_DIGITS`, :data:`~.decode.MAX_NUMBER_CHARS`,
:data:`~.decode.MAX_DECIMAL_EXPONENT`), so reading hostile data fails fast with a
:class:`SerializationError` ("corrupted checkpoint data: ...").

Anything else raises :class:`SerializationError` naming where in the value it sits, e.g.
``messages[3].content``. Types are matched exactly: subclasses of dict, list, str, int, float,
... (``OrderedDict``, a ``str`` subclass, a subclass of a registered class) are refused rather
than silently coming back as something else.

Speed: one walk over the value finds what needs a tag, checking whole lists (of strings, numbers
or flat dicts) at C speed, and copies only the containers that change; pydantic_core's JSON
writer and parser (pydantic is a dependency) do the rest, with the stdlib json module as the
fallback (lone surrogates, nesting deeper than pydantic_core allows). Decoding revives tags
bottom-up in the freshly parsed tree.

The package: :mod:`.registry` (the registered classes), :mod:`.encode` (:func:`dumps`),
:mod:`.decode` (:func:`loads`), :mod:`.json_format` (the tag key and the JSON library both
directions use) and :mod:`.errors` (:class:`SerializationError`).
"""

from __future__ import annotations

from .decode import loads, loads_bytes, loads_each
from .encode import dumps, dumps_bytes, dumps_each
from .errors import SerializationError
from .json_format import TAG as TAG
from .registry import _BY_TYPE as _BY_TYPE
from .registry import register_schema_types, register_type, registered

__all__ = [
    "SerializationError",
    "dumps",
    "dumps_bytes",
    "dumps_each",
    "loads",
    "loads_bytes",
    "loads_each",
    "register_schema_types",
    "register_type",
    "registered",
]
