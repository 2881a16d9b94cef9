"""Pipelines (stages, transforms, validators, retries) and group chats (selectors, rounds,
termination), ScriptedModel only."""

import json
import uuid

import pytest
from pydantic import BaseModel

from graphflow import END, AIMessage, GraphValidationError, HumanMessage
from graphflow.agents import (
    Agent,
    Stage,
    StageFailure,
    create_group_chat,
    create_pipeline,
    llm_selector,
)
from graphflow.models import ScriptedModel


class Outline(BaseModel):
    points: list[str]


def agent(name, *replies, fn=None):
    return Agent(name, ScriptedModel(fn or list(replies)), f"You are the {name}.")


# -- pipeline -------------------------------------------------------------------------------------

def test_stages_feed_each_other_through_transforms_and_validators():
    outliner = agent("outliner", '{"points": ["intro", "body"]}')
    writer = agent("writer", fn=lambda msgs: f"essay: {msgs[-1].content}")
    pipe = create_pipeline([Stage(outliner, validate=Outline),
                            Stage(writer, transform=lambda o: " / ".join(o.points))])
    out = pipe.invoke({"messages": [("user", "an essay on bees")]})
    assert out["outputs"] == {"outliner": Outline(points=["intro", "body"]),
                              "writer": "essay: intro / body"}
    assert out.get("failure") is None
    assert [(m.name, m.content) for m in out["messages"][1:]] == [
        ("outliner", '{"points": ["intro", "body"]}'), ("writer", "essay: intro / body")]
    # the first stage saw the request, the second only its transformed input
    assert [m.content for m in outliner.model.calls[0][1:]] == ["an essay on bees"]
    assert [m.content for m in writer.model.calls[0][1:]] == ["intro / body"]


def test_a_rejected_answer_goes_back_with_the_reason_then_passes():
    outliner = agent("outliner", "just some text", '{"points": ["a"]}')
    out = create_pipeline([Stage(outliner, validate=Outline)]).invoke(
        {"messages": [("user", "outline")]})
    assert out["outputs"]["outliner"] == Outline(points=["a"])
    retry = outliner.model.calls[1]
    assert retry[-2].content == "just some text"
    assert retry[-1].content.startswith("Your answer was rejected: it is not JSON of Outline")


def test_the_pipeline_stops_naming_the_failed_stage_and_keeps_earlier_outputs():
    def short(text):
        if len(text) > 5:
            raise ValueError(f"{len(text)} characters, at most 5")
        return text

    first = agent("drafter", "draft one")
    second = agent("shortener", "still far too long", "again too long", "and again")
    third = agent("publisher", "never")
    pipe = create_pipeline([first, Stage(second, validate=short, retries=2), third])
    out = pipe.invoke({"messages": [("user", "go")]})
    assert out["failure"] == StageFailure(
        stage="shortener", error="ValueError: 9 characters, at most 5", attempts=3)
    assert out["outputs"] == {"drafter": "draft one"}
    assert out["messages"][-1].content.startswith(
        "The pipeline stopped at stage 'shortener' after 3 attempt(s): ValueError")
    assert third.model.calls == []


def test_an_agent_that_raises_stops_the_pipeline():
    boom = Agent("boom", ScriptedModel([]))
    out = create_pipeline([agent("a", "ok"), boom]).invoke({"messages": [("user", "go")]})
    assert out["failure"].stage == "boom" and "ran out of replies" in out["failure"].error
    assert out["outputs"] == {"a": "ok"}


def test_a_checkpointed_pipeline_resumes_after_the_stages_that_finished(saver):
    failures = []

    def flaky_transform(text):
        if not failures:
            failures.append(1)
            raise RuntimeError("transform crashed")
        return text.upper()

    first = agent("first", fn=lambda msgs: "first stage done")
    second = agent("second", fn=lambda msgs: f"got {msgs[-1].content}")
    pipe = create_pipeline([first, Stage(second, transform=flaky_transform)],
                           checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="transform crashed"):
        pipe.invoke({"messages": [("user", "go")]}, thread=thread)
    out = pipe.invoke(None, thread=thread)
    assert out["outputs"] == {"first": "first stage done", "second": "got FIRST STAGE DONE"}
    assert len(first.model.calls) == 1


def test_pipeline_settings_are_checked():
    a = agent("a")
    with pytest.raises(GraphValidationError, match="two stages are named 'a'"):
        create_pipeline([a, a])
    with pytest.raises(GraphValidationError, match="at least one stage"):
        create_pipeline([])
    pipe = create_pipeline([a, Stage(a, name="a_again")])
    assert pipe.get_graph(expand_subgraphs=True).nodes["a_again:agent"]["cluster"] == ("a_again",)


# -- group chat -----------------------------------------------------------------------------------

def chatty(name):
    return agent(name, fn=lambda msgs: f"{name} #{sum(isinstance(m, AIMessage) for m in msgs)}")


def test_round_robin_takes_turns_up_to_max_rounds():
    a, b = chatty("a"), chatty("b")
    out = create_group_chat([a, b], max_rounds=3).invoke({"messages": [("user", "discuss")]})
    assert [(m.name, m.content) for m in out["messages"][1:]] == [
        ("a", "a #0"), ("b", "b #0"), ("a", "a #1")]
    # each speaker sees its own turns as its own and the others' as messages from them
    last = a.model.calls[-1]
    assert [type(m).__name__ for m in last] == [
        "SystemMessage", "HumanMessage", "AIMessage", "HumanMessage"]
    assert last[-1].content == "b: b #0"


def test_terminate_by_word_or_function():
    done = agent("closer", "we agree. TERMINATE")
    out = create_group_chat([chatty("a"), done], terminate="TERMINATE").invoke(
        {"messages": [("user", "decide")]})
    assert [m.name for m in out["messages"][1:]] == ["a", "closer"]
    out = create_group_chat([chatty("a"), chatty("b")],
                            terminate=lambda msgs: len(msgs) > 2).invoke(
        {"messages": [("user", "go")]})
    assert len(out["messages"]) == 3


def test_a_function_selector_and_ending_by_returning_none():
    def pick(messages, names):
        spoken = [m.name for m in messages if isinstance(m, AIMessage)]
        return None if "b" in spoken else ("b" if "a" in spoken else "a")

    out = create_group_chat([chatty("a"), chatty("b")], select=pick).invoke(
        {"messages": [("user", "go")]})
    assert [m.name for m in out["messages"][1:]] == ["a", "b"]


def test_a_selector_choosing_a_stranger_is_an_error():
    app = create_group_chat([chatty("a")], select=lambda msgs, names: "zed")
    with pytest.raises(ValueError, match="chose 'zed', who is not a participant"):
        app.invoke({"messages": [("user", "go")]})


def test_an_llm_selector_picks_the_speaker_and_ends_the_chat(saver):
    selector_model = ScriptedModel([json.dumps({"route": "critic"}),
                                    json.dumps({"route": "writer"}),
                                    json.dumps({"route": END})])
    writer, critic = chatty("writer"), chatty("critic")
    chat = create_group_chat([writer, critic], select=llm_selector(selector_model),
                             checkpointer=saver)
    out = chat.invoke({"messages": [("user", "write a haiku")]}, thread=uuid.uuid4().hex)
    assert [m.name for m in out["messages"][1:]] == ["critic", "writer"]
    assert "Participants:" in selector_model.calls[0][0].content
    assert out["usage"]["selector"]["calls"] == 3


def test_the_chat_goes_on_across_invocations_of_a_thread(saver):
    chat = create_group_chat([chatty("a"), chatty("b")], max_rounds=1, checkpointer=saver)
    thread = uuid.uuid4().hex
    chat.invoke({"messages": [("user", "first")]}, thread=thread)
    out = chat.invoke({"messages": [HumanMessage(content="second")]}, thread=thread)
    assert [m.name for m in out["messages"] if isinstance(m, AIMessage)] == ["a", "b"]


def test_group_chat_draws_and_streams_speakers():
    chat = create_group_chat([chatty("a"), chatty("b")], max_rounds=2)
    paths = [p for p, u in chat.stream({"messages": [("user", "hi")]}, subgraphs=True) if p]
    assert paths == [("a",), ("b",)]
    assert chat.get_graph().nodes["select"]["kind"] == "router"
    assert chat.get_graph(expand_subgraphs=True).nodes["b:agent"]["cluster"] == ("b",)
