"""Messages, conversions, the add_messages reducer and tool-call repair."""

import operator
from typing import Annotated, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphflow import (
    END,
    START,
    AIMessage,
    HumanMessage,
    RemoveMessage,
    StateGraph,
    SystemMessage,
    ToolCall,
    ToolMessage,
    add_messages,
)
from graphflow.checkpoint import MemoryCheckpointer, SqliteCheckpointer
from graphflow.messages import (
    REMOVE_ALL_MESSAGES,
    AIMessageChunk,
    ToolCallChunk,
    merge_chunks,
    repair_tool_calls,
    to_message,
)


def test_to_message_converts_tuples_strings_and_dicts():
    assert isinstance(to_message(("user", "hi")), HumanMessage)
    assert isinstance(to_message(("human", "hi")), HumanMessage)
    assert isinstance(to_message(("assistant", "yo")), AIMessage)
    assert isinstance(to_message(("ai", "yo")), AIMessage)
    assert to_message(("system", "be nice")).role == "system"
    assert to_message("plain").content == "plain"
    tool = to_message({"role": "tool", "content": "42", "tool_call_id": "c1"})
    assert isinstance(tool, ToolMessage) and tool.tool_call_id == "c1"
    with pytest.raises(ValueError, match="unknown message role"):
        to_message(("wizard", "x"))
    with pytest.raises(TypeError):
        to_message(42)


def test_roles_match_the_providers_vocabulary():
    roles = [m.role for m in (SystemMessage(), HumanMessage(), AIMessage(),
                              ToolMessage(tool_call_id="x"))]
    assert roles == ["system", "user", "assistant", "tool"]


def test_add_messages_appends_replaces_by_id_and_removes():
    a, b = HumanMessage(content="a"), AIMessage(content="b")
    history = add_messages([], [a, b])
    assert [m.content for m in history] == ["a", "b"]
    edited = AIMessage(id=b.id, content="b2")
    history = add_messages(history, edited)
    assert [m.content for m in history] == ["a", "b2"]  # replaced in place
    history = add_messages(history, [RemoveMessage(id=a.id), ("user", "c")])
    assert [m.content for m in history] == ["b2", "c"]
    with pytest.raises(ValueError, match="no message has that id"):
        add_messages(history, RemoveMessage(id="nope"))
    assert add_messages(history, RemoveMessage(id=REMOVE_ALL_MESSAGES)) == []


def test_add_messages_never_mutates_its_inputs():
    left = [HumanMessage(content="a")]
    add_messages(left, ("user", "b"))
    assert len(left) == 1


def _apply(history, model, n, op, k, wrap):
    """One add_messages call for ``op`` ("add", "add2", "edit", "remove"), mirrored on
    ``model`` (an ordered dict id -> text); ``wrap`` makes the update passed from the new
    messages (one message, or a list)."""
    ids = list(model)
    if op.startswith("add") or not ids:
        new = [HumanMessage(content=f"m{n}.{i}") for i in range(2 if op == "add2" else 1)]
        model.update((m.id, m.content) for m in new)
        return add_messages(history, wrap(new))
    target = ids[k % len(ids)]
    if op == "edit":
        model[target] = f"e{n}"
        return add_messages(history, wrap([AIMessage(id=target, content=f"e{n}")]))
    del model[target]
    return add_messages(history, RemoveMessage(id=target))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "edit", "remove"]), st.integers(0, 5)),
                max_size=25))
def test_add_messages_behaves_like_an_ordered_dict_of_ids(ops):
    history: list = []
    model: dict[str, str] = {}
    for n, (op, k) in enumerate(ops):
        history = _apply(history, model, n, op, k, wrap=lambda msgs: msgs[0])
    assert [(m.id, m.content) for m in history] == list(model.items())


def test_repair_gives_every_tool_call_a_result():
    calls = [ToolCall(id="c1", name="a"), ToolCall(id="c2", name="b")]
    history = [HumanMessage(content="q"), AIMessage(tool_calls=calls),
               ToolMessage(tool_call_id="c1", content="ok"), HumanMessage(content="next")]
    repaired = repair_tool_calls(history)
    assert [type(m).__name__ for m in repaired] == [
        "HumanMessage", "AIMessage", "ToolMessage", "ToolMessage", "HumanMessage"]
    added = repaired[3]
    assert added.tool_call_id == "c2" and added.status == "error" and "'b'" in added.content
    assert repair_tool_calls(repaired) == repaired  # already valid: unchanged


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.sampled_from(["add", "add2", "edit", "remove"]),
                          st.integers(0, 5)), max_size=30))
def test_add_messages_on_any_earlier_history_like_an_ordered_dict(ops):
    """Merging into the latest result (the agent loop) and into older or rebuilt histories (forks,
    replays), in any order, always gives the ordered-dict answer."""
    branches: list[tuple[list, dict[str, str]]] = [([], {})]
    for n, (pick, op, k) in enumerate(ops):
        history, model = branches[pick % len(branches)]
        if pick % 3 == 2:
            history = [m.model_copy() for m in history]  # equal messages, other objects
        model = dict(model)
        history = _apply(history, model, n, op, k, wrap=list)
        assert [(m.id, m.content) for m in history] == list(model.items())
        branches.append((history, model))


def _reference_repair(history):
    """The rule, written plainly: calls still open when a non-tool message (or the end)
    arrives get an error result there (here a ("missing", call id) marker)."""
    out, pending = [], {}
    for msg in history:
        if pending and not isinstance(msg, ToolMessage):
            out += [("missing", c) for c in pending]
            pending = {}
        if isinstance(msg, ToolMessage):
            pending.pop(msg.tool_call_id, None)
        out.append(msg)
        if isinstance(msg, AIMessage) and msg.tool_calls:
            pending = {c.id: c for c in msg.tool_calls}
    return out + [("missing", c) for c in pending]


def _shape(repaired):
    return [("missing", m.tool_call_id)
            if isinstance(m, ToolMessage) and "did not complete" in m.content else m
            for m in repaired]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["human", "ai", "ai2", "tool", "orphan"]),
                          st.integers(0, 3)), max_size=14))
def test_repair_matches_the_rule_as_a_history_grows(script):
    """Histories that grow message by message (as in an agent loop, where a known-good prefix
    is skipped) and histories whose earlier messages change must all be repaired exactly."""
    history, open_ids = [], []
    for n, (kind, pick) in enumerate(script):
        if kind == "human":
            history.append(HumanMessage(content=f"h{n}"))
        elif kind in ("ai", "ai2"):
            calls = [ToolCall(id=f"c{n}.{i}", name="f") for i in range(1 if kind == "ai" else 2)]
            history.append(AIMessage(tool_calls=calls))
            open_ids = [c.id for c in calls]
        elif kind == "tool" and open_ids:
            history.append(ToolMessage(tool_call_id=open_ids.pop(pick % len(open_ids)),
                                       content="r"))
        else:
            history.append(ToolMessage(tool_call_id=f"nobody{n}", content="r"))
        for candidate in (history, history[:pick] + history[pick + 1:]):
            assert _shape(repair_tool_calls(candidate)) == _reference_repair(candidate)


def test_repair_is_not_fooled_by_a_changed_message_in_a_known_history():
    call = ToolCall(id="c1", name="f")
    first = AIMessage(id="a", tool_calls=[call])
    history = [HumanMessage(id="h", content="q"), first, ToolMessage(tool_call_id="c1")]
    assert repair_tool_calls(history) == history
    # the same ids, but the assistant message now asks for a second call with no result
    second = AIMessage(id="a", tool_calls=[call, ToolCall(id="c2", name="g")])
    repaired = repair_tool_calls([history[0], second, history[2]])
    assert [m.tool_call_id for m in repaired if isinstance(m, ToolMessage)] == ["c1", "c2"]


def test_merge_chunks_rebuilds_text_tool_calls_and_usage():
    from graphflow.messages import Usage

    chunks = [
        AIMessageChunk(id="m", content="Hel"), AIMessageChunk(content="lo"),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=0, id="c", name="f", args='{"a"')]),
        AIMessageChunk(tool_call_chunks=[ToolCallChunk(index=0, args=": 1}")]),
        AIMessageChunk(usage=Usage(input_tokens=3, output_tokens=2), finish_reason="tool_calls"),
    ]
    msg = merge_chunks(chunks, model="x")
    assert msg.content == "Hello" and msg.id == "m"
    assert msg.tool_calls == [ToolCall(id="c", name="f", args={"a": 1})]
    assert msg.usage.total_tokens == 5 and msg.finish_reason == "tool_calls"


class Chat(TypedDict):
    messages: Annotated[list, add_messages]
    seen: Annotated[list, operator.add]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
def test_messages_round_trip_through_checkpointers(store, tmp_path):
    saver = MemoryCheckpointer() if store == "memory" else SqliteCheckpointer(tmp_path / "m.db")
    g = StateGraph(Chat)
    g.add_node("reply", lambda s: {"messages": [AIMessage(
        content="hi", tool_calls=[ToolCall(id="c", name="t", args={"x": [1, 2]})])]})
    g.add_edge(START, "reply")
    g.add_edge("reply", END)
    app = g.compile(checkpointer=saver)
    app.invoke({"messages": [("user", "hello")]}, thread="t")
    got = app.get_state("t").values["messages"]
    assert [type(m) for m in got] == [HumanMessage, AIMessage]
    assert got[1].tool_calls[0].args == {"x": [1, 2]}
