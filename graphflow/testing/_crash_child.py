"""The crash-test child: builds the graph, runs (or resumes) a thread, prints the result.

Usage: python -m graphflow.testing._crash_child REQUEST_JSON
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from ..checkpoint.serde import dumps, loads
from ._instrument import Tally, wrap_checkpointer, wrap_nodes


def make_saver(spec: str) -> Any:
    kind, _, where = spec.partition(":")
    if kind == "sqlite":
        from ..checkpoint.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(where)
    if kind == "postgres":
        from ..checkpoint.postgres import PostgresCheckpointer

        return PostgresCheckpointer(where)
    raise SystemExit(f"unknown store {spec!r}: use sqlite:PATH or postgres:DSN")


def load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def main() -> None:
    req = json.loads(sys.argv[1])
    saver = make_saver(req["store"])
    tally = Tally(req.get("kill_kind"), req.get("kill_at", 0), req["side_db"])
    graph = load(req["factory"])(saver)
    wrap_checkpointer(saver, tally)
    wrap_nodes(graph, tally)
    input_ = loads(req["input"]) if req.get("input") is not None else None
    graph.invoke(input_, thread=req["thread"])
    state = graph.get_state(req["thread"])
    values = load(req["normalize"])(state.values) if req.get("normalize") else state.values
    print(json.dumps({"result": dumps(values), "next": list(state.next),
                      "counts": tally.counts}))


if __name__ == "__main__":
    main()
