"""The crash-test children: build the graph, run (or resume) a thread, print the result.

``python -m graphflow.testing._crash_child serve FACTORY`` is a fork server: it imports
graphflow and the factory's module once, then reads one request per line on stdin, forks a child
for it (which runs it with its output in files the request names) and answers one line: the
child's exit status (negative: killed by that signal). Forking a process that already imported
everything makes a child cost milliseconds instead of an interpreter start, so a crash test
that kills a run at a hundred boundaries stays fast on a loaded machine. The server calls the
factory once with an in-memory checkpointer to import what compiling imports; it starts no
thread and opens no connection before it forks.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
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


def run(req: dict[str, Any]) -> str:
    """Run (or resume) the request's thread; the result line to print."""
    saver = make_saver(req["store"])
    tally = Tally(req.get("kill_kind"), req.get("kill_at", 0), req["side_db"])
    graph = load(req["factory"])(saver)
    wrap_checkpointer(saver, tally)
    wrap_nodes(graph, tally)
    input_ = loads(req["input"]) if req.get("input") is not None else None
    graph.invoke(input_, thread=req["thread"])
    state = graph.get_state(req["thread"])
    values = load(req["normalize"])(state.values) if req.get("normalize") else state.values
    return json.dumps({"result": dumps(values), "next": list(state.next),
                       "counts": tally.counts})


def _child(req: dict[str, Any]) -> None:
    """In the forked child: output to the request's files, run, exit (never return)."""
    code = 1
    try:
        signal.alarm(max(1, int(req.get("timeout", 120))))  # a hung child ends, reported
        out = os.open(req["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        err = os.open(req["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(out, 1)
        os.dup2(err, 2)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        sys.stdout = os.fdopen(1, "w", closefd=False)
        sys.stderr = os.fdopen(2, "w", closefd=False)
        print(run(req), flush=True)
        code = 0
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
    finally:
        os._exit(code)


def serve(factory: str) -> None:
    """The fork server's loop (see the module docstring)."""
    # import the graph's modules, and what building and compiling it imports on first use,
    # once, before any fork (an in-memory checkpointer: no connection, no thread)
    from ..checkpoint.memory import MemoryCheckpointer

    load(factory)(MemoryCheckpointer())
    answers = os.fdopen(os.dup(1), "w")
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        answers.write(json.dumps({"rc": rc}) + "\n")
        answers.flush()


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:  # one request given on the command line, run in this process
        print(run(json.loads(sys.argv[1])))


if __name__ == "__main__":
    main()
