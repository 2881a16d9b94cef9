"""One end-to-end case per pattern over the real OpenAI and Anthropic SDKs, against the local
servers that speak their wire protocols (graphflow.testing.llm_servers), which reject what the
real APIs reject (unanswered tool calls, bad role order, non-strict JSON schemas, ...)."""

import json

import pytest
from graphflow.tools import tool

from graphflow.agents import (
    Agent,
    Stage,
    create_group_chat,
    create_hierarchical_orchestrator,
    create_parallel_orchestrator,
    create_pipeline,
    create_supervisor,
    create_swarm,
    llm_judge,
    llm_selector,
)

PROVIDERS = ["openai", "anthropic"]


def system_of(provider, body):
    if provider == "openai":
        return body["messages"][0]["content"] if body["messages"][0]["role"] == "system" else ""
    system = body.get("system") or ""
    return system if isinstance(system, str) else " ".join(b.get("text", "") for b in system)


def last_user_text(provider, body):
    for m in reversed(body["messages"]):
        if m["role"] != "user":
            continue
        content = m["content"]
        if isinstance(content, str):
            return content
        texts = [b.get("text", "") for b in content if b.get("type") == "text"]
        if texts:
            return texts[-1]
    return ""


def has_tool_result(provider, body):
    if provider == "openai":
        return any(m["role"] == "tool" for m in body["messages"])
    return any(isinstance(m["content"], list) and any(
        b.get("type") == "tool_result" for b in m["content"]) for m in body["messages"])


@pytest.fixture(params=PROVIDERS)
def provider(request):
    pytest.importorskip(request.param)
    return request.param


def serve(provider, answer):
    """A server answering every request with ``answer(body)``; and a model factory."""
    from graphflow.testing.llm_servers import AnthropicServer, OpenAIServer

    cls = OpenAIServer if provider == "openai" else AnthropicServer
    server = cls(default=lambda body: answer(body))

    def model():
        if provider == "openai":
            from graphflow.models.openai_chat import OpenAIChat

            return OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key="test")
        from graphflow.models.anthropic_chat import AnthropicChat

        return AnthropicChat("claude-haiku-4-5", base_url=server.base_url, api_key="test")

    return server, model


@tool
def lookup(topic: str) -> str:
    """Look a topic up."""
    return f"{topic} is well documented"


def test_agent_with_a_tool_and_structured_output(provider):
    from pydantic import BaseModel

    from graphflow.testing.llm_servers import Reply

    class Fact(BaseModel):
        topic: str
        fact: str

    def answer(body):
        if has_tool_result(provider, body):
            return Reply(data={"topic": "bees", "fact": "bees are well documented"})
        return Reply(tool_calls=[("lookup", {"topic": "bees"})])

    server, model = serve(provider, answer)
    with server:
        agent = Agent("researcher", model(), "Find a fact.", tools=[lookup])
        events = list(agent.stream("a fact about bees"))
    assert [e.type for e in events] == ["tool_call", "tool_result", "response"]
    assert events[-1].text == '{"topic": "bees", "fact": "bees are well documented"}'
    assert events[-1].usage["input_tokens"] > 0


def test_swarm_handoff(provider):
    from graphflow.testing.llm_servers import Reply

    def answer(body):
        if "You are Alice" in system_of(provider, body):
            return Reply(tool_calls=[("transfer_to_bob", {"note": "billing question"})])
        return Reply("Bob here: your refund is on its way.")

    server, model = serve(provider, answer)
    with server:
        alice = Agent("alice", model(), "You are Alice, the front desk.", handoffs=["bob"])
        bob = Agent("bob", model(), "You are Bob, billing.")
        out = create_swarm([alice, bob]).invoke({"messages": [("user", "refund?")]})
        bodies = server.bodies
    assert out["active_agent"] == "bob" and out["messages"][-1].content.startswith("Bob here")
    # bob's request carried alice's call and its answer, valid for the provider
    assert has_tool_result(provider, bodies[1])


def test_supervisor(provider):
    from graphflow.testing.llm_servers import Reply

    def answer(body):
        system = system_of(provider, body)
        if "supervise" in system:
            if any("math" in json.dumps(m) and m["role"] == "assistant"
                   for m in body["messages"][1:]) and has_tool_result(provider, body):
                return Reply("6 x 7 = 42, says math.")
            return Reply(tool_calls=[("transfer_to_math", {"task": "compute 6*7"})])
        return Reply("42")

    server, model = serve(provider, answer)
    with server:
        math = Agent("math", model(), "You do arithmetic.", description="arithmetic")
        out = create_supervisor(model(), [math]).invoke({"messages": [("user", "6*7?")]})
    assert [m.content for m in out["messages"][-2:]] == ["42", "6 x 7 = 42, says math."]


def test_hierarchical_orchestrator(provider):
    from graphflow.testing.llm_servers import Reply

    plan = {"tasks": [
        {"id": "t1", "description": "find facts on bees", "assignee": "researcher",
         "depends_on": []},
        {"id": "t2", "description": "write a paragraph", "assignee": "writer",
         "depends_on": ["t1"]}]}

    def answer(body):
        system = system_of(provider, body)
        if "Break the user's request" in system:
            return Reply(data=plan)
        if "their results follow" in system:
            return Reply("Bees: well documented, and here is the paragraph.")
        if "researcher" in system:
            return Reply("bees make honey")
        return Reply("A paragraph: bees make honey.")

    server, model = serve(provider, answer)
    with server:
        app = create_hierarchical_orchestrator(
            model(), [Agent("researcher", model(), "You are the researcher."),
                      Agent("writer", model(), "You are the writer.")])
        out = app.invoke({"messages": [("user", "a paragraph on bees")]})
        bodies = server.bodies
    assert out["results"]["t2"].output == "A paragraph: bees make honey."
    assert out["messages"][-1].content.startswith("Bees:")
    if provider == "openai":  # the plan was asked for with a strict JSON schema
        assert bodies[0]["response_format"]["json_schema"]["strict"] is True
        assert bodies[0]["response_format"]["json_schema"]["name"] == "Plan"
        assert "does not parse" not in json.dumps(bodies[0])
    writer_body = next(b for b in bodies if "You are the writer" in system_of(provider, b))
    assert "bees make honey" in last_user_text(provider, writer_body)


def test_parallel_orchestrator_with_a_judge(provider):
    from graphflow.testing.llm_servers import Reply

    def answer(body):
        if "judge" in system_of(provider, body):
            return Reply(data={"choice": 1, "reason": "more complete"})
        return Reply("Paris" if "solver a" in system_of(provider, body) else "Paris, France")

    server, model = serve(provider, answer)
    with server:
        app = create_parallel_orchestrator(
            [Agent("a", model(), "You are solver a."), Agent("b", model(), "You are solver b.")],
            aggregate=llm_judge(model()))
        out = app.invoke({"messages": [("user", "capital of France?")]})
    assert out["outcome"].answer == "Paris, France" and out["outcome"].choice == 1


def test_pipeline_with_a_validator(provider):
    from pydantic import BaseModel

    from graphflow.testing.llm_servers import Reply

    class Outline(BaseModel):
        points: list[str]

    def answer(body):
        if "outline" in system_of(provider, body):
            return Reply('{"points": ["hives", "honey"]}')
        return Reply(f"Essay on {last_user_text(provider, body)}")

    server, model = serve(provider, answer)
    with server:
        pipe = create_pipeline([
            Stage(Agent("outliner", model(), "You outline."), validate=Outline),
            Stage(Agent("writer", model(), "You write."), transform=lambda o: ", ".join(
                o.points))])
        out = pipe.invoke({"messages": [("user", "bees")]})
    assert out["outputs"]["writer"] == "Essay on hives, honey"


def test_group_chat_with_an_llm_selector(provider):
    from graphflow.testing.llm_servers import Reply

    def answer(body):
        system = system_of(provider, body)
        if "group conversation" in system:
            spoken = json.dumps([m for m in body["messages"] if m["role"] != "system"])
            route = "poet" if "poet:" not in spoken else (
                "critic" if "critic:" not in spoken else "__end__")
            return Reply(data={"route": route})
        return Reply("roses are red" if "poet" in system else "nice rhyme")

    server, model = serve(provider, answer)
    with server:
        chat = create_group_chat([Agent("poet", model(), "You are a poet."),
                                  Agent("critic", model(), "You are a critic.")],
                                 select=llm_selector(model()))
        out = chat.invoke({"messages": [("user", "a poem")]})
    assert [(m.name, m.content) for m in out["messages"][1:]] == [
        ("poet", "roses are red"), ("critic", "nice rhyme")]
