"""A graph with one job node on the test job service, for the job tests and their run process.

Usage (the process the crash test kills): python job_graphs.py DB URL THREAD
"""

from __future__ import annotations

import sys
from typing import TypedDict

from graphflow import END, START, StateGraph
from graphflow.jobs import JobNode, Poll
from graphflow.testing.job_service import HttpJobAgent


class Job(TypedDict, total=False):
    task: dict
    result: dict


def make(saver, url: str, *, inline: float = 0.0, timeout: float | None = None,
         poll: Poll | float | None = None):
    g = StateGraph(Job)
    g.add_node("job", JobNode(HttpJobAgent(url), inputs=lambda s: s["task"], output="result",
                              poll=poll or Poll(0.05, 1.5, 0.2), inline=inline,
                              timeout=timeout))
    g.add_edge(START, "job")
    g.add_edge("job", END)
    return g.compile(checkpointer=saver, name="jobs")


if __name__ == "__main__":
    from graphflow.checkpoint.sqlite import SqliteCheckpointer

    db, url, thread = sys.argv[1:4]
    app = make(SqliteCheckpointer(db), url, inline=3600)  # polls in this process
    print(app.invoke({"task": {"name": "train"}}, thread=thread), flush=True)
