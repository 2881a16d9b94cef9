"""The runtime commands of ``graphflow``: ``worker`` (wake durable waits) and ``pipeline run``.

    graphflow worker MODULE:ATTR [MODULE:ATTR ...] [--db runs.db] [--poll S] [--once]
                     [--no-listen] [--keep-entity-ops S]
    graphflow pipeline run pipeline.yaml [--step NAME ...] [--redis URL]

Both run until SIGINT or SIGTERM (``--once`` / a finite pipeline: until done), then stop
cleanly: a worker finishes the wakes in progress, a pipeline stops reading, drains what it read
and commits it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
from typing import Any

from ._cli_render import UsageError, attach, load_graph

__all__ = ["add_commands"]


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def _seconds_or_none(text: str) -> float | None:
    if text.strip().lower() == "forever":
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds or 'forever'"
                                         ) from None
    if not seconds >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds must be >= 0")
    return seconds


def cmd_worker(args: argparse.Namespace) -> int:
    from .durable import Worker

    with contextlib.ExitStack() as stack:
        graphs = [attach(load_graph(spec), args.db, create=True, stack=stack)
                  for spec in args.targets]
        if args.db is None and len({id(g.checkpointer) for g in graphs}) > 1:
            raise UsageError("the graphs have different checkpointers: pass --db")
        if args.db is not None:
            saver = graphs[0].checkpointer
            graphs = [g.with_checkpointer(saver) for g in graphs]
        try:
            keep = {k: v for k, v in vars(args).items() if k == "keep_entity_ops"}  # if given
            worker = Worker(*graphs, poll=args.poll, concurrency=args.concurrency,
                            listen=args.listen, **keep)
        except (ValueError, Exception) as e:
            raise UsageError(str(e)) from e
        stack.callback(worker.close)

        def report(woken: Any) -> None:
            line = {"thread": woken.thread, "graph": woken.graph, "outcome": woken.outcome}
            if woken.error is not None:
                line["error"] = f"{type(woken.error).__name__}: {woken.error}"
            print(json.dumps(line), flush=True)

        if args.once:
            for woken in worker.wake_due():
                report(woken)
            return 0
        stop = threading.Event()
        _stop_on_signals(stop)
        print(json.dumps({"worker": list(worker.graphs), "poll": args.poll}), flush=True)
        worker.run(stop=stop, on_wake=report)
    return 0


def cmd_pipeline_run(args: argparse.Namespace) -> int:
    from .streams import PipelineError, load_pipeline

    try:
        pipeline = load_pipeline(args.file, steps=args.step, redis_url=args.redis)
    except (OSError, ValueError, ImportError) as e:
        raise UsageError(f"{args.file}: {e}") from e
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        stats = pipeline.run(steps=args.step, stop=stop)
    except PipelineError as e:
        print(f"graphflow: error: {e}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(stats), flush=True)
    return 0


def add_commands(commands: Any, common: Any, graph_help: str, parser_class: type) -> None:
    """Add ``worker`` and ``pipeline`` to the ``graphflow`` parser's subcommands."""
    worker = commands.add_parser(
        "worker", parents=[common()], help="wake threads paused on durable timers and signals",
        description="Wake the threads of the given graphs whose durable waits are due "
                    "(ctx.sleep, ctx.sleep_until, ctx.wait_for_signal, job polls), one writer "
                    "per thread; runs until SIGINT/SIGTERM. Prints a JSON line per wake.")
    worker.add_argument("targets", nargs="+", metavar="MODULE:ATTR", help=graph_help)
    worker.add_argument("--poll", type=float, default=1.0, metavar="S",
                        help="the longest pause between looks at the store (default 1 s)")
    worker.add_argument("--concurrency", type=int, default=4, metavar="N",
                        help="threads woken at once (default 4)")
    worker.add_argument("--once", action="store_true", help="wake what is due now, then exit")
    worker.add_argument("--no-listen", dest="listen", action="store_false",
                        help="on PostgreSQL, do not LISTEN for other processes' waits and "
                             "signals (they are then seen at the next poll)")
    worker.add_argument("--keep-entity-ops", type=_seconds_or_none,
                        default=argparse.SUPPRESS,
                        metavar="S", help="seconds entity operation results are kept (pruned "
                                          "hourly; default a week; 'forever' keeps them)")
    worker.set_defaults(handler=cmd_worker)

    pipeline = commands.add_parser(
        "pipeline", help="run streaming pipelines",
        description="Run a pipeline file (YAML: steps of type source/processor/sink).")
    sub = pipeline.add_subparsers(title="commands", dest="pipeline_command", required=True,
                                  metavar="COMMAND", parser_class=parser_class)
    run = sub.add_parser(
        "run", parents=[common(db=False)], help="run a pipeline file",
        description="Run the steps of a pipeline file until its sources end or SIGINT/SIGTERM "
                    "(then drain and commit). Prints a JSON line of counts at the end; exit 1 "
                    "when a step's error policy is 'fail' and it failed.")
    run.add_argument("file", metavar="PIPELINE.yaml", help="the pipeline file")
    run.add_argument("--step", action="append", metavar="NAME",
                     help="run only this step (repeat for several; the others run elsewhere, "
                          "connected through topics)")
    run.add_argument("--redis", metavar="URL",
                     help="topics on Redis Streams at URL (default: the file's streamingCluster, "
                          "else in memory)")
    run.set_defaults(handler=cmd_pipeline_run)
