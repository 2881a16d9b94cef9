"""W7 -- an agent loop: 20 turns of (model asks for a tool -> the tool answers) plus the final
answer, against ScriptedModel with one tool; and one reply with 50 parallel tool calls.

As users run it — the shipped ``ScriptedModel`` (replies from a function of the messages),
``create_function_calling_agent(model, [add])`` with default settings, wall time per turn with
nothing subtracted:

``W7_agent_us_per_turn``: no checkpointer. ``W7_agent_memory_us_per_turn``: with a
``MemoryCheckpointer``, each conversation on a thread of its own (deleted afterwards, so
the store does not grow over thousands of runs).

Framework overhead only (the tuned measurement): the model's own time (ScriptedModel building
its reply) is timed around ``_generate`` and subtracted, so what remains is graphflow's: the
supersteps, the ``add_messages`` merges, the ChatModel wrapper (history repair, journaling,
usage), ToolNode (argument validation with pydantic, the call, the ToolMessage) and routing —
and with a checkpointer, the checkpoints, pending writes and journal entries.

``W7_react_overhead_us_per_turn``: ``create_function_calling_agent``, no checkpointer.
``W7_react_overhead_memory_us_per_turn``: the same with a ``MemoryCheckpointer``.
``W7_react_text_overhead_us_per_turn``: ``create_react_agent`` (the ReAct text protocol:
rendering the transcript and parsing each reply are part of the overhead).

50 parallel calls (one AI message asking for ``add`` 50 times): ``W7_parallel50_toolnode_ms``
is one ``ToolNode.invoke`` on it (default settings); ``W7_parallel50_agent_ms`` one agent
``invoke`` whose model answers with the 50 calls and then with the final answer.

``W7_tool_schema_cached_us``: one access of ``tool.schema`` once it has been built.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import TimedModel, budget_ns, check, median_ns, repeats, rnd, warmups
from graphflow.tools import tool

from graphflow.agents import ToolNode, create_function_calling_agent, create_react_agent
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.messages import AIMessage, HumanMessage, ToolCall, ToolMessage
from graphflow.models import ScriptedModel

TURNS = 20


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first number.
        b: the second number.
    """
    return a + b


def calling_reply(messages: list[Any]) -> Any:
    n = sum(isinstance(m, ToolMessage) for m in messages)
    return [ToolCall(name="add", args={"a": n, "b": 1})] if n < TURNS else f"done after {n}"


def react_reply(messages: list[Any]) -> str:
    n = sum(isinstance(m, HumanMessage) and m.content.startswith("Observation:")
            for m in messages)
    if n < TURNS:
        return f'Thought: one more\nAction: add\nAction Input: {{"a": {n}, "b": 1}}'
    return f"Thought: I now know the final answer\nFinal Answer: done after {n}"


def per_turn_us(once: Callable[[], dict], model: Any, quick: bool, *,
                subtract_model: bool) -> float:
    """Median over samples of the wall time of ``once()`` per turn in µs (minus the model's
    own time when ``subtract_model``)."""
    out = once()
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    check(len(results) == TURNS and all(m.status == "ok" for m in results)
          and out["messages"][-1].content == f"done after {TURNS}",
          f"W7: expected {TURNS} ok tool results and the final answer, got "
          f"{len(results)} results and {out['messages'][-1].content!r}")
    for _ in range(warmups(quick)):
        once()
    t0 = time.perf_counter_ns()
    once()
    number = max(1, min(200, budget_ns(quick) // max(time.perf_counter_ns() - t0, 1)))
    samples = []
    for _ in range(repeats(quick)):
        gc.collect()
        model.model_ns = 0
        t0 = time.perf_counter_ns()
        for _ in range(number):
            once()
        wall = time.perf_counter_ns() - t0
        spent = wall - model.model_ns if subtract_model else wall
        samples.append(spent / number / TURNS / 1000)
    return statistics.median(samples)


def conversation(app: Any, *, memory: bool) -> Callable[[], dict]:
    """One conversation with ``app`` (on a fresh thread, deleted after, when ``memory``)."""
    question = {"messages": [("user", "count to twenty")]}
    if not memory:
        return lambda: app.invoke(question)
    n = iter(range(10**9))

    def once() -> dict:
        thread = f"t{next(n)}"
        out = app.invoke(question, thread=thread)
        app.checkpointer.delete_thread(thread)
        return out

    return once


class PlainModel(ScriptedModel):
    """The shipped ScriptedModel as users run it; only its prompt log is cleared (see
    TimedModel), and ``model_ns`` exists so the same helper times it."""

    model_ns = 0

    def _generate(self, messages, *, tools, tool_choice, response_format):
        try:
            return super()._generate(messages, tools=tools, tool_choice=tool_choice,
                                     response_format=response_format)
        finally:
            self.calls.clear()


def parallel50(quick: bool) -> tuple[float, float]:
    """(ToolNode.invoke ms, agent invoke ms) for one reply with 50 parallel calls."""
    calls = [ToolCall(name="add", args={"a": k, "b": 1}) for k in range(50)]
    state = {"messages": [HumanMessage(content="add them"), AIMessage(tool_calls=calls)]}
    node = ToolNode([add])
    out = node.invoke(state)["messages"]
    check([m.content for m in out] == [str(k + 1) for k in range(50)],
          "W7: the 50 parallel calls did not answer in order")
    node_ns = median_ns(lambda: node.invoke(state), quick=quick)

    def reply(messages: list[Any]) -> Any:
        return "all added" if isinstance(messages[-1], ToolMessage) else list(calls)

    agent = create_function_calling_agent(PlainModel(reply), [add])
    question = {"messages": [("user", "add them")]}
    done = agent.invoke(question)["messages"]
    check(len(done) == 53 and done[-1].content == "all added",
          "W7: the 50-call agent run did not finish with 50 results and the answer")
    agent_ns = median_ns(lambda: agent.invoke(question), quick=quick)
    return node_ns / 1e6, agent_ns / 1e6


def run(quick: bool) -> dict:
    model = PlainModel(calling_reply)
    user = per_turn_us(conversation(create_function_calling_agent(model, [add]), memory=False),
                       model, quick, subtract_model=False)
    model = PlainModel(calling_reply)
    app = create_function_calling_agent(model, [add], checkpointer=MemoryCheckpointer())
    user_memory = per_turn_us(conversation(app, memory=True), model, quick,
                              subtract_model=False)
    model = TimedModel(calling_reply)
    calling = per_turn_us(conversation(create_function_calling_agent(model, [add]),
                                       memory=False), model, quick, subtract_model=True)
    model = TimedModel(calling_reply)
    app = create_function_calling_agent(model, [add], checkpointer=MemoryCheckpointer())
    calling_memory = per_turn_us(conversation(app, memory=True), model, quick,
                                 subtract_model=True)
    model = TimedModel(react_reply)
    text = per_turn_us(conversation(create_react_agent(model, [add]), memory=False), model,
                       quick, subtract_model=True)
    node_ms, agent_ms = parallel50(quick)

    built = add.schema
    check(built is add.schema and "a" in built["properties"], "W7: tool.schema is not cached")
    reads = 1_000

    def read_schema() -> None:
        for _ in range(reads):
            add.schema  # noqa: B018 - the access is what is timed

    schema_ns = median_ns(read_schema, quick=quick) / reads
    return {
        "W7_agent_us_per_turn": rnd(user),
        "W7_agent_memory_us_per_turn": rnd(user_memory),
        "W7_react_overhead_us_per_turn": rnd(calling),
        "W7_react_overhead_memory_us_per_turn": rnd(calling_memory),
        "W7_react_text_overhead_us_per_turn": rnd(text),
        "W7_parallel50_toolnode_ms": rnd(node_ms),
        "W7_parallel50_agent_ms": rnd(agent_ms),
        "W7_tool_schema_cached_us": rnd(schema_ns / 1000),
    }
