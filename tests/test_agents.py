"""Agent nodes and prebuilt agents (graphflow.agents), driven by ScriptedModel only."""

import asyncio
import threading
import time
import uuid
from typing import Annotated, Literal, TypedDict

import pytest
from graphflow.tools import ToolArgumentError, tool

from graphflow import (
    END,
    START,
    AIMessage,
    Command,
    HumanMessage,
    RunContext,
    StateGraph,
    SystemMessage,
    ToolCall,
    ToolMessage,
    add_messages,
    interrupt,
)
from graphflow.agents import (
    AgentState,
    FunctionCallingNode,
    ReActNode,
    ToolNode,
    create_function_calling_agent,
    create_react_agent,
    llm_router,
    tools_condition,
)
from graphflow.agents.tool_node import AsyncToolNode, UnknownToolError
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor.
        b: the second factor.
    """
    return a * b


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def call(name, **args):
    return ToolCall(name=name, args=args)


def last_ai_calls(state):
    return [m for m in state["messages"] if isinstance(m, AIMessage)][-1].tool_calls


def tool_graph(node, schema=AgentState, saver=None):
    g = StateGraph(schema)
    g.add_node("tools", node)
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    return g.compile(checkpointer=saver)


def ask_tools(*calls):
    return {"messages": [HumanMessage(content="go"), AIMessage(tool_calls=list(calls))]}


class RecordingModel(ScriptedModel):
    """A ScriptedModel that also records the tools and response formats it was offered."""

    def __init__(self, replies):
        super().__init__(replies)
        self.offered = []

    def _generate(self, messages, *, tools, tool_choice, response_format):
        self.offered.append((tools, response_format))
        return super()._generate(messages, tools=tools, tool_choice=tool_choice,
                                 response_format=response_format)

    def _stream(self, messages, *, tools, tool_choice, response_format):
        self.offered.append((tools, response_format))
        yield from super()._stream(messages, tools=tools, tool_choice=tool_choice,
                                   response_format=response_format)


# -- the function-calling loop ---------------------------------------------------------------

def test_function_calling_agent_calls_the_tool_and_answers():
    model = RecordingModel([[call("multiply", a=6, b=7)], "6 x 7 = 42"])
    app = create_function_calling_agent(model, [multiply, add], system="Be brief.")
    out = app.invoke({"messages": [("user", "what is 6 times 7?")]})
    kinds = [type(m).__name__ for m in out["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    ai, result, final = out["messages"][1:]
    assert result.tool_call_id == ai.tool_calls[0].id and result.name == "multiply"
    assert result.content == "42" and result.status == "ok"
    assert final.content == "6 x 7 = 42" and not final.tool_calls
    # the model saw the system prompt first (it is not stored in the state), then the result
    assert isinstance(model.calls[0][0], SystemMessage) and model.calls[0][0].content == "Be brief."
    assert not any(isinstance(m, SystemMessage) for m in out["messages"])
    assert isinstance(model.calls[1][-1], ToolMessage) and model.calls[1][-1].content == "42"
    assert [t.name for t in model.offered[0][0]] == ["multiply", "add"]


def test_prebuilt_graph_shape_kinds_and_name():
    app = create_function_calling_agent(ScriptedModel(["hi"]), [multiply], name="math")
    G = app.get_graph()
    assert G.graph["name"] == "math"
    assert G.nodes["agent"]["kind"] == "agent" and G.nodes["tools"]["kind"] == "tool"
    edges = {(u, v, d["kind"]) for u, v, d in G.edges(data=True)}
    assert edges == {(START, "agent", "static"), ("agent", "tools", "conditional"),
                     ("agent", END, "conditional"), ("tools", "agent", "static")}
    react = create_react_agent(ScriptedModel(["hi"]), [multiply]).get_graph()
    assert react.nodes["agent"]["kind"] == "agent" and react.nodes["tools"]["kind"] == "tool"


def test_agent_without_tool_calls_answers_directly_and_async_invoke_works():
    app = create_function_calling_agent(ScriptedModel(["hello", "again"]), [multiply])
    assert app.invoke({"messages": ["hi"]})["messages"][-1].content == "hello"
    out = asyncio.run(app.ainvoke({"messages": ["hi"]}))
    assert out["messages"][-1].content == "again"


def test_async_agent_run_with_tool_calls():
    model = ScriptedModel([[call("add", a=1, b=2)], "3"])
    app = create_function_calling_agent(model, [add])
    out = asyncio.run(app.ainvoke({"messages": ["1+2"]}))
    assert [m.content for m in out["messages"][2:]] == ["3", "3"]


def test_function_calling_node_direct_and_async():
    node = FunctionCallingNode(ScriptedModel(["a", "b"]), [add], system="sys")
    assert node({"messages": ["q"]})["messages"][0].content == "a"
    assert asyncio.run(node.ainvoke({"messages": ["q"]}))["messages"][0].content == "b"
    assert node.__name__ == "agent" and node.graphflow_kind == "agent"


def test_state_schema_can_extend_agent_state():
    class MyState(AgentState):
        user: str

    @tool
    def whoami(state: dict) -> str:
        """Who is asking."""
        return state["user"]

    model = ScriptedModel([[call("whoami")], "done"])
    app = create_function_calling_agent(model, [whoami], state_schema=MyState)
    out = app.invoke({"messages": ["who am I?"], "user": "ada"})
    assert out["user"] == "ada" and out["messages"][2].content == "ada"


# -- ToolNode --------------------------------------------------------------------------------

def test_parallel_tool_calls_run_concurrently_and_keep_call_order():
    barrier = threading.Barrier(2, timeout=5)
    finished = []

    @tool
    def slow(x: str) -> str:
        """Waits for the other tool, then finishes last."""
        barrier.wait()
        time.sleep(0.05)
        finished.append("slow")
        return f"slow {x}"

    @tool
    def fast(x: str) -> str:
        """Waits for the other tool."""
        barrier.wait()  # a sequential ToolNode would break the barrier (timeout)
        finished.append("fast")
        return f"fast {x}"

    app = tool_graph(ToolNode([slow, fast]))
    out = app.invoke(ask_tools(call("slow", x="1"), call("fast", x="2")))
    results = out["messages"][2:]
    assert [m.content for m in results] == ["slow 1", "fast 2"]  # the calls' order
    assert finished == ["fast", "slow"]  # ... not the finish order
    assert all(m.status == "ok" for m in results)
    assert [m.tool_call_id for m in results] == [c.id for c in last_ai_calls(out)]


def test_many_quick_calls_share_a_few_threads_and_blocking_ones_still_meet():
    threads = set()

    @tool
    def lookup(k: int) -> int:
        """Quick: no waiting."""
        threads.add(threading.current_thread())  # keeps the object: distinct threads counted
        return 2 * k

    barrier = threading.Barrier(4, timeout=10)

    @tool
    def fetch(k: int) -> int:
        """Waits for its siblings, like I/O: run one after another they would never meet."""
        barrier.wait()
        return k

    node = ToolNode([lookup, fetch])
    calls = [call("lookup", k=k) for k in range(50)] + [call("fetch", k=k) for k in range(4)]
    expected = [str(2 * k) for k in range(50)] + [str(k) for k in range(4)]
    for _ in range(20):
        out = node.invoke(ask_tools(*calls))["messages"]
        assert [m.content for m in out] == expected  # in call order; the barrier never broke
        assert [m.status for m in out] == ["ok"] * 54
    # a thread per call would be 53 new threads a batch: over a thousand
    assert len(threads) <= 60


def test_parallel_calls_reuse_worker_threads_instead_of_starting_one_each():
    threads = set()

    @tool
    def wait_a_bit(k: int) -> int:
        """Sleeps, like I/O: its calls run on worker threads."""
        threads.add(threading.current_thread())  # keeps the object: distinct threads counted
        time.sleep(0.01)
        return k

    node = ToolNode([wait_a_bit])
    calls = [call("wait_a_bit", k=k) for k in range(8)]
    for _ in range(10):
        out = node.invoke(ask_tools(*calls))["messages"]
        assert [m.content for m in out] == [str(k) for k in range(8)]
    # a thread per call would be 71 threads: 7 per batch, the node's own thread ran one call
    assert len(threads) <= 24


def test_async_tools_are_gathered_on_the_loop():
    state = {"running": 0, "peak": 0}

    @tool
    async def a_sleep(ms: int) -> int:
        """Sleep a while (async)."""
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
        await asyncio.sleep(ms / 1000)
        state["running"] -= 1
        return ms

    node = ToolNode([a_sleep, add])
    assert isinstance(node, AsyncToolNode) and isinstance(node, ToolNode)
    app = tool_graph(node)
    calls = [call("a_sleep", ms=50), call("a_sleep", ms=10), call("add", a=1, b=1)]
    out = app.invoke(ask_tools(*calls))  # sync invoke of a graph with an async node
    assert [m.content for m in out["messages"][2:]] == ["50", "10", "2"]
    assert state["peak"] == 2
    out = asyncio.run(app.ainvoke(ask_tools(*calls)))
    assert [m.content for m in out["messages"][2:]] == ["50", "10", "2"]


def test_every_failure_kind_becomes_an_error_tool_message_naming_the_tool():
    never = threading.Event()  # the slow tools would wait 30 s: only a timeout ends them sooner

    @tool
    def boom(x: int) -> int:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool
    def sleepy() -> str:
        """Takes too long."""
        never.wait(30)
        return "late"

    @tool(timeout=0.05)
    def own_limit() -> str:
        """Has its own timeout (far below the node's, so it fires first even on a busy machine)."""
        never.wait(30)
        return "late"

    node = ToolNode([multiply, boom, sleepy, own_limit], timeout=1.5)
    calls = [call("nope", q=1), call("multiply", a="x"), call("boom", x=1), call("sleepy"),
             call("own_limit"), ToolCall(name="multiply", args={"__raw__": '{"a": 1,'}),
             call("multiply", a=2, b=3)]
    t0 = time.perf_counter()
    out = tool_graph(node).invoke(ask_tools(*calls))
    assert time.perf_counter() - t0 < 25  # the timeouts were honoured (not the tools' 30 s)
    never.set()  # let the abandoned tool threads end
    msgs = out["messages"][2:]
    assert [m.status for m in msgs] == ["error"] * 6 + ["ok"]
    unknown, bad_args, raised, timed_out, own, broken, ok = msgs
    assert "no tool named 'nope'" in unknown.content and "multiply" in unknown.content
    assert "'multiply'" in bad_args.content and "'a'" in bad_args.content
    assert "'b'" in bad_args.content  # the missing argument is named too
    assert "'boom'" in raised.content and "RuntimeError: disk on fire" in raised.content
    assert "'sleepy'" in timed_out.content and "timed out after 1.5s" in timed_out.content
    assert "'own_limit'" in own.content and "timed out after 0.05s" in own.content
    assert "'multiply'" in broken.content and "not valid JSON" in broken.content
    assert ok.content == "6"
    assert [m.name for m in msgs] == [c.name for c in calls]


def test_async_node_reports_timeouts_and_errors_too():
    @tool
    async def hang() -> str:
        """Never returns in time."""
        await asyncio.sleep(5)
        return "late"

    node = ToolNode([hang, multiply], timeout=0.05)
    out = tool_graph(node).invoke(ask_tools(call("hang"), call("multiply", a=1), call("x")))
    msgs = out["messages"][2:]
    assert [m.status for m in msgs] == ["error"] * 3
    assert "'hang' timed out" in msgs[0].content and "'b'" in msgs[1].content
    assert "no tool named 'x'" in msgs[2].content


@pytest.mark.parametrize("bad_call, cause", [
    (call("nope"), UnknownToolError),
    (call("multiply", a="x", b=1), ToolArgumentError),
    (call("boom"), RuntimeError),
])
def test_handle_errors_false_raises(bad_call, cause):
    @tool
    def boom() -> int:
        """Fails."""
        raise RuntimeError("kaput")

    app = tool_graph(ToolNode([multiply, boom], handle_errors=False))
    with pytest.raises(cause) as err:  # as itself, saying where
        app.invoke(ask_tools(call("multiply", a=1, b=2), bad_call))
    assert err.value.graphflow_node == "tools"
    with pytest.raises(cause):  # and called directly
        ToolNode([multiply, boom], handle_errors=False).invoke(ask_tools(bad_call))


def test_handle_errors_text_or_function():
    msgs = ToolNode([multiply], handle_errors="try again").invoke(ask_tools(call("x")))
    assert msgs["messages"][0].content == "try again"
    node = ToolNode([multiply], handle_errors=lambda e: f"{type(e).__name__}!")
    assert node.invoke(ask_tools(call("x")))["messages"][0].content == "UnknownToolError!"


def test_injected_state_and_run_context_and_outputs_as_text():
    seen = {}

    @tool
    def inspect_run(query: str, state: dict, ctx: RunContext) -> dict:
        """Looks at the run."""
        seen["n_messages"] = len(state["messages"])
        seen["node"] = ctx.node
        seen["context"] = ctx.context
        return {"query": query, "ok": True}

    assert "state" not in inspect_run.schema["properties"]
    out = tool_graph(ToolNode([inspect_run])).invoke(ask_tools(call("inspect_run", query="q")),
                                                     context={"user": "ada"})
    assert seen == {"n_messages": 2, "node": "tools", "context": {"user": "ada"}}
    assert out["messages"][-1].content == '{"query": "q", "ok": true}'


def test_plain_functions_are_wrapped_and_names_must_be_unique():
    def shout(text: str) -> str:
        """Upper-case."""
        return text.upper()

    node = ToolNode([shout])
    assert node.invoke(ask_tools(call("shout", text="hi")))["messages"][0].content == "HI"
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        ToolNode([add, add])


def test_tool_node_needs_tool_calls_and_skips_answered_ones():
    with pytest.raises(ValueError, match="no tool calls"):
        ToolNode([add]).invoke({"messages": [HumanMessage(content="hi")]})
    ai = AIMessage(tool_calls=[call("add", a=1, b=1), call("add", a=2, b=2)])
    done = ToolMessage(tool_call_id=ai.tool_calls[0].id, content="2")
    out = ToolNode([add]).invoke({"messages": [ai, done]})
    assert [m.content for m in out["messages"]] == ["4"]


def test_tools_condition():
    assert tools_condition({"messages": [HumanMessage(content="q")]}) == END
    ai = AIMessage(tool_calls=[call("add", a=1, b=2)])
    assert tools_condition({"messages": [ai]}) == "tools"
    answered = ToolMessage(tool_call_id=ai.tool_calls[0].id, content="3")
    assert tools_condition({"messages": [ai, answered]}) == END
    assert tools_condition({"messages": [ai, answered, AIMessage(content="3")]}) == END
    assert tools_condition({"other": 1}) == END
    assert tools_condition.__annotations__["return"] == "Literal['tools', '__end__']"


# -- ReAct -----------------------------------------------------------------------------------

MESSY_REPLIES = [
    # lower-case labels, single quotes and a trailing comma
    "thought: I should multiply\naction : Multiply\naction input: {'a': 6, 'b': 7,}",
    # an unknown tool
    "Thought: maybe a search\nAction: web_search\nAction Input: {\"q\": \"6*7\"}",
    # no labels that make sense
    "Thought: hmm, let me think more",
    # code fence, unquoted keys, and an imagined Observation + answer that must be ignored
    "**Action:** add\n**Action Input:**\n```json\n{a: 42, b: 0}\n```\nObservation: 42\n"
    "Final Answer: made up",
    "Thought: I now know the final answer\nFinal Answer:  6 x 7 = 42 ",
]


def test_react_node_loop_with_messy_model_text():
    model = ScriptedModel(MESSY_REPLIES)
    g = StateGraph(AgentState)
    g.add_node("agent", ReActNode(model, [multiply, add], system="You do math."))
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    out = g.compile().invoke({"messages": [("user", "6 times 7?")]})
    msgs = out["messages"]
    assert msgs[-1].content == "6 x 7 = 42" and isinstance(msgs[-1], AIMessage)
    assert len(model.calls) == 5
    # the transcript the model saw: protocol prompt with the tools' schemas, observations
    system = model.calls[0][0]
    assert isinstance(system, SystemMessage) and system.content.startswith("You do math.")
    assert "multiply: Multiply two integers." in system.content and '"a"' in system.content
    assert "Action Input:" in system.content and "Final Answer:" in system.content
    observations = [m.content for m in model.calls[-1] if m.content.startswith("Observation:")]
    assert observations[0] == "Observation: 42"
    assert "'web_search' is not a valid tool" in observations[1]
    assert "multiply, add" in observations[1]
    assert "no 'Action:' and no 'Final Answer:'" in observations[2]
    assert observations[3] == "Observation: 42"
    # intermediate steps are in the state: actions carry their tool calls
    actions = [m for m in msgs if isinstance(m, AIMessage) and m.tool_calls]
    assert [(a.tool_calls[0].name, a.tool_calls[0].args) for a in actions] == [
        ("multiply", {"a": 6, "b": 7}), ("add", {"a": 42, "b": 0})]
    results = [m for m in msgs if isinstance(m, ToolMessage)]
    assert [r.tool_call_id for r in results] == [a.tool_calls[0].id for a in actions]
    feedback = [m for m in msgs if isinstance(m, HumanMessage) and m.name == "observation"]
    assert len(feedback) == 2


def test_react_node_can_return_only_the_final_answer():
    model = ScriptedModel(["Action: add\nAction Input: {\"a\": 1, \"b\": 2}", "Final Answer: 3"])
    node = ReActNode(model, [add], return_intermediate_steps=False)
    assert [m.content for m in node({"messages": ["1+2"]})["messages"]] == ["3"]


def test_react_node_async():
    model = ScriptedModel(["Action: add[1, 2]", "Action: add\nAction Input: a=1, b=2",
                           "Final Answer: 3"])
    out = asyncio.run(ReActNode(model, [add]).ainvoke({"messages": ["1+2"]}))
    msgs = out["messages"]
    assert msgs[-1].content == "3"
    assert "Invalid Action Input" in msgs[1].content  # [1, 2] is not an object for two args
    assert msgs[3].content == "3" and msgs[3].status == "ok"


def test_react_agent_graph_runs_tools_in_the_tool_node():
    model = ScriptedModel([
        "Thought: first\nAction: multiply\nAction Input: {\"a\": 6, \"b\": 7}",
        "Action: multiply\nAction Input: {\"a\": \"six\"}",  # the ToolNode rejects it
        "The answer is 42.",  # no labels at all: taken as the final answer
    ])
    app = create_react_agent(model, [multiply])
    steps = [next(iter(u)) for u in app.stream({"messages": ["6*7?"]})]
    assert steps == ["agent", "tools", "agent", "tools", "agent"]
    out = app.get_graph()
    assert out.nodes["tools"]["kind"] == "tool"
    final = model.calls[-1]
    assert final[-1].content.startswith("Observation: Error: tool 'multiply': invalid arg")


# -- max_iterations --------------------------------------------------------------------------

def forever(messages):
    return [ToolCall(name="add", args={"a": 1, "b": 1})]


def test_function_calling_agent_stops_at_max_iterations_with_a_final_message():
    model = ScriptedModel(forever)
    app = create_function_calling_agent(model, [add], max_iterations=3,
                                        checkpointer=MemoryCheckpointer())
    out = app.invoke({"messages": ["loop"]}, thread="t")
    assert len(model.calls) == 3
    final = out["messages"][-1]
    assert isinstance(final, AIMessage) and not final.tool_calls
    assert "max_iterations=3" in final.content and final.finish_reason == "max_iterations"
    assert sum(isinstance(m, ToolMessage) for m in out["messages"]) == 3  # no dangling calls
    app.invoke({"messages": ["again"]}, thread="t")  # a new request: a fresh count
    assert len(model.calls) == 6


def test_react_node_and_react_agent_stop_at_max_iterations():
    action = "Thought: again\nAction: add\nAction Input: {\"a\": 1, \"b\": 1}"
    model = ScriptedModel(lambda msgs: action)
    out = ReActNode(model, [add], max_iterations=4)({"messages": ["loop"]})
    assert len(model.calls) == 4
    assert "max_iterations=4" in out["messages"][-1].content
    assert sum(isinstance(m, ToolMessage) for m in out["messages"]) == 4

    model = ScriptedModel(lambda msgs: action)
    app = create_react_agent(model, [add], max_iterations=2)
    out = app.invoke({"messages": ["loop"]})
    assert len(model.calls) == 2 and "max_iterations=2" in out["messages"][-1].content

    model = ScriptedModel(lambda msgs: "Thought: I am stuck")  # unreadable replies count too
    out = ReActNode(model, [add], max_iterations=3)({"messages": ["loop"]})
    assert len(model.calls) == 3 and "max_iterations=3" in out["messages"][-1].content


# -- llm_router ------------------------------------------------------------------------------

class Ticket(TypedDict):
    messages: Annotated[list, add_messages]
    handled_by: str


def routed_graph(router):
    g = StateGraph(Ticket)
    g.add_node("intake", lambda s: None)
    g.add_node("billing", lambda s: {"handled_by": "billing"})
    g.add_node("support", lambda s: {"handled_by": "support"})
    g.add_edge(START, "intake")
    g.add_conditional_edges("intake", router)
    g.add_edge("billing", END)
    g.add_edge("support", END)
    return g.compile()


ROUTES = {"billing": "invoices, refunds, payments", "support": "bugs and how-to questions"}


def test_llm_router_routes_on_structured_output():
    model = RecordingModel(['{"route": "billing"}', '```json\n{"route": "support"}\n```'])
    app = routed_graph(llm_router(model, ROUTES))
    assert app.invoke({"messages": ["refund please"]})["handled_by"] == "billing"
    assert app.invoke({"messages": ["app crashes"]})["handled_by"] == "support"
    fmt = model.offered[0][1]
    assert fmt.model_json_schema()["properties"]["route"]["enum"] == ["billing", "support"]
    prompt = model.calls[0][0].content
    assert "- billing: invoices, refunds, payments" in prompt and '{"route"' in prompt


def test_llm_router_falls_back_to_the_text_and_to_the_default():
    model = ScriptedModel(["Support.", "I think this is about BILLING", "no idea", "nothing"])
    app = routed_graph(llm_router(model, ROUTES))
    assert app.invoke({"messages": ["x"]})["handled_by"] == "support"
    assert app.invoke({"messages": ["x"]})["handled_by"] == "billing"
    with pytest.raises(ValueError, match="does not parse as RouteDecision") as err:
        app.invoke({"messages": ["x"]})
    assert "raised in router 'llm_router'" in "\n".join(err.value.__notes__)
    fallback = routed_graph(llm_router(model, ROUTES, default="support"))
    assert fallback.invoke({"messages": ["x"]})["handled_by"] == "support"


def test_llm_router_declares_its_targets_for_checks_and_diagrams():
    router = llm_router(ScriptedModel([]), ROUTES, default=END)
    assert router.__annotations__["return"] == Literal["billing", "support", "__end__"]
    G = routed_graph(router).get_graph()
    targets = {v for u, v, d in G.edges(data=True) if u == "intake"}
    assert targets == {"billing", "support", END}
    assert all(d["router"] == "llm_router" for u, v, d in G.edges(data=True) if u == "intake")
    g = StateGraph(Ticket)
    g.add_node("intake", lambda s: None)
    g.add_edge(START, "intake")
    g.add_conditional_edges("intake", llm_router(ScriptedModel([]), {"nowhere": "x"}))
    with pytest.raises(Exception, match="nowhere"):  # a target that is not a node
        g.compile()


# -- streaming -------------------------------------------------------------------------------

def test_stream_messages_yields_the_agent_tokens():
    model = ScriptedModel([[call("add", a=2, b=2)], "two plus two is four"])
    app = create_function_calling_agent(model, [add])
    events = list(app.stream({"messages": ["2+2?"]}, mode="messages"))
    assert {node for _, node in events} == {"agent"}
    text = [c.content for c, _ in events if c.content]
    assert text == ["two", " plus", " two", " is", " four"]
    assert any(c.tool_call_chunks for c, _ in events)

    async def collect():
        model2 = ScriptedModel(["async tokens"])
        app2 = create_function_calling_agent(model2, [add])
        return [e async for e in app2.astream({"messages": ["hi"]}, mode="messages")]

    assert "".join(c.content for c, _ in asyncio.run(collect())) == "async tokens"


# -- confirmation, interrupts and the journal ------------------------------------------------

def make_delete(log):
    @tool(confirm=True)
    def delete_file(path: str) -> str:
        """Delete a file.

        Args:
            path: the file to delete.
        """
        log.append(path)
        return f"deleted {path}"

    return delete_file


@pytest.mark.parametrize("answer, ran, status", [("approve", ["a.txt"], "ok"),
                                                 ("reject", [], "error"),
                                                 ({"edit": {"path": "b.txt"}}, ["b.txt"], "ok")])
def test_checkpointed_agent_pauses_on_a_confirm_tool_and_resumes(answer, ran, status):
    log = []
    model = ScriptedModel([[call("delete_file", path="a.txt")], "all done"])
    app = create_function_calling_agent(model, [make_delete(log)],
                                        checkpointer=MemoryCheckpointer())
    out = app.invoke({"messages": ["delete a.txt"]}, thread="t")
    (pause,) = out["__interrupt__"]
    assert pause.node == "tools" and pause.value["tool"] == "delete_file"
    assert pause.value["args"] == {"path": "a.txt"} and log == []
    assert app.get_state("t").next == ("tools",)
    out = app.invoke(Command(resume=answer), thread="t")
    assert "__interrupt__" not in out
    result = out["messages"][-2]
    assert isinstance(result, ToolMessage) and result.status == status and log == ran
    if status == "error":
        assert "rejected by the user" in result.content
    assert out["messages"][-1].content == "all done"
    assert len(model.calls) == 2  # the agent node that asked for the tool was not re-run


def test_parallel_confirm_calls_pause_together_and_finished_siblings_do_not_rerun(saver):
    log, counted = [], []
    thread = uuid.uuid4().hex

    @tool
    def count() -> int:
        """Counts its calls."""
        counted.append(1)
        return len(counted)

    model = ScriptedModel([[call("count"), call("delete_file", path="a"),
                            call("delete_file", path="b")], "ok"])
    app = create_function_calling_agent(model, [count, make_delete(log)], checkpointer=saver)
    out = app.invoke({"messages": ["go"]}, thread=thread)
    pauses = out["__interrupt__"]
    assert [p.value["args"]["path"] for p in pauses] == ["a", "b"]
    assert len({p.id for p in pauses}) == 2 and counted == [1]
    out = app.invoke(Command(resume={pauses[0].id: "reject", pauses[1].id: "approve"}),
                     thread=thread)
    assert counted == [1] and log == ["b"]  # `count` finished before: journaled, not re-run
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [(m.content, m.status) for m in results] == [
        ("1", "ok"), ("Error: the call of tool 'delete_file' was rejected by the user.",
                      "error"), ("deleted b", "ok")]


def test_resumed_react_node_replays_journaled_model_and_tool_calls(saver):
    log, counted = [], []
    thread = uuid.uuid4().hex

    @tool
    def count() -> int:
        """Counts its calls."""
        counted.append(1)
        return len(counted)

    model = ScriptedModel([
        "Action: count\nAction Input: {}",
        "Action: delete_file\nAction Input: {\"path\": \"x\"}",
        "Final Answer: deleted x",
    ])
    g = StateGraph(AgentState)
    g.add_node("agent", ReActNode(model, [count, make_delete(log)]))
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    app = g.compile(checkpointer=saver)
    out = app.invoke({"messages": ["clean up"]}, thread=thread)
    assert out["__interrupt__"][0].node == "agent"
    assert len(model.calls) == 2 and counted == [1] and log == []
    out = app.invoke(Command(resume="approve"), thread=thread)
    # the node ran again from its start: the two model calls and the `count` call were
    # replayed from the journal (the script has 3 replies: a 4th call would raise)
    assert len(model.calls) == 3 and counted == [1] and log == ["x"]
    assert out["messages"][-1].content == "deleted x"
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == [
        "1", "deleted x"]


def test_a_tool_node_resumed_after_an_error_does_not_rerun_finished_calls():
    counted, failures = [], []

    @tool
    def count() -> int:
        """Counts its calls."""
        counted.append(1)
        return len(counted)

    @tool
    def flaky() -> str:
        """Fails the first time."""
        if not failures:
            failures.append(1)
            raise RuntimeError("transient")
        return "fine"

    app = tool_graph(ToolNode([count, flaky], handle_errors=False), saver=MemoryCheckpointer())
    with pytest.raises(RuntimeError, match="transient"):
        app.invoke(ask_tools(call("count"), call("flaky")), thread="t")
    out = app.invoke(None, thread="t")
    assert counted == [1] and [m.content for m in out["messages"][2:]] == ["1", "fine"]


def test_confirm_tool_without_a_checkpointer_is_an_error_message():
    log = []
    out = ToolNode([make_delete(log)]).invoke(ask_tools(call("delete_file", path="a")))
    msg = out["messages"][0]
    assert msg.status == "error" and "confirm=True" in msg.content and log == []


# -- the real provider SDKs, against local servers speaking their wire protocols --------------

def provider_model(provider, server):
    if provider == "openai":
        from graphflow.models.openai_chat import OpenAIChat

        return OpenAIChat("gpt-4o-mini", base_url=server.base_url, api_key="test")
    from graphflow.models.anthropic_chat import AnthropicChat

    return AnthropicChat("claude-haiku-4-5", base_url=server.base_url, api_key="test")


def provider_server(provider, script):
    from graphflow.testing import llm_servers

    cls = llm_servers.OpenAIServer if provider == "openai" else llm_servers.AnthropicServer
    return cls(script)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_function_calling_agent_over_the_provider_sdks(provider):
    pytest.importorskip(provider)
    from graphflow.testing.llm_servers import Reply

    script = [Reply(tool_calls=[("multiply", {"a": 6, "b": 7}), ("add", {"a": 1, "b": 1})]),
              Reply("6 x 7 = 42 and 1 + 1 = 2")]
    with provider_server(provider, script) as server:
        app = create_function_calling_agent(provider_model(provider, server), [multiply, add],
                                            system="Use the tools.")
        out = app.invoke({"messages": [("user", "6*7 and 1+1?")]})
        bodies = server.bodies
    assert out["messages"][-1].content == "6 x 7 = 42 and 1 + 1 = 2"
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == ["42", "2"]
    assert len(bodies) == 2
    names = ([t["function"]["name"] for t in bodies[0]["tools"]] if provider == "openai"
             else [t["name"] for t in bodies[0]["tools"]])
    assert names == ["multiply", "add"]
    text = str(bodies[1]["messages"])
    assert "42" in text and "Use the tools." in str(bodies[1])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_llm_router_over_the_provider_sdks(provider):
    pytest.importorskip(provider)
    from graphflow.testing.llm_servers import Reply

    with provider_server(provider, [Reply(data={"route": "support"})]) as server:
        app = routed_graph(llm_router(provider_model(provider, server), ROUTES))
        assert app.invoke({"messages": ["it crashes"]})["handled_by"] == "support"


def test_react_agent_over_the_openai_sdk_sends_no_tools():
    pytest.importorskip("openai")
    from graphflow.testing.llm_servers import Reply

    script = [Reply("Thought: multiply\nAction: multiply\nAction Input: {'a': 6, 'b': 7}"),
              Reply("Final Answer: 42")]
    with provider_server("openai", script) as server:
        app = create_react_agent(provider_model("openai", server), [multiply])
        out = app.invoke({"messages": [("user", "6*7?")]})
        bodies = server.bodies
    assert out["messages"][-1].content == "42"
    assert all("tools" not in b for b in bodies)
    assert bodies[1]["messages"][-1] == {"role": "user", "content": "Observation: 42"}


def test_example_runs_offline(monkeypatch, capsys):
    import runpy
    from pathlib import Path

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
    example = runpy.run_path(str(path), run_name="not_main")
    assert "9.165" in example["main"]([])
    assert "9.165" in example["main"](["--react"])
    out = capsys.readouterr().out
    assert "[tool calculator -> 84]" in out


@pytest.mark.parametrize("react", [False, True], ids=["function calling", "ReAct"])
def test_example_offline_answers_the_question_asked_or_says_it_cannot(monkeypatch, capsys,
                                                                       react):
    import runpy
    from pathlib import Path

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    path = Path(__file__).resolve().parent.parent / "examples" / "agent.py"
    example = runpy.run_path(str(path), run_name="not_main")
    flags = ["--react"] if react else []
    assert example["main"]([*flags, "what", "is", "2+2?"]) == "2+2 = 4"
    assert example["main"]([*flags, "what is (7 - 1) ^ 2"]) == "(7 - 1) ** 2 = 36"
    refusal = example["main"]([*flags, "tell me a joke"])
    assert "no arithmetic" in refusal and "OPENAI_API_KEY" in refusal
    out = capsys.readouterr().out
    assert out.count("ScriptedModel, offline") == 3 and "[tool calculator -> 4]" in out


def test_async_confirm_tool_pauses_and_resumes_under_ainvoke():
    log = []

    @tool(confirm=True)
    async def launch(target: str) -> str:
        """Launch something (async)."""
        log.append(target)
        return f"launched {target}"

    model = ScriptedModel([[call("launch", target="moon")], "launched"])
    app = create_function_calling_agent(model, [launch], checkpointer=MemoryCheckpointer())

    async def scenario():
        out = await app.ainvoke({"messages": ["go"]}, thread="t")
        assert out["__interrupt__"][0].value["args"] == {"target": "moon"} and log == []
        return await app.ainvoke(Command(resume="approve"), thread="t")

    out = asyncio.run(scenario())
    assert log == ["moon"] and out["messages"][-1].content == "launched"
    assert out["messages"][-2].content == "launched moon"


def test_parallel_tools_that_call_models_replay_their_own_answers(saver):
    """Each call has its own journal: a tool that failed after a model call gets that call's
    answer back when the node runs again (the model is not asked again), while its sibling,
    which finished, is not run again at all."""
    thread = uuid.uuid4().hex
    inner = ScriptedModel(lambda msgs: f"answer to {msgs[-1].content}")
    failures = []

    @tool
    def ask(question: str) -> str:
        """Ask the inner model."""
        time.sleep(0.02 if question == "first" else 0)  # finish in the other order
        answer = inner.invoke(question).content
        if question == "second" and not failures:
            failures.append(1)
            raise RuntimeError("transient")
        return answer

    app = tool_graph(ToolNode([ask], handle_errors=False), saver=saver)
    calls = [call("ask", question="first"), call("ask", question="second")]
    with pytest.raises(RuntimeError, match="transient"):
        app.invoke(ask_tools(*calls), thread=thread)
    assert len(inner.calls) == 2
    out = app.invoke(None, thread=thread)
    assert len(inner.calls) == 2  # "second" got its model answer from its own journal
    assert [m.content for m in out["messages"][2:]] == ["answer to first", "answer to second"]


def test_a_tool_can_ask_a_model_then_a_human(saver):
    thread = uuid.uuid4().hex
    inner = ScriptedModel(["a draft reply"])

    @tool
    def draft_email(to: str) -> str:
        """Draft an email and have a human check it."""
        draft = inner.invoke(f"write to {to}").content
        verdict = interrupt({"draft": draft})
        return f"sent: {draft}" if verdict == "ok" else "not sent"

    app = tool_graph(ToolNode([draft_email]), saver=saver)
    out = app.invoke(ask_tools(call("draft_email", to="bob")), thread=thread)
    assert out["__interrupt__"][0].value == {"draft": "a draft reply"}
    out = app.invoke(Command(resume="ok"), thread=thread)
    assert out["messages"][-1].content == "sent: a draft reply"
    assert len(inner.calls) == 1  # the model call before the pause was replayed
