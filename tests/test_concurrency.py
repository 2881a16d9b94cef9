"""Concurrency, sync/async drivers, batch, retries and timeouts (docs/semantics.md, "Running").

Concurrency is proven with barriers and events, never with timing.
"""

import asyncio
import operator
import random
import threading
import time
from typing import Annotated, TypedDict

import pytest

from graphflow import END, START, NodeError, NodeTimeoutError, RetryPolicy, StateGraph

pytestmark = pytest.mark.timeout(30)


class S(TypedDict, total=False):
    log: Annotated[list, operator.add]
    n: int
    out: int


def parallel_graph(fn_a, fn_b):
    g = StateGraph(S)
    g.add_node("a", fn_a)
    g.add_node("b", fn_b)
    for n in ("a", "b"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    return g.compile()


def single(fn, **node_kwargs):
    g = StateGraph(S)
    g.add_node("node", fn, **node_kwargs)
    g.add_edge(START, "node")
    g.add_edge("node", END)
    return g.compile()


# --------------------------------------------------------------------------- threads and inline


def test_parallel_sync_nodes_run_concurrently_in_threads():
    barrier = threading.Barrier(2, timeout=5)  # broken (-> error) if the nodes ran one by one

    def a(state):
        barrier.wait()
        return {"log": ["a"]}

    def b(state):
        barrier.wait()
        return {"log": ["b"]}

    assert parallel_graph(a, b).invoke({})["log"] == ["a", "b"]


def test_lone_task_runs_inline_in_the_calling_thread():
    seen = []

    def node(state):
        seen.append(threading.get_ident())
        return {"n": 1}

    g = StateGraph(S)
    g.add_node("first", node)
    g.add_node("second", node)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    g.compile().invoke({})
    assert seen == [threading.get_ident()] * 2


# --------------------------------------------------------------------------- async


def _async_parallel_graph(barrier_holder):
    async def a(state):
        await asyncio.wait_for(barrier_holder["barrier"].wait(), timeout=5)
        return {"log": ["a"]}

    async def b(state):
        await asyncio.wait_for(barrier_holder["barrier"].wait(), timeout=5)
        return {"log": ["b"]}

    return parallel_graph(a, b)


def test_async_nodes_run_concurrently_under_ainvoke():
    async def main():
        holder = {"barrier": asyncio.Barrier(2)}
        return await _async_parallel_graph(holder).ainvoke({})

    assert asyncio.run(main())["log"] == ["a", "b"]


def test_async_nodes_run_concurrently_with_events_under_ainvoke():
    async def main():
        a_started, b_started = asyncio.Event(), asyncio.Event()

        async def a(state):
            a_started.set()
            await asyncio.wait_for(b_started.wait(), timeout=5)
            return {"log": ["a"]}

        async def b(state):
            b_started.set()
            await asyncio.wait_for(a_started.wait(), timeout=5)
            return {"log": ["b"]}

        return await parallel_graph(a, b).ainvoke({})

    assert asyncio.run(main())["log"] == ["a", "b"]


def test_graph_with_async_nodes_works_under_sync_invoke():
    async def first(state):
        await asyncio.sleep(0)
        return {"log": ["first"]}

    def second(state):
        return {"log": ["second"]}

    g = StateGraph(S)
    g.add_node("first", first)
    g.add_node("second", second)
    g.add_edge(START, "first")
    g.add_edge("first", "second")
    g.add_edge("second", END)
    assert g.compile().invoke({})["log"] == ["first", "second"]


def test_parallel_async_nodes_run_concurrently_under_sync_invoke():
    # The barrier must be created on the loop graphflow manages, so create it lazily.
    holder = {}

    class LazyBarrier:
        async def wait(self):
            if "b" not in holder:
                holder["b"] = asyncio.Barrier(2)
            return await holder["b"].wait()

    out = _async_parallel_graph({"barrier": LazyBarrier()}).invoke({})
    assert out["log"] == ["a", "b"]


def test_sync_nodes_work_under_ainvoke():
    def a(state):
        return {"log": ["a"]}

    async def main():
        return await single(a).ainvoke({})

    assert asyncio.run(main())["log"] == ["a"]


@pytest.mark.timeout(20)
def test_sync_invoke_inside_running_event_loop_all_sync_graph():
    def a(state):
        return {"log": ["a"]}

    async def main():
        return single(a).invoke({})

    assert asyncio.run(main())["log"] == ["a"]


@pytest.mark.timeout(20)
def test_sync_invoke_inside_running_event_loop_with_async_nodes():
    async def a(state):
        await asyncio.sleep(0)
        return {"log": ["a"]}

    async def b(state):
        await asyncio.sleep(0)
        return {"log": ["b"]}

    async def main():
        return parallel_graph(a, b).invoke({})

    assert asyncio.run(main())["log"] == ["a", "b"]


@pytest.mark.timeout(20)
def test_sync_stream_inside_running_event_loop_with_async_nodes():
    async def a(state):
        await asyncio.sleep(0)
        return {"log": ["a"]}

    async def main():
        return list(single(a).stream({}, mode="updates"))

    assert asyncio.run(main()) == [{"node": {"log": ["a"]}}]


# --------------------------------------------------------------------------- batch


def _double():
    def node(state):
        time.sleep(random.uniform(0, 0.003))  # shuffle finish order if batch is concurrent
        return {"out": state["n"] * 2}

    return single(node)


def test_batch_returns_results_in_input_order():
    outs = _double().batch([{"n": i} for i in range(8)])
    assert [o["out"] for o in outs] == [i * 2 for i in range(8)]


def test_batch_with_max_concurrency_returns_results_in_input_order():
    outs = _double().batch([{"n": i} for i in range(6)], max_concurrency=2)
    assert [o["out"] for o in outs] == [i * 2 for i in range(6)]


def test_batch_return_exceptions_puts_errors_in_place():
    def node(state):
        if state["n"] == 1:
            raise ValueError("one")
        return {"out": state["n"]}

    outs = single(node).batch([{"n": 0}, {"n": 1}, {"n": 2}], return_exceptions=True)
    assert outs[0]["out"] == 0
    assert isinstance(outs[1], ValueError) and outs[1].graphflow_node == "node"
    assert outs[2]["out"] == 2


def test_abatch_returns_results_in_input_order():
    async def node(state):
        await asyncio.sleep(random.uniform(0, 0.003))
        return {"out": state["n"] * 2}

    app = single(node)
    outs = asyncio.run(app.abatch([{"n": i} for i in range(8)]))
    assert [o["out"] for o in outs] == [i * 2 for i in range(8)]


# --------------------------------------------------------------------------- retries


def fast_retry(**kw):
    return RetryPolicy(initial_interval=0.01, jitter=False, **kw)


def flaky(failures, exc_factory, calls):
    """A node that raises ``exc_factory(i)`` on its first ``failures`` calls, then succeeds."""

    def node(state):
        calls.append(1)
        if len(calls) <= failures:
            raise exc_factory(len(calls))
        return {"out": len(calls)}

    return node


def test_retry_succeeds_after_two_failures():
    calls = []
    app = single(flaky(2, lambda i: ValueError(i), calls), retry=fast_retry(max_attempts=3))
    assert app.invoke({})["out"] == 3
    assert len(calls) == 3


def test_retry_on_type_does_not_retry_other_exceptions():
    calls = []
    node = flaky(2, lambda i: KeyError(i), calls)
    app = single(node, retry=fast_retry(max_attempts=3, retry_on=ValueError))
    with pytest.raises(KeyError):
        app.invoke({})
    assert len(calls) == 1


def test_retry_on_type_retries_matching_exceptions():
    calls = []
    node = flaky(2, lambda i: ValueError(i), calls)
    app = single(node, retry=fast_retry(max_attempts=3, retry_on=ValueError))
    assert app.invoke({})["out"] == 3


def test_retry_on_tuple_retries_each_listed_type():
    calls = []
    node = flaky(2, lambda i: ValueError(i) if i == 1 else KeyError(i), calls)
    app = single(node, retry=fast_retry(max_attempts=3, retry_on=(KeyError, ValueError)))
    assert app.invoke({})["out"] == 3
    assert len(calls) == 3


def test_retry_on_tuple_does_not_retry_unlisted_type():
    calls = []
    node = flaky(2, lambda i: TypeError(i), calls)
    app = single(node, retry=fast_retry(max_attempts=3, retry_on=(KeyError, ValueError)))
    with pytest.raises(TypeError):
        app.invoke({})
    assert len(calls) == 1


def test_retry_on_predicate():
    def transient(exc):
        return "transient" in str(exc)

    calls = []
    node = flaky(2, lambda i: RuntimeError("transient glitch"), calls)
    app = single(node, retry=fast_retry(max_attempts=3, retry_on=transient))
    assert app.invoke({})["out"] == 3
    assert len(calls) == 3

    calls2 = []
    node2 = flaky(2, lambda i: RuntimeError("fatal"), calls2)
    app2 = single(node2, retry=fast_retry(max_attempts=3, retry_on=transient))
    with pytest.raises(RuntimeError, match="fatal"):
        app2.invoke({})
    assert len(calls2) == 1


def test_retry_exhausted_raises_the_last_exception():
    calls = []
    node = flaky(10, lambda i: ValueError(f"attempt {i}"), calls)
    app = single(node, retry=fast_retry(max_attempts=3))
    with pytest.raises(ValueError) as info:
        app.invoke({})
    assert len(calls) == 3
    assert info.value.graphflow_node == "node"
    assert str(info.value) == "attempt 3"


def test_retry_of_async_node():
    calls = []

    async def node(state):
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("again")
        return {"out": len(calls)}

    app = single(node, retry=fast_retry(max_attempts=3))
    assert asyncio.run(app.ainvoke({}))["out"] == 3


def test_ctx_attempt_counts_attempts():
    attempts = []

    def node(state, ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ValueError("again")
        return {"out": ctx.attempt}

    app = single(node, retry=fast_retry(max_attempts=3))
    assert app.invoke({})["out"] == 3
    assert attempts == [1, 2, 3]


def test_retry_in_parallel_step_does_not_rerun_sibling():
    sibling_calls, calls = [], []

    def sibling(state):
        sibling_calls.append(1)
        return {"log": ["sibling"]}

    g = StateGraph(S)
    g.add_node("a", flaky(1, lambda i: ValueError(i), calls), retry=fast_retry(max_attempts=2))
    g.add_node("b", sibling)
    for n in ("a", "b"):
        g.add_edge(START, n)
        g.add_edge(n, END)
    app = g.compile()
    out = app.invoke({})
    assert out["out"] == 2
    assert out["log"] == ["sibling"]
    assert sibling_calls == [1]


# --------------------------------------------------------------------------- timeouts


def test_timeout_on_sync_node_raises_node_error_caused_by_node_timeout_error():
    release = threading.Event()

    def slow(state):
        release.wait(2)
        return {"out": 1}

    try:
        with pytest.raises(NodeError) as info:
            single(slow, timeout=0.2).invoke({})
    finally:
        release.set()
    cause = info.value.__cause__
    assert info.value.node == "node"
    assert isinstance(cause, NodeTimeoutError)
    assert isinstance(cause, TimeoutError)
    assert cause.node == "node"
    assert cause.timeout == 0.2


def test_timeout_on_async_node_raises_node_error_caused_by_node_timeout_error():
    cancelled = []

    async def slow(state):
        try:
            await asyncio.sleep(2)
        except asyncio.CancelledError:
            cancelled.append(1)
            raise
        return {"out": 1}

    with pytest.raises(NodeError) as info:
        asyncio.run(single(slow, timeout=0.2).ainvoke({}))
    cause = info.value.__cause__
    assert isinstance(cause, NodeTimeoutError)
    assert isinstance(cause, TimeoutError)
    assert cause.timeout == 0.2
    assert cancelled == [1], "the timed-out coroutine is cancelled"


def test_timeout_on_async_node_under_sync_invoke():
    async def slow(state):
        await asyncio.sleep(2)
        return {"out": 1}

    with pytest.raises(NodeError) as info:
        single(slow, timeout=0.2).invoke({})
    assert isinstance(info.value.__cause__, NodeTimeoutError)


def test_fast_node_with_timeout_succeeds():
    def quick(state):
        return {"out": 7}

    assert single(quick, timeout=5).invoke({})["out"] == 7


def test_timeout_with_retry_retries_the_timed_out_attempt():
    release = threading.Event()
    attempts = []

    def sometimes_slow(state, ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            release.wait(2)
        return {"out": ctx.attempt}

    app = single(sometimes_slow, timeout=0.2, retry=fast_retry(max_attempts=2))
    try:
        out = app.invoke({})
    finally:
        release.set()
    assert out["out"] == 2
    assert attempts == [1, 2]


def test_timeout_with_retry_on_excluding_timeouts_is_not_retried():
    release = threading.Event()
    attempts = []

    def slow(state):
        attempts.append(1)
        release.wait(2)
        return {"out": 1}

    app = single(slow, timeout=0.2, retry=fast_retry(max_attempts=3, retry_on=KeyError))
    try:
        with pytest.raises(NodeError) as info:
            app.invoke({})
    finally:
        release.set()
    assert attempts == [1]
    assert isinstance(info.value.__cause__, NodeTimeoutError)


def test_timeout_with_retry_exhausted_async():
    attempts = []

    async def slow(state):
        attempts.append(1)
        await asyncio.sleep(2)

    app = single(slow, timeout=0.1, retry=fast_retry(max_attempts=2))
    with pytest.raises(NodeError) as info:
        asyncio.run(app.ainvoke({}))
    assert attempts == [1, 1]
    assert isinstance(info.value.__cause__, NodeTimeoutError)
