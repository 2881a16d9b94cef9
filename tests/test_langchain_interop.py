"""LangChain parts in graphflow (graphflow.langchain): messages both ways, LangChain tools as
graphflow tools, a LangChain chat model as a graphflow ChatModel.

Optional: langchain-core is not a test dependency (it pulls in langsmith and a dozen packages),
so this module skips without it; CI installs it (with langchain-openai) and runs it on its own
(.ci/run). The chat model is exercised with LangChain's own ChatOpenAI talking to graphflow's
local OpenAI wire-protocol server, and with langchain-core's fake chat model."""

import asyncio
import operator
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("langchain_core", reason="langchain-core is not installed (optional: pip "
                                             "install 'graphflow[langchain]')")

from graphflow.tools import ToolArgumentError
from langchain_core import messages as lc
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.tools import StructuredTool
from langchain_core.tools import tool as lc_tool

from graphflow import END, START, MessagesState, StateGraph, add_messages
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.langchain import (
    LangChainChatModel,
    from_langchain_message,
    from_langchain_messages,
    from_langchain_tool,
    to_langchain_message,
    to_langchain_messages,
)
from graphflow.messages import (
    AIMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    Usage,
)

# -- messages ----------------------------------------------------------------------------------


def test_messages_round_trip_both_ways():
    ours = [
        SystemMessage("be terse", id="s1"),
        HumanMessage("hi", id="h1", name="ada"),
        AIMessage("", id="a1", tool_calls=[ToolCall(id="c1", name="add", args={"a": 1})],
                  usage=Usage(input_tokens=5, output_tokens=2), model="m", finish_reason="stop"),
        ToolMessage("3", id="t1", tool_call_id="c1", status="error"),
    ]
    theirs = to_langchain_messages(ours)
    assert [type(m) for m in theirs] == [lc.SystemMessage, lc.HumanMessage, lc.AIMessage,
                                         lc.ToolMessage]
    assert theirs[2].tool_calls == [{"name": "add", "args": {"a": 1}, "id": "c1",
                                     "type": "tool_call"}]
    assert theirs[2].usage_metadata["total_tokens"] == 7 and theirs[3].status == "error"
    back = from_langchain_messages(theirs)
    assert [m.model_dump() for m in back] == [m.model_dump() for m in ours]
    assert from_langchain_message(lc.RemoveMessage(id="x")) == RemoveMessage(id="x")
    assert to_langchain_message(RemoveMessage(id="x")).id == "x"


def test_content_blocks_become_text_and_other_blocks_are_refused():
    msg = lc.HumanMessage(content=["a ", {"type": "text", "text": "b"}])
    assert from_langchain_message(msg).content == "a b"
    with pytest.raises(ValueError, match="'image_url' content block"):
        from_langchain_message(lc.HumanMessage(content=[{"type": "image_url", "image_url": {
            "url": "http://x/y.png"}}]))


def test_add_messages_and_states_take_langchain_messages():
    merged = add_messages([HumanMessage("one", id="1")], [lc.AIMessage(content="two", id="2")])
    assert [(type(m), m.content) for m in merged] == [(HumanMessage, "one"), (AIMessage, "two")]

    class State(TypedDict):
        messages: Annotated[list, add_messages]
        log: Annotated[list, operator.add]

    g = StateGraph(State)
    g.add_node("bot", lambda s: {"messages": [lc.AIMessage(content="hello")]})
    g.add_edge(START, "bot").add_edge("bot", END)
    out = g.compile().invoke({"messages": [lc.HumanMessage(content="hi")], "log": []})
    assert [type(m) for m in out["messages"]] == [HumanMessage, AIMessage]


# -- tools ---------------------------------------------------------------------------------------


@lc_tool
def multiply(a: int, b: int = 2) -> int:
    """Multiply two integers."""
    return a * b


def test_a_langchain_tool_becomes_a_graphflow_tool():
    tool = from_langchain_tool(multiply)
    assert tool.name == "multiply" and tool.description == "Multiply two integers."
    assert tool.schema["properties"] == {"a": {"type": "integer"},
                                         "b": {"default": 2, "type": "integer"}}
    assert tool.schema["required"] == ["a"]
    assert tool.invoke({"a": 6, "b": 7}) == 42 and tool.invoke({"a": 4}) == 8
    with pytest.raises(ToolArgumentError, match="multiply"):
        tool.invoke({"a": "six"})


def test_an_async_only_langchain_tool_is_awaited():
    async def shout(text: str) -> str:
        return text.upper()

    tool = from_langchain_tool(StructuredTool.from_function(coroutine=shout, name="shout",
                                                            description="Shout it."))
    assert asyncio.run(tool.ainvoke({"text": "hi"})) == "HI"


# -- chat models -----------------------------------------------------------------------------------


def test_a_fake_langchain_chat_model_answers_and_streams_in_a_graph():
    fake = GenericFakeChatModel(messages=iter([lc.AIMessage(content="first answer"),
                                               lc.AIMessage(content="second answer")]))
    model = LangChainChatModel(fake)
    assert model.invoke([("user", "hi")]).content == "first answer"

    def bot(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("bot", bot)
    g.add_edge(START, "bot").add_edge("bot", END)
    events = list(g.compile().stream({"messages": ["q"]}, mode="messages"))
    assert {node for _, node in events} == {"bot"}
    tokens = [chunk.content for chunk, _ in events]
    assert "".join(tokens) == "second answer" and len(tokens) > 1


def test_chat_openai_drives_a_graphflow_tool_loop_through_the_real_sdk():
    langchain_openai = pytest.importorskip("langchain_openai",
                                           reason="langchain-openai is not installed")
    from graphflow.agents import FunctionCallingNode, ToolNode, tools_condition
    from graphflow.testing.llm_servers import OpenAIServer, Reply

    tool = from_langchain_tool(multiply)
    script = [Reply(tool_calls=[("multiply", {"a": 6, "b": 7})], usage=(11, 5)),
              Reply("6 x 7 = 42", usage=(20, 4))]
    with OpenAIServer(script) as server:
        chat = langchain_openai.ChatOpenAI(model="gpt-4o-mini", base_url=server.base_url,
                                           api_key="test", max_retries=0)
        model = LangChainChatModel(chat, price=(1.0, 2.0))
        g = StateGraph(MessagesState)
        g.add_node("agent", FunctionCallingNode(model, tools=[tool]))
        g.add_node("tools", ToolNode([tool]))
        g.add_edge(START, "agent")
        g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
        g.add_edge("tools", "agent")
        app = g.compile(checkpointer=MemoryCheckpointer())
        out = app.invoke({"messages": [lc.HumanMessage(content="6 x 7?")]}, thread="t")
        assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
        assert out["messages"][2].content == "42" and out["messages"][-1].content == "6 x 7 = 42"
        assert server.bodies[0]["tools"][0]["function"]["name"] == "multiply"
        assert server.bodies[1]["messages"][-1] == {
            "role": "tool", "content": "42", "tool_call_id": out["messages"][1].tool_calls[0].id}
        usage = app.get_state("t").metadata["usage"]
        assert (usage["input_tokens"], usage["output_tokens"]) == (31, 9)
