"""The ``graphflow`` command line: run a graph, draw it, look into its threads and resume them.

    graphflow run MODULE:ATTR --input '{"n": 1}' [--thread T] [--db runs.db] [--stream MODE]
    graphflow draw MODULE:ATTR -o graph.svg [--expand [DEPTH]] [--thread T]
    graphflow threads list | show T | history T | resume T | delete T   [--graph MODULE:ATTR]
    graphflow worker MODULE:ATTR [--db runs.db]       wake durable timers and signals
    graphflow pipeline run pipeline.yaml               run a streaming pipeline
    graphflow serve MODULE:ATTR [--db runs.db | postgresql://...] [--port 8123] [--api-key K]

Exit codes: 0 done, 1 the graph raised, 2 a usage or load error, 3 paused (an interrupt is
waiting for an answer, or a breakpoint stopped the run). Errors are one line on stderr;
``--debug`` adds the traceback. On a terminal runs show live progress (``rich``); piped (or
with ``--json``), runs and ``threads list/show/history`` print JSON lines.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import traceback
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from ._cli_render import (
    DEFAULT_DB,
    UsageError,
    attach,
    check_continue,
    load_graph,
    oneline,
    open_saver,
    parse_json,
    resume_command,
    thread_status,
)

if TYPE_CHECKING:
    from .checkpoint.base import Checkpointer, StateSnapshot
    from .engine.compiled import CompiledGraph

__all__ = ["main"]

OK, FAILED, USAGE, PAUSED = 0, 1, 2, 3
MODES = ("updates", "values", "custom", "debug")
_MISSING: Any = object()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of the usage block
        self.exit(USAGE, f"graphflow: error: {message} (see '{self.prog} --help')\n")


# -- loading ---------------------------------------------------------------------------------------


def _store(args: argparse.Namespace, stack: contextlib.ExitStack) -> Checkpointer:
    """The checkpointer of a ``threads`` command that may be given ``--graph``."""
    if args.graph is not None:
        graph = attach(load_graph(args.graph), args.db, create=False, stack=stack)
        return graph.checkpointer
    return open_saver(args.db, create=False, stack=stack)


def _where(saver: Checkpointer | None) -> str:
    path = getattr(saver, "path", None)
    if path:
        return f" in {path!r}"
    from .checkpoint import MemoryCheckpointer

    more = " (kept in memory only: pass --db PATH)" if isinstance(saver, MemoryCheckpointer) else ""
    return f" in the graph's {type(saver).__name__}{more}"


def _state(graph: CompiledGraph, thread: str) -> StateSnapshot:
    snap = graph.get_state(thread)
    if snap is None:
        raise UsageError(f"no thread {thread!r}{_where(graph.checkpointer)}")
    return snap


# -- output ----------------------------------------------------------------------------------------


def _json_out(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False)) or not sys.stdout.isatty()


def _console() -> Any:
    from rich.console import Console

    return Console()


def _say(message: str) -> None:
    print(f"graphflow: error: {message}", file=sys.stderr, flush=True)


def _execute(graph: CompiledGraph, payload: Any, args: argparse.Namespace, thread: str | None,
             spec: str) -> int:
    """Run (or continue) ``graph``, printing as it goes; the exit code."""
    from ._cli_render import JsonLines, LiveDisplay, run_graph
    from .checkpoint import MemoryCheckpointer
    from .errors import InvalidUpdateError

    hint = None  # how to continue the thread, when it outlives this command
    if thread is not None and not isinstance(graph.checkpointer, MemoryCheckpointer):
        db = f" --db {shlex.quote(args.db)}" if args.db else ""
        hint = f"graphflow threads resume {shlex.quote(thread)} --graph {shlex.quote(spec)}{db}"
    if _json_out(args):
        output: Any = JsonLines(sys.stdout, args.stream)
    else:
        output = LiveDisplay(_console(), args.stream, resume_hint=hint)
    try:
        outcome = run_graph(graph, payload, thread=thread, shown=args.stream, output=output)
    except InvalidUpdateError as e:
        if e.node != "__start__":
            return _run_failed(e, args, hint)
        message = oneline(e)  # an input error, found before anything ran
        message = "--" + message if message.startswith("input ") else f"--input: {message}"
        if getattr(args, "input", None) is None:
            message += " (no --input was given: pass the input as a JSON object)"
        raise UsageError(message) from e
    except Exception as e:
        return _run_failed(e, args, hint)
    return PAUSED if outcome.status == "interrupted" else OK


def _run_failed(exc: Exception, args: argparse.Namespace, hint: str | None) -> int:
    if args.debug:
        traceback.print_exception(exc)
    more = f" (the thread keeps its progress; retry the step with: {hint})" if hint else ""
    _say(oneline(exc) + more)
    return FAILED


# -- commands --------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    payload = parse_json(args.input, "--input") if args.input is not None else None
    answer = parse_json(args.resume, "--resume") if args.resume is not None else _MISSING
    if answer is not _MISSING and (args.input is not None or args.thread is None):
        raise UsageError("--resume answers an interrupt of --thread T; it needs --thread and "
                         "no --input")
    graph = load_graph(args.target)
    with contextlib.ExitStack() as stack:
        if args.thread is not None:
            graph = attach(graph, args.db, create=payload is not None, stack=stack)
            if payload is None:
                snap = _state(graph, args.thread)
                if answer is _MISSING:
                    check_continue(args.thread, snap, flag="--resume")
                else:
                    payload = resume_command(args.thread, snap, answer, None, flag="--resume")
        elif payload is None:
            payload = {}
        return _execute(graph, payload, args, args.thread, args.target)


def cmd_draw(args: argparse.Namespace) -> int:
    from .draw.export import FORMATS

    suffix = os.path.splitext(args.output)[1].lower()
    if suffix not in FORMATS:
        raise UsageError(f"cannot tell the format of {args.output!r}: the file name must end "
                         f"with one of {', '.join(FORMATS)}")
    folder = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {args.output!r}: there is no directory {folder!r}")
    graph = load_graph(args.target)
    with contextlib.ExitStack() as stack:
        if args.thread is not None:
            graph = attach(graph, args.db, create=False, stack=stack)
            _state(graph, args.thread)
        try:
            path = graph.draw(args.output, expand=args.expand, run=args.thread)
        except ImportError as e:  # Pillow, for PNG: its message says how to install it
            hint = "" if "graphflow[draw]" in str(e) else \
                " (PNG diagrams need Pillow: pip install 'graphflow[draw]')"
            raise UsageError(f"{e}{hint}") from e
        except OSError as e:  # the file cannot be written: a bad -o, not a broken graph
            raise UsageError(f"cannot write {args.output!r}: "
                             f"{e.strerror or type(e).__name__}") from e
    print(path)
    return OK


def cmd_threads_list(args: argparse.Namespace) -> int:
    from ._cli_render import dumps

    with contextlib.ExitStack() as stack:
        saver = _store(args, stack)
        names = saver.threads()
        rows = [(name, ns) for name in names
                for ns in ["", *(saver.namespaces(name) if args.all else ())]]
        if not _json_out(args):
            if rows:
                print("\n".join(f"{name}  [subgraph {ns}]" if ns else name for name, ns in rows))
            else:
                print(f"no threads{_where(saver)}", file=sys.stderr)
            return OK
        for name, ns in rows:
            cp = saver.get(name, ns=ns)
            assert cp is not None
            print(dumps({"thread": name, **({"namespace": ns} if ns else {}),
                         "status": thread_status(saver, cp), "step": cp.step,
                         "next": [n for n, _, _ in cp.next],
                         "updated_at": cp.created_at.isoformat()}), flush=True)
    return OK


def cmd_threads_show(args: argparse.Namespace) -> int:
    from ._cli_render import dumps, interrupt_record, print_snapshot, stored_snapshot

    with contextlib.ExitStack() as stack:
        if args.graph is None:  # what the store alone says; the graph rebuilds the state
            record = stored_snapshot(_store(args, stack), args.thread)
        else:
            graph = attach(load_graph(args.graph), args.db, create=False, stack=stack)
            snap = _state(graph, args.thread)
            cp = graph.checkpointer.get(args.thread, snap.checkpoint_id)
            record = {"thread": args.thread, "status": thread_status(graph.checkpointer, cp),
                      "step": snap.step, "next": list(snap.next),
                      "interrupts": [interrupt_record(i) for i in snap.interrupts],
                      "checkpoint_id": snap.checkpoint_id, "parent_id": snap.parent_id,
                      "created_at": snap.created_at.isoformat(), "metadata": snap.metadata,
                      "values": snap.values}
    if _json_out(args):
        print(dumps(record))
    else:
        print_snapshot(_console(), record)
    return OK


def cmd_threads_history(args: argparse.Namespace) -> int:
    from ._cli_render import dumps, print_history

    with contextlib.ExitStack() as stack:
        saver = _store(args, stack)
        if args.thread not in saver.threads():
            raise UsageError(f"no thread {args.thread!r}{_where(saver)}")
        rows = [{"step": cp.step, "source": cp.metadata.get("source"),
                 "next": [n for n, _, _ in cp.next], "checkpoint_id": cp.id,
                 "parent_id": cp.parent_id, "created_at": cp.created_at.isoformat()}
                for cp in saver.list(args.thread, limit=args.limit)]
    if _json_out(args):
        for row in rows:
            print(dumps(row), flush=True)
    else:
        print_history(_console(), args.thread, rows)
    return OK


def cmd_threads_resume(args: argparse.Namespace) -> int:
    answer = parse_json(args.value, "--value") if args.value is not None else _MISSING
    if args.id is not None and answer is _MISSING:
        raise UsageError("--id needs --value (the answer to that interrupt)")
    graph = load_graph(args.graph)
    with contextlib.ExitStack() as stack:
        graph = attach(graph, args.db, create=False, stack=stack)
        snap = _state(graph, args.thread)
        if answer is _MISSING:
            check_continue(args.thread, snap)
            payload = None
        else:
            payload = resume_command(args.thread, snap, answer, args.id)
        return _execute(graph, payload, args, args.thread, args.graph)


def cmd_threads_delete(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        saver = _store(args, stack)
        if args.thread not in saver.threads():
            raise UsageError(f"no thread {args.thread!r}{_where(saver)}")
        from .checkpoint.lease import Lease

        with Lease(saver, args.thread, saver.lease_ttl).hold():  # not under a running run
            saver.delete_thread(args.thread)  # its subgraphs' namespaces go with it
    print(f"deleted thread {args.thread}")
    return OK


# -- the parser ------------------------------------------------------------------------------------


def _common(db: bool = True, json_flag: bool = False) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    if db:
        p.add_argument("--db", metavar="PATH", help=(
            f"the SQLite file holding the threads (default: {DEFAULT_DB}, or the graph's own "
            f"checkpointer when it has one and --db is not given)"))
    if json_flag:
        p.add_argument("--json", action="store_true",
                       help="print JSON lines even on a terminal (piped output always is)")
    return p


def _streaming(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stream", choices=MODES, default="updates", help=(
        "which events to print: updates (what each node returned, the default), values "
        "(the state after each step), custom (what nodes ctx.write), debug (task records)"))


_EPILOG = """examples:
  graphflow run myapp.graphs:app --input '{"question": "hi"}'
  graphflow run myapp.graphs:app --input '{"question": "hi"}' --thread t1   # checkpointed
  graphflow threads show t1
  graphflow threads show t1 --graph myapp.graphs:app                      # with the state
  graphflow threads resume t1 --graph myapp.graphs:app --value '"yes"'
  graphflow draw myapp.graphs:app -o graph.svg

exit codes: 0 done, 1 the graph raised, 2 usage or load error,
            3 paused (an interrupt waits for an answer, or a breakpoint)"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``graphflow`` (every command's ``--help`` text is here)."""
    parser = _Parser(prog="graphflow", formatter_class=argparse.RawDescriptionHelpFormatter,
                     description="Run graphflow graphs, draw them, look into their threads and "
                                 "resume them.", epilog=_EPILOG)
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND", parser_class=_Parser)
    graph_help = ("the graph, as MODULE:ATTR (or path/to/file.py:ATTR): a compiled graph, a "
                  "StateGraph, or a function without arguments returning one; the current "
                  "directory is importable")

    run = commands.add_parser(
        "run", parents=[_common(json_flag=True)], help="run a graph, streaming its events",
        description="Run a graph and stream its events: a live view on a terminal, JSON lines "
                    "({\"event\": MODE, \"data\": ...}, then an \"end\" line with the final state) "
                    "when piped. Exit 0 done, 1 the graph raised, 2 usage error, 3 paused.")
    run.add_argument("target", metavar="MODULE:ATTR", help=graph_help)
    run.add_argument("--input", "-i", metavar="JSON",
                     help="the input, a JSON object (omitted with --thread: continue that thread "
                          "after an error or a breakpoint)")
    run.add_argument("--thread", "-t", metavar="T",
                     help="run on this thread: checkpointed in --db, resumable later")
    run.add_argument("--resume", metavar="JSON",
                     help="answer the pending interrupt of --thread with this JSON value "
                          "(or {interrupt_id: value, ...} when several are pending)")
    _streaming(run)
    run.set_defaults(handler=cmd_run)

    draw = commands.add_parser(
        "draw", parents=[_common()], help="write a diagram of a graph",
        description="Write a diagram; the format follows the file suffix (.svg .png .mmd .dot "
                    ".json .txt). Prints the path written.")
    draw.add_argument("target", metavar="MODULE:ATTR", help=graph_help)
    draw.add_argument("--output", "-o", required=True, metavar="FILE", help="the file to write")
    draw.add_argument("--expand", nargs="?", const=True, default=False, type=int,
                      metavar="DEPTH", help="draw subgraphs' nodes inside them (all levels, or "
                                            "DEPTH levels)")
    draw.add_argument("--thread", "-t", metavar="T",
                      help="highlight the nodes and edges this thread ran")
    draw.set_defaults(handler=cmd_draw)

    threads = commands.add_parser(
        "threads", help="list, inspect, resume or delete threads",
        description="Threads are the checkpointed runs stored in --db (default runs.db).")
    sub = threads.add_subparsers(title="commands", dest="threads_command", required=True,
                                 metavar="COMMAND", parser_class=_Parser)
    graph_opt = {"metavar": "MODULE:ATTR", "help": graph_help}

    p = sub.add_parser("list", parents=[_common(json_flag=True)], help="the threads, one a line",
                       description="Thread names, one a line; piped (or --json): a JSON object "
                                   "per thread with its status, step, next nodes and time.")
    p.add_argument("--graph", "-g", **graph_opt)
    p.add_argument("--all", action="store_true",
                   help="also list each thread's subgraph namespaces")
    p.set_defaults(handler=cmd_threads_list)

    p = sub.add_parser("show", parents=[_common(json_flag=True)], help="a thread's state",
                       description="A thread's newest state: status, next nodes, pending "
                                   "interrupts (with their ids), step, checkpoint id and values. "
                                   "The store alone holds the values of some checkpoints only "
                                   "(the others as changes): --graph rebuilds them always.")
    p.add_argument("thread", metavar="T", help="the thread")
    p.add_argument("--graph", "-g", **graph_opt)
    p.set_defaults(handler=cmd_threads_show)

    p = sub.add_parser("history", parents=[_common(json_flag=True)],
                       help="a thread's checkpoints, newest first",
                       description="A thread's checkpoints, newest first: step, source, next "
                                   "nodes, checkpoint id.")
    p.add_argument("thread", metavar="T", help="the thread")
    p.add_argument("--graph", "-g", **graph_opt)
    p.add_argument("--limit", "-n", type=int, metavar="N", help="at most N checkpoints")
    p.set_defaults(handler=cmd_threads_history)

    p = sub.add_parser(
        "resume", parents=[_common(json_flag=True)], help="answer an interrupt, or continue",
        description="With --value: answer the thread's pending interrupt (--id picks one when "
                    "several are pending). Without: continue after a breakpoint or an error. "
                    "Streams like 'run', with the same exit codes.")
    p.add_argument("thread", metavar="T", help="the thread")
    p.add_argument("--graph", "-g", required=True, **graph_opt)
    p.add_argument("--value", metavar="JSON", help="the answer, a JSON value")
    p.add_argument("--id", metavar="INTERRUPT_ID", help="which pending interrupt --value answers")
    _streaming(p)
    p.set_defaults(handler=cmd_threads_resume)

    p = sub.add_parser("delete", parents=[_common()], help="delete a thread",
                       description="Delete a thread's checkpoints (and its subgraphs').")
    p.add_argument("thread", metavar="T", help="the thread")
    p.add_argument("--graph", "-g", **graph_opt)
    p.set_defaults(handler=cmd_threads_delete)

    from ._cli_runtimes import add_commands  # worker, pipeline

    add_commands(commands, _common, graph_help, _Parser)

    from .serve.command import add_serve_parser

    add_serve_parser(commands, [_common(db=False)])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``graphflow`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    shown = warnings.showwarning
    warnings.showwarning = lambda message, category, *a, **k: print(
        f"graphflow: warning: {message}", file=sys.stderr)
    try:
        return int(args.handler(args))
    except UsageError as e:
        if debug:
            traceback.print_exception(e)
        _say(str(e))
        return USAGE
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return FAILED
    except Exception as e:
        if debug:
            traceback.print_exception(e)
        _say(oneline(e))
        return FAILED
    finally:
        warnings.showwarning = shown


if __name__ == "__main__":
    sys.exit(main())
