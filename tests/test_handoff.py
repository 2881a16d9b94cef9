"""Handoffs, swarms and supervisors (graphflow.agents.handoff / supervisor), ScriptedModel only."""

import uuid
from typing import Annotated, TypedDict

import pytest
from graphflow.tools import tool

from graphflow import (
    END,
    START,
    AIMessage,
    Command,
    GraphRecursionError,
    GraphValidationError,
    HumanMessage,
    StateGraph,
    ToolCall,
    ToolMessage,
    add_messages,
)
from graphflow.agents import (
    Agent,
    SwarmState,
    ToolNode,
    create_supervisor,
    create_swarm,
    handoff_tool,
)
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel


def transfer(to, **args):
    return ToolCall(name=f"transfer_to_{to}", args=args)


def said(messages):
    return [(type(m).__name__, m.name, m.content) for m in messages]


# -- handoff_tool and ToolNode's one-goto rule ----------------------------------------------------

def test_handoff_tool_describes_the_target_and_returns_a_parent_command():
    bob = Agent("bob", ScriptedModel([]), description="knows billing")
    t = handoff_tool(bob)
    assert t.name == "transfer_to_bob" and "knows billing" in t.description
    command = t.invoke({"note": "refund"})
    assert command.graph == "__parent__" and command.goto == "bob"
    assert command.update["active_agent"] == "bob"
    assert command.update["messages"][0].content == "Transferred to bob. Note: refund"


def test_tool_node_first_goto_in_a_reply_wins_the_second_gets_an_error():
    @tool
    def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    node = ToolNode([handoff_tool("bob", graph=None), handoff_tool("carol", graph=None),
                     lookup])
    ai = AIMessage(tool_calls=[transfer("bob"), ToolCall(name="lookup", args={"q": "x"}),
                               transfer("carol")])
    out = node.invoke({"messages": [HumanMessage(content="hi"), ai]})
    assert out.goto == "bob" and out.update["active_agent"] == "bob"
    bob_msg, lookup_msg, carol_msg = out.update["messages"]
    assert bob_msg.content == "Transferred to bob." and bob_msg.status == "ok"
    assert lookup_msg.content == "found x"
    assert carol_msg.status == "error" and carol_msg.tool_call_id == ai.tool_calls[2].id
    assert "'transfer_to_bob' came first" in carol_msg.content
    assert "only one handover per reply" in carol_msg.content.lower()


# -- swarm -----------------------------------------------------------------------------------------

def make_pair(alice_script, bob_script):
    """Alice and Bob, who may hand over to each other (by name: they refer to each other)."""
    alice = Agent("alice", ScriptedModel(alice_script), "You are Alice.", handoffs=["bob"])
    bob = Agent("bob", ScriptedModel(bob_script), "You are Bob.", description="billing",
                handoffs=["alice"])
    return alice, bob


def test_swarm_hands_over_and_remembers_the_active_agent_per_thread(saver):
    alice, bob = make_pair([[transfer("bob")]], ["bob: refund done", "bob: anything else?"])
    swarm = create_swarm([alice, bob], checkpointer=saver)
    thread = uuid.uuid4().hex
    out = swarm.invoke({"messages": [("user", "refund please")]}, thread=thread)
    assert said(out["messages"]) == [
        ("HumanMessage", None, "refund please"),
        ("AIMessage", "alice", ""),
        ("ToolMessage", "transfer_to_bob", "Transferred to bob."),
        ("AIMessage", "bob", "bob: refund done"),
    ]
    assert out["active_agent"] == "bob"
    # the next turn goes straight to bob, who sees the whole (valid) conversation
    out = swarm.invoke({"messages": [("user", "thanks")]}, thread=thread)
    assert out["messages"][-1].content == "bob: anything else?"
    assert len(alice.model.calls) == 1
    assert [type(m).__name__ for m in bob.model.calls[1]] == [
        "SystemMessage", "HumanMessage", "AIMessage", "ToolMessage", "AIMessage",
        "HumanMessage"]
    # a fresh thread starts with the default agent again
    alice.model._replies.append("alice here")
    fresh = swarm.invoke({"messages": [("user", "hello")]}, thread=uuid.uuid4().hex)
    assert fresh["messages"][-1].name == "alice"


def test_two_handoffs_in_one_reply_never_make_two_active_agents():
    carol = Agent("carol", ScriptedModel([]), "Carol.")
    bob = Agent("bob", ScriptedModel(["bob answers"]), "Bob.")
    alice = Agent("alice", ScriptedModel([[transfer("bob"), transfer("carol")]]),
                  handoffs=[bob, carol])
    out = create_swarm([alice, bob, carol]).invoke({"messages": [("user", "hi")]})
    assert out["active_agent"] == "bob" and out["messages"][-1].content == "bob answers"
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [(m.name, m.status) for m in results] == [("transfer_to_bob", "ok"),
                                                     ("transfer_to_carol", "error")]
    assert carol.model.calls == []


def test_handoff_ping_pong_is_bounded_by_the_recursion_limit():
    alice, bob = make_pair(lambda msgs: [transfer("bob")], lambda msgs: [transfer("alice")])
    swarm = create_swarm([alice, bob])
    with pytest.raises(GraphRecursionError) as info:
        swarm.invoke({"messages": [("user", "hi")]}, recursion_limit=12)
    assert set(info.value.nodes) == {"alice", "bob"}


def test_a_handoff_to_an_agent_outside_the_swarm_is_a_build_error():
    alice = Agent("alice", ScriptedModel([]), handoffs=["carol"])
    bob = Agent("bob", ScriptedModel([]))
    with pytest.raises(GraphValidationError, match="'alice' hands off to 'carol'"):
        create_swarm([alice, bob])
    with pytest.raises(GraphValidationError, match="default agent 'zed'"):
        create_swarm([bob], default="zed")
    with pytest.raises(GraphValidationError, match="named 'bob'"):
        create_swarm([bob, Agent("bob", ScriptedModel([]))])


def test_swarm_draws_handoffs_as_command_edges_and_agents_as_clusters():
    alice, bob = make_pair([], [])
    swarm = create_swarm([alice, bob])
    edges = {(u, v, d["kind"]) for u, v, d in swarm.get_graph().edges(data=True)}
    assert {("alice", "bob", "command"), ("bob", "alice", "command")} <= edges
    drawn = swarm.get_graph(expand_subgraphs=True)
    assert drawn.nodes["alice:agent"]["cluster"] == ("alice",)
    assert "<svg" in swarm.to_svg(expand=True)


def test_swarm_stream_paths_tell_who_is_speaking():
    alice, bob = make_pair([[transfer("bob")]], ["bob here"])
    events = list(create_swarm([alice, bob]).stream({"messages": [("user", "hi")]},
                                                    subgraphs=True))
    speakers = [(path, node) for path, update in events for node in update]
    assert speakers == [(("alice",), "agent"), (("alice",), "tools"), ((), "alice"),
                        (("bob",), "agent"), ((), "bob")]


def test_a_swarm_nested_in_a_graph_keeps_its_active_agent_in_the_parent_state():
    class Parent(SwarmState):
        turns: int

    alice, bob = make_pair([[transfer("bob")]], ["bob one", "bob two"])
    swarm = create_swarm([alice, bob])
    g = StateGraph(Parent)
    g.add_node("count", lambda s: {"turns": s.get("turns", 0) + 1})
    g.add_node(swarm)
    g.add_edge(START, "count").add_edge("count", "swarm").add_edge("swarm", END)
    app = g.compile(MemoryCheckpointer())
    app.invoke({"messages": [("user", "a")], "turns": 0}, thread="t")
    out = app.invoke({"messages": [("user", "b")]}, thread="t")
    assert out["active_agent"] == "bob" and out["messages"][-1].content == "bob two"
    assert out["turns"] == 2


# -- supervisor -----------------------------------------------------------------------------------

def test_supervisor_delegates_and_hears_back_the_last_message():
    @tool
    def multiply(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    math_model = ScriptedModel([[ToolCall(name="multiply", args={"a": 6, "b": 7})], "42"])
    math = Agent("math", math_model, "You do math.", tools=[multiply],
                 description="does arithmetic")
    boss = ScriptedModel([[transfer("math", task="compute 6 times 7")], "The answer is 42."])
    app = create_supervisor(boss, [math])
    out = app.invoke({"messages": [("user", "what is 6*7?")]})
    assert said(out["messages"]) == [
        ("HumanMessage", None, "what is 6*7?"),
        ("AIMessage", "supervisor", ""),
        ("ToolMessage", "transfer_to_math", "Transferred to math. Task: compute 6 times 7"),
        ("AIMessage", "math", "42"),
        ("AIMessage", "supervisor", "The answer is 42."),
    ]
    # the agent saw the request and its task, not the supervisor's tool traffic
    assert [m.content for m in math_model.calls[0]] == [
        "You do math.", "what is 6*7?", "compute 6 times 7"]
    # the supervisor was told about its agents
    assert "- math: does arithmetic" in boss.calls[0][0].content
    assert set(out["usage"]) == {"supervisor", "math"}
    assert out["usage"]["math"]["calls"] == 2


def test_supervisor_full_history_brings_back_every_agent_message():
    @tool
    def lookup(q: str) -> str:
        """Look up."""
        return "fact"

    helper = Agent("helper", ScriptedModel([[ToolCall(name="lookup", args={"q": "x"})],
                                            "the fact"]), tools=[lookup])
    boss = ScriptedModel([[transfer("helper")], "done"])
    out = create_supervisor(boss, [helper], output_mode="full_history").invoke(
        {"messages": [("user", "find x")]})
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage", "ToolMessage",
                     "AIMessage", "AIMessage"]
    assert out["messages"][4].content == "fact" and out["messages"][5].name == "helper"


def test_supervisor_two_handoffs_in_one_reply_first_wins():
    a = Agent("a", ScriptedModel(["a did it"]))
    b = Agent("b", ScriptedModel([]))
    boss = ScriptedModel([[transfer("a"), transfer("b")], "finished"])
    out = create_supervisor(boss, [a, b]).invoke({"messages": [("user", "go")]})
    errors = [m for m in out["messages"] if isinstance(m, ToolMessage) and m.status == "error"]
    assert [m.name for m in errors] == ["transfer_to_b"]
    assert b.model.calls == [] and out["messages"][-1].content == "finished"


def test_nested_supervisors_and_the_depth_limit():
    worker = Agent("worker", ScriptedModel(["work done"]))
    team = create_supervisor(ScriptedModel([[transfer("worker")], "team says: work done"]),
                             [worker], name="team_lead")
    top = create_supervisor(ScriptedModel([[transfer("team_lead")], "all good"]), [team],
                            name="ceo")
    out = top.invoke({"messages": [("user", "do the work")]})
    assert [m.content for m in out["messages"] if isinstance(m, AIMessage) and m.content] == [
        "team says: work done", "all good"]
    # each model call counted once: the team's own agents under its name
    assert set(out["usage"]) == {"ceo", "team_lead/worker", "team_lead/team_lead"}
    assert out["usage"]["team_lead/team_lead"]["calls"] == 2
    assert top.team_depth == 2  # supervisors stacked two deep
    with pytest.raises(GraphValidationError, match=r"nests 2 levels deep.*max_depth=1"):
        create_supervisor(ScriptedModel([]), [team], name="ceo", max_depth=1)


def test_supervisor_rejects_bad_settings():
    a = Agent("a", ScriptedModel([]))
    with pytest.raises(GraphValidationError, match="output_mode"):
        create_supervisor(ScriptedModel([]), [a], output_mode="everything")
    with pytest.raises(GraphValidationError, match="like the supervisor"):
        create_supervisor(ScriptedModel([]), [Agent("supervisor", ScriptedModel([]))])


def test_supervisor_agent_failure_is_the_runs_error_naming_the_agent():
    broken = Agent("broken", ScriptedModel([]))
    app = create_supervisor(ScriptedModel([[transfer("broken")]]), [broken])
    with pytest.raises(RuntimeError, match="ran out of replies") as info:
        app.invoke({"messages": [("user", "go")]})
    assert "through node 'broken'" in "\n".join(info.value.__notes__)  # the agent's name


def test_handoff_in_a_hand_built_graph_with_command_parent():
    """The same mechanism by hand: an agent graph inside a graph of my own."""

    class State(TypedDict):
        messages: Annotated[list, add_messages]
        active_agent: str | None

    desk = Agent("desk", ScriptedModel([[transfer("expert")]]), handoffs=["expert"])
    g = StateGraph(State)
    g.add_node("desk", desk, destinations=["expert"])
    g.add_node("expert", lambda s: {"messages": [AIMessage(content="expert here")]})
    g.add_edge(START, "desk").add_edge("desk", END).add_edge("expert", END)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        app = g.compile()
    out = app.invoke({"messages": [("user", "hi")], "active_agent": None})
    assert out["messages"][-1].content == "expert here" and out["active_agent"] == "expert"


def test_a_handoff_call_is_journaled_and_replayed_as_a_command(saver):
    """The tool node fails after the handoff call finished: on resume the handoff is not run
    again but its command still takes effect."""
    failures = []
    calls = []

    @tool
    def flaky(x: int) -> int:
        """Fails the first time."""
        if not failures:
            failures.append(1)
            raise RuntimeError("flaky failed")
        return x

    def counted(note: str = "") -> Command:
        calls.append(note)
        return handoff_tool("bob").func(note)

    from graphflow.tools import Tool

    hand = Tool(counted, name="transfer_to_bob", description="to bob")
    hand.handoff_target = "bob"
    alice = Agent("alice", ScriptedModel([[transfer("bob", note="n"),
                                           ToolCall(name="flaky", args={"x": 1})]]),
                  tools=[flaky], handoffs=[hand], handle_tool_errors=False)
    bob = Agent("bob", ScriptedModel(["bob here"]))
    swarm = create_swarm([alice, bob], checkpointer=saver)
    thread = uuid.uuid4().hex
    with pytest.raises(RuntimeError, match="flaky failed"):
        swarm.invoke({"messages": [("user", "hi")]}, thread=thread)
    out = swarm.invoke(None, thread=thread)
    assert out["active_agent"] == "bob" and out["messages"][-1].content == "bob here"
    assert calls == ["n"]


def test_run_calls_cannot_carry_out_a_command():
    from graphflow import GraphflowError

    node = ToolNode([handoff_tool("bob")])
    with pytest.raises(GraphflowError, match="only a ToolNode in a graph"):
        node.run_calls([transfer("bob")])
