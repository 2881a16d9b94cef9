"""OpenTelemetry spans of runs: run > step > node > model call / tool call, with the thread,
node, model, tokens, cost and errors as attributes; nothing is made while tracing is off."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

import pytest

pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk is not installed")

from graphflow.tools.builtin import calculator
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from graphflow import END, START, StateGraph, ToolCall, tracing
from graphflow.agents import create_function_calling_agent
from graphflow.checkpoint import MemoryCheckpointer
from graphflow.models import ScriptedModel


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.enable(provider)
    yield exporter
    tracing.disable()


def by_name(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_an_agent_run_makes_nested_spans_with_tokens_and_cost(spans):
    model = ScriptedModel([[ToolCall(name="calculator", args={"expression": "6 * 7"})], "42"],
                          price=(1.0, 2.0))
    agent = create_function_calling_agent(model, [calculator],
                                          checkpointer=MemoryCheckpointer())
    agent.invoke({"messages": [("user", "6 x 7?")]}, thread="t-trace")
    (run,) = by_name(spans, "graphflow.run")
    steps = by_name(spans, "graphflow.step")
    nodes = by_name(spans, "graphflow.node")
    models = by_name(spans, "graphflow.model")
    (call,) = by_name(spans, "graphflow.tool")
    assert run.attributes["graphflow.thread"] == "t-trace"
    assert run.attributes["graphflow.steps"] == len(steps) == len(nodes) == 3
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    step_ids = {s.context.span_id for s in steps}
    assert all(n.parent.span_id in step_ids for n in nodes)
    node_of = {n.context.span_id: n.attributes["graphflow.node"] for n in nodes}
    assert [node_of[m.parent.span_id] for m in models] == ["agent", "agent"]
    assert node_of[call.parent.span_id] == "tools"
    assert call.attributes["graphflow.tool"] == "calculator"
    tokens_in = sum(m.attributes["gen_ai.usage.input_tokens"] for m in models)
    tokens_out = sum(m.attributes["gen_ai.usage.output_tokens"] for m in models)
    assert models[0].attributes["gen_ai.request.model"] == "scripted"
    assert run.attributes["graphflow.input_tokens"] == tokens_in > 0
    assert run.attributes["graphflow.output_tokens"] == tokens_out > 0
    cost = (tokens_in * 1.0 + tokens_out * 2.0) / 1e6
    assert run.attributes["graphflow.cost"] == pytest.approx(cost)
    assert sum(m.attributes["graphflow.cost"] for m in models) == pytest.approx(cost)


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def test_errors_are_on_the_node_step_and_run_spans_and_off_means_no_spans(spans):
    def boom(state: S) -> dict:
        raise ValueError("bad input 7")

    g = StateGraph(S)
    g.add_node("ok", lambda s: {"log": ["ok"]})
    g.add_node("boom", boom)
    g.add_edge(START, "ok")
    g.add_edge("ok", "boom")
    g.add_edge("boom", END)
    app = g.compile()
    with pytest.raises(ValueError, match="bad input 7"):
        app.invoke({"log": []})
    (run,) = by_name(spans, "graphflow.run")
    failed = [n for n in by_name(spans, "graphflow.node") if n.attributes["graphflow.node"] ==
              "boom"]
    assert "bad input 7" in failed[0].attributes["graphflow.error"]
    assert not failed[0].status.is_ok
    assert "bad input 7" in run.attributes["graphflow.error"]
    assert [s.attributes.get("graphflow.error") is not None
            for s in by_name(spans, "graphflow.step")] == [False, True]
    tracing.disable()
    spans.clear()
    g2 = StateGraph(S)
    g2.add_node("ok", lambda s: {"log": ["ok"]})
    g2.add_edge(START, "ok")
    g2.add_edge("ok", END)
    assert g2.compile().invoke({"log": []}) == {"log": ["ok"]}
    assert spans.get_finished_spans() == ()


def test_configure_console_exports_spans():
    import io

    sink = io.StringIO()
    provider = tracing.configure("console", out=sink)
    try:
        g = StateGraph(S)
        g.add_node("only", lambda s: {"log": ["x"]})
        g.add_edge(START, "only")
        g.add_edge("only", END)
        g.compile().invoke({"log": []})
        provider.force_flush()
        out = sink.getvalue()
        assert '"name": "graphflow.node"' in out and '"graphflow.node": "only"' in out
    finally:
        tracing.disable()
        provider.shutdown()
    with pytest.raises(ValueError, match="console"):
        tracing.configure("zipkin")
