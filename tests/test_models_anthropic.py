"""AnthropicChat on the real ``anthropic`` SDK, against a local server speaking the Messages API
wire protocol (graphflow.testing.llm_servers.AnthropicServer), which — like the real API —
rejects system roles in ``messages``, non-alternating roles and unpaired tool_use/tool_result."""

from __future__ import annotations

import asyncio
import threading

import anthropic
import pytest
from pydantic import BaseModel
from support.chat_graph import one_node_graph

from graphflow import AIMessage, ToolMessage
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.messages import Usage, merge_chunks
from graphflow.models import AnthropicChat, chat_model
from graphflow.models.anthropic_chat import to_anthropic_messages
from graphflow.models.resilience import (
    CircuitBreaker,
    CircuitOpenError,
    MissingAPIKeyError,
    RetryConfig,
)
from graphflow.testing.llm_servers import AnthropicServer, Fault, Reply

FAST = RetryConfig(max_attempts=4, initial=0.001, max_wait=2.0, jitter=False)
MODEL = "claude-haiku-4-5"


@pytest.fixture
def server():
    with AnthropicServer() as s:
        yield s


def make(server, **kw):
    kw.setdefault("retry", FAST)
    return AnthropicChat(MODEL, base_url=server.base_url, api_key="test-key", **kw)


class FakeTool:
    """Duck-typed like graphflow.tools.Tool: ``.name`` and ``.to_anthropic()``."""

    def __init__(self, name: str, props: dict) -> None:
        self.name = name
        self.props = props

    def to_anthropic(self) -> dict:
        return {"name": self.name, "description": f"the {self.name} tool",
                "input_schema": {"type": "object", "properties": self.props,
                                 "required": list(self.props)}}


WEATHER = FakeTool("get_weather", {"city": {"type": "string"}})


# -- plain calls ---------------------------------------------------------------------------------

def test_plain_completion_system_prompt_max_tokens_and_usage(server):
    server.push(Reply("Bonjour!", usage=(25, 3)))
    msg = make(server).invoke([("system", "Answer in French."), ("user", "Hello")])
    assert msg.content == "Bonjour!" and msg.tool_calls == []
    assert msg.usage == Usage(input_tokens=25, output_tokens=3)
    assert msg.model == MODEL and msg.finish_reason == "end_turn"
    (req,) = server.requests
    assert req.path == "/v1/messages"
    # older SDKs send the key as x-api-key, newer ones as a bearer token
    assert "test-key" in (req.headers.get("x-api-key"), req.headers.get("authorization", "")[7:])
    assert req.body["system"] == "Answer in French."
    assert req.body["messages"] == [{"role": "user", "content": "Hello"}]
    assert req.body["max_tokens"] == 4096 and req.body["model"] == MODEL


def test_max_tokens_and_params_are_configurable(server):
    server.push(Reply("ok"))
    make(server, max_tokens=100, temperature=0).invoke("hi")
    assert server.bodies[0]["max_tokens"] == 100 and server.bodies[0]["temperature"] == 0


def test_chat_model_factory_and_missing_key(server, monkeypatch):
    server.push(Reply("factory"))
    model = chat_model(f"anthropic:{MODEL}", base_url=server.base_url, api_key="k", retry=FAST)
    assert isinstance(model, AnthropicChat) and model.invoke("x").content == "factory"
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        AnthropicChat(MODEL)


def test_every_system_message_is_pulled_out_and_same_roles_are_merged(server):
    server.push(Reply("ok"))
    make(server).invoke([("system", "Rule one."), ("user", "a"), ("user", "b"),
                         ("system", "Rule two."), ("assistant", "c"), ("assistant", "d "),
                         ])
    body = server.bodies[0]
    assert body["system"] == "Rule one.\n\nRule two."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"},
                                     {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"},
                                          {"type": "text", "text": "d"}]},  # no trailing space
    ]


# -- streaming -----------------------------------------------------------------------------------

def test_stream_is_incremental_with_usage_from_message_start_and_delta(server):
    gate = threading.Event()
    server.push(Reply("one two three", usage=(40, 6), gate=gate),
                Reply("one two three", usage=(40, 6)))
    model = make(server)
    stream = model.stream("count")
    first = next(c for c in stream if c.content)
    assert first.content == "one" and not server.requests[0].done.is_set()  # rest held back
    gate.set()
    chunks = [first, *stream]
    assert [c.content for c in chunks if c.content] == ["one", " two", " three"]
    assert server.bodies[0]["stream"] is True
    streamed, plain = merge_chunks(chunks), model.invoke("count")
    assert streamed.content == plain.content
    assert streamed.usage == plain.usage == Usage(input_tokens=40, output_tokens=6)
    assert streamed.finish_reason == plain.finish_reason == "end_turn"


def test_streamed_tool_use_blocks_become_tool_call_chunks(server):
    server.push(Reply("Checking both.", tool_calls=[("get_weather", {"city": "Paris"}),
                                                    ("get_weather", {"city": "Rome"})]))
    chunks = list(make(server).stream("Paris and Rome?", tools=[WEATHER]))
    msg = merge_chunks(chunks)
    assert msg.content == "Checking both."
    assert [(c.name, c.args) for c in msg.tool_calls] == [
        ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Rome"})]
    assert all(c.id.startswith("toolu_") for c in msg.tool_calls)
    # tool calls are numbered 0, 1 (the text block before them does not count)
    assert {p.index for c in chunks for p in c.tool_call_chunks} == {0, 1}
    assert msg.finish_reason == "tool_use"


# -- tools ---------------------------------------------------------------------------------------

def test_parallel_tool_calls_round_trip_as_tool_use_and_tool_result_blocks(server):
    server.push(Reply(tool_calls=[{"id": "toolu_1", "name": "get_weather",
                                   "args": {"city": "Paris"}},
                                  {"id": "toolu_2", "name": "get_weather",
                                   "args": {"city": "Rome"}}]),
                Reply("Paris is sunny; Rome could not be checked."))
    model = make(server)
    history = [("system", "Be factual."), ("user", "Weather in Paris and Rome?")]
    ask = model.invoke(history, tools=[WEATHER], tool_choice="any")
    assert [c.id for c in ask.tool_calls] == ["toolu_1", "toolu_2"]
    history += [ask, ToolMessage(tool_call_id="toolu_1", content="sunny"),
                ToolMessage(tool_call_id="toolu_2", content="service down", status="error"),
                ("user", "Summarise please.")]
    final = model.invoke(history, tools=[WEATHER])
    assert final.content.startswith("Paris is sunny")

    first = server.bodies[0]
    assert first["tools"] == [WEATHER.to_anthropic()]
    assert first["tool_choice"] == {"type": "any"}
    second = server.bodies[1]
    assert second["system"] == "Be factual."
    assert second["messages"] == [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather",
             "input": {"city": "Rome"}}]},
        {"role": "user", "content": [  # both results and the next question: one user turn
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "service down",
             "is_error": True},
            {"type": "text", "text": "Summarise please."}]},
    ]


def test_tool_formats_and_choices_are_converted(server):
    server.push(Reply("ok"))
    openai_style = {"type": "function", "function": {
        "name": "get_time", "description": "time", "parameters": {"type": "object",
                                                                  "properties": {}}}}
    make(server, parallel_tool_calls=False).invoke("x", tools=[WEATHER, openai_style],
                                                   tool_choice="get_time")
    body = server.bodies[0]
    assert body["tools"][1] == {"name": "get_time", "description": "time",
                                "input_schema": {"type": "object", "properties": {}}}
    assert body["tool_choice"] == {"type": "tool", "name": "get_time",
                                   "disable_parallel_tool_use": True}


def test_conversion_rules_in_isolation():
    system, wire = to_anthropic_messages([
        AIMessage(content=""),  # empty: dropped
        ToolMessage(tool_call_id="t0", content=""),
    ])
    assert system is None
    assert wire == [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t0"}]}]


# -- structured output ---------------------------------------------------------------------------

class Ticket(BaseModel):
    """A support ticket's triage."""

    route: str
    priority: int
    tags: list[str] = []


def test_structured_output_through_a_forced_tool(server):
    server.push(Reply(data={"route": "billing", "priority": 2, "tags": ["refund"]}))
    msg = make(server).invoke("I was charged twice", response_format=Ticket)
    assert msg.parsed == Ticket(route="billing", priority=2, tags=["refund"])
    assert msg.tool_calls == [] and Ticket.model_validate_json(msg.content) == msg.parsed
    body = server.bodies[0]
    assert body["tool_choice"] == {"type": "tool", "name": "Ticket"}
    (tool,) = body["tools"]
    assert tool["name"] == "Ticket" and tool["input_schema"]["required"] == ["route",
                                                                             "priority"]
    assert "support ticket" in tool["description"]


def test_structured_output_streams_the_answer_json_as_content(server):
    server.push(Reply(data={"route": "tech", "priority": 1}))
    chunks = list(make(server).stream("crash", response_format=Ticket))
    assert not any(c.tool_call_chunks for c in chunks)
    assert Ticket.model_validate_json(merge_chunks(chunks).content).route == "tech"


def test_structured_output_with_other_tools_lets_the_model_call_them_first(server):
    server.push(Reply(tool_calls=[("get_weather", {"city": "Oslo"})]))
    msg = make(server).invoke("x", tools=[WEATHER], response_format=Ticket)
    assert msg.tool_calls[0].name == "get_weather" and msg.parsed is None
    body = server.bodies[0]
    assert body["tool_choice"] == {"type": "any"}
    assert [t["name"] for t in body["tools"]] == ["get_weather", "Ticket"]


# -- retries, faults, breaker --------------------------------------------------------------------

def test_429_then_success_honours_retry_after(server):
    server.push(Fault.rate_limit(0.05), Reply("ok now"))
    assert make(server).invoke("hi").content == "ok now"
    assert len(server.requests) == 2
    assert server.requests[1].at - server.requests[0].at >= 0.05


def test_500_and_529_overloaded_are_retried(server):
    server.push(Fault.server_error(500), Fault.server_error(529), Reply("up"))
    assert make(server).invoke("hi").content == "up"
    assert len(server.requests) == 3


def test_400_is_not_retried(server):
    server.push(Fault.bad_request("messages: text content blocks must be non-empty"))
    with pytest.raises(anthropic.BadRequestError, match="must be non-empty") as info:
        make(server).invoke("hi")
    assert len(server.requests) == 1
    assert any("not retried" in note for note in info.value.__notes__)


def test_breaker_opens_after_failures_and_half_opens_after_reset_timeout(server):
    now = [100.0]
    breaker = CircuitBreaker(failure_threshold=3, reset_timeout=5, clock=lambda: now[0])
    model = make(server, retry=RetryConfig(max_attempts=3, initial=0.001, jitter=False),
                 breaker=breaker)
    server.push(*[Fault.server_error(503)] * 3, Fault.server_error(503), Reply("back"))
    with pytest.raises(anthropic.InternalServerError):
        model.invoke("hi")  # 3 attempts = 3 failures: the breaker opens
    assert breaker.state == "open" and len(server.requests) == 3
    with pytest.raises(CircuitOpenError):
        model.invoke("hi")
    now[0] += 5
    with pytest.raises(anthropic.InternalServerError) as info:
        model.invoke("hi")  # the half-open trial fails: open again, not retried
    assert breaker.state == "open" and len(server.requests) == 4
    assert any("circuit breaker is now open" in n for n in info.value.__notes__)
    now[0] += 5
    assert model.invoke("hi").content == "back" and breaker.state == "closed"


# -- async and graphs ----------------------------------------------------------------------------

def test_ainvoke_and_astream(server):
    server.push(Reply("hi async", usage=(3, 2)),
                Reply("streaming async", tool_calls=[("get_weather", {"city": "Nice"})]),
                Fault.server_error(), Reply("after 500"))
    model = make(server)

    async def main():
        try:
            one = await model.ainvoke("a")
            chunks = [c async for c in model.astream("b", tools=[WEATHER])]
            three = await model.ainvoke("c")
            return one, chunks, three
        finally:
            await model.aclose()

    one, chunks, three = asyncio.run(main())
    assert one.content == "hi async" and one.usage.total_tokens == 5
    merged = merge_chunks(chunks)
    assert merged.content == "streaming async"
    assert merged.tool_calls[0].args == {"city": "Nice"}
    assert three.content == "after 500" and len(server.requests) == 4


def test_graph_messages_mode_streams_sdk_events_as_chunk_node_pairs(server):
    server.push(Reply("streamed through the graph", usage=(11, 4)))
    app = one_node_graph(make(server))
    events = list(app.stream({"messages": [("user", "hi")]}, mode="messages"))
    assert "".join(c.content for c, _ in events) == "streamed through the graph"
    assert len([c for c, _ in events if c.content]) == 4
    assert {node for _, node in events} == {"agent"}
    assert server.bodies[0]["stream"] is True


def test_resume_replays_the_journaled_call_without_a_second_request(server):
    server.push(Reply("paid once"))
    app = one_node_graph(make(server), fail_once={"done": False}, saver=MemoryCheckpointer())
    with pytest.raises(RuntimeError, match="crashed after the model answered"):
        app.invoke({"messages": [("user", "q")]}, thread="t")
    assert app.invoke(None, thread="t")["messages"][-1].content == "paid once"
    assert len(server.requests) == 1


# -- broken tool-call JSON -------------------------------------------------------------------------

@pytest.mark.parametrize("streamed", [False, True], ids=["invoke", "stream"])
def test_broken_tool_call_json_is_sent_back_as_an_empty_input_and_an_error_result(server,
                                                                                   streamed):
    from graphflow.tools import tool

    from graphflow.agents import create_function_calling_agent

    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    broken = '{"a": 6, "b":'  # a model cut off mid-call
    server.push(Reply(tool_calls=[{"id": "toolu_1", "name": "multiply", "args": broken}]),
                Reply("Let me try that again."))
    agent = create_function_calling_agent(make(server), [multiply])
    question = {"messages": [("user", "6 x 7?")]}
    if streamed:
        for _ in agent.stream(question, mode="messages"):
            pass
    else:
        agent.invoke(question)
    assert [b.get("stream", False) for b in server.bodies] == [streamed, streamed]
    _, call_turn, result_turn = server.bodies[1]["messages"]
    (use,) = [b for b in call_turn["content"] if b["type"] == "tool_use"]
    assert use == {"type": "tool_use", "id": "toolu_1", "name": "multiply", "input": {}}
    (result,) = result_turn["content"]
    assert result["tool_use_id"] == "toolu_1" and result["is_error"] is True
    assert "not valid JSON" in result["content"] and broken in result["content"]
    assert "__raw__" not in str(server.bodies[1])
