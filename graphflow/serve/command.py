"""``graphflow serve``: the command line of the server (its parser and its handler)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

__all__ = ["add_serve_parser", "cmd_serve"]

_EPILOG = """examples:
  graphflow serve examples.serve.app:graph                      # SQLite runs.db, 127.0.0.1:8123
  graphflow serve myapp:agent myapp:router --port 9000          # two graphs, by attribute name
  graphflow serve review=myapp:app --db postgresql://u@db/graphs --host 0.0.0.0 --api-key K1

API keys also come from GRAPHFLOW_API_KEYS (comma-separated). Several processes given the same
PostgreSQL database serve the same threads and runs (one writer per thread)."""


def add_serve_parser(commands: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to the ``graphflow`` parser's sub-commands."""
    p = commands.add_parser(
        "serve", parents=parents, help="serve graphs over HTTP (API, streams, /ui)",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_EPILOG,
        description="Serve graphs over HTTP: threads, runs (background, wait, SSE streams), "
                    "cancel, API keys, and the run inspector at /ui. Needs the serve extra: "
                    "pip install \"graphflow[serve]\".")
    p.add_argument("targets", nargs="+", metavar="[NAME=]MODULE:ATTR",
                   help="a graph to serve (named NAME, default ATTR); several may be given")
    p.add_argument("--db", metavar="PATH|DSN", help=(
        "where threads, runs and events live: a SQLite file (default runs.db, or "
        "GRAPHFLOW_DB) or a postgresql:// URL shared by several server processes"))
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8123, help="port (8123)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="accept this key in X-Api-Key (repeat for several)")
    p.add_argument("--max-runs", type=int, default=8, metavar="N",
                   help="runs executing at once in this process (8)")
    p.add_argument("--max-queued", type=int, default=1000, metavar="N",
                   help="runs waiting in this process before new ones get 429 (1000)")
    p.add_argument("--max-body", type=int, default=1 << 20, metavar="BYTES",
                   help="largest request body (1 MiB)")
    p.add_argument("--multitask", choices=("reject", "enqueue"), default="reject",
                   help="a run on a thread with an active run: reject it (409) or queue it")
    p.add_argument("--on-restart", choices=("resume", "mark"), default="resume",
                   help="unfinished runs of a server that stopped: resume them or mark them")
    p.add_argument("--heartbeat", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between the worker's heartbeats and its checks for cancel "
                        "requests, queued runs and dead workers (1)")
    p.add_argument("--worker-ttl", type=float, default=15.0, metavar="SECONDS",
                   help="a worker on another machine silent this long is dead: its runs are "
                        "taken over (15; a dead process on this machine: at once)")
    p.add_argument("--trace", choices=("none", "console", "otlp"), default=None,
                   help="export OpenTelemetry spans (default: OTEL_TRACES_EXPORTER, else none)")
    p.add_argument("--no-ui", action="store_true", help="do not serve /ui")
    p.add_argument("--log-level", default="info", help="uvicorn's log level (info)")
    p.set_defaults(handler=cmd_serve)


def _graphs(targets: list[str]) -> dict[str, Any]:
    from .._cli_render import UsageError, load_graph

    graphs: dict[str, Any] = {}
    for target in targets:
        name, eq, spec = target.partition("=")
        if not eq:
            spec, name = target, target.rpartition(":")[2].rpartition(".")[2]
        if name in graphs:
            raise UsageError(f"two graphs named {name!r}: name them, e.g. {name}2={spec}")
        graphs[name] = load_graph(spec)
    return graphs


def cmd_serve(args: argparse.Namespace) -> int:
    from .._cli_render import UsageError

    try:
        import uvicorn

        from . import ServeConfig, create_app
    except ImportError as exc:
        raise UsageError(str(exc)) from exc
    keys = list(args.api_key) + [k.strip() for k in
                                 os.environ.get("GRAPHFLOW_API_KEYS", "").split(",") if k.strip()]
    try:
        config = ServeConfig(api_keys=tuple(dict.fromkeys(keys)), max_runs=args.max_runs,
                             max_queued=args.max_queued, max_body_bytes=args.max_body,
                             multitask_strategy=args.multitask, on_restart=args.on_restart,
                             heartbeat=args.heartbeat, worker_ttl=args.worker_ttl,
                             ui=not args.no_ui)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    graphs = _graphs(args.targets)
    from ..tracing import configure_from

    configure_from(args.trace)
    if not config.api_keys and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"graphflow: warning: serving on {args.host} without API keys: anyone who can "
              f"reach it can run your graphs (pass --api-key)", file=sys.stderr)
    app = create_app(graphs, db=args.db, config=config)
    shown = args.db or os.environ.get("GRAPHFLOW_DB") or "runs.db"
    if "://" in shown:
        shown = shown.split("://", 1)[0] + "://…"
    print(f"graphflow: serving {', '.join(sorted(graphs))} on http://{args.host}:{args.port} "
          f"(threads in {shown}; inspector at /ui)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                timeout_graceful_shutdown=10)
    return 0
