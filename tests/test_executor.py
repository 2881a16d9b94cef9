"""The executor seam: tasks a graph's executor claims run elsewhere and come back as outcomes;
merge order, pending writes and checkpoints stay the engine's."""

from __future__ import annotations

import asyncio
import operator
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypedDict

import pytest

from graphflow import END, START, Send, StateGraph
from graphflow.checkpoint.sqlite import SqliteCheckpointer


class State(TypedDict):
    n: int
    results: Annotated[list, operator.add]
    side: Annotated[list, operator.add]


class Elsewhere:
    """An executor that runs the tasks of ``nodes`` on its own threads, finishing them in
    reverse order; ``fail_after`` makes it stop (raise) after that many tasks."""

    def __init__(self, nodes: set[str], fail_after: int | None = None) -> None:
        self.nodes = nodes
        self.fail_after = fail_after
        self.ran: list[str] = []

    def claims(self, spec) -> bool:
        return spec.name in self.nodes

    def run(self, run, tasks) -> None:
        todo = list(reversed(tasks))
        if self.fail_after is not None:
            todo = todo[:self.fail_after]
        with ThreadPoolExecutor(1, thread_name_prefix="elsewhere") as pool:
            for t in todo:
                pool.submit(self.one, run, t).result()
                self.ran.append(t.name)
        if self.fail_after is not None:
            raise ConnectionError("the cluster went away")

    @staticmethod
    def one(run, task) -> None:
        """Run the node's function; record what it returned as the task's outcome."""
        out = task.spec.fn(run.node_input(task))
        if asyncio.iscoroutine(out):
            out = asyncio.run(out)
        task.writes = task.update = out
        run.task_finished(task)


def build(counts: Counter, lock: threading.Lock, *, use_async: bool = False):
    def fanout(state: State) -> dict:
        return {"n": state["n"]}

    def spread(state: State) -> list[Send]:
        return [Send("work", i) for i in range(state["n"])]

    def work(i: int) -> dict:
        with lock:
            counts[f"work{i}"] += 1
        return {"results": [i * i], "side": [threading.current_thread().name.split("_")[0]]}

    async def awork(i: int) -> dict:
        await asyncio.sleep(0)
        return work(i)

    def local(state: State) -> dict:
        with lock:
            counts["local"] += 1
        return {"side": ["local:" + threading.current_thread().name.split("_")[0]]}

    def reduce(state: State) -> dict:
        return {"n": sum(state["results"])}

    g = StateGraph(State)
    g.add_node("fanout", fanout)
    g.add_node("work", awork if use_async else work)
    g.add_node("local", local)
    g.add_node("reduce", reduce)
    g.add_edge(START, "fanout")
    g.add_edge("fanout", "local")
    g.add_conditional_edges("fanout", spread, ["work"])
    g.add_edge(["work", "local"], "reduce")
    g.add_edge("reduce", END)
    return g


@pytest.mark.parametrize("use_async", [False, True])
def test_claimed_tasks_run_elsewhere_and_merge_in_order(use_async):
    counts, lock = Counter(), threading.Lock()
    app = build(counts, lock, use_async=use_async).compile()
    here = app.invoke({"n": 12, "results": [], "side": []})
    ex = Elsewhere({"work"})
    there = app.with_executor(ex).invoke({"n": 12, "results": [], "side": []})
    assert there["results"] == here["results"] == [i * i for i in range(12)]
    assert there["n"] == here["n"]
    assert ex.ran == ["work"] * 12
    # the claimed tasks ran on the executor's threads, the others here
    assert set(there["side"]) == {"elsewhere", "local:graphflow"} or \
        set(there["side"]) == {"elsewhere", "local:MainThread"}
    assert counts["local"] == 2


def test_streamed_updates_include_claimed_tasks():
    counts, lock = Counter(), threading.Lock()
    app = build(counts, lock).compile().with_executor(Elsewhere({"work"}))
    events = list(app.stream({"n": 5, "results": [], "side": []}, mode="updates"))
    worked = sorted(e["work"]["results"][0] for e in events if "work" in e)
    assert worked == [0, 1, 4, 9, 16]
    assert events[-1]["reduce"] == {"n": 30}


def test_lone_claimed_task_is_checkpointed_like_a_local_one(tmp_path):
    counts, lock = Counter(), threading.Lock()
    saver = SqliteCheckpointer(tmp_path / "runs.db")
    app = build(counts, lock).compile(checkpointer=saver)
    ex = Elsewhere({"reduce"})
    out = app.with_executor(ex).invoke({"n": 3, "results": [], "side": []}, thread="t")
    assert out["n"] == 5 and ex.ran == ["reduce"]
    assert app.get_state("t").next == ()
    # (-1: the run's input checkpoint)
    assert [cp.metadata["step"] for cp in saver.list("t")] == [3, 2, 1, 0, -1]


def test_executor_failure_fails_the_step_and_keeps_finished_outcomes(tmp_path):
    counts, lock = Counter(), threading.Lock()
    saver = SqliteCheckpointer(tmp_path / "runs.db")
    app = build(counts, lock).compile(checkpointer=saver)
    flaky = app.with_executor(Elsewhere({"work"}, fail_after=4))
    with pytest.raises(ConnectionError, match="went away"):
        flaky.invoke({"n": 10, "results": [], "side": []}, thread="t")
    assert sum(counts[f"work{i}"] for i in range(10)) == 4
    assert counts["local"] == 1
    # resumed locally: the 4 finished tasks (and the local one) are restored, not re-run
    out = app.invoke(None, thread="t")
    assert out["results"] == [i * i for i in range(10)]
    assert all(counts[f"work{i}"] == 1 for i in range(10)), counts
    assert counts["local"] == 1


def test_debug_stream_announces_claimed_tasks():
    counts, lock = Counter(), threading.Lock()
    app = build(counts, lock).compile().with_executor(Elsewhere({"work"}))
    events = list(app.stream({"n": 2, "results": [], "side": []}, mode="debug"))
    started = [e["node"] for e in events if e["type"] == "task"]
    assert started.count("work") == 2


def test_with_checkpointer_keeps_the_executor(tmp_path):
    counts, lock = Counter(), threading.Lock()
    ex = Elsewhere({"work"})
    app = build(counts, lock).compile().with_executor(ex)
    moved = app.with_checkpointer(SqliteCheckpointer(tmp_path / "r.db"))
    assert moved.executor is ex
    assert app.with_executor(None).executor is None
