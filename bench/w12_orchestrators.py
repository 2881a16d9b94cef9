"""W12 -- orchestration overhead of the hierarchical and parallel orchestrators, outside the models.

``W12_hier_10_ms``: ``create_hierarchical_orchestrator`` with ScriptedModels: the manager's plan
has 10 tasks over 3 specialists in 3 waves (4 independent tasks, then 3 that each need one of
them, then 3 that each need one of those); every specialist is an ``Agent`` that answers at
once; then the manager's synthesis. ms per run. ``W12_hier_100_ms``: the same with 100 tasks
(34 + 33 + 33, still 3 waves); ``W12_hier_linearity`` = 100-task / 10-task (~10 is linear).

``W12_par_100_ms``: ``create_parallel_orchestrator(agent, samples=100, aggregate="vote")`` (100
``Send`` branches, each asking an ``Agent``, then a majority vote). ms per run.
``W12_par_1000_ms`` and ``W12_par_linearity`` likewise with 1,000 branches.

The models' own time (ScriptedModel building its replies) is timed around ``_generate`` and
subtracted; what remains is graphflow's: supersteps, Sends, the specialists' subgraph runs, plan
parsing and validation (pydantic, networkx), the prompts, the merges of results, the vote.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from typing import Any

from _common import TimedModel, check, repeats, rnd, warmups

from graphflow.agents import Agent, create_hierarchical_orchestrator, create_parallel_orchestrator

SPECIALISTS = ("researcher", "analyst", "writer")


def plan_of(n: int) -> str:
    """n tasks in 3 waves: each task of a wave needs one task of the wave before."""
    first, second = (n + 2) // 3, (n + 1) // 3
    waves = [range(first), range(first, first + second), range(first + second, n)]
    tasks = []
    for w, ids in enumerate(waves):
        before = list(waves[w - 1]) if w else []
        for k, i in enumerate(ids):
            tasks.append({"id": f"t{i}", "description": f"part {i} of the report",
                          "assignee": SPECIALISTS[i % 3],
                          "depends_on": [f"t{before[k % len(before)]}"] if before else []})
    return json.dumps({"tasks": tasks})


def hierarchy(n: int) -> tuple[Any, list[TimedModel]]:
    plan = plan_of(n)
    manager = TimedModel(lambda msgs: "the report" if "Results of the team" in msgs[-1].content
                         else plan)
    models = [manager]
    agents = []
    for name in SPECIALISTS:
        model = TimedModel(lambda msgs: "done")
        models.append(model)
        agents.append(Agent(name, model, f"You are the {name}."))
    return create_hierarchical_orchestrator(manager, agents, max_tasks=n), models


def parallel(n: int) -> tuple[Any, list[TimedModel]]:
    answers = ("Paris", "paris.", "Lyon")
    count = [0]

    def answer(msgs: list[Any]) -> str:
        count[0] += 1
        return answers[count[0] % 3]

    model = TimedModel(answer)
    return create_parallel_orchestrator(Agent("solver", model, "Answer."), samples=n,
                                        aggregate="vote"), [model]


def overhead_ms(app: Any, models: list[TimedModel], quick: bool, verify: Any) -> float:
    """Median over samples of (wall time - the models' time) per run, in ms."""

    def once() -> Any:
        return app.invoke({"messages": [("user", "write the report")]})

    verify(once())
    for _ in range(warmups(quick)):
        once()
    t0 = time.perf_counter_ns()
    once()
    number = max(1, min(50, (300_000_000 if not quick else 60_000_000)
                        // max(time.perf_counter_ns() - t0, 1)))
    samples = []
    for _ in range(repeats(quick)):
        gc.collect()
        for m in models:
            m.model_ns = 0
        t0 = time.perf_counter_ns()
        for _ in range(number):
            once()
        wall = time.perf_counter_ns() - t0
        samples.append((wall - sum(m.model_ns for m in models)) / number / 1e6)
    return statistics.median(samples)


def run(quick: bool) -> dict:
    out: dict[str, float] = {}
    for n in (10, 100):
        app, models = hierarchy(n)

        def verify(state: Any, n: int = n) -> None:
            results = state["results"]
            check(len(results) == n and all(r.status == "done" for r in results.values())
                  and state["messages"][-1].content == "the report",
                  f"W12: expected {n} finished tasks and the report, got {len(results)}")

        out[f"W12_hier_{n}_ms"] = rnd(overhead_ms(app, models, quick, verify))
    out["W12_hier_linearity"] = rnd(out["W12_hier_100_ms"] / out["W12_hier_10_ms"])
    for n in (100, 1000):
        app, models = parallel(n)

        def check_vote(state: Any, n: int = n) -> None:
            vote = state["outcome"]
            check(vote.total == n and vote.winner is not None,
                  f"W12: expected a vote over {n} answers, got {vote}")

        out[f"W12_par_{n}_ms"] = rnd(overhead_ms(app, models, quick, check_vote))
    out["W12_par_linearity"] = rnd(out["W12_par_1000_ms"] / out["W12_par_100_ms"])
    return out
