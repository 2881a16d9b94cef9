"""A writer process for the one-writer-per-thread tests: runs a one-node graph on a thread; the
node announces itself by creating ``<dir>/started`` and then waits for ``<dir>/go`` to exist.

Usage: python busy_writer.py STORE THREAD DIR   (STORE: sqlite:PATH or postgres:DSN)
"""

import sys
import time
from pathlib import Path
from typing import TypedDict

from graphflow import END, START, StateGraph


class State(TypedDict):
    by: str


def make(saver, gate: Path):
    def hold(state: State) -> dict:
        (gate / "started").write_text("1")
        while not (gate / "go").exists():
            time.sleep(0.01)
        return {"by": "writer process"}

    g = StateGraph(State)
    g.add_node("hold", hold)
    g.add_edge(START, "hold")
    g.add_edge("hold", END)
    return g.compile(checkpointer=saver)


def main() -> None:
    store, thread, gate = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    kind, _, where = store.partition(":")
    if kind == "sqlite":
        from graphflow.checkpoint.sqlite import SqliteCheckpointer

        saver = SqliteCheckpointer(where)
    else:
        from graphflow.checkpoint.postgres import PostgresCheckpointer

        saver = PostgresCheckpointer(where)
    make(saver, gate).invoke({"by": "nobody"}, thread=thread)
    print("done", flush=True)


if __name__ == "__main__":
    main()
