"""The ``Agent`` class: a compiled graph with run/arun/stream (typed events, usage), as_tool,
memory, structured output, and use as a node of any graph. ScriptedModel only (the real SDKs:
test_orchestrators_e2e.py)."""

import asyncio
import operator
import uuid
from typing import Annotated, TypedDict

import pytest
from graphflow.tools import tool
from pydantic import BaseModel

from graphflow import (
    END,
    START,
    AIMessage,
    Command,
    GraphValidationError,
    HumanMessage,
    StateGraph,
    ToolCall,
    ToolMessage,
    add_messages,
)
from graphflow.agents import (
    Agent,
    AgentResult,
    ErrorEvent,
    HandoffEvent,
    Memory,
    ResponseEvent,
    ThinkingEvent,
    ToolCallEvent,
    ToolResultEvent,
)
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel, StructuredOutputError


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def calls(name, **args):
    return [ToolCall(name=name, args=args)]


def test_run_answers_with_tools_and_reports_usage():
    model = ScriptedModel([AIMessage(content="adding", tool_calls=calls("add", a=2, b=3)),
                           "2 + 3 = 5"])
    result = Agent("calc", model, "You add numbers.", tools=[add]).run("2+3?")
    assert isinstance(result, AgentResult)
    assert result.output == result.text == "2 + 3 = 5" and result.agent == "calc"
    assert [type(m).__name__ for m in result.messages] == [
        "HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert result.messages[2].content == "5"
    paid = [m.usage for m in result.messages if isinstance(m, AIMessage)]
    assert result.usage["input_tokens"] == sum(u.input_tokens for u in paid) > 0
    assert result.usage["output_tokens"] == sum(u.output_tokens for u in paid) > 0
    # the instructions are the system prompt; the replies carry the agent's name
    assert model.calls[0][0].content == "You add numbers."
    assert {m.name for m in result.messages if isinstance(m, AIMessage)} == {"calc"}


def test_a_bad_name_is_refused_at_construction():
    with pytest.raises(GraphValidationError, match="agent names are 1 to 64"):
        Agent("my agent", ScriptedModel([]))


def test_max_iterations_stops_the_tool_loop():
    model = ScriptedModel(lambda msgs: AIMessage(tool_calls=calls("add", a=1, b=1)))
    result = Agent("loop", model, tools=[add], max_iterations=3).run("go")
    assert len(model.calls) == 3
    assert "at most 3 model calls" in result.text


class Weather(BaseModel):
    city: str
    degrees: int


def test_output_type_without_tools_uses_the_models_structured_output():
    model = ScriptedModel(['{"city": "Oslo", "degrees": 4}'])
    result = Agent("w", model, output_type=Weather).run("weather in Oslo?")
    assert result.output == Weather(city="Oslo", degrees=4)
    assert result.text == '{"city": "Oslo", "degrees": 4}'


def test_output_type_with_tools_asks_once_more_for_the_format():
    model = ScriptedModel([AIMessage(tool_calls=calls("add", a=2, b=2)),
                           "It is 4 degrees in Oslo",
                           '{"city": "Oslo", "degrees": 4}'])
    result = Agent("w", model, tools=[add], output_type=Weather).run("weather?")
    assert result.output == Weather(city="Oslo", degrees=4)
    assert len(model.calls) == 3
    assert "JSON object" in model.calls[2][-1].content


def test_output_type_that_never_parses_fails_naming_the_type():
    model = ScriptedModel(["no json", "still no json"])
    with pytest.raises(StructuredOutputError, match="Weather"):
        Agent("w", model, tools=[add], output_type=Weather).run("weather?")


class LastTwo:
    """A memory of my own: the model sees the last two messages only."""

    def __init__(self):
        self.seen = []

    def prepare(self, messages):
        self.seen.append(len(messages))
        return messages[-2:]


def test_memory_prepare_decides_what_the_model_sees_and_the_state_keeps_all():
    memory = LastTwo()
    assert isinstance(memory, Memory)
    model = ScriptedModel(["first", "second"])
    agent = Agent("m", model, "Be brief.", memory=memory, checkpointer=MemoryCheckpointer())
    thread = uuid.uuid4().hex
    agent.run("one", thread=thread)
    result = agent.run("two", thread=thread)
    assert [m.content for m in model.calls[1]] == ["Be brief.", "first", "two"]
    assert memory.seen == [1, 3]
    assert [m.content for m in result.messages] == ["one", "first", "two", "second"]


def test_async_memory_aprepare_is_used_when_running_async():
    class Async(LastTwo):
        async def aprepare(self, messages):
            self.seen.append(("async", len(messages)))
            return messages[-1:]

    memory = Async()
    model = ScriptedModel(["ok"])
    result = asyncio.run(Agent("m", model, memory=memory).arun("hello"))
    assert result.text == "ok" and memory.seen == [("async", 1)]


def test_memory_must_have_prepare():
    with pytest.raises(TypeError, match="prepare"):
        Agent("m", ScriptedModel([]), memory=object())


def test_stream_yields_typed_events_in_order_with_usage():
    model = ScriptedModel([AIMessage(content="let me add", tool_calls=calls("add", a=1, b=2)),
                           "3"])
    events = list(Agent("calc", model, tools=[add]).stream("1+2?"))
    assert [e.type for e in events] == ["thinking", "tool_call", "tool_result", "response"]
    thinking, call, result, response = events
    assert isinstance(thinking, ThinkingEvent) and thinking.text == "let me add"
    assert isinstance(call, ToolCallEvent) and call.call.args == {"a": 1, "b": 2}
    assert isinstance(result, ToolResultEvent) and result.message.content == "3"
    assert isinstance(response, ResponseEvent) and response.text == "3"
    assert all(e.agent == "calc" for e in events)
    assert 0 < thinking.usage["output_tokens"] < response.usage["output_tokens"]
    assert response.result.usage == response.usage


def test_stream_reports_an_error_event_then_raises():
    model = ScriptedModel([])  # no reply at all
    events = []
    with pytest.raises(RuntimeError, match="ran out of replies"):
        for event in Agent("broken", model).stream("hi"):
            events.append(event)
    assert len(events) == 1 and isinstance(events[0], ErrorEvent)
    assert "ran out of replies" in str(events[0].error)


def test_stream_with_a_mode_is_the_graph_stream():
    events = list(Agent("a", ScriptedModel(["hi"])).stream({"messages": ["x"]}, mode="updates"))
    assert list(events[0]) == ["agent"]


def test_astream_and_arun():
    async def scenario():
        a = Agent("a", ScriptedModel(["one", "two"]))
        events = [e async for e in a.astream("hi")]
        result = await a.arun("again")
        return events, result

    events, result = asyncio.run(scenario())
    assert [e.type for e in events] == ["response"] and events[0].text == "one"
    assert result.text == "two"


def test_an_agent_with_handoffs_runs_as_the_team_they_reach():
    bob = Agent("bob", ScriptedModel(["bob answers"]), "You are Bob.", description="knows")
    alice = Agent("alice", ScriptedModel([calls("transfer_to_bob", note="over to you")]),
                  "You are Alice.", handoffs=[bob])
    events = list(alice.stream("hi"))
    assert [e.type for e in events] == ["handoff", "response"]
    assert events[0].agent == "alice" and events[0].target == "bob"
    result = events[-1].result
    assert result.agent == "bob" and result.text == "bob answers"
    notes = [m.content for m in result.messages if isinstance(m, ToolMessage)]
    assert notes == ["Transferred to bob. Note: over to you"]
    assert isinstance(events[0], HandoffEvent)


def test_agent_is_a_node_of_any_graph_and_draws_as_a_cluster():
    class State(TypedDict):
        messages: Annotated[list, add_messages]
        log: Annotated[list[str], operator.add]

    agent = Agent("helper", ScriptedModel(["helped"]), tools=[add])
    g = StateGraph(State)
    g.add_node(agent)
    g.add_node("after", lambda s: {"log": [s["messages"][-1].content]})
    g.add_edge(START, "helper")
    g.add_edge("helper", "after")
    g.add_edge("after", END)
    app = g.compile()
    out = app.invoke({"messages": [("user", "help")], "log": []})
    assert out["log"] == ["helped"]
    drawn = app.get_graph(expand_subgraphs=True)
    assert drawn.nodes["helper:agent"]["cluster"] == ("helper",)
    assert drawn.nodes["helper:agent"]["kind"] == "agent"
    assert drawn.nodes["helper:tools"]["kind"] == "tool"


def test_as_tool_runs_the_agent_inside_the_callers_run():
    inner = ScriptedModel(["Paris is the capital"])
    expert = Agent("geo", inner, "You know geography.", description="answers geography")
    tool_ = expert.as_tool()
    assert tool_.name == "geo" and tool_.description == "answers geography"
    assert list(tool_.schema["properties"]) == ["task"]
    boss_model = ScriptedModel([calls("geo", task="capital of France?"), "It is Paris."])
    boss = Agent("boss", boss_model, tools=[tool_])
    result = boss.run("France?")
    assert result.text == "It is Paris."
    assert [m.content for m in inner.calls[0]] == ["You know geography.", "capital of France?"]
    assert next(m for m in result.messages if isinstance(m, ToolMessage)).content == (
        "Paris is the capital")
    # the expert's tokens are the run's tokens
    boss_only = sum(m.usage.output_tokens for m in result.messages if isinstance(m, AIMessage))
    assert result.usage["output_tokens"] > boss_only


def test_as_tool_returns_structured_output_as_json():
    expert = Agent("w", ScriptedModel(['{"city": "Oslo", "degrees": 4}']), output_type=Weather)
    assert expert.as_tool("weather").invoke({"task": "Oslo"}) == '{"city":"Oslo","degrees":4}'


def test_as_tool_resumes_without_asking_the_finished_agent_again(saver):
    inner = ScriptedModel(lambda msgs: "expert answer")
    expert = Agent("expert", inner)
    failures = []

    @tool
    def flaky(x: int) -> int:
        """Fails the first time."""
        if not failures:
            failures.append(1)
            raise RuntimeError("flaky failed")
        return x

    boss_model = ScriptedModel(lambda msgs: (
        AIMessage(tool_calls=[ToolCall(name="expert", args={"task": "q"}),
                              ToolCall(name="flaky", args={"x": 1})])
        if not any(isinstance(m, ToolMessage) for m in msgs) else "done"))
    boss = Agent("boss", boss_model, tools=[expert.as_tool(), flaky],
                 handle_tool_errors=False, checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="flaky failed"):
        boss.run("go", thread=thread)
    result = boss.invoke(None, thread=thread)
    assert result["messages"][-1].content == "done"
    assert len(inner.calls) == 1  # the finished expert was not asked again
    assert len(boss_model.calls) == 2


def test_as_tool_with_an_approval_tool_inside_pauses_the_whole_run(saver):
    sent = []

    @tool(confirm=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    mailer = Agent("mailer", ScriptedModel([calls("send_email", to="bob"), "mail sent"]),
                   tools=[send_email])
    boss = Agent("boss", ScriptedModel([calls("mailer", task="mail bob"), "all done"]),
                 tools=[mailer.as_tool()], checkpointer=saver)
    thread = uuid.uuid4().hex
    paused = boss.invoke({"messages": [("user", "mail bob")]}, thread=thread)
    (question,) = paused["__interrupt__"]
    assert question.value["tool"] == "send_email" and sent == []
    out = boss.invoke(Command(resume="approve"), thread=thread)
    assert out["messages"][-1].content == "all done" and sent == ["bob"]


def test_handoff_by_name_only_cannot_run_alone():
    alice = Agent("alice", ScriptedModel([]), handoffs=["bob"])
    with pytest.raises(GraphValidationError, match="by name only"):
        alice.run("hi")


def test_run_inside_a_node_is_a_subgraph_run():
    helper = Agent("helper", ScriptedModel(["inner answer"]))

    class State(TypedDict):
        messages: Annotated[list, add_messages]

    def node(state):
        result = helper.run("question")
        return {"messages": [AIMessage(content=f"{result.agent}: {result.text}")]}

    g = StateGraph(State).add_node("ask", node)
    app = g.add_edge(START, "ask").add_edge("ask", END).compile()
    events = list(app.stream({"messages": [HumanMessage(content="go")]}, subgraphs=True))
    assert events[0][0] == ("helper",)
    assert events[-1][1]["ask"]["messages"][0].content == "helper: inner answer"
