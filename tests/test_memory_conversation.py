"""Conversation windows: trim_messages and ConversationMemory (incremental summaries)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, TypedDict

import pytest
from graphflow.memory import ConversationMemory, Prepares, trim_messages

from graphflow import END, START, StateGraph
from graphflow.messages import (
    AIMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    add_messages,
)
from graphflow.models import ScriptedModel
from graphflow.models.tokens import count_tokens


def chat(n: int, *, system: bool = True) -> list:
    msgs: list = [SystemMessage(content="You are a helpful assistant.")] if system else []
    for i in range(n):
        msgs.append(HumanMessage(content=f"question {i}: what is the weather like in town {i}?"))
        msgs.append(AIMessage(content=f"answer {i}: sunny with a light breeze in town {i}"))
    return msgs


def test_trim_keeps_the_newest_messages_within_the_budget_counted_like_a_request():
    msgs = chat(50)
    for budget in (60, 200, 500, 1000):
        out = trim_messages(msgs, budget)
        assert count_tokens(out) <= budget
        assert out[0] is msgs[0]  # the system message is pinned
        assert out[1:] == msgs[len(msgs) - len(out) + 1:]  # a tail, in order
        assert count_tokens([msgs[0], *msgs[len(msgs) - len(out):]]) > budget  # one more: no
    assert trim_messages(msgs, 10**6) == msgs


def test_system_messages_anywhere_are_pinned_and_not_duplicated():
    msgs = chat(20)
    note = SystemMessage(content="The user is on the premium plan.")
    msgs.insert(11, note)
    out = trim_messages(msgs, 150)
    assert out[0] is msgs[0] and out[1] is note
    assert len({m.id for m in out}) == len(out)
    tail = trim_messages(msgs, 10**6)
    assert tail == msgs
    flat = trim_messages(msgs, 150, keep_system=False)
    assert msgs[0] not in flat and note not in flat


def test_a_tool_call_is_never_separated_from_its_results():
    calls = [ToolCall(name="lookup", args={"q": "a" * 40}), ToolCall(name="lookup",
                                                                      args={"q": "b"})]
    msgs = [HumanMessage(content="find things"), AIMessage(tool_calls=calls),
            ToolMessage(tool_call_id=calls[0].id, content="result one " * 10),
            ToolMessage(tool_call_id=calls[1].id, content="result two"),
            AIMessage(content="done")]
    for budget in range(0, count_tokens(msgs) + 5):
        out = trim_messages(msgs, budget)
        ids = [m.id for m in out]
        has_call = msgs[1].id in ids
        assert has_call == (msgs[2].id in ids) == (msgs[3].id in ids), (budget, ids)
        assert not out or not isinstance(out[0], ToolMessage)


def test_start_on_human_and_bad_budget():
    msgs = chat(5, system=False)
    out = trim_messages(msgs, count_tokens(msgs[-3:]), start_on="human")
    assert isinstance(out[0], HumanMessage)
    assert trim_messages(chat(3), 5) == [chat(3)[0]] or len(trim_messages(chat(3), 5)) == 1
    with pytest.raises(ValueError, match="max_tokens"):
        trim_messages(msgs, -1)
    assert trim_messages([("user", "hi"), ("assistant", "hello")], 100)[0].content == "hi"


def summarizer() -> ScriptedModel:
    """Answers with a summary naming how many messages it was shown, so tests can tell what
    each call received."""
    def reply(messages: list) -> str:
        body = messages[-1].content
        new = body.split("New messages:\n", 1)[1].splitlines()
        old = body.split("Current summary:\n", 1)[1].split("\n\nNew messages:", 1)[0]
        return f"[{old}] + {len(new)} lines"
    return ScriptedModel(reply)


def test_summary_is_incremental_each_message_summarized_once():
    model = summarizer()
    mem = ConversationMemory(120, summarizer=model, summary_words=20)
    msgs = chat(6)
    s1 = mem.update(msgs)
    assert s1 is not None and s1["count"] > 0 and len(model.calls) == 1
    assert s1["through"] in {m.id for m in msgs}
    assert mem.update(msgs, s1) is s1 and len(model.calls) == 1  # nothing new left the window
    longer = msgs + chat(3, system=False)
    s2 = mem.update(longer, s1)
    assert len(model.calls) == 2
    request = model.calls[1][-1].content
    assert s1["text"] in request  # the old summary is folded in...
    shown = request.split("New messages:\n", 1)[1].splitlines()
    assert len(shown) == s2["count"] - s1["count"]  # ...with only the messages new since
    first_ids = [m.content for m in longer if m.id == s1["through"]]
    assert first_ids and first_ids[0] not in request
    window = mem.window(longer, s2)
    assert window[0].content.startswith("You are") and "Summary of the earlier" in window[
        1].content
    assert count_tokens(window) <= 120


def test_prepare_is_what_an_agent_calls_and_remembers_the_summary():
    model = summarizer()
    mem = ConversationMemory(120, summarizer=model, summary_words=20)
    assert isinstance(mem, Prepares)
    msgs = chat(6)
    first = mem.prepare(msgs)
    assert len(model.calls) == 1 and count_tokens(first) <= 120
    longer = msgs + chat(1, system=False)
    again = mem.prepare(longer)
    assert len(model.calls) == 2  # only the two newly dropped messages were summarized
    assert "+ 2 lines" in again[1].content
    assert asyncio.run(mem.aprepare(longer)) == again and len(model.calls) == 2
    plain = ConversationMemory(120)
    assert plain.prepare(msgs) == trim_messages(msgs, 120, start_on="human")


class S(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    summary: Any


def test_as_a_node_the_summary_lives_in_the_state_and_prune_removes_summarized_messages():
    model = summarizer()
    g = StateGraph(S)
    g.add_node("memory", ConversationMemory(120, summarizer=model, summary_words=20, prune=True))
    g.add_edge(START, "memory")
    g.add_edge("memory", END)
    app = g.compile()
    assert app.get_graph().nodes["memory"]["kind"] == "memory"
    msgs = chat(6)
    out = app.invoke({"messages": msgs})
    summary = out["summary"]
    assert summary["count"] > 0
    kept_ids = {m.id for m in out["messages"]}
    assert msgs[0].id in kept_ids  # the system message stays
    assert summary["through"] not in kept_ids
    assert count_tokens(out["messages"]) <= count_tokens(msgs)
    again = app.invoke({"messages": out["messages"], "summary": summary})
    assert again["summary"] == summary and len(model.calls) == 1
