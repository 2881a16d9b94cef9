"""graphflow.tools: @tool / Tool (docs/llm.md, "Tools"): schemas from hints and docstrings,
provider formats, validation, injection, timeouts, and confirm=True inside a real graph."""

import asyncio
import enum
import inspect
import json
import operator
import threading
import time
import typing
import uuid
from typing import Annotated, Any, Literal, Optional, TypedDict, Union

import pytest
from graphflow.tools import (
    InjectedState,
    InjectedStore,
    Tool,
    ToolArgumentError,
    ToolConfirmationError,
    ToolDefinitionError,
    ToolRejected,
    ToolTimeoutError,
    parse_docstring,
    tool,
)
from pydantic import BaseModel, Field

from graphflow import (
    END,
    START,
    Command,
    GraphflowError,
    RunContext,
    StateGraph,
)
from graphflow.checkpoint import MemoryCheckpointer

pytestmark = pytest.mark.timeout(30)

INTERRUPT = "__interrupt__"


# -- types used in hints (module level, so the hints resolve) ----------------------------------


class Color(enum.Enum):
    """A primary color."""

    RED = "red"
    GREEN = "green"


class Address(BaseModel):
    """A postal address."""

    street: str
    city: str = Field("Paris", description="the city's name")


class Person(BaseModel):
    """A person."""

    name: str
    address: Address
    tags: list[str] = []


class Tree(BaseModel):
    """A tree node."""

    label: str
    children: list["Tree"] = []


class Point(TypedDict):
    """A 2-D point."""

    x: float
    y: float
    label: typing.NotRequired[str]


def _describe_everything(
    count: int,
    ratio: float,
    text: str,
    flag: bool,
    mode: Literal["fast", "slow"],
    maybe: Optional[int],  # noqa: UP045 - Optional itself is under test
    either: Union[int, str],  # noqa: UP007 - Union itself is under test
    either_new: int | str,
    items: list[int],
    mapping: dict[str, float],
    color: Color,
    person: Person,
    point: Point,
    points: list[Point],
    tree: Tree,
    anything,
    limit: int = 10,
    label: str | None = None,
) -> str:
    """Exercise every kind of hint.

    This second paragraph is not part of the description.

    Args:
        count: how many
            (continued on a second line).
        ratio (float): a ratio.
        text: some text.
        flag: a switch.
        mode: the speed.
        maybe: an optional integer.
        either: an int or a string.
        either_new: the same, PEP 604 spelling.
        items: a list of integers.
        mapping: names to numbers.
        color: a color.
        person: who.
        point: where.
        points: several places.
        tree: a tree.
        anything: no hint at all.
        limit: the most results.
        label: a label.

    Returns:
        A description.
    """
    return "ok"


everything = Tool(_describe_everything, name="everything")


# -- schema --------------------------------------------------------------------------------


def _walk(node):
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_schema_top_level_shape_required_and_defaults():
    schema = everything.schema
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert "title" not in schema
    assert set(schema["required"]) == {
        "count", "ratio", "text", "flag", "mode", "maybe", "either", "either_new", "items",
        "mapping", "color", "person", "point", "points", "tree", "anything"}
    props = schema["properties"]
    assert list(props) == list(inspect.signature(_describe_everything).parameters)
    assert props["limit"]["default"] == 10
    assert props["label"]["default"] is None
    assert "default" not in props["count"]


def test_schema_scalar_types_and_descriptions_from_docstring():
    props = everything.schema["properties"]
    assert props["count"] == {"type": "integer",
                              "description": "how many (continued on a second line)."}
    assert props["ratio"]["type"] == "number"
    assert props["ratio"]["description"] == "a ratio."
    assert props["text"]["type"] == "string"
    assert props["flag"]["type"] == "boolean"
    assert props["anything"] == {"description": "no hint at all."}


def test_schema_literal_optional_unions_lists_dicts_enums():
    props = everything.schema["properties"]
    assert props["mode"]["enum"] == ["fast", "slow"]
    assert props["mode"]["type"] == "string"
    assert {"type": "null"} in props["maybe"]["anyOf"]
    assert {"type": "integer"} in props["maybe"]["anyOf"]
    for key in ("either", "either_new"):
        assert {"type": "integer"} in props[key]["anyOf"]
        assert {"type": "string"} in props[key]["anyOf"]
    assert props["items"]["type"] == "array"
    assert props["items"]["items"] == {"type": "integer"}
    assert props["mapping"]["type"] == "object"
    assert props["mapping"]["additionalProperties"] == {"type": "number"}
    assert props["color"]["enum"] == ["red", "green"]
    assert props["color"]["description"] == "a color."  # the Args: text wins over the docstring
    assert {"type": "null"} in props["label"]["anyOf"]


def test_schema_nested_models_are_inlined_with_their_descriptions():
    props = everything.schema["properties"]
    person = props["person"]
    assert person["type"] == "object"
    assert person["description"] == "who."
    assert set(person["required"]) == {"name", "address"}
    address = person["properties"]["address"]
    assert address["type"] == "object"
    assert address["description"] == "A postal address."
    assert address["properties"]["city"]["description"] == "the city's name"
    assert address["required"] == ["street"]
    assert "$ref" not in json.dumps(person)


def test_schema_typeddicts_from_typing_work_on_python_311():
    props = everything.schema["properties"]
    point = props["point"]
    assert point["type"] == "object"
    assert set(point["properties"]) == {"x", "y", "label"}
    assert set(point["required"]) == {"x", "y"}
    assert props["points"]["items"]["properties"]["x"] == {"type": "number"}
    assert everything.validate({**_valid_everything(), "point": {"x": 1, "y": 2}})[
        "point"] == {"x": 1.0, "y": 2.0}


def test_schema_recursive_models_keep_defs_and_refs_resolve():
    schema = everything.schema
    assert set(schema["$defs"]) == {"Tree"}
    tree = schema["properties"]["tree"]
    refs = [n["$ref"] for n in _walk(schema) if isinstance(n, dict) and "$ref" in n]
    assert refs and all(r == "#/$defs/Tree" for r in refs)
    assert tree.get("$ref") == "#/$defs/Tree" or tree["type"] == "object"


def test_schema_has_no_pydantic_titles_but_keeps_properties_named_title():
    @tool
    def book(title: str, model_config: int = 0, schema: str = "x", _private: int = 1) -> str:
        """Store a book.

        Args:
            title: the book's title.
        """
        return title

    schema = book.schema
    assert set(schema["properties"]) == {"title", "model_config", "schema", "_private"}
    assert schema["properties"]["title"] == {"type": "string", "description": "the book's title."}
    for node in _walk(everything.schema):
        if isinstance(node, dict) and "type" in node:
            assert "title" not in node, node
    assert book.invoke({"title": "Dune", "model_config": 2, "_private": 3}) == "Dune"


def test_schema_is_json_serializable_and_cached():
    first = everything.schema
    assert everything.schema is first
    assert everything.parameters is first
    json.dumps(first)


def test_schema_is_built_once(monkeypatch):
    import graphflow.tools.base as base

    calls = []

    real = base.analyze

    def counting(fn, name):
        calls.append(name)
        return real(fn, name)

    monkeypatch.setattr(base, "analyze", counting)

    @tool
    def f(a: int) -> int:
        """F."""
        return a

    for _ in range(3):
        _ = f.schema, f.to_openai(), f.to_anthropic(), f.description
        f.invoke({"a": 1})
    assert calls == ["f"]


def test_description_sources():
    @tool
    def a(x: int) -> int:
        """First line
        continues here.

        Second paragraph.
        """
        return x

    @tool(description="Explicit.")
    def b(x: int) -> int:
        """Ignored."""
        return x

    @tool
    def c(x: int) -> int:
        return x

    assert a.description == "First line continues here."
    assert b.description == "Explicit."
    assert c.description == ""


def test_annotated_descriptions_and_constraints():
    @tool
    def f(
        a: Annotated[int, Field(description="from Field", ge=1)],
        b: Annotated[str, "from a string"] = "x",
        c: Annotated[int, Field(le=5)] = 0,
    ) -> str:
        """F.

        Args:
            a: ignored, Field wins.
            c: from the docstring.
        """
        return f"{a}{b}{c}"

    props = f.schema["properties"]
    assert props["a"] == {"type": "integer", "minimum": 1, "description": "from Field"}
    assert props["b"]["description"] == "from a string"
    assert props["c"]["description"] == "from the docstring."
    assert props["c"]["maximum"] == 5
    with pytest.raises(ToolArgumentError, match="greater than or equal to 1"):
        f.invoke({"a": 0})


def test_parse_docstring_google_style():
    doc = """Summary line.

    Args:
        alpha (int): first
            and more.
        beta: second.

        gamma: after a blank line.
        *args: variadic.
    Returns:
        delta: not an argument.
    """
    description, args = parse_docstring(doc)
    assert description == "Summary line."
    assert args == {"alpha": "first and more.", "beta": "second.",
                    "gamma": "after a blank line.", "args": "variadic."}
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Args:\n    x: y\n      more\nReturns:\n    z") == (
        "", {"x": "y more"})


def test_to_openai_and_to_anthropic():
    @tool
    def add(a: int, b: int = 1) -> int:
        """Add two integers.

        Args:
            a: the first.
            b: the second.
        """
        return a + b

    openai = add.to_openai()
    assert openai == {"type": "function", "function": {
        "name": "add", "description": "Add two integers.", "parameters": add.schema}}
    anthropic = add.to_anthropic()
    assert anthropic == {"name": "add", "description": "Add two integers.",
                         "input_schema": add.schema}
    assert add.schema["required"] == ["a"]
    json.dumps(openai)
    json.dumps(anthropic)


# -- names and construction --------------------------------------------------------------


@pytest.mark.parametrize("name", ["has space", "dot.ted", "", "x" * 65, "ünï", "a/b", "<lambda>"])
def test_invalid_names_are_refused_clearly(name):
    with pytest.raises(ToolDefinitionError, match=r"invalid tool name.*\^\[a-zA-Z0-9_-\]"):
        Tool(lambda: None, name=name)


def test_lambda_without_name_is_refused_and_valid_names_pass():
    with pytest.raises(ToolDefinitionError, match="pass name="):
        Tool(lambda x: x)
    assert Tool(lambda: 1, name="x" * 64).name == "x" * 64
    assert Tool(lambda: 1, name="get-weather_2").name == "get-weather_2"
    assert isinstance(ToolDefinitionError("x"), GraphflowError)
    assert isinstance(ToolDefinitionError("x"), ValueError)


def test_decorator_forms_and_direct_call():
    @tool
    def a(x: int) -> int:
        return x + 1

    @tool()
    def b(x: int) -> int:
        return x + 2

    @tool(name="renamed", timeout=5)
    def c(x: int) -> int:
        return x + 3

    assert (a.name, b.name, c.name) == ("a", "b", "renamed")
    assert c.timeout == 5
    assert a(1) == 2  # calling the Tool calls the function
    assert isinstance(a, Tool)
    assert "renamed" in repr(c)
    with pytest.raises(ToolDefinitionError, match="name="):
        tool("oops")
    with pytest.raises(ToolDefinitionError, match="timeout"):
        Tool(lambda: 1, name="t", timeout=0)


def test_positional_only_and_keyword_only_parameters():
    @tool
    def f(a: int, /, b: int, *, c: int = 3) -> list[int]:
        return [a, b, c]

    assert set(f.schema["properties"]) == {"a", "b", "c"}
    assert f.invoke({"a": 1, "b": 2}) == [1, 2, 3]


def test_varargs_are_not_exposed():
    @tool
    def f(a: int, *rest: int, **extra: Any) -> int:
        return a + len(rest) + len(extra)

    assert set(f.schema["properties"]) == {"a"}
    assert f.invoke({"a": 5}) == 5


def test_methods_and_callable_objects():
    class Counter:
        def __init__(self):
            self.total = 0

        def add(self, n: int) -> int:
            """Add n."""
            self.total += n
            return self.total

    counter = Counter()
    t = Tool(counter.add)
    assert t.name == "add"
    assert set(t.schema["properties"]) == {"n"}
    assert t.invoke({"n": 2}) == 2


def test_unresolvable_hints_give_a_clear_error():
    def f(x: "NoSuchType") -> int:  # noqa: F821
        return 1

    t = Tool(f)
    with pytest.raises(ToolDefinitionError, match="cannot resolve the type hints"):
        _ = t.schema


# -- validation ----------------------------------------------------------------------------


def _valid_everything():
    return {
        "count": 1, "ratio": 0.5, "text": "t", "flag": True, "mode": "fast", "maybe": None,
        "either": 1, "either_new": "s", "items": [1], "mapping": {"a": 1.0}, "color": "red",
        "person": {"name": "Ann", "address": {"street": "Main"}}, "point": {"x": 0, "y": 0},
        "points": [], "tree": {"label": "root", "children": [{"label": "leaf"}]},
        "anything": [1, "two"],
    }


def test_validation_builds_typed_values():
    values = everything.validate(_valid_everything())
    assert isinstance(values["person"], Person)
    assert isinstance(values["person"].address, Address)
    assert values["color"] is Color.RED
    assert isinstance(values["tree"].children[0], Tree)
    assert values["limit"] == 10 and values["label"] is None


def test_validation_error_names_tool_and_every_bad_argument():
    args = _valid_everything()
    args.update({"count": "many", "mode": "medium", "unknown": 1})
    del args["text"]
    args["person"] = {"name": "Ann", "address": {}}
    with pytest.raises(ToolArgumentError) as info:
        everything.invoke(args)
    err = info.value
    message = str(err)
    assert message.startswith("tool 'everything': invalid arguments:")
    assert "'count': Input should be a valid integer" in message
    assert "(got 'many')" in message
    assert "'mode': Input should be 'fast' or 'slow'" in message
    assert "'text': Field required" in message
    assert "'person.address.street': Field required" in message
    assert "'unknown': unexpected argument" in message
    assert err.tool == "everything"
    assert {e["type"] for e in err.errors} >= {"int_parsing", "missing", "extra_forbidden"}
    assert isinstance(err, GraphflowError) and isinstance(err, ValueError)
    assert err.__cause__ is None and err.__suppress_context__


def test_validation_accepts_json_text_and_none_refuses_non_objects():
    @tool
    def f(a: int = 1) -> int:
        return a

    assert f.invoke('{"a": "7"}') == 7  # lax coercion of "7", as models sometimes send
    assert f.invoke(None) == 1
    assert f.invoke({}) == 1
    with pytest.raises(ToolArgumentError, match="not valid JSON"):
        f.invoke("{nope")
    with pytest.raises(ToolArgumentError, match="must be a JSON object"):
        f.invoke([1, 2])


# -- injection -----------------------------------------------------------------------------


class Store:
    def __init__(self):
        self.items = {}


class Holder:
    def __init__(self, store):
        self.store = store


class FakeCtx:
    def __init__(self, context):
        self.context = context


def test_injected_parameters_are_hidden_and_filled():
    seen = {}

    @tool
    def f(
        query: str,
        state,
        ctx: RunContext,
        store: InjectedStore,
        whole: Annotated[dict, InjectedState],
        messages: Annotated[list, InjectedState("messages")],
        maybe_ctx: Optional[RunContext] = None,  # noqa: UP045
    ) -> str:
        seen.update(state=state, ctx=ctx, store=store, whole=whole, messages=messages,
                    maybe_ctx=maybe_ctx)
        return query

    assert set(f.schema["properties"]) == {"query"}
    assert f.schema["required"] == ["query"]
    assert f.injected == {"state": "state", "ctx": "context", "store": "store",
                          "whole": "state", "messages": "state", "maybe_ctx": "context"}
    store = Store()
    ctx = FakeCtx({"store": store})
    state = {"messages": ["hi"], "other": 1}
    assert f.invoke({"query": "q"}, state=state, ctx=ctx) == "q"
    assert seen == {"state": state, "ctx": ctx, "store": store, "whole": state,
                    "messages": ["hi"], "maybe_ctx": ctx}
    f.invoke({"query": "q"}, state=state, ctx=FakeCtx(Holder(store)))
    assert seen["store"] is store
    f.invoke({"query": "q"})
    assert seen["state"] is None and seen["store"] is None and seen["maybe_ctx"] is None


def test_the_model_cannot_set_injected_parameters():
    @tool
    def f(x: int, state: InjectedState) -> Any:
        return state

    with pytest.raises(ToolArgumentError, match="'state': unexpected argument"):
        f.invoke({"x": 1, "state": {"admin": True}}, state={"admin": False})
    assert f.invoke({"x": 1}, state={"admin": False}) == {"admin": False}


def test_injected_defaults_are_used_when_nothing_is_injected():
    @tool
    def f(x: int, store: Annotated[Any, InjectedStore] = "default-store") -> Any:
        return store

    assert f.invoke({"x": 1}) == "default-store"
    assert f.invoke({"x": 1}, ctx=FakeCtx({"store": "s"})) == "s"


def test_injection_inside_a_graph_node_gets_the_real_state_and_ctx():
    class S(TypedDict):
        question: str
        answer: str

    @tool
    def answer(prefix: str, state, ctx: RunContext, store: InjectedStore) -> str:
        return f"{prefix}{state['question']}@{ctx.node}/{store}"

    def node(state, ctx):
        return {"answer": answer.invoke({"prefix": "> "}, state=state, ctx=ctx)}

    g = StateGraph(S)
    g.add_node("ask", node).add_edge(START, "ask").add_edge("ask", END)
    out = g.compile().invoke({"question": "why"}, context={"store": "S1"})
    assert out["answer"] == "> why@ask/S1"


# -- calling: results, exceptions, async ---------------------------------------------------


class Boom(Exception):
    pass


def test_tool_exceptions_propagate_unchanged():
    error = Boom("bad thing")

    @tool
    def f() -> None:
        raise error

    @tool(timeout=5)
    def g() -> None:
        raise error

    @tool
    async def h() -> None:
        raise error

    for t in (f, g, h):
        with pytest.raises(Boom) as info:
            t.invoke({})
        assert info.value is error
        with pytest.raises(Boom) as info:
            asyncio.run(t.ainvoke({}))
        assert info.value is error


def test_async_tools_with_invoke_and_ainvoke():
    @tool
    async def double(x: int) -> int:
        """Double x."""
        await asyncio.sleep(0)
        return 2 * x

    assert double.is_async
    assert double.invoke({"x": 2}) == 4
    assert asyncio.run(double.ainvoke({"x": "3"})) == 6

    async def inside_a_running_loop():
        return double.invoke({"x": 5})  # sync invoke from async code: no deadlock

    assert asyncio.run(inside_a_running_loop()) == 10


def test_ainvoke_runs_sync_tools_off_the_event_loop():
    together = threading.Barrier(4, timeout=60)  # passes only if all four calls run at once

    @tool
    def slow(x: int) -> int:
        together.wait()
        return x

    async def main():
        return await asyncio.gather(*(slow.ainvoke({"x": i}) for i in range(4)))

    assert asyncio.run(main()) == [0, 1, 2, 3]  # one at a time would break the barrier


def test_sync_timeout_names_the_tool():
    release = threading.Event()

    @tool(timeout=0.2)
    def stuck() -> str:
        release.wait(5)
        return "late"

    start = time.perf_counter()
    with pytest.raises(ToolTimeoutError, match=r"tool 'stuck' timed out after 0\.2s") as info:
        stuck.invoke({})
    assert time.perf_counter() - start < 2
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, GraphflowError)
    assert (info.value.tool, info.value.timeout) == ("stuck", 0.2)
    with pytest.raises(ToolTimeoutError):
        asyncio.run(stuck.ainvoke({}))
    release.set()


def test_async_timeout_names_the_tool():
    @tool(timeout=0.2)
    async def stuck() -> str:
        await asyncio.sleep(5)
        return "late"

    for call in (lambda: stuck.invoke({}), lambda: asyncio.run(stuck.ainvoke({}))):
        start = time.perf_counter()
        with pytest.raises(ToolTimeoutError, match="tool 'stuck' timed out"):
            call()
        assert time.perf_counter() - start < 2


def test_a_timeout_error_raised_by_the_tool_itself_is_not_relabelled():
    @tool(timeout=5)
    async def f() -> None:
        raise TimeoutError("the tool's own")

    with pytest.raises(TimeoutError, match="the tool's own") as info:
        f.invoke({})
    assert not isinstance(info.value, ToolTimeoutError)


def test_fast_calls_under_a_timeout_return_normally():
    @tool(timeout=5)
    def quick(x: int) -> int:
        return x * 3

    assert quick.invoke({"x": 2}) == 6
    assert asyncio.run(quick.ainvoke({"x": 2})) == 6


# -- confirm=True --------------------------------------------------------------------------


class ToolState(TypedDict):
    amount: int
    results: Annotated[list, operator.add]
    rejected: Annotated[list, operator.add]


def _record(result):
    """State update for a tool result: plain strings only (checkpointers store str, not
    subclasses of it), plus whether the call was rejected."""
    return {"results": [str(result)], "rejected": [isinstance(result, ToolRejected)]}


def _confirm_graph(tool_obj, *, checkpointer=None, use_async=False):
    if use_async:
        async def node(state):
            return _record(await tool_obj.ainvoke({"amount": state["amount"]}))
    else:
        def node(state):
            try:
                result = tool_obj.invoke({"amount": state["amount"]})
            except ToolArgumentError as exc:
                result = f"argument error: {exc}"
            return _record(result)

    g = StateGraph(ToolState)
    g.add_node("tools", node).add_edge(START, "tools").add_edge("tools", END)
    return g.compile(checkpointer=checkpointer or MemoryCheckpointer())


def _transfer_tool(calls):
    @tool(confirm=True)
    def transfer(amount: int) -> str:
        """Transfer money.

        Args:
            amount: how much.
        """
        calls.append(amount)
        return f"sent {amount}"

    return transfer


def _pause(app, thread, amount=100):
    paused = app.invoke({"amount": amount}, thread=thread)
    (intr,) = paused[INTERRUPT]
    return intr


def test_confirm_pauses_with_the_tool_name_args_and_question():
    calls = []
    app = _confirm_graph(_transfer_tool(calls))
    thread = uuid.uuid4().hex
    intr = _pause(app, thread)
    assert calls == []
    assert intr.node == "tools"
    assert intr.value["tool"] == "transfer"
    assert intr.value["args"] == {"amount": 100}
    assert "transfer" in intr.value["question"]
    assert app.get_state(thread).interrupts[0].value == intr.value


@pytest.mark.parametrize("answer", ["approve", True, "Approve "])
def test_confirm_approve_runs_the_tool_once(answer):
    calls = []
    app = _confirm_graph(_transfer_tool(calls))
    thread = uuid.uuid4().hex
    _pause(app, thread)
    out = app.invoke(Command(resume=answer), thread=thread)
    assert out["results"] == ["sent 100"]
    assert calls == [100]
    assert INTERRUPT not in out


@pytest.mark.parametrize("answer", ["reject", False, {"reject": "too much"}, "maybe", 42])
def test_confirm_reject_returns_an_error_result_without_running(answer):
    calls = []
    seen = []
    transfer = _transfer_tool(calls)

    def node(state):
        result = transfer.invoke({"amount": state["amount"]})
        seen.append(result)
        return _record(result)

    g = StateGraph(ToolState)
    g.add_node("tools", node).add_edge(START, "tools").add_edge("tools", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    thread = uuid.uuid4().hex
    _pause(app, thread)
    out = app.invoke(Command(resume=answer), thread=thread)
    assert calls == []
    assert out["rejected"] == [True]
    (result,) = seen
    assert isinstance(result, ToolRejected)
    assert out["results"] == [str(result)]
    assert "rejected by the user" in result
    assert result.tool == "transfer"
    if isinstance(answer, dict):
        assert result.reason == "too much" and "too much" in result
    if answer in ("maybe", 42):
        assert "unrecognized confirmation answer" in result


@pytest.mark.parametrize("answer", ["approve", "reject"])
def test_confirm_round_trip_on_every_checkpointer(saver, answer):
    calls = []
    app = _confirm_graph(_transfer_tool(calls), checkpointer=saver)
    thread = uuid.uuid4().hex
    intr = _pause(app, thread, amount=3)
    assert intr.value["args"] == {"amount": 3}
    out = app.invoke(Command(resume=answer), thread=thread)
    assert out["rejected"] == [answer == "reject"]
    assert calls == ([3] if answer == "approve" else [])


def test_confirm_edit_runs_with_the_edited_arguments():
    calls = []
    app = _confirm_graph(_transfer_tool(calls))
    thread = uuid.uuid4().hex
    _pause(app, thread)
    out = app.invoke(Command(resume={"edit": {"amount": "5"}}), thread=thread)
    assert out["results"] == ["sent 5"]
    assert calls == [5]


def test_confirm_edit_with_invalid_arguments_is_an_argument_error():
    calls = []
    app = _confirm_graph(_transfer_tool(calls))
    thread = uuid.uuid4().hex
    _pause(app, thread)
    out = app.invoke(Command(resume={"edit": {"amount": "lots"}}), thread=thread)
    (result,) = out["results"]
    assert result.startswith("argument error: tool 'transfer': invalid arguments: 'amount'")
    assert calls == []


def test_confirm_in_an_async_node():
    calls = []
    app = _confirm_graph(_transfer_tool(calls), use_async=True)
    thread = uuid.uuid4().hex
    intr = _pause(app, thread, amount=7)
    assert intr.value["args"] == {"amount": 7}
    out = app.invoke(Command(resume="approve"), thread=thread)
    assert out["results"] == ["sent 7"] and calls == [7]


def test_invalid_arguments_fail_before_asking_the_human():
    calls = []
    transfer = _transfer_tool(calls)

    def node(state):
        try:
            transfer.invoke({"amount": "nope"})
        except ToolArgumentError as exc:
            return _record(exc)
        return _record("ran")

    g = StateGraph(ToolState)
    g.add_node("tools", node).add_edge(START, "tools").add_edge("tools", END)
    out = g.compile(checkpointer=MemoryCheckpointer()).invoke({"amount": 1}, thread="t")
    assert INTERRUPT not in out
    assert "invalid arguments" in out["results"][0]


def test_confirm_outside_a_graph_is_a_clear_error():
    calls = []
    transfer = _transfer_tool(calls)
    with pytest.raises(ToolConfirmationError,
                       match="confirmation needs a running graph with a checkpointer"):
        transfer.invoke({"amount": 1})
    with pytest.raises(ToolConfirmationError, match="checkpointer"):
        asyncio.run(transfer.ainvoke({"amount": 1}))
    assert calls == []


def test_confirm_in_a_graph_without_checkpointer_is_a_clear_error():
    calls = []
    transfer = _transfer_tool(calls)

    def node(state):
        return _record(transfer.invoke({"amount": state["amount"]}))

    g = StateGraph(ToolState)
    g.add_node("tools", node).add_edge(START, "tools").add_edge("tools", END)
    with pytest.raises(ToolConfirmationError) as info:
        g.compile().invoke({"amount": 1})
    assert "needs a running graph with a checkpointer" in str(info.value)
    assert info.value.graphflow_node == "tools"
    assert calls == []


def test_tool_rejected_is_a_plain_string_for_messages_and_serde():
    rejected = ToolRejected("transfer", "no")
    assert isinstance(rejected, str)
    assert json.loads(json.dumps({"content": rejected})) == {"content": str(rejected)}
    import pickle

    again = pickle.loads(pickle.dumps(rejected))
    assert again == rejected and again.tool == "transfer" and again.reason == "no"


class Opaque:
    pass


def test_argument_types_without_a_json_schema_are_a_clear_error():
    def f(x: Opaque) -> int:
        return 1

    t = Tool(f)
    with pytest.raises(ToolDefinitionError, match=r"cannot build an argument model.*Opaque"):
        _ = t.schema
    with pytest.raises(ToolDefinitionError, match="InjectedState"):
        t.invoke({"x": 1})
