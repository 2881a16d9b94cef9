"""OpenAIChat on the real ``openai`` SDK, against a local server speaking the Chat Completions
wire protocol (graphflow.testing.llm_servers.OpenAIServer): conversions, streaming, tools,
structured output, retries, the circuit breaker, async, and use inside a graph."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Literal

import openai
import pytest
from pydantic import BaseModel
from support.chat_graph import one_node_graph

from graphflow import AIMessage, ToolMessage
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.messages import merge_chunks
from graphflow.models import OpenAIChat, StructuredOutputError, chat_model
from graphflow.models.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    MissingAPIKeyError,
    RetryConfig,
)
from graphflow.testing.llm_servers import Fault, OpenAIServer, Reply

FAST = RetryConfig(max_attempts=4, initial=0.001, max_wait=2.0, jitter=False)


@pytest.fixture
def server():
    with OpenAIServer() as s:
        yield s


def make(server, **kw):
    kw.setdefault("retry", FAST)
    return OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key="test-key", **kw)


class FakeTool:
    """Duck-typed like graphflow.tools.Tool: only ``.name`` and ``.to_openai()`` are used."""

    def __init__(self, name: str, props: dict) -> None:
        self.name = name
        self.props = props

    def to_openai(self) -> dict:
        return {"type": "function", "function": {
            "name": self.name, "description": f"the {self.name} tool",
            "parameters": {"type": "object", "properties": self.props,
                           "required": list(self.props)}}}


WEATHER = FakeTool("get_weather", {"city": {"type": "string"}})
CLOCK = FakeTool("get_time", {"tz": {"type": "string"}})


# -- plain calls ---------------------------------------------------------------------------------

def test_plain_completion_with_usage_and_the_request_sent(server):
    server.push(Reply("Hello there!", usage=(21, 4)))
    msg = make(server).invoke([("system", "Be brief."), ("user", "hi")])
    assert isinstance(msg, AIMessage)
    assert msg.content == "Hello there!" and msg.tool_calls == []
    assert msg.usage.input_tokens == 21 and msg.usage.output_tokens == 4
    assert msg.model == "gpt-4o-mini" and msg.finish_reason == "stop"
    (req,) = server.requests
    assert req.path == "/v1/chat/completions"
    assert req.headers["authorization"] == "Bearer test-key"
    assert req.body["model"] == "gpt-4o-mini"
    assert req.body["messages"] == [{"role": "system", "content": "Be brief."},
                                    {"role": "user", "content": "hi"}]
    assert "stream" not in req.body and "tools" not in req.body


def test_extra_params_go_into_every_request(server):
    server.push(Reply("ok"))
    make(server, temperature=0, seed=7).invoke("hi")
    assert server.bodies[0]["temperature"] == 0 and server.bodies[0]["seed"] == 7


def test_chat_model_factory_builds_an_openai_model(server):
    server.push(Reply("from the factory"))
    model = chat_model("openai:gpt-4o-mini", base_url=server.base_url, api_key="k", retry=FAST)
    assert isinstance(model, OpenAIChat)
    assert model.invoke("hi").content == "from the factory"


def test_missing_api_key_is_a_clear_error_at_construction(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        OpenAIChat("gpt-4o-mini")
    with pytest.raises(MissingAPIKeyError, match="placeholder"):
        OpenAIChat("llama", base_url="http://127.0.0.1:8000/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert OpenAIChat("gpt-4o-mini").client.api_key == "from-env"


# -- streaming -----------------------------------------------------------------------------------

def test_stream_arrives_incrementally_and_adds_up_to_invoke(server):
    gate = threading.Event()
    server.push(Reply("the quick brown fox", usage=(9, 4), gate=gate),
                Reply("the quick brown fox", usage=(9, 4)))
    model = make(server)
    stream = model.stream("go")
    first = next(c for c in stream if c.content)
    # the first piece is here while the server is still holding the rest of the answer
    assert first.content == "the" and not server.requests[0].done.is_set()
    gate.set()
    chunks = [first, *stream]
    assert [c.content for c in chunks if c.content] == ["the", " quick", " brown", " fox"]
    body = server.bodies[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    streamed, plain = merge_chunks(chunks), model.invoke("go")
    assert streamed.content == plain.content == "the quick brown fox"
    assert streamed.usage == plain.usage == plain.usage.__class__(input_tokens=9,
                                                                  output_tokens=4)
    assert streamed.finish_reason == plain.finish_reason == "stop"


def test_streamed_parallel_tool_calls_are_assembled_from_deltas(server):
    server.push(Reply(tool_calls=[("get_weather", {"city": "Paris"}),
                                  ("get_time", {"tz": "Europe/Paris"})], usage=(30, 12)))
    chunks = list(make(server).stream("weather and time in Paris?", tools=[WEATHER, CLOCK]))
    pieces = [c for chunk in chunks for c in chunk.tool_call_chunks]
    assert len(pieces) > 2  # names first, arguments in several fragments
    assert {p.index for p in pieces} == {0, 1}
    msg = merge_chunks(chunks)
    assert [(c.name, c.args) for c in msg.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_time", {"tz": "Europe/Paris"})]
    assert all(c.id.startswith("call_") for c in msg.tool_calls)
    assert msg.usage.total_tokens == 42 and msg.finish_reason == "tool_calls"


# -- tools ---------------------------------------------------------------------------------------

def test_tool_call_round_trip_sends_the_history_back_correctly(server):
    server.push(Reply(tool_calls=[{"id": "call_abc", "name": "get_weather",
                                   "args": {"city": "Paris"}}]),
                Reply("It is sunny in Paris."))
    model = make(server)
    history = [("user", "Weather in Paris?")]
    first = model.invoke(history, tools=[WEATHER], tool_choice="auto")
    assert first.content == "" and first.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.args) for c in first.tool_calls] == [
        ("call_abc", "get_weather", {"city": "Paris"})]
    history += [first, ToolMessage(tool_call_id="call_abc", name="get_weather",
                                   content="sunny, 21C")]
    final = model.invoke(history, tools=[WEATHER])
    assert final.content == "It is sunny in Paris."

    asked = server.bodies[0]
    assert asked["tools"] == [WEATHER.to_openai()] and asked["tool_choice"] == "auto"
    sent = server.bodies[1]["messages"]
    assert sent == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": "sunny, 21C"},
    ]


def test_parallel_tool_calls_round_trip_and_tool_formats(server):
    server.push(Reply(tool_calls=[("get_weather", {"city": "Paris"}),
                                  ("get_weather", {"city": "Rome"})]),
                Reply("Paris sunny, Rome rainy."))
    anthropic_style = {"name": "get_time", "description": "time",
                       "input_schema": {"type": "object", "properties": {}}}
    model = make(server, parallel_tool_calls=True)
    ask = model.invoke("Paris and Rome?", tools=[WEATHER, anthropic_style],
                       tool_choice="get_weather")
    assert [c.args["city"] for c in ask.tool_calls] == ["Paris", "Rome"]
    results = [ToolMessage(tool_call_id=c.id, content=f"{c.args['city']}: ok")
               for c in ask.tool_calls]
    model.invoke(["Paris and Rome?", ask, *results], tools=[WEATHER])

    first = server.bodies[0]
    assert first["parallel_tool_calls"] is True
    assert first["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert first["tools"][1] == {"type": "function", "function": {
        "name": "get_time", "description": "time",
        "parameters": {"type": "object", "properties": {}}}}
    sent = server.bodies[1]["messages"]
    assert [c["id"] for c in sent[1]["tool_calls"]] == [c.id for c in ask.tool_calls]
    assert [(m["role"], m["tool_call_id"]) for m in sent[2:]] == [
        ("tool", c.id) for c in ask.tool_calls]


def test_a_tool_call_left_without_result_is_repaired_before_sending(server):
    server.push(Reply("ok"))
    dangling = AIMessage(tool_calls=[{"id": "call_1", "name": "get_weather",
                                      "args": {"city": "Oslo"}}])
    make(server).invoke(["weather?", dangling, "never mind"])  # the server would 400 otherwise
    sent = server.bodies[0]["messages"]
    assert sent[2]["role"] == "tool" and sent[2]["tool_call_id"] == "call_1"
    assert "did not complete" in sent[2]["content"]


def test_real_graphflow_tools_are_accepted(server):
    tools = pytest.importorskip("graphflow.tools")

    @tools.tool
    def get_weather(city: str) -> str:
        """Weather in a city.

        Args:
            city: the city name.
        """
        return "sunny"

    server.push(Reply(tool_calls=[("get_weather", {"city": "Paris"})]))
    msg = make(server).invoke("weather?", tools=[get_weather], tool_choice=get_weather)
    assert msg.tool_calls[0].args == {"city": "Paris"}
    assert server.bodies[0]["tools"] == [get_weather.to_openai()]
    assert server.bodies[0]["tool_choice"]["function"]["name"] == "get_weather"


# -- structured output ---------------------------------------------------------------------------

class Address(BaseModel):
    city: str
    zip: str | None = None


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str
    age: int
    kind: Literal["customer", "staff"] = "customer"
    address: Address


def test_structured_output_uses_a_strict_json_schema_and_parses(server):
    data = {"name": "Ada", "age": 36, "kind": "staff",
            "address": {"city": "London", "zip": None}}
    server.push(Reply(data=data))  # the server rejects a non-strict schema with a 400
    msg = make(server).invoke("Ada, 36, staff, London", response_format=Person)
    assert msg.parsed == Person.model_validate(data)
    fmt = server.bodies[0]["response_format"]
    assert fmt["type"] == "json_schema"
    spec = fmt["json_schema"]
    assert spec["name"] == "Person" and spec["strict"] is True
    assert spec["schema"]["additionalProperties"] is False
    assert set(spec["schema"]["required"]) == {"name", "age", "kind", "address"}


def test_structured_output_streams_and_parses_inside_the_graph_path(server):
    server.push(Reply(data={"name": "Bo", "age": 7, "kind": "customer",
                            "address": {"city": "Oslo", "zip": "0150"}}))
    chunks = list(make(server).stream("Bo", response_format=Person))
    assert len([c for c in chunks if c.content]) > 1
    text = merge_chunks(chunks).content
    assert Person.model_validate_json(text).address.zip == "0150"


def test_structured_output_falls_back_to_json_object_when_strict_is_impossible(server):
    class Tally(BaseModel):
        counts: dict[str, int]  # a free-form object: strict mode cannot express it

    server.push(Reply('{"counts": {"a": 2}}'), Reply("not json at all"))
    model = make(server)
    assert model.invoke("count", response_format=Tally).parsed == Tally(counts={"a": 2})
    body = server.bodies[0]
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system" and "JSON schema" in body["messages"][0][
        "content"]
    with pytest.raises(StructuredOutputError, match="Tally"):
        model.invoke("count", response_format=Tally)


def test_json_object_mode_can_be_chosen_for_servers_without_json_schema(server):
    server.push(Reply('{"name": "A", "age": 1, "address": {"city": "X"}}'))
    msg = make(server, structured_output="json_object").invoke("x", response_format=Person)
    assert msg.parsed.address.city == "X"
    assert server.bodies[0]["response_format"] == {"type": "json_object"}


# -- retries and faults --------------------------------------------------------------------------

@pytest.mark.parametrize("ms", [False, True], ids=["retry-after", "retry-after-ms"])
def test_429_is_retried_after_the_retry_after_delay(server, ms):
    server.push(Fault.rate_limit(0.05, ms=ms), Reply("finally"))
    assert make(server).invoke("hi").content == "finally"
    assert len(server.requests) == 2
    gap = server.requests[1].at - server.requests[0].at
    assert gap >= 0.05


def test_5xx_is_retried(server):
    server.push(Fault.server_error(500), Fault.server_error(503), Reply("up again"))
    assert make(server).invoke("hi").content == "up again"
    assert len(server.requests) == 3


def test_a_dropped_connection_is_retried(server):
    server.push(Fault.disconnect(), Reply("reconnected"))
    assert make(server).invoke("hi").content == "reconnected"
    assert len(server.requests) == 2


def test_a_timeout_is_retried(server):
    server.push(Reply("too slow", latency=0.5), Reply("in time"))
    assert make(server, timeout=0.15).invoke("hi").content == "in time"
    assert len(server.requests) == 2


def test_response_format_must_be_a_pydantic_model(server):
    with pytest.raises(TypeError, match="pydantic model class"):
        make(server).invoke("hi", response_format={"type": "json_object"})
    assert server.requests == []


def test_400_is_not_retried_and_the_error_is_clear(server):
    server.push(Fault.bad_request("messages[0].content: expected a string"), Reply("unused"))
    with pytest.raises(openai.BadRequestError, match="expected a string") as info:
        make(server).invoke("hi")
    assert len(server.requests) == 1
    assert any("HTTP 400" in note and "not retried" in note for note in info.value.__notes__)


def test_retries_stop_after_max_attempts(server):
    server.push(*[Fault.server_error()] * 5)
    with pytest.raises(openai.InternalServerError) as info:
        make(server, retry=RetryConfig(max_attempts=3, initial=0.001, jitter=False)).invoke("x")
    assert len(server.requests) == 3
    assert any("after 3 attempt" in note for note in info.value.__notes__)


def test_the_sdk_does_not_retry_on_its_own_even_with_an_injected_client(server):
    server.push(Fault.server_error(), Reply("unused"))
    client = openai.OpenAI(api_key="k", base_url=server.base_url, max_retries=5)
    model = OpenAIChat("gpt-4o-mini", client=client, retry=RetryConfig(max_attempts=1))
    with pytest.raises(openai.InternalServerError):
        model.invoke("hi")
    assert len(server.requests) == 1


def test_circuit_breaker_opens_fails_fast_and_half_opens(server):
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=30, clock=lambda: now[0])
    model = make(server, retry=RetryConfig(max_attempts=1), breaker=breaker)
    server.push(Fault.server_error(), Fault.server_error(), Reply("recovered"))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            model.invoke("hi")
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError, match="failing fast"):
        model.invoke("hi")
    assert len(server.requests) == 2  # nothing was sent while open
    now[0] = 30.0
    assert breaker.state == "half_open"
    assert model.invoke("hi").content == "recovered"  # the one trial call goes through
    assert breaker.state == "closed" and len(server.requests) == 3


def test_models_on_one_base_url_share_a_breaker(server):
    a, b = make(server), make(server)
    assert a.breaker is b.breaker
    assert make(server, breaker=False).breaker is None


# -- async ---------------------------------------------------------------------------------------

def test_ainvoke_and_astream(server):
    server.push(Reply("async hello", usage=(5, 2)),
                Reply("streamed async hello", usage=(5, 3)),
                Fault.rate_limit(0.02), Reply("after a 429"))
    model = make(server)

    async def main():
        try:
            one = await model.ainvoke("hi")
            chunks = [c async for c in model.astream("hi")]
            three = await model.ainvoke("again")
            return one, chunks, three
        finally:
            await model.aclose()

    one, chunks, three = asyncio.run(main())
    assert one.content == "async hello" and one.usage.total_tokens == 7
    assert [c.content for c in chunks if c.content] == ["streamed", " async", " hello"]
    assert merge_chunks(chunks).usage.output_tokens == 3
    assert three.content == "after a 429" and len(server.requests) == 4


# -- inside a graph ------------------------------------------------------------------------------

def test_messages_stream_mode_yields_chunks_from_the_real_sdk_stream(server):
    server.push(Reply("tokens from the wire", usage=(8, 4)))
    app = one_node_graph(make(server))
    events = list(app.stream({"messages": [("user", "hi")]}, mode="messages"))
    assert [c.content for c, _ in events if c.content] == ["tokens", " from", " the", " wire"]
    assert {node for _, node in events} == {"agent"}
    assert server.bodies[0]["stream"] is True
    assert sum(c.usage.total_tokens for c, _ in events if c.usage) == 12


def test_a_resumed_node_does_not_call_the_api_again(server):
    server.push(Reply("the paid answer", usage=(100, 10)))
    saver = MemoryCheckpointer()
    app = one_node_graph(make(server), fail_once={"done": False}, saver=saver)
    with pytest.raises(RuntimeError, match="crashed after the model answered"):
        app.invoke({"messages": [("user", "q")]}, thread="t")
    out = app.invoke(None, thread="t")
    assert out["messages"][-1].content == "the paid answer"
    assert len(server.requests) == 1  # the journal replayed the finished call


def test_request_bodies_are_json_the_sdk_accepts_for_every_message_kind(server):
    server.push(Reply("ok"))
    history = [("system", "sys"), {"role": "user", "content": "hi", "name": "ada"},
               AIMessage(content="thinking", tool_calls=[{"id": "c1", "name": "f",
                                                          "args": {"x": 1}}]),
               ToolMessage(tool_call_id="c1", content="boom", status="error"),
               ("assistant", "done"), ("user", "thanks")]
    make(server).invoke(history)
    sent = server.bodies[0]["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant",
                                         "user"]
    assert sent[1]["name"] == "ada"
    assert sent[2]["content"] == "thinking"
    assert json.loads(sent[2]["tool_calls"][0]["function"]["arguments"]) == {"x": 1}


def test_bind_tools_and_with_structured_output_on_the_real_sdk(server):
    class City(BaseModel):
        name: str

    server.push(Reply(tool_calls=[("get_weather", {"city": "Oslo"})]),
                Reply(data={"name": "Oslo"}))
    model = make(server)
    msg = model.bind_tools([WEATHER], tool_choice="required").invoke("weather in Oslo?")
    assert msg.tool_calls[0].args == {"city": "Oslo"}
    assert [t["function"]["name"] for t in server.bodies[0]["tools"]] == ["get_weather"]
    assert server.bodies[0]["tool_choice"] == "required"
    assert model.with_structured_output(City).invoke("which city?") == City(name="Oslo")
    assert server.bodies[1]["response_format"]["type"] == "json_schema"
    assert "tools" not in server.bodies[1]  # the original model has no tools bound
