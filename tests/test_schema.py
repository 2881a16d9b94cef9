"""State schemas, reducers and update checking, end to end through ``invoke``.

Written against docs/semantics.md ("Building", "Errors", "CompiledGraph API").
"""

import operator
from dataclasses import dataclass, field
from typing import Annotated, TypedDict

import pytest
from pydantic import BaseModel, Field

from graphflow import END, START, GraphValidationError, InvalidUpdateError, StateGraph

# --------------------------------------------------------------------------------------------
# Schemas and helpers
# --------------------------------------------------------------------------------------------


class TDState(TypedDict):
    count: int
    items: Annotated[list, operator.add]


class PDState(BaseModel):
    count: int = 0
    items: Annotated[list[str], operator.add] = []


@dataclass
class DCState:
    count: int = 0
    items: Annotated[list[str], operator.add] = field(default_factory=list)


ALL_SCHEMAS = [
    pytest.param(TDState, id="typeddict"),
    pytest.param(PDState, id="pydantic"),
    pytest.param(DCState, id="dataclass"),
]


def read(state, key):
    """Read a key from a dict state or an instance state."""
    return state[key] if isinstance(state, dict) else getattr(state, key)


def chain(schema, *fns):
    """START -> fns[0] -> fns[1] -> ... -> END, nodes named after the functions."""
    graph = StateGraph(schema)
    prev = START
    for fn in fns:
        graph.add_node(fn)
        graph.add_edge(prev, fn.__name__)
        prev = fn.__name__
    graph.add_edge(prev, END)
    return graph.compile()


def fan_out(schema, *fns):
    """START -> each of fns (same step) -> END."""
    graph = StateGraph(schema)
    for fn in fns:
        graph.add_node(fn)
        graph.add_edge(START, fn.__name__)
        graph.add_edge(fn.__name__, END)
    return graph.compile()


def first(state):
    return {"count": read(state, "count") + 1, "items": ["first"]}


def second(state):
    return {"count": read(state, "count") * 10, "items": ["second"]}


# --------------------------------------------------------------------------------------------
# The three schema kinds, end to end
# --------------------------------------------------------------------------------------------


def test_typeddict_schema_end_to_end_returns_a_dict():
    seen_types = []

    def look(state):
        seen_types.append(type(state))
        return None

    app = chain(TDState, first, look, second)
    result = app.invoke({"count": 1, "items": ["in"]})

    assert isinstance(result, dict)
    assert result == {"count": 20, "items": ["in", "first", "second"]}
    assert seen_types and all(issubclass(t, dict) for t in seen_types)


def test_pydantic_schema_end_to_end_returns_an_instance():
    seen = []

    def look(state):
        seen.append(state)
        return None

    app = chain(PDState, first, look, second)
    result = app.invoke({"count": 1, "items": ["in"]})

    assert isinstance(result, PDState)
    assert result.count == 20
    assert result.items == ["in", "first", "second"]
    assert len(seen) == 1
    assert isinstance(seen[0], PDState)
    assert seen[0].count == 2


def test_dataclass_schema_end_to_end_returns_an_instance():
    seen = []

    def look(state):
        seen.append(state)
        return None

    app = chain(DCState, first, look, second)
    result = app.invoke({"count": 1, "items": ["in"]})

    assert isinstance(result, DCState)
    assert result == DCState(count=20, items=["in", "first", "second"])
    assert len(seen) == 1
    assert isinstance(seen[0], DCState)
    assert seen[0].count == 2


@pytest.mark.parametrize("schema", [PDState, DCState], ids=["pydantic", "dataclass"])
def test_schema_instance_is_accepted_as_input(schema):
    app = chain(schema, first, second)
    result = app.invoke(schema(count=1, items=["in"]))
    assert isinstance(result, schema)
    assert result.count == 20
    assert result.items == ["in", "first", "second"]


def test_node_returning_none_leaves_state_unchanged():
    def nothing(state):
        return None

    result = chain(TDState, nothing).invoke({"count": 4, "items": ["x"]})
    assert result == {"count": 4, "items": ["x"]}


# --------------------------------------------------------------------------------------------
# Defaults
# --------------------------------------------------------------------------------------------


class PDProfile(BaseModel):
    name: str = "anon"
    level: int = 3
    tags: list[str] = Field(default_factory=lambda: ["new"])


@dataclass
class DCProfile:
    name: str = "anon"
    level: int = 3
    tags: list[str] = field(default_factory=lambda: ["new"])


@pytest.mark.parametrize("schema", [PDProfile, DCProfile], ids=["pydantic", "dataclass"])
def test_field_defaults_are_visible_to_nodes_and_in_the_result(schema):
    seen = []

    def level_up(state):
        seen.append((state.name, state.level, list(state.tags)))
        return {"level": state.level + 1}

    result = chain(schema, level_up).invoke({"name": "ada"})

    assert seen == [("ada", 3, ["new"])]
    assert isinstance(result, schema)
    assert result.name == "ada"
    assert result.level == 4
    assert result.tags == ["new"]


@pytest.mark.parametrize("schema", [PDProfile, DCProfile], ids=["pydantic", "dataclass"])
def test_empty_input_gives_all_defaults(schema):
    def nothing(state):
        return None

    result = chain(schema, nothing).invoke({})
    assert result == schema()


# --------------------------------------------------------------------------------------------
# Reducers
# --------------------------------------------------------------------------------------------


def test_operator_add_reducer_accumulates_across_steps():
    class S(TypedDict):
        log: Annotated[list, operator.add]

    def one(state):
        return {"log": ["one"]}

    def two(state):
        return {"log": ["two"]}

    result = chain(S, one, two).invoke({"log": ["start"]})
    assert result == {"log": ["start", "one", "two"]}


def test_reducer_key_accepts_several_writes_in_one_step_in_node_name_order():
    class S(TypedDict):
        log: Annotated[list, operator.add]

    def zeta(state):
        return {"log": ["zeta"]}

    def alpha(state):
        return {"log": ["alpha"]}

    # Declared zeta first; writes are applied by node name.
    result = fan_out(S, zeta, alpha).invoke({"log": []})
    assert result == {"log": ["alpha", "zeta"]}


def keep_max(current, new):
    return max(current, new)


def test_custom_reducer_function_is_used():
    class S(TypedDict):
        best: Annotated[int, keep_max]

    def low(state):
        return {"best": 3}

    def high(state):
        return {"best": 9}

    def later(state):
        return {"best": 4}

    graph = StateGraph(S)
    graph.add_node(low).add_node(high).add_node(later)
    graph.add_edge(START, "low")
    graph.add_edge(START, "high")
    graph.add_edge(["low", "high"], "later")
    graph.add_edge("later", END)
    result = graph.compile().invoke({"best": 5})
    assert result == {"best": 9}


def test_reducer_is_the_first_callable_in_annotated_metadata():
    class S(TypedDict):
        best: Annotated[int, "a note, not a reducer", keep_max, operator.add]

    def write_three(state):
        return {"best": 3}

    result = chain(S, write_three).invoke({"best": 5})
    assert result == {"best": 5}  # keep_max, not operator.add (8) and not overwrite (3)


def test_reducer_key_without_value_starts_from_empty_value():
    class S(TypedDict):
        total: Annotated[int, operator.add]
        log: Annotated[list, operator.add]

    def write(state):
        return {"total": 5, "log": ["x"]}

    result = chain(S, write).invoke({})
    assert result["total"] == 5
    assert result["log"] == ["x"]


def test_reducer_sees_the_empty_value_as_current_on_first_write():
    calls = []

    def recording_concat(current, new):
        calls.append((list(current), list(new)))
        return current + new

    class S(TypedDict):
        log: Annotated[list, recording_concat]

    def write(state):
        return {"log": ["x"]}

    result = chain(S, write).invoke({})
    assert result == {"log": ["x"]}
    assert calls == [([], ["x"])]


class Token:
    """A type that cannot be constructed without arguments."""

    def __init__(self, text):
        self.text = text


def test_reducer_key_of_unconstructible_type_stores_first_write_as_is():
    calls = []

    def join_tokens(current, new):
        calls.append((current.text, new.text))
        return Token(current.text + new.text)

    class S(TypedDict):
        tok: Annotated[Token, join_tokens]

    def write_ab(state):
        return {"tok": Token("ab")}

    def write_cd(state):
        return {"tok": Token("cd")}

    result = chain(S, write_ab, write_cd).invoke({})
    assert result["tok"].text == "abcd"
    assert calls == [("ab", "cd")]


@pytest.mark.parametrize("schema", [PDState, DCState], ids=["pydantic", "dataclass"])
def test_reducers_work_on_instance_schemas_in_one_step(schema):
    def zeta(state):
        return {"items": ["zeta"]}

    def alpha(state):
        return {"items": ["alpha"]}

    result = fan_out(schema, zeta, alpha).invoke({})
    assert isinstance(result, schema)
    assert result.items == ["alpha", "zeta"]


# --------------------------------------------------------------------------------------------
# Update checking
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_unknown_key_in_update_names_node_and_key(schema):
    def bad_writer(state):
        return {"bogus_key": 1}

    app = chain(schema, bad_writer)
    with pytest.raises(InvalidUpdateError) as info:
        app.invoke({"count": 0})
    message = str(info.value)
    assert "bad_writer" in message
    assert "bogus_key" in message
    assert info.value.node == "bad_writer"
    assert info.value.key == "bogus_key"


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_wrong_type_in_update_names_node_key_and_expected_type(schema):
    def bad_writer(state):
        return {"count": "three"}

    app = chain(schema, bad_writer)
    with pytest.raises(InvalidUpdateError) as info:
        app.invoke({"count": 0})
    message = str(info.value)
    assert "bad_writer" in message
    assert "count" in message
    assert "int" in message
    assert info.value.node == "bad_writer"
    assert info.value.key == "count"


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_unknown_key_in_input_is_rejected(schema):
    ran = []

    def worker(state):
        ran.append(True)
        return None

    app = chain(schema, worker)
    with pytest.raises(InvalidUpdateError) as info:
        app.invoke({"count": 0, "bogus_key": 1})
    assert "bogus_key" in str(info.value)
    assert info.value.key == "bogus_key"
    assert ran == []


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_wrong_type_in_input_is_rejected(schema):
    ran = []

    def worker(state):
        ran.append(True)
        return None

    app = chain(schema, worker)
    with pytest.raises(InvalidUpdateError) as info:
        app.invoke({"count": "three"})
    message = str(info.value)
    assert "count" in message
    assert "int" in message
    assert info.value.key == "count"
    assert ran == []


def test_two_writes_to_a_non_reducer_key_in_one_step_name_key_and_both_nodes():
    class S(TypedDict):
        value: int

    def writer_one(state):
        return {"value": 1}

    def writer_two(state):
        return {"value": 2}

    app = fan_out(S, writer_one, writer_two)
    with pytest.raises(InvalidUpdateError) as info:
        app.invoke({"value": 0})
    message = str(info.value)
    assert "value" in message
    assert "writer_one" in message
    assert "writer_two" in message
    assert info.value.key == "value"


def test_non_reducer_key_accepts_one_write_per_step_across_steps():
    class S(TypedDict):
        value: int

    def set_one(state):
        return {"value": 1}

    def set_two(state):
        return {"value": 2}

    assert chain(S, set_one, set_two).invoke({"value": 0}) == {"value": 2}


def test_reducer_that_raises_is_an_invalid_update():
    def exploding(current, new):
        raise ValueError("boom")

    class S(TypedDict):
        log: Annotated[list, exploding]

    def writer(state):
        return {"log": ["x"]}

    with pytest.raises(InvalidUpdateError) as info:
        chain(S, writer).invoke({})
    assert "log" in str(info.value)
    assert info.value.key == "log"


def test_bad_node_return_value_is_an_invalid_update_naming_the_node():
    def returns_int(state):
        return 42

    with pytest.raises(InvalidUpdateError) as info:
        chain(TDState, returns_int).invoke({"count": 0})
    assert "returns_int" in str(info.value)
    assert info.value.node == "returns_int"


@pytest.mark.parametrize("bad_schema", [int, "not a schema", 42], ids=["int", "str", "number"])
def test_bad_schema_is_a_validation_error(bad_schema):
    def noop(state):
        return None

    with pytest.raises(GraphValidationError):
        graph = StateGraph(bad_schema)
        graph.add_node(noop)
        graph.add_edge(START, "noop")
        graph.add_edge("noop", END)
        graph.compile()


# --------------------------------------------------------------------------------------------
# The input, checked before the first step and reported as an input error
# --------------------------------------------------------------------------------------------


def never_runs(state):
    raise AssertionError("a node ran although the input was bad")


@pytest.mark.parametrize("schema", ALL_SCHEMAS)
def test_a_wrong_input_type_is_an_input_error_not_a_node_error(schema):
    with pytest.raises(InvalidUpdateError) as info:
        chain(schema, never_runs).invoke({"count": "three"})
    message = str(info.value)
    assert message.startswith("input key 'count': expected int, got str 'three'")
    assert "__start__" not in message and "node" not in message
    assert info.value.key == "count" and info.value.node == START


def test_a_total_typeddict_input_giving_none_of_its_keys_names_them_all():
    class Count(TypedDict):
        n: int
        notes: str
        seen: Annotated[list[int], operator.add]  # a reducer key starts empty: never required

    with pytest.raises(InvalidUpdateError, match=r"^input is missing required keys 'n', "
                                                 r"'notes' of the state Count$"):
        chain(Count, never_runs).invoke({})

    class Order(TypedDict):  # the README's pattern: `approved` is the graph's output
        item: str
        approved: bool

    def approve(state):
        return {"approved": state["item"] == "book"}

    assert chain(Order, approve).invoke({"item": "book"}) == {"item": "book", "approved": True}


def test_required_keys_of_a_typeddict_are_demanded_of_every_new_input():
    from typing import NotRequired, Required

    class Ask(TypedDict, total=False):
        question: Required[str]
        user: Required[Annotated[str, "who asks"]]
        answer: str
        log: Required[Annotated[list[str], operator.add]]  # a reducer: starts empty
        tries: NotRequired[int]

    with pytest.raises(InvalidUpdateError, match=r"^input is missing required key 'user' of "
                                                 r"the state Ask$"):
        chain(Ask, never_runs).invoke({"question": "why?"})
    with pytest.raises(InvalidUpdateError, match=r"input key 'tries': expected int, got str"):
        chain(Ask, never_runs).invoke({"question": "why?", "user": "bo", "tries": "2"})

    def answer(state):
        return {"answer": state["question"].upper(), "log": ["answered"]}

    def check(state):
        return {"log": [f"checked {state['answer']}"]}

    out = chain(Ask, answer, check).invoke({"question": "why?", "user": "bo"})
    assert out["answer"] == "WHY?" and out["log"] == ["answered", "checked WHY?"]  # reducer


def test_a_continued_thread_needs_no_key_it_already_has():
    from graphflow.checkpoint import MemoryCheckpointer

    class Count(TypedDict):
        n: int
        notes: str

    def bump(state):
        return {"n": state["n"] + 1}

    g = StateGraph(Count)
    g.add_node(bump)
    g.add_edge(START, "bump")
    g.add_edge("bump", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    app.invoke({"n": 0, "notes": "a"}, thread="t")
    assert app.invoke({"notes": "b"}, thread="t") == {"n": 2, "notes": "b"}


def test_a_pydantic_input_that_does_not_coerce_says_why():
    class P(BaseModel):
        count: int = 0

    with pytest.raises(InvalidUpdateError) as info:
        chain(P, never_runs).invoke({"count": "lots"})
    assert str(info.value).startswith("input key 'count': expected int, got str 'lots': ")
    def noop(state):
        return None

    assert chain(P, noop).invoke({"count": "7"}).count == 7


def test_update_errors_use_the_right_article():
    class S(TypedDict):
        name: str

    def writes_an_int(state):
        return {"name": 42}

    with pytest.raises(InvalidUpdateError, match=r"wrote key 'name' an int \(42\)"):
        chain(S, writes_an_int).invoke({"name": "x"})
    with pytest.raises(InvalidUpdateError, match=r"must be a dict or an? S instance, got a list"):
        chain(S, writes_an_int).invoke([1])
