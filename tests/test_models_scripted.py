"""ScriptedModel and what every ChatModel does inside a graph: journaled calls, tokens on the
"messages" stream, usage totals and the token budget."""

import asyncio

import pytest
from pydantic import BaseModel
from support.chat_graph import Chat, one_node_graph

from graphflow import (
    END,
    START,
    AIMessage,
    StateGraph,
    TokenBudgetExceeded,
    ToolCall,
)
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel, StructuredOutputError, chat_model


def test_scripted_replies_in_order_and_records_calls():
    model = ScriptedModel(["one", [ToolCall(name="f", args={"a": 1})], {"content": "three"}])
    assert model.invoke("hi").content == "one"
    assert model.invoke([("user", "x")]).tool_calls[0].name == "f"
    assert model.invoke("y").content == "three"
    assert len(model.calls) == 3 and model.calls[0][0].content == "hi"
    with pytest.raises(RuntimeError, match="ran out of replies"):
        model.invoke("z")


def test_scripted_function_of_the_messages_and_usage():
    model = ScriptedModel(lambda msgs: f"echo {msgs[-1].content}")
    msg = model.invoke("abcdefgh")
    assert msg.content == "echo abcdefgh"
    assert msg.usage.input_tokens == 2 and msg.usage.output_tokens > 0
    assert msg.model == "scripted"


def test_stream_outside_a_graph_adds_up_to_invoke():
    from graphflow.messages import merge_chunks

    text = "the  quick brown fox"
    streamed = merge_chunks(ScriptedModel([text]).stream("q"))
    assert streamed.content == text


def test_structured_output_parses_into_the_model():
    class Verdict(BaseModel):
        route: str
        score: int

    model = ScriptedModel(['{"route": "billing", "score": 3}', "not json"])
    assert model.invoke("q", response_format=Verdict).parsed == Verdict(route="billing", score=3)
    with pytest.raises(StructuredOutputError, match="Verdict"):
        model.invoke("q", response_format=Verdict)


def test_tokens_stream_through_the_graph_as_chunk_node_pairs():
    app = one_node_graph(ScriptedModel(["hello big world"]))
    events = list(app.stream({"messages": [("user", "hi")]}, mode="messages"))
    assert [c.content for c, node in events if c.content] == ["hello", " big", " world"]
    assert {node for _, node in events} == {"agent"}


def test_a_resumed_node_does_not_pay_for_a_finished_model_call_again():
    model = ScriptedModel(["the answer"])
    app = one_node_graph(model, fail_once={"done": False}, saver=MemoryCheckpointer())
    with pytest.raises(RuntimeError, match="crashed after the model answered"):
        app.invoke({"messages": [("user", "q")]}, thread="t")
    out = app.invoke(None, thread="t")  # the script has one reply: a 2nd call would raise
    assert out["messages"][-1].content == "the answer"
    assert len(model.calls) == 1


def test_usage_totals_are_in_checkpoint_metadata_and_cost_uses_the_price():
    model = ScriptedModel([AIMessage(content="x", usage={"input_tokens": 1000,
                                                         "output_tokens": 500})],
                          price=(2.0, 10.0))
    app = one_node_graph(model, saver=MemoryCheckpointer())
    app.invoke({"messages": [("user", "q")]}, thread="t")
    usage = app.get_state("t").metadata["usage"]
    assert usage["input_tokens"] == 1000 and usage["output_tokens"] == 500
    assert usage["cost"] == pytest.approx((1000 * 2 + 500 * 10) / 1e6)


def test_token_budget_stops_the_run_with_a_clear_error_and_keeps_the_answer():
    model = ScriptedModel([AIMessage(content="x", usage={"input_tokens": 80,
                                                         "output_tokens": 40})])
    saver = MemoryCheckpointer()
    app = one_node_graph(model, saver=saver)
    with pytest.raises(TokenBudgetExceeded, match="120 tokens, over its token_budget of 100") as e:
        app.invoke({"messages": [("user", "q")]}, thread="t", token_budget=100)
    assert e.value.node == "agent"
    out = app.invoke(None, thread="t", token_budget=1000)  # journaled: no second call
    assert out["messages"][-1].content == "x" and len(model.calls) == 1


def test_async_invoke_inside_a_graph_is_journaled_and_streams():
    model = ScriptedModel(["async works"])

    async def agent(state):
        return {"messages": [await model.ainvoke(state["messages"])]}

    g = StateGraph(Chat)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    app = g.compile()

    async def collect():
        return [e async for e in app.astream({"messages": ["hi"]}, mode="messages")]

    events = asyncio.run(collect())
    assert "".join(c.content for c, _ in events) == "async works"


def test_chat_model_factory_knows_its_providers():
    assert isinstance(chat_model("scripted", replies=["a"]), ScriptedModel)
    with pytest.raises(ValueError, match="unknown model provider"):
        chat_model("nope:model")


def test_scripted_answers_are_the_same_streamed_or_not():
    from graphflow.messages import merge_chunks

    script = [[ToolCall(id="c1", name="f", args={"x": 1})], "all done"]
    plain = ScriptedModel(script)
    streamed = ScriptedModel(script)
    for _ in script:
        said = plain.invoke("hi")
        chunks = list(streamed.stream("hi"))
        heard = merge_chunks(chunks)
        assert (heard.content, heard.tool_calls, heard.finish_reason) == (
            said.content, said.tool_calls, said.finish_reason)
        assert said.finish_reason == ("tool_calls" if said.tool_calls else "stop")
        assert all(c.content or c.tool_call_chunks or c.finish_reason for c in chunks), \
            "no empty chunks"


def test_chat_model_factory_defaults():
    assert chat_model("anthropic", api_key="k").model == "claude-haiku-4-5"
    assert chat_model("openai", api_key="k").model == "gpt-4o-mini"


def _usage_of(app, thread):
    usage = app.get_state(thread).metadata.get("usage", {})
    return usage.get("input_tokens", 0), usage.get("output_tokens", 0)


def test_thread_usage_adds_up_over_runs():
    reply = AIMessage(content="x", usage={"input_tokens": 10, "output_tokens": 5})
    model = ScriptedModel([reply, reply])
    app = one_node_graph(model, saver=MemoryCheckpointer())
    app.invoke({"messages": [("user", "q1")]}, thread="t")
    assert _usage_of(app, "t") == (10, 5)
    app.invoke({"messages": [("user", "q2")]}, thread="t")
    assert _usage_of(app, "t") == (20, 10)


@pytest.mark.parametrize("how", ["error", "interrupt", "retry"])
def test_a_call_paid_before_a_failure_or_pause_is_counted_exactly_once(how):
    """The model answers, then the node fails (and the run is resumed), pauses for a human,
    or is retried: the call is replayed from the journal, and the thread's totals hold its
    tokens once."""
    from graphflow import Command, RetryPolicy, interrupt

    model = ScriptedModel([AIMessage(content="x", usage={"input_tokens": 100,
                                                         "output_tokens": 50})])
    fails = {"left": 1}

    def agent(state):
        answer = model.invoke(state["messages"])
        if how == "interrupt":
            interrupt("go on?")
        elif fails["left"]:
            fails["left"] -= 1
            raise ConnectionError("after the model answered")
        return {"messages": [answer]}

    g = StateGraph(Chat)
    g.add_node("agent", agent, retry=RetryPolicy(max_attempts=2, initial_interval=0.0)
               if how == "retry" else None)
    g.add_edge(START, "agent").add_edge("agent", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    if how == "error":
        with pytest.raises(ConnectionError):
            app.invoke({"messages": [("user", "q")]}, thread="t")
        app.invoke(None, thread="t")
    elif how == "interrupt":
        app.invoke({"messages": [("user", "q")]}, thread="t")
        app.invoke(Command(resume="yes"), thread="t")
    else:
        app.invoke({"messages": [("user", "q")]}, thread="t")
    assert len(model.calls) == 1
    assert _usage_of(app, "t") == (100, 50)


# -- structured output in a checkpointed node; LangChain-style conveniences ------------------------

def test_structured_output_inside_a_checkpointed_node_needs_no_register_type(tmp_path):
    from graphflow.checkpoint import SqliteCheckpointer

    class Address(BaseModel):  # defined here: registered by nobody but the model call
        city: str

    class Customer(BaseModel):
        name: str
        address: Address

    model = ScriptedModel(['{"name": "Ada", "address": {"city": "London"}}'])

    def extract(state):
        return {"messages": [model.invoke(state["messages"], response_format=Customer)]}

    g = StateGraph(Chat)
    g.add_node("extract", extract)
    g.add_edge(START, "extract")
    g.add_edge("extract", END)
    db = tmp_path / "runs.db"
    out = g.compile(checkpointer=SqliteCheckpointer(db)).invoke(
        {"messages": [("user", "Ada lives in London")]}, thread="t")
    assert out["messages"][-1].parsed == Customer(name="Ada", address=Address(city="London"))
    # read back from the file by a fresh checkpointer: the nested model round-trips too
    again = g.compile(checkpointer=SqliteCheckpointer(db)).get_state("t")
    assert again.values["messages"][-1].parsed.address.city == "London"


def test_with_structured_output_returns_the_parsed_instance_and_is_journaled():
    class Verdict(BaseModel):
        route: str

    model = ScriptedModel(['{"route": "billing"}', '{"route": "sales"}', [ToolCall(name="f")]])
    judge = model.with_structured_output(Verdict)
    attempts = []

    def route(state):
        verdict = judge.invoke(state["messages"])
        attempts.append(verdict)
        if len(attempts) == 1:
            raise RuntimeError("crash after the model answered")
        return {"messages": [AIMessage(content=verdict.route)]}

    g = StateGraph(Chat)
    g.add_node("route", route)
    g.add_edge(START, "route")
    g.add_edge("route", END)
    app = g.compile(checkpointer=MemoryCheckpointer())
    with pytest.raises(RuntimeError, match="crash after the model answered"):
        app.invoke({"messages": [("user", "refund?")]}, thread="t")
    assert app.invoke(None, thread="t")["messages"][-1].content == "billing"
    assert attempts == [Verdict(route="billing")] * 2 and len(model.calls) == 1  # replayed
    assert asyncio.run(judge.ainvoke("x")) == Verdict(route="sales")
    with pytest.raises(StructuredOutputError, match="called tools"):
        judge.invoke("again")  # the script's tool call is no Verdict
    with pytest.raises(TypeError, match="pydantic model class"):
        model.with_structured_output(dict)


def test_bind_tools_returns_a_model_that_offers_them_and_per_call_tools_still_win():
    from graphflow.tools import tool

    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    def pong(host: str) -> str:
        """Pong a host."""
        return host

    seen = []

    class Recording(ScriptedModel):
        def _generate(self, messages, *, tools, tool_choice, response_format):
            seen.append(([t.name for t in tools or []], tool_choice))
            return super()._generate(messages, tools=tools, tool_choice=tool_choice,
                                     response_format=response_format)

    base = Recording(lambda msgs: "ok")
    bound = base.bind_tools([ping, pong], tool_choice="auto")
    assert isinstance(bound, ScriptedModel) and bound is not base
    bound.invoke("a")
    bound.invoke("b", tools=[ping], tool_choice="required")
    base.invoke("c")
    assert seen == [(["ping", "pong"], "auto"), (["ping"], "required"), ([], None)]


def test_usage_metadata_is_usage_under_langchains_name():
    msg = ScriptedModel(["four words of text"]).invoke("hello there")
    assert msg.usage_metadata is msg.usage
    assert msg.usage_metadata["input_tokens"] == msg.usage.input_tokens
    assert msg.usage_metadata["total_tokens"] == msg.usage.total_tokens
    assert msg.usage_metadata.get("cache_read", 0) == 0
