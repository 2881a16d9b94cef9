"""Memory nodes and tools in graphs, extraction (Mem0 decisions), episodes, hybrid memory,
sessions."""

from __future__ import annotations

import io
import json
from typing import Annotated, Any, TypedDict

import pytest
from graphflow.memory import (
    EpisodicMemory,
    FunctionEmbeddings,
    HybridMemory,
    KeepPinned,
    MemoryExtractor,
    Prepares,
    RecallNode,
    RememberNode,
    SessionManager,
    SlidingWindow,
    SqliteStore,
    StoreMemory,
    SummarizeOld,
    memory_tools,
)

from graphflow import END, START, StateGraph
from graphflow.agents import ToolNode, tools_condition
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.messages import AIMessage, HumanMessage, SystemMessage, ToolCall, add_messages
from graphflow.models import ScriptedModel
from graphflow.models.tokens import count_tokens
from graphflow.testing.llm_servers import hashed_embedding

pytest.importorskip("numpy", reason="semantic search needs pip install 'graphflow[memory]'")


def hashed() -> FunctionEmbeddings:
    return FunctionEmbeddings(lambda texts: [hashed_embedding(t) for t in texts], name="h64")


def new_store() -> SqliteStore:
    return SqliteStore(embeddings=hashed())


class S(TypedDict, total=False):
    messages: Annotated[list, add_messages]
    memories: Any
    ids: list


def test_recall_and_remember_nodes_use_the_graphs_store_and_draw_as_memory():
    store = new_store()
    StoreMemory(store, ("memories",)).add(["The user's dog is called Rex."])
    model = ScriptedModel(["Your dog is Rex."])

    def agent(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(S)
    g.add_node("recall", RecallNode(k=2))
    g.add_node("agent", agent)
    g.add_node("remember", RememberNode(output_key="ids"))
    g.add_edge(START, "recall")
    g.add_edge("recall", "agent")
    g.add_edge("agent", "remember")
    g.add_edge("remember", END)
    app = g.compile(store=store)
    kinds = {n: d["kind"] for n, d in app.get_graph().nodes(data=True)}
    assert kinds["recall"] == kinds["remember"] == "memory" and kinds["agent"] == "function"
    assert "[(" in app.to_mermaid()  # the memory shape
    out = app.invoke({"messages": [("user", "what is my dog called?")]})
    assert out["memories"][0].text == "The user's dog is called Rex."
    assert len(out["ids"]) == 1
    assert StoreMemory(store, ("memories",)).search("Rex", k=5)[0].text in (
        "Your dog is Rex.", "The user's dog is called Rex.")
    text = RecallNode(StoreMemory(store, ("memories",)), as_text=True)({"messages": [
        HumanMessage(content="dog")]})
    assert text["memories"].startswith("- ")
    with pytest.raises(Exception, match="has no memory"):
        RecallNode()({"messages": []})


def test_remember_recall_tools_through_an_agent_loop_with_the_store_injected():
    store = new_store()
    tools = memory_tools(namespace=("users", "u1"))
    assert {t.name for t in tools} == {"remember", "recall"}
    assert all("store" not in t.schema["properties"] for t in tools)
    model = ScriptedModel([
        [ToolCall(name="remember", args={"text": "The user is allergic to peanuts."})],
        [ToolCall(name="recall", args={"query": "allergies peanuts"})],
        "Noted: no peanuts.",
    ])

    def agent(state):
        return {"messages": [model.invoke(state["messages"], tools=tools)]}

    g = StateGraph(S)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    g.add_edge("tools", "agent")
    out = g.compile(store=store).invoke({"messages": [("user", "I can't eat peanuts")]})
    results = [m.content for m in out["messages"] if m.role == "tool"]
    assert results[0].startswith("Remembered") and "allergic to peanuts" in results[1]
    assert store.search(("users", "u1"), limit=5)[0].value["text"].startswith("The user is")


def test_a_resumed_remember_node_writes_once():
    from graphflow import interrupt
    from graphflow.types import Command

    store = new_store()
    remember = RememberNode(text=lambda s: ["fact one", "fact two"])

    def node(state, store):
        out = remember(state, store)
        interrupt("continue?")
        return out

    g = StateGraph(S)
    g.add_node("n", node)
    g.add_edge(START, "n")
    g.add_edge("n", END)
    app = g.compile(checkpointer=MemoryCheckpointer(), store=store)
    app.invoke({"messages": []}, thread="r")
    app.invoke(Command(resume=True), thread="r")
    assert len(store.search(("memories",), limit=10)) == 2


# -- extraction (Mem0): one scripted test per decision ------------------------------------------

def extractor_run(decisions: list[dict], existing: list[str]) -> tuple[list, StoreMemory, list]:
    store = new_store()
    mem = StoreMemory(store, ("m",))
    ids = mem.add(existing) if existing else []
    model = ScriptedModel([json.dumps({"facts": ["The user moved to Berlin."]}),
                           json.dumps({"memory": decisions})])
    ex = MemoryExtractor(model, mem, output_key="done")
    done = ex({"messages": [HumanMessage(content="I moved to Berlin last week")]})["done"]
    return done, mem, ids


def test_extraction_add():
    done, mem, _ = extractor_run([{"event": "ADD", "text": "The user lives in Berlin."}], [])
    assert [d["event"] for d in done] == ["ADD"]
    assert mem.search("Berlin", k=1)[0].text == "The user lives in Berlin."


def test_extraction_update_keeps_the_id_and_the_model_sees_short_ids_only():
    done, mem, ids = extractor_run([{"event": "UPDATE", "id": "0",
                                     "text": "The user lives in Berlin."}],
                                   ["The user lives in Paris."])
    assert done == [{"event": "UPDATE", "id": ids[0], "text": "The user lives in Berlin."}]
    assert [h.text for h in mem.search("lives", k=5)] == ["The user lives in Berlin."]


def test_extraction_delete():
    done, mem, ids = extractor_run([{"event": "DELETE", "id": "0"}], ["The user lives in Paris."])
    assert done == [{"event": "DELETE", "id": ids[0], "text": ""}]
    assert mem.search("lives", k=5) == []


def test_extraction_none_and_invented_ids_change_nothing():
    done, mem, ids = extractor_run([{"event": "NONE"}, {"event": "UPDATE", "id": "7",
                                                        "text": "invented"}],
                                   ["The user lives in Berlin."])
    assert done == []
    assert [h.id for h in mem.search("lives", k=5)] == ids


def test_extraction_without_facts_makes_one_call():
    model = ScriptedModel([json.dumps({"facts": []})])
    ex = MemoryExtractor(model, StoreMemory(new_store(), ("m",)))
    assert ex({"messages": [("user", "hello!")]}) == {}
    assert len(model.calls) == 1
    assert "facts worth remembering" in model.calls[0][0].content


# -- episodes, hybrid memory ---------------------------------------------------------------------

def test_episodes_similarity_success_rates_and_few_shot():
    ep = EpisodicMemory(new_store())
    ep.record("Convert 25 USD to EUR", ["look up rate", "multiply"], "23.1 EUR", True)
    ep.record("Convert 10 USD to EUR", ["guess"], "wrong", False)
    ep.record("Book a table for two", ["call restaurant"], "booked", True)
    similar = ep.similar("Convert 99 USD to EUR", k=2)
    assert {e.task for e in similar} == {"Convert 25 USD to EUR", "Convert 10 USD to EUR"}
    assert ep.similar("Convert 99 USD to EUR", k=1, success=True)[0].outcome == "23.1 EUR"
    rates = ep.success_rate()
    assert rates["convert # usd to eur"] == (0.5, 2) and rates["book a table for two"] == (1.0, 1)
    assert ep.success_rate("Convert 5 USD to EUR") == {"convert # usd to eur": (0.5, 2)}
    shot = ep.few_shot("Convert 7 USD to EUR", k=1)
    assert "Task: Convert 25 USD to EUR" in shot and "succeeded" in shot


def test_hybrid_memory_fits_recalled_memories_and_recent_turns_in_one_budget():
    store = new_store()
    StoreMemory(store, ("memories",)).add(["The user is vegetarian.", "The user lives in Oslo.",
                                           "The user's sister is called Ana."])
    hybrid = HybridMemory(store, max_tokens=200, k=2)
    assert isinstance(hybrid, Prepares)
    history = [SystemMessage(content="Be brief.")]
    for i in range(30):
        history += [HumanMessage(content=f"message {i} about dinner plans"),
                    AIMessage(content=f"reply {i} about dinner")]
    history.append(HumanMessage(content="what should a vegetarian eat tonight?"))
    seen = hybrid.prepare(history)
    assert seen[0].content == "Be brief."
    assert seen[1].id == "recalled-memories" and "vegetarian" in seen[1].content
    assert seen[-1] is history[-1] and count_tokens(seen) <= 200
    import asyncio

    assert asyncio.run(hybrid.aprepare(history)) == seen


# -- sessions ------------------------------------------------------------------------------------

def test_session_scopes_history_export_and_pruning(tmp_path):
    store = SqliteStore(tmp_path / "sessions.db")
    app = SessionManager(store, app="shop")
    s1 = app.session("u1", "s1")
    s1["cart"] = ["apple"]
    s1["user:name"] = "Ada"
    s1["app:currency"] = "EUR"
    s1["temp:draft"] = "unsent"
    s2 = app.session("u1", "s2")
    s2["cart"] = []
    assert s2["user:name"] == "Ada" and s2["app:currency"] == "EUR"
    assert s2["cart"] == [] and "temp:draft" not in s2
    assert app.session("u2", "x")["app:currency"] == "EUR"
    reopened = SessionManager(SqliteStore(tmp_path / "sessions.db"), "shop").session("u1", "s1")
    assert reopened["cart"] == ["apple"] and "temp:draft" not in reopened
    assert set(s1) == {"app:currency", "user:name", "cart", "temp:draft"}
    with pytest.raises(KeyError):
        del s1["nope"]

    s1.add_message(SystemMessage(content="You sell fruit."))
    s1.add_message(HumanMessage(content="My budget is 10 EUR."), pinned=True)
    for i in range(8):
        s1.add_messages([("user", f"question {i}"), ("assistant", f"answer {i}")])
    assert len(s1.messages()) == 18 and app.sessions("u1") == ["s1", "s2"]
    buf = io.StringIO()
    assert s1.export_jsonl(buf) == 18
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines[1]["content"] == "My budget is 10 EUR." and lines[1]["pinned"] is True

    removed = s1.prune(KeepPinned(SlidingWindow(4)))
    kept = s1.messages()
    assert [m.content for m in kept][:2] == ["You sell fruit.", "My budget is 10 EUR."]
    assert len(kept) == 6 and removed == 12 and s1.pinned()[0].content.startswith("My budget")

    model = ScriptedModel(["The user asked questions 0-5."])
    s1.add_messages([("user", "q"), ("assistant", "a")])
    s1.prune(SummarizeOld(model, keep_last=2))
    after = s1.messages()
    assert after[0].content == "You sell fruit." and "questions 0-5" in after[1].content
    assert [m.content for m in after[-2:]] == ["q", "a"]
    app.delete("u1", "s1")
    assert app.sessions("u1") == ["s2"]


def test_runs_without_a_thread_never_share_memory_ids():
    """No thread, no resume: each run's writes get ids of their own (not overwritten by the
    next run of the same graph)."""
    store = new_store()
    g = StateGraph(S)
    g.add_node("remember", RememberNode(text=lambda s: [s["messages"][-1].content], role=None))
    g.add_edge(START, "remember")
    g.add_edge("remember", END)
    app = g.compile(store=store)
    app.invoke({"messages": [("user", "first fact")]})
    app.invoke({"messages": [("user", "second fact")]})
    texts = sorted(i.value["text"] for i in store.search(("memories",), limit=10))
    assert texts == ["first fact", "second fact"]
