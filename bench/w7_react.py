"""W7 -- an agent loop: 20 turns of (model asks for a tool -> the tool answers) plus the final
answer, against ScriptedModel with one tool. Framework overhead in µs per turn.

``W7_react_overhead_us_per_turn``: ``create_function_calling_agent`` (agent node -> router ->
ToolNode -> agent ...). The model's own time (ScriptedModel building its reply) is timed
around ``_generate`` and subtracted, so what remains is graphflow's: the supersteps, the
``add_messages`` merges, the ChatModel wrapper (history repair, journaling, usage), ToolNode
(argument validation with pydantic, the call, the ToolMessage) and routing.

``W7_react_text_overhead_us_per_turn``: the same with ``create_react_agent`` (the ReAct text
protocol: rendering the transcript and parsing each reply are part of the overhead).

``W7_tool_schema_cached_us``: one access of ``tool.schema`` once it has been built.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from _common import TimedModel, budget_ns, check, median_ns, repeats, rnd, warmups
from graphflow.tools import tool

from graphflow.agents import create_function_calling_agent, create_react_agent
from graphflow.messages import HumanMessage, ToolCall, ToolMessage

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


def overhead_us_per_turn(app: Any, model: TimedModel, quick: bool) -> float:
    """Median over samples of (wall time - the model's own time) / TURNS, in µs."""

    def once() -> dict:
        return app.invoke({"messages": [("user", "count to twenty")]})

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
        samples.append((wall - model.model_ns) / number / TURNS / 1000)
    return statistics.median(samples)


def run(quick: bool) -> dict:
    model = TimedModel(calling_reply)
    calling = overhead_us_per_turn(create_function_calling_agent(model, [add]), model, quick)
    model = TimedModel(react_reply)
    text = overhead_us_per_turn(create_react_agent(model, [add]), model, quick)

    built = add.schema
    check(built is add.schema and "a" in built["properties"], "W7: tool.schema is not cached")
    reads = 1_000

    def read_schema() -> None:
        for _ in range(reads):
            add.schema  # noqa: B018 - the access is what is timed

    schema_ns = median_ns(read_schema, quick=quick) / reads
    return {
        "W7_react_overhead_us_per_turn": rnd(calling),
        "W7_react_text_overhead_us_per_turn": rnd(text),
        "W7_tool_schema_cached_us": rnd(schema_ns / 1000),
    }
