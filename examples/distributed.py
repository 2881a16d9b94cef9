"""The same graph in-process and on a Ray cluster: a fan-out of CPU-bound tasks.

    pip install "graphflow[ray]"
    python examples/distributed.py                           # starts Ray inside this process
    RAY_ADDRESS=head-host:6379 python examples/distributed.py   # an existing cluster

Ray workers import the graph by its reference, "distributed:app": Ray ships this folder to
them (``runtime_env={"working_dir": ...}``), so the cluster needs no copy of the code.
"""

import operator
import os
from typing import Annotated, TypedDict

from graphflow import END, START, Send, StateGraph
from graphflow.distributed import RayExecutor, ray_node


class State(TypedDict):
    n: int
    results: Annotated[list[int], operator.add]


def crunch(i: int) -> dict:
    x = i
    for _ in range(200_000):
        x = (x * 31 + 7) % 1_000_003
    return {"results": [x]}


g = StateGraph(State)
g.add_node("crunch", crunch, metadata=ray_node(num_cpus=1))
g.add_conditional_edges(START, lambda s: [Send("crunch", i) for i in range(s["n"])], ["crunch"])
g.add_edge("crunch", END)
app = g.compile()

if __name__ == "__main__":
    here = app.invoke({"n": 20, "results": []})
    on_ray = app.with_executor(RayExecutor(
        "distributed:app", address=os.environ.get("RAY_ADDRESS") or "local",
        init={"runtime_env": {"working_dir": os.path.dirname(os.path.abspath(__file__))}}))
    there = on_ray.invoke({"n": 20, "results": []})
    print("same results:", here == there)
