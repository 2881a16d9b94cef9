"""OpenTelemetry traces of runs: a span per run, superstep, node, model call and tool call.

Off by default, and then nearly free: the engine reads one attribute per step and per task.
Turn it on with :func:`configure` (the SDK's console or OTLP exporter, ``pip install
opentelemetry-sdk`` and, for OTLP, ``opentelemetry-exporter-otlp-proto-http``) or with
:func:`enable` when the application has set up OpenTelemetry itself::

    from graphflow import tracing
    tracing.configure("console")            # or "otlp" (OTEL_EXPORTER_OTLP_ENDPOINT ...)
    tracing.enable(my_tracer_provider)      # or: use a provider configured elsewhere

Spans and their attributes (``graphflow.*``; model calls also use the GenAI conventions)::

    graphflow.run    graphflow.graph, graphflow.thread, graphflow.steps, graphflow.input_tokens,
                     graphflow.output_tokens, graphflow.cost, graphflow.error
    graphflow.step   graphflow.step, graphflow.nodes, graphflow.thread
    graphflow.node   graphflow.node, graphflow.step, graphflow.thread, graphflow.error
    graphflow.model  gen_ai.request.model, gen_ai.usage.input_tokens,
                     gen_ai.usage.output_tokens, graphflow.cost, graphflow.node
    graphflow.tool   graphflow.tool, graphflow.node, graphflow.error

A node's span is the current span while it runs, so the application's own spans (and spans of
instrumented HTTP clients) nest under it; a subgraph's run nests under its node.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.run import Run
    from .engine.task import Task

__all__ = ["configure", "disable", "enable", "enabled"]

#: The tracer spans are made with; None: tracing is off (what the engine checks).
TRACER: Any = None

_EXTRA_HINT = "pip install opentelemetry-sdk"


def enabled() -> bool:
    """Whether graphflow makes spans."""
    return TRACER is not None


def enable(tracer_provider: Any = None) -> None:
    """Make spans with ``tracer_provider`` (default: OpenTelemetry's global provider)."""
    global TRACER
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise ImportError(f"tracing needs OpenTelemetry ({exc}): {_EXTRA_HINT}") from exc
    provider = tracer_provider or trace.get_tracer_provider()
    from . import __version__

    TRACER = provider.get_tracer("graphflow", __version__)


def disable() -> None:
    """Stop making spans."""
    global TRACER
    TRACER = None


def configure(exporter: str = "console", **options: Any) -> Any:
    """Set up the OpenTelemetry SDK with ``exporter`` ("console" or "otlp", the OTLP/HTTP
    exporter reading the standard ``OTEL_EXPORTER_OTLP_*`` variables), make it the global
    provider, and :func:`enable` graphflow's spans. ``"none"`` disables them. Returns the
    provider (call its ``shutdown()`` to flush at exit; it also flushes at exit by itself).
    ``options`` go to the exporter."""
    if exporter == "none":
        disable()
        return None
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ImportError(f"tracing needs the OpenTelemetry SDK ({exc}): {_EXTRA_HINT}") from exc
    if exporter == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        span_exporter: Any = ConsoleSpanExporter(**options)
    elif exporter == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ImportError(f"the OTLP exporter is not installed ({exc}): pip install "
                              f"opentelemetry-exporter-otlp-proto-http") from exc
        span_exporter = OTLPSpanExporter(**options)
    else:
        raise ValueError(f"exporter must be 'console', 'otlp' or 'none', not {exporter!r}")
    service = os.environ.get("OTEL_SERVICE_NAME", "graphflow")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    enable(trace.get_tracer_provider())
    return provider


def configure_from(choice: str | None) -> None:
    """``graphflow serve --trace``: the choice given, else ``OTEL_TRACES_EXPORTER`` (console or
    otlp; anything else leaves tracing off)."""
    choice = choice or os.environ.get("OTEL_TRACES_EXPORTER", "none")
    if choice in ("console", "otlp"):
        configure(choice)


# -- what the engine and the model and tool layers call (only when TRACER is set) ---------------

def _set_error(span: Any, error: BaseException | None) -> None:
    if error is None:
        return
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("graphflow.error", f"{type(error).__name__}: {error}")
    span.set_status(Status(StatusCode.ERROR, str(error)))


def _context(parent: Any) -> Any:
    if parent is None:
        return None  # the current context
    from opentelemetry import trace

    return trace.set_span_in_context(parent)


def run_started(run: Run) -> None:
    attrs = {"graphflow.graph": run.graph.name or ""}
    if run.thread is not None:
        attrs["graphflow.thread"] = run.thread
    if run.ns:
        attrs["graphflow.namespace"] = run.ns
    run.spans = [TRACER.start_span("graphflow.run", attributes=attrs), None]


def run_ended(run: Run, error: BaseException | None) -> None:
    spans, run.spans = run.spans, None
    if not spans:
        return
    if spans[1] is not None:
        _set_error(spans[1], error)
        spans[1].end()
    span = spans[0]
    span.set_attribute("graphflow.steps", run.steps_run)
    usage = run.usage
    span.set_attribute("graphflow.input_tokens", usage["input_tokens"])
    span.set_attribute("graphflow.output_tokens", usage["output_tokens"])
    span.set_attribute("graphflow.cost", float(usage["cost"]))
    _set_error(span, error)
    span.end()


def step_started(run: Run, tasks: list[Task]) -> None:
    spans = run.spans
    if not spans:
        return
    if spans[1] is not None:
        spans[1].end()
    attrs: dict[str, Any] = {"graphflow.step": run.step,
                             "graphflow.nodes": [t.name for t in tasks]}
    if run.thread is not None:
        attrs["graphflow.thread"] = run.thread
    spans[1] = TRACER.start_span("graphflow.step", context=_context(spans[0]), attributes=attrs)


def step_ended(run: Run, tasks: list[Task]) -> None:
    spans = run.spans
    if not spans or spans[1] is None:
        return
    step, spans[1] = spans[1], None
    _set_error(step, next((t.error for t in tasks if t.error is not None), None))
    step.end()


def node_started(run: Run, task: Task) -> tuple[Any, Any]:
    """The node's span, made current in this context (returns what :func:`node_ended` needs)."""
    from opentelemetry import context as otel_context
    from opentelemetry import trace

    spans = run.spans
    parent = spans[1] or spans[0] if spans else None
    attrs: dict[str, Any] = {"graphflow.node": task.name, "graphflow.step": run.step}
    if run.thread is not None:
        attrs["graphflow.thread"] = run.thread
    span = TRACER.start_span("graphflow.node", context=_context(parent), attributes=attrs)
    return span, otel_context.attach(trace.set_span_in_context(span))


def node_ended(handle: tuple[Any, Any], task: Task) -> None:
    from opentelemetry import context as otel_context

    span, token = handle
    with contextlib.suppress(ValueError):  # detached in another context: nothing to undo
        otel_context.detach(token)
    _set_error(span, task.error)
    if task.interrupts:
        span.set_attribute("graphflow.interrupted", True)
    span.end()


@contextlib.contextmanager
def model_call(model: Any, node: str) -> Iterator[Any]:
    """A span around one real model call (replays from the journal make none)."""
    with TRACER.start_as_current_span("graphflow.model", attributes={
            "gen_ai.request.model": model.model, "gen_ai.system": model.provider,
            "graphflow.node": node}) as span:
        yield span


def model_usage(span: Any, model: Any, message: Any) -> None:
    usage = getattr(message, "usage", None)
    if usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        span.set_attribute("graphflow.cost", float(model.cost(usage)))


@contextlib.contextmanager
def tool_call(tool: str, node: str | None) -> Iterator[Any]:
    attrs = {"graphflow.tool": tool}
    if node:
        attrs["graphflow.node"] = node
    with TRACER.start_as_current_span("graphflow.tool", attributes=attrs,
                                      record_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            _set_error(span, exc)
            raise


def traced_model(model: Any, node: str, call: Any) -> Any:
    """``call`` (a model call made inside a node), in a ``graphflow.model`` span when tracing
    is on; as is otherwise."""
    if TRACER is None:
        return call

    def traced() -> Any:
        with model_call(model, node) as span:
            message = call()
            model_usage(span, model, message)
            return message

    return traced


def traced_amodel(model: Any, node: str, call: Any) -> Any:
    """Async :func:`traced_model`."""
    if TRACER is None:
        return call

    async def traced() -> Any:
        with model_call(model, node) as span:
            message = await call()
            model_usage(span, model, message)
            return message

    return traced


def traced_tool(method: Any) -> Any:
    """Decorate ``Tool.invoke``: a ``graphflow.tool`` span per call when tracing is on."""
    import functools

    @functools.wraps(method)
    def invoke(self: Any, args: Any = None, *, state: Any = None, ctx: Any = None) -> Any:
        if TRACER is None:
            return method(self, args, state=state, ctx=ctx)
        with tool_call(self.name, getattr(ctx, "node", None)):
            return method(self, args, state=state, ctx=ctx)

    return invoke


def traced_atool(method: Any) -> Any:
    """Decorate ``Tool.ainvoke`` (see :func:`traced_tool`)."""
    import functools

    @functools.wraps(method)
    async def ainvoke(self: Any, args: Any = None, *, state: Any = None, ctx: Any = None) -> Any:
        if TRACER is None:
            return await method(self, args, state=state, ctx=ctx)
        with tool_call(self.name, getattr(ctx, "node", None)):
            return await method(self, args, state=state, ctx=ctx)

    return ainvoke
