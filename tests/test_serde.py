"""graphflow.checkpoint.serde: tagged JSON for checkpoint data (docs/durability.md, Serialization).

The registry is process-wide, so every class registered here has a name no other test uses.
Many tests run against both JSON backends: pydantic_core (the default) and the stdlib json
module (the fallback when pydantic_core is missing or cannot write a value).
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import enum
import json
import math
import operator
import subprocess
import sys
import uuid
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, TypedDict

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphflow.checkpoint import serde
from graphflow.checkpoint.serde import (
    SerializationError,
    dumps,
    dumps_bytes,
    dumps_each,
    loads,
    loads_bytes,
    loads_each,
    register_schema_types,
    register_type,
    registered,
)
from graphflow.errors import GraphflowError
from graphflow.types import Send

pytestmark = pytest.mark.timeout(120)

try:
    from zoneinfo import ZoneInfo

    PARIS: Any = ZoneInfo("Europe/Paris")
except Exception:  # no time zone database
    PARIS = None


# -- helpers ------------------------------------------------------------------------------------

@contextlib.contextmanager
def json_backend(name: str):
    """Run with the pydantic_core backend ("fast") or the stdlib json module only ("stdlib")."""
    from graphflow.checkpoint.serde import json_format

    saved = json_format._PC
    json_format._PC = json_format._UNSET if name == "fast" else None
    try:
        yield
    finally:
        json_format._PC = saved


@pytest.fixture(params=["fast", "stdlib"])
def backend(request):
    with json_backend(request.param):
        yield request.param


def assert_same(a: Any, b: Any, where: str = "") -> None:
    """Equal, and of the same type all the way down (floats bit-for-bit, NaN included)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        assert repr(a) == repr(b), where
    elif isinstance(a, Decimal):
        assert str(a) == str(b), where
    elif isinstance(a, (datetime, time)):
        assert (a.replace(tzinfo=None), a.tzinfo, a.fold) == (
            b.replace(tzinfo=None), b.tzinfo, b.fold), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert len(a) == len(b), where
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):  # order is kept
            assert_same(ka, kb, f"{where} key")
            assert_same(va, vb, f"{where}.{ka}")
    elif isinstance(a, (set, frozenset)):
        assert a == b, where
        by_value = {x: x for x in b}
        for x in a:
            assert_same(x, by_value[x], f"{where}{{}}")
    elif isinstance(a, Send):
        assert a.node == b.node
        assert_same(a.arg, b.arg, f"{where}.arg")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, pydantic.BaseModel):
        for name in type(a).model_fields:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
        assert a.model_fields_set == b.model_fields_set, where
        assert a.__pydantic_extra__ == b.__pydantic_extra__, where
    else:
        assert a == b, where


def roundtrip(value: Any) -> Any:
    """dumps/loads and dumps_bytes/loads_bytes agree and give back the same value."""
    text = dumps(value)
    assert isinstance(text, str)
    back = loads(text)
    assert_same(value, back)
    data = dumps_bytes(value)
    assert isinstance(data, bytes)
    assert data.decode("utf-8") == text
    assert_same(value, loads_bytes(data))
    return back


def strict_json(text: str) -> Any:
    """Parse as standard JSON: NaN / Infinity literals are rejected."""
    def no_constants(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=no_constants)


# -- registered types used below ---------------------------------------------------------------

@register_type
class SerdeColor(enum.Enum):
    RED = "red"
    GREEN = "green"


@register_type(name="serde-test.Level")
class SerdeLevel(enum.IntEnum):
    LOW = 1
    HIGH = 2


@register_type
@dataclasses.dataclass
class SerdePoint:
    x: int
    y: Any = None


@register_type
@dataclasses.dataclass(frozen=True, slots=True)
class SerdeFrozen:
    a: tuple
    b: frozenset = frozenset()


@register_type
@dataclasses.dataclass
class SerdeComputed:
    base: int
    double: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.double = self.base * 2


@register_type
class SerdeModel(pydantic.BaseModel):
    name: str
    point: SerdePoint | None = None
    items: list[Any] = []
    color: SerdeColor = SerdeColor.RED


@register_type
class SerdeExtra(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    a: int = 0


@register_type
class SerdeRoot(pydantic.RootModel[list[int]]):
    pass


@dataclasses.dataclass
class SerdeUnregisteredDC:
    x: int


class SerdeUnregisteredModel(pydantic.BaseModel):
    x: int


class SerdeUnregisteredEnum(enum.Enum):
    A = 1


# -- round trips -------------------------------------------------------------------------------

UTC_PLUS_530 = timezone(timedelta(hours=5, minutes=30))

SUPPORTED = [
    None, True, False, 0, -7, 2**63 + 1, -(2**80), 1.5, -0.0, 5e-324, 1.7976931348623157e308,
    "", "text", "ünïcødé ✓ 日本語 🎉", "\x00\n\t\"\\",
    [], [1, "a", None], {}, {"a": 1, "b": [1, 2]},
    (), (1,), (1, "a", (2, 3)), [(1, 2), (3, 4)],
    set(), {1, 2, 3}, {"b", "a"}, frozenset(), frozenset({1, "x", (1, 2)}),
    b"", b"\x00\xff bytes", bytearray(b"abc"),
    datetime(2024, 1, 2, 3, 4, 5, 6), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2024, 6, 1, 12, 0, tzinfo=UTC_PLUS_530), datetime(2021, 11, 7, 1, 30, fold=1),
    date(1999, 12, 31), time(23, 59, 59, 999999), time(1, 2, tzinfo=UTC_PLUS_530),
    time(1, 2, fold=1),
    timedelta(0), timedelta(days=-3, seconds=5, microseconds=7), timedelta(days=999999999),
    timedelta.max, timedelta.min,
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Decimal("1.10"), Decimal("-0"), Decimal("1E+400"), Decimal("Infinity"),
    {1: "int key", 2.5: "float key", None: "none key", False: "bool key"},
    {(1, 2): "tuple key", frozenset({1}): "frozenset key"},
    {"__gf__": "not a tag"}, {"__gf__": "tuple", "v": [1, 2]}, {"x": {"__gf__": 1, "v": 2}},
    float("inf"), float("-inf"), [1.0, float("inf"), 2],
    Send("node", {"k": (1, 2)}), [Send("a", 1), Send("b", None)],
    SerdeColor.GREEN, SerdeLevel.HIGH, {SerdeColor.RED: "enum key"},
    SerdePoint(1, (2, 3)), SerdeFrozen((1, [2]), frozenset({"x"})), SerdeComputed(21),
    SerdeModel(name="m", point=SerdePoint(3), items=[(1,), {2}]),
    SerdeExtra(a=1, extra_field=(1, 2)), SerdeRoot([1, 2, 3]),
    10**5000, -(10**4400), [10**4400, 1],
    "lone \ud800 surrogate", {"k\udfff": ["\ud83d"]},
]


@pytest.mark.parametrize("value", SUPPORTED, ids=lambda v: type(v).__name__)
def test_supported_value_round_trips_with_its_type(value, backend):
    roundtrip(value)


@pytest.mark.parametrize("value", SUPPORTED, ids=lambda v: type(v).__name__)
def test_output_is_standard_json(value):
    strict_json(dumps(value))


def test_nan_round_trips_and_stays_standard_json(backend):
    back = roundtrip({"x": float("nan"), "y": [float("nan"), (float("nan"),)]})
    assert math.isnan(back["x"])
    text = dumps(float("nan"))
    assert strict_json(text) == {"__gf__": "float", "v": "nan"}


def test_plain_json_passes_through_untagged():
    value = {"messages": ["hi", "there"], "n": 1, "f": 0.5, "ok": True, "none": None,
             "nested": {"deep": [{"a": []}]}}
    assert json.loads(dumps(value)) == value
    assert "__gf__" not in dumps(value)


def test_tagged_forms_follow_the_spec():
    assert json.loads(dumps((1, 2))) == {"__gf__": "tuple", "v": [1, 2]}
    assert json.loads(dumps(b"hi")) == {"__gf__": "bytes", "v": "aGk="}
    assert json.loads(dumps({1: "a"})) == {"__gf__": "dict", "v": [[1, "a"]]}
    assert json.loads(dumps(SerdePoint(1, 2))) == {
        "__gf__": "model", "t": "SerdePoint", "v": {"x": 1, "y": 2}}
    assert json.loads(dumps(SerdeLevel.LOW)) == {
        "__gf__": "enum", "t": "serde-test.Level", "v": 1}
    assert json.loads(dumps(Send("n", 1))) == {"__gf__": "send", "v": ["n", 1]}
    assert json.loads(dumps(timedelta(days=1, seconds=2, microseconds=3))) == {
        "__gf__": "timedelta", "v": [1, 2, 3]}


def test_sets_are_written_in_a_deterministic_order():
    a = {f"item{i}" for i in range(50)}
    b = set(sorted(a, reverse=True))
    assert dumps(a) == dumps(b)
    assert json.loads(dumps({3, 1, 2}))["v"] == [1, 2, 3]
    mixed1 = {1, "a", (1, 2), None, 2.5, frozenset({1})}
    mixed2 = set(reversed(list(mixed1)))
    assert dumps(mixed1) == dumps(mixed2)
    roundtrip(mixed1)


def test_nested_combination_round_trips(backend):
    inner = [{"pair": (1, "x"), "when": datetime(2020, 1, 1, tzinfo=UTC), "tags": {"a", "b"}}]
    point = SerdePoint(x=7, y={"inner": inner, 3: b"raw"})
    model = SerdeModel(name="outer", point=point, items=[point, (SerdeColor.GREEN,)])
    state = {"models": [model], "send": Send("work", model), ("k", 1): frozenset({2})}
    back = roundtrip(state)
    assert type(back["models"][0].point.y["inner"][0]["pair"]) is tuple


def test_model_fields_set_and_extras_survive(backend):
    m = SerdeModel(name="only-name")
    assert m.model_fields_set == {"name"}
    back = roundtrip(m)
    assert back.model_fields_set == {"name"}
    assert back.model_dump(exclude_unset=True) == {"name": "only-name"}
    e = roundtrip(SerdeExtra(x=[1, (2,)]))
    assert e.x == [1, (2,)]


def test_dataclass_init_false_field_is_restored():
    c = SerdeComputed(2)
    c.double = 99  # changed after construction: the stored value wins over __post_init__
    back = roundtrip(c)
    assert back.double == 99


@pytest.mark.skipif(PARIS is None, reason="no time zone database")
def test_zoneinfo_datetime_keeps_its_zone_and_fold(backend):
    ambiguous = datetime(2023, 10, 29, 2, 30, tzinfo=PARIS, fold=1)  # DST end: happens twice
    back = roundtrip(ambiguous)
    assert back.tzinfo is PARIS
    assert back.utcoffset() == ambiguous.utcoffset() == timedelta(hours=1)
    roundtrip(time(12, 0, tzinfo=PARIS))


def test_dumps_does_not_mutate_its_input():
    value = {"a": [(1, 2), {3}], "b": {1: "x"}}
    snapshot = repr(value)
    dumps(value)
    assert repr(value) == snapshot
    assert type(value["a"][0]) is tuple


def test_loads_accepts_bytes_and_loads_bytes_accepts_buffers():
    data = dumps_bytes({"a": (1,)})
    assert loads(data) == {"a": (1,)}
    assert loads_bytes(bytearray(data)) == {"a": (1,)}
    assert loads_bytes(memoryview(data)) == {"a": (1,)}


def test_deep_nesting_beyond_pydantic_core_limits_falls_back_to_stdlib():
    value: Any = 1
    for _ in range(250):
        value = [value]
    assert loads(dumps(value)) == value


# -- property test ------------------------------------------------------------------------------

ZONES = [None, UTC, UTC_PLUS_530, timezone(-timedelta(hours=8))] + ([PARIS] if PARIS else [])

hashable_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.binary(max_size=8) | st.uuids() | st.dates()
    | st.datetimes(timezones=st.sampled_from(ZONES))
    | st.times(timezones=st.sampled_from(ZONES)) | st.timedeltas()
    | st.decimals(allow_nan=False, allow_infinity=True)
    | st.sampled_from(list(SerdeColor) + list(SerdeLevel))
)
hashables = st.recursive(
    hashable_leaves,
    lambda c: st.lists(c, max_size=3).map(tuple) | st.frozensets(c, max_size=3),
    max_leaves=6,
)
leaves = (
    hashable_leaves | st.floats() | st.decimals() | st.binary(max_size=8).map(bytearray)
    | st.builds(SerdePoint, st.integers(), st.text(max_size=5))
)


def _containers(children):
    keys = st.text(max_size=6) | st.just("__gf__") | st.just("v")
    return (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(hashables, children, max_size=3)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.builds(Send, st.text(min_size=1, max_size=5), children)
        | st.builds(SerdePoint, st.integers(), children)
        | st.builds(SerdeModel, name=st.text(max_size=5), items=st.lists(children, max_size=3))
    )


values = st.recursive(leaves, _containers, max_leaves=25)


@settings(max_examples=300, deadline=None)
@given(values)
def test_property_round_trip_is_exact(value):
    for name in ("fast", "stdlib"):
        with json_backend(name):
            text = dumps(value)
            assert_same(value, loads(text))
            assert_same(value, loads_bytes(dumps_bytes(value)))
            strict_json(text)


@settings(max_examples=100, deadline=None)
@given(values)
def test_property_both_backends_read_each_others_output(value):
    with json_backend("fast"):
        fast = dumps(value)
    with json_backend("stdlib"):
        assert_same(value, loads(fast))
        slow = dumps(value)
    with json_backend("fast"):
        assert_same(value, loads(slow))


def test_dumps_each_and_loads_each_agree_with_a_call_each(backend):
    datas = dumps_each(SUPPORTED)
    assert datas == [dumps_bytes(v) for v in SUPPORTED]
    for value, back in zip(SUPPORTED, loads_each(datas), strict=True):
        assert_same(value, back)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=5))
def test_property_each_round_trips_exactly(batch):
    for name in ("fast", "stdlib"):
        with json_backend(name):
            back = loads_each(dumps_each(batch))
            assert len(back) == len(batch)
            for value, got in zip(batch, back, strict=True):
                assert_same(value, got)


@pytest.mark.parametrize("text", [
    b'{"\\u005f_gf__": "tuple", "v": [1, 2]}',       # the tag key spelled with an escape
    b'[{"__gf\\u005f_": "bytes", "v": "aGk="}, 1]',
    b'{"__gf__": "not a tag"}',
])
def test_loads_each_reads_tags_however_they_are_spelled(text, backend):
    try:
        expected: Any = loads_bytes(text)
    except SerializationError as exc:
        expected = exc
    if isinstance(expected, SerializationError):
        with pytest.raises(SerializationError, match="unknown tag"):
            loads_each([b"1", text])
    else:
        assert loads_each([b"1", text]) == [1, expected]
        assert expected != json.loads(text)  # a tag was revived


def test_loads_each_of_corrupted_data_is_corrupted(backend):
    with pytest.raises(SerializationError, match="corrupted"):
        loads_each([b"1", b"{"])


# -- encoding errors ---------------------------------------------------------------------------

def _encode_error(value: Any) -> SerializationError:
    with pytest.raises(SerializationError) as info:
        dumps(value)
    with pytest.raises(SerializationError):
        dumps_bytes(value)
    return info.value


def test_error_names_the_path_of_the_bad_value():
    err = _encode_error({"messages": [1, 2, 3, {"content": object()}]})
    assert err.path == "messages[3].content"
    assert "messages[3].content" in str(err)
    assert "object" in str(err)
    assert "convert it to a JSON type" in str(err)


def test_error_is_a_graphflow_error_and_a_type_error():
    err = _encode_error(object())
    assert isinstance(err, GraphflowError)
    assert isinstance(err, TypeError)


def test_error_at_top_level_says_so():
    err = _encode_error(lambda: 1)
    assert err.path == ""
    assert "(top level)" in str(err)
    assert "function" in str(err)


@pytest.mark.parametrize(("value", "path"), [
    ([0, (1, object())], "[1][1]"),
    ({"a": {"b": [{"c": [None, object()]}]}}, "a.b[0].c[1]"),
    ({"t": ((object(),),)}, "t[0][0]"),
    ({1: {"x": object()}}, "[1].x"),
    ({(1, 2): object()}, "[(1, 2)]"),
    ({"__gf__": object()}, "__gf__"),
    ({"s": Send("n", {"arg": object()})}, "s.arg.arg"),
    ({"p": SerdePoint(1, [object()])}, "p.y[0]"),
    ({"m": SerdeModel(name="x", items=[1, object()])}, "m.items[1]"),
    ({"floats": [1.5, 2.5, object()]}, "floats[2]"),
    ({"msgs": [{"role": "user"}, {"role": object()}]}, "msgs[1].role"),
])
def test_error_paths(value, path):
    err = _encode_error(value)
    assert err.path == path
    assert f" at {path}:" in str(err)


def test_error_in_a_dict_key_says_it_is_a_key():
    key = SerdeUnregisteredEnum.A
    err = _encode_error({"d": {key: 1}})
    assert err.path == "d[<SerdeUnregisteredEnum.A: 1>]"
    assert "dict key" in str(err)


@pytest.mark.parametrize("value", [
    SerdeUnregisteredDC(1), SerdeUnregisteredModel(x=1), SerdeUnregisteredEnum.A,
])
def test_unregistered_class_on_encode_names_register_type(value):
    err = _encode_error({"state": [value]})
    name = type(value).__name__
    assert err.path == "state[0]"
    assert f"register_type({name})" in str(err)
    assert "not registered" in str(err)


def test_subclass_of_a_registered_class_is_not_registered():
    @dataclasses.dataclass
    class SerdeSubPoint(SerdePoint):
        z: int = 0

    err = _encode_error(SerdeSubPoint(1))
    assert "register_type(SerdeSubPoint)" in str(err)


@pytest.mark.parametrize(("value", "hint"), [
    (OrderedDict(a=1), "plain dict"),
    (SerdeColor, "cannot be checkpointed"),
    ((x for x in ()), "generators"),
    (print, "functions"),
    (type("S", (str,), {})("x"), "plain str"),
])
def test_unsupported_values_get_a_hint(value, hint):
    assert hint in str(_encode_error({"k": value}))


def test_reference_cycle_is_reported_with_its_path():
    loop: list[Any] = []
    loop.append({"again": loop})
    err = _encode_error({"state": loop})
    assert err.path == "state[0].again"
    assert "cycle" in str(err)


def test_send_node_must_be_a_str():
    assert "node must be a str" in str(_encode_error(Send(1, None)))  # type: ignore[arg-type]


# -- decoding errors ---------------------------------------------------------------------------

def test_unknown_type_name_on_decode_never_imports(monkeypatch):
    monkeypatch.setattr("os.system", lambda *a: pytest.fail("os.system called"))
    real_import = builtins.__import__

    def no_import(name, *args, **kwargs):
        if name not in sys.modules:
            pytest.fail(f"decoding imported {name}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_import)
    for text in [
        '{"__gf__": "model", "t": "os.system", "v": {"command": "echo hacked"}}',
        '{"__gf__": "model", "t": "serde_nowhere_module.Evil", "v": {}}',
        '{"__gf__": "enum", "t": "subprocess.Popen", "v": "ls"}',
        '[1, {"deep": {"__gf__": "model", "t": "builtins.eval", "v": {}}}]',
    ]:
        with pytest.raises(SerializationError) as info:
            loads(text)
        assert "no class is registered" in str(info.value)
        assert "register_type" in str(info.value)
    assert "serde_nowhere_module" not in sys.modules


def test_unknown_type_name_is_named_in_the_error(backend):
    with pytest.raises(SerializationError, match=r"'os\.system'"):
        loads('{"__gf__": "model", "t": "os.system", "v": {}}')


def test_unknown_tag_is_named_in_the_error(backend):
    with pytest.raises(SerializationError, match="'pickle'"):
        loads('{"x": [{"__gf__": "pickle", "v": "gASV"}]}')
    with pytest.raises(SerializationError, match="unknown tag"):
        loads('{"__gf__": ["not", "a", "str"], "v": 1}')


def test_registered_name_with_wrong_kind_is_corrupted(backend):
    with pytest.raises(SerializationError, match="corrupted"):
        loads('{"__gf__": "enum", "t": "SerdePoint", "v": 1}')


@pytest.mark.parametrize("text", [
    "", "{", '{"a": }', "[1, 2", "nul", '{"a": 1} trailing',
])
def test_malformed_json_is_corrupted(text, backend):
    with pytest.raises(SerializationError, match="corrupted"):
        loads(text)


@pytest.mark.parametrize("text", [
    '{"__gf__": "tuple", "v": 5}',
    '{"__gf__": "tuple"}',
    '{"__gf__": "set", "v": [[1]]}',
    '{"__gf__": "bytes", "v": "not base64!"}',
    '{"__gf__": "datetime", "v": "yesterday"}',
    '{"__gf__": "timedelta", "v": [1, 2]}',
    '{"__gf__": "uuid", "v": "xyz"}',
    '{"__gf__": "decimal", "v": 1.5}',
    '{"__gf__": "float", "v": "1.0"}',
    '{"__gf__": "dict", "v": [[[1], 2]]}',
    '{"__gf__": "send", "v": [1, 2]}',
    '{"__gf__": "model", "t": "SerdePoint", "v": [1]}',
    '{"__gf__": "model", "t": "SerdePoint", "v": {"y": 1}}',
    '{"__gf__": "enum", "t": "SerdeColor", "v": "purple"}',
])
def test_malformed_tag_payload_is_corrupted(text, backend):
    with pytest.raises(SerializationError, match="corrupted"):
        loads(text)


def test_invalid_utf8_is_corrupted(backend):
    with pytest.raises(SerializationError, match="corrupted"):
        loads_bytes(b'"\xff\xfe"')


# -- registry ----------------------------------------------------------------------------------

def test_registering_the_same_class_twice_is_a_no_op():
    assert register_type(SerdePoint) is SerdePoint
    assert register_type(SerdePoint, name="SerdePoint") is SerdePoint
    assert registered("SerdePoint") is SerdePoint
    assert registered("serde-test.Level") is SerdeLevel
    assert registered("serde-nothing-here") is None


def test_a_different_class_under_a_taken_name_raises():
    @dataclasses.dataclass
    class Other:
        x: int

    with pytest.raises(ValueError, match="SerdePoint"):
        register_type(Other, name="SerdePoint")
    assert registered("SerdePoint") is SerdePoint


def test_a_registered_class_under_a_second_name_raises():
    with pytest.raises(ValueError, match="already registered"):
        register_type(SerdePoint, name="serde-another-name")


def test_redefining_a_class_replaces_it():
    def define():
        @dataclasses.dataclass
        class SerdeRedefined:
            x: int

        return SerdeRedefined

    first, second = define(), define()
    register_type(first)
    register_type(second)  # same module and qualified name: a re-run cell, say
    assert registered(first.__qualname__) is second
    assert type(loads(dumps(first(1)))) is second


def test_register_type_rejects_unsupported_classes():
    with pytest.raises(TypeError, match="register_type supports"):
        register_type(OrderedDict)
    with pytest.raises(TypeError):
        register_type(SerdePoint(1))  # type: ignore[arg-type]


def test_register_type_as_decorator_with_a_name():
    @register_type(name="serde-test.decorated")
    @dataclasses.dataclass
    class Decorated:
        v: int

    assert registered("serde-test.decorated") is Decorated
    assert json.loads(dumps(Decorated(1)))["t"] == "serde-test.decorated"


class SerdeRole(enum.Enum):
    USER = "user"
    AI = "ai"


@dataclasses.dataclass
class SerdeToolCall:
    name: str
    args: dict[str, Any]


class SerdeMsg(pydantic.BaseModel):
    role: SerdeRole
    content: str
    calls: list[SerdeToolCall] = []


class SerdeTree(pydantic.BaseModel):
    children: list[SerdeTree] = []


class SerdeKind(enum.Enum):
    A = "a"


@dataclasses.dataclass
class SerdeMeta:
    kind: Literal[SerdeKind.A] | None = None


class SerdeState(TypedDict, total=False):
    messages: Annotated[list[SerdeMsg], operator.add]
    tree: Optional[SerdeTree]  # noqa: UP045 (the walk must handle Optional too)
    by_id: dict[str, tuple[SerdeMeta, int]]
    plain: int


def test_register_schema_types_finds_nested_types():
    for cls in (SerdeMsg, SerdeRole, SerdeToolCall, SerdeTree, SerdeMeta, SerdeKind):
        assert cls not in serde._BY_TYPE
    found = register_schema_types(SerdeState)
    assert set(found) == {SerdeMsg, SerdeRole, SerdeToolCall, SerdeTree, SerdeMeta, SerdeKind}
    for cls in found:
        assert registered(f"{cls.__module__}.{cls.__qualname__}") is cls
    assert register_schema_types(SerdeState) == found  # again: nothing changes
    state = {
        "messages": [SerdeMsg(role=SerdeRole.AI, content="hi",
                              calls=[SerdeToolCall("search", {"q": ("a", 1)})])],
        "tree": SerdeTree(children=[SerdeTree()]),
        "by_id": {"x": (SerdeMeta(SerdeKind.A), 3)},
        "plain": 1,
    }
    roundtrip(state)


class SerdeSchemaLeaf(enum.Enum):
    X = 1


@dataclasses.dataclass
class SerdeDCSchema:
    leaf: list[SerdeSchemaLeaf]
    later: SerdeNotYetDefined | None = None  # noqa: F821 (a reference nothing resolves)


def test_register_schema_types_registers_a_pydantic_or_dataclass_schema_itself():
    assert register_schema_types(SerdeDCSchema) == [SerdeDCSchema, SerdeSchemaLeaf]
    roundtrip(SerdeDCSchema([SerdeSchemaLeaf.X]))


def test_register_schema_types_skips_what_it_cannot_resolve():
    assert register_schema_types("SerdeNothing") == []
    assert register_schema_types(Optional[int]) == []  # noqa: UP045
    assert register_schema_types(Any) == []


def test_register_schema_types_uses_module_qualified_names_so_same_names_never_clash():
    @dataclasses.dataclass
    class SerdeClash:
        x: int

    schema = dataclasses.make_dataclass("SerdeClashSchema", [("inner", SerdeClash)])
    SerdeClash.__qualname__ = "SerdePoint"  # same name as a registered class, another module
    SerdeClash.__module__ = "elsewhere"
    found = register_schema_types(schema)  # compiling a graph must not fail
    assert SerdeClash in found
    assert registered("SerdePoint") is SerdePoint  # the hand-registered one keeps its name
    assert registered("elsewhere.SerdePoint") is SerdeClash
    assert '"elsewhere.SerdePoint"' in dumps({"k": SerdeClash(1)})
    roundtrip({"k": SerdeClash(1)})


def test_big_ints_are_hex_tagged_and_raw_big_ints_still_load(backend):
    assert "__gf__" not in dumps([(1 << 2000) - 1, -(1 << 2000) + 1])
    assert json.loads(dumps(1 << 2000)) == {"__gf__": "int", "v": hex(1 << 2000)}
    assert json.loads(dumps([1, -(1 << 2000)]))[1]["__gf__"] == "int"
    assert loads("[" + "9" * 5000 + "]") == [10**5000 - 1]  # written by another tool


# -- import cost -------------------------------------------------------------------------------

def test_importing_serde_does_not_import_pydantic():
    code = ("import sys, graphflow.checkpoint.serde as s; "
            "s.dumps({'a': (1, b'x')}); "
            "print('pydantic' in sys.modules, 'pydantic_core' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "False"
