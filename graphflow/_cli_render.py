"""The workings of the ``graphflow`` command line (:mod:`graphflow.cli`): loading graphs and
thread stores, running a graph into an output, and printing.

Piped output is JSON lines (:class:`JsonLines`); a terminal gets a live ``rich`` display
(:class:`LiveDisplay`). ``rich`` is imported only for the terminal, so piped use starts fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import reprlib
import sqlite3
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from .checkpoint.base import Checkpointer, StateSnapshot
    from .engine.compiled import CompiledGraph

__all__ = ["DEFAULT_DB", "JsonLines", "LiveDisplay", "Outcome", "UsageError", "attach",
           "check_continue", "dumps", "interrupt_record", "load_graph", "oneline",
           "open_saver", "parse_json", "print_history", "print_snapshot", "resume_command",
           "run_graph", "stored_snapshot", "thread_status"]

INTERRUPT_KEY = "__interrupt__"
DEFAULT_DB = "runs.db"

# -- JSON ------------------------------------------------------------------------------------------


def interrupt_record(i: Any) -> dict[str, Any]:
    """An :class:`~graphflow.Interrupt` as a JSON-able dict (what the CLI shows of it)."""
    return {"id": i.id, "node": i.node, "value": i.value}


def _default(x: Any) -> Any:
    """Readable JSON for the values a state commonly holds; anything else falls through."""
    from .engine.interrupts import Interrupt

    if isinstance(x, Interrupt):
        return interrupt_record(x)
    if isinstance(x, type):
        raise TypeError(x)
    if hasattr(x, "model_dump"):  # a pydantic model: its fields
        return x.model_dump()
    if dataclasses.is_dataclass(x):
        return {f.name: getattr(x, f.name) for f in dataclasses.fields(x)}
    if isinstance(x, set | frozenset):
        try:
            return sorted(x)
        except TypeError:
            return list(x)
    raise TypeError(x)


def dumps(value: Any) -> str:
    """``value`` as one line of JSON, whatever it holds.

    Plain JSON first (pydantic models, dataclasses, sets and interrupts as their fields); then
    graphflow's tagged serialization (``graphflow.checkpoint.serde``: datetimes, bytes, UUIDs,
    registered types, ...); as a last resort ``repr`` of what still is not JSON.
    """
    try:
        return json.dumps(value, default=_default)
    except Exception:
        pass
    try:
        from .checkpoint.serde import dumps as serde_dumps

        return json.dumps(json.loads(serde_dumps(value)))
    except Exception:
        pass
    try:
        return json.dumps(value, default=repr)
    except Exception:  # e.g. a circular structure
        return json.dumps(repr(value))


# -- running ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How a run ended (it did not raise): finished, or paused on an interrupt or breakpoint."""

    status: str  # "done" | "interrupted"
    state: Any
    interrupts: list[Any] = field(default_factory=list)
    next: list[str] = field(default_factory=list)
    thread: str | None = None
    checkpoint_id: str | None = None
    elapsed: float = 0.0

    def record(self) -> dict[str, Any]:
        return {"event": "end", "status": self.status, "state": self.state,
                "interrupts": [interrupt_record(i) for i in self.interrupts],
                "next": self.next, "thread": self.thread, "checkpoint_id": self.checkpoint_id}


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def run_graph(graph: CompiledGraph, payload: Any, *, thread: str | None, shown: str,
              output: JsonLines | LiveDisplay) -> Outcome:
    """Stream ``graph`` on ``payload`` into ``output``; returns the outcome (errors propagate).

    ``shown`` is the stream mode the user asked for; the modes the output and the outcome need
    besides it are streamed too, and the output decides what it prints of them.
    """
    needs = ["updates", *output.wants] + ([] if thread is not None else ["values"])
    modes = _unique([shown, *needs])
    started = time.monotonic()
    last_values: Any = None
    paused = False
    interrupts: list[Any] = []
    with output:
        for mode, data in graph.stream(payload, mode=modes, thread=thread):
            if mode == "values":
                last_values = data
            elif mode == "updates" and isinstance(data, dict) and INTERRUPT_KEY in data:
                paused = True
                interrupts.extend(data[INTERRUPT_KEY])
            output.event(mode, data)
    elapsed = time.monotonic() - started
    if thread is not None:
        snap = graph.get_state(thread)
        assert snap is not None
        outcome = Outcome("interrupted" if snap.next else "done", snap.values,
                          list(snap.interrupts), list(snap.next), thread, snap.checkpoint_id,
                          elapsed)
    else:
        state = last_values if last_values is not None else {}
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if k != INTERRUPT_KEY}
        outcome = Outcome("interrupted" if paused else "done", state, interrupts,
                          elapsed=elapsed)
    output.finish(outcome)
    return outcome


class JsonLines:
    """Piped output: ``{"event": mode, "data": ...}`` per event of the shown mode, then the
    ``{"event": "end", ...}`` line; each line flushed as it is written."""

    wants: tuple[str, ...] = ()

    def __init__(self, out: IO[str], shown: str) -> None:
        self.out = out
        self.shown = shown

    def __enter__(self) -> JsonLines:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, mode: str, data: Any) -> None:
        if mode == self.shown:
            self._line(f'{{"event": {json.dumps(mode)}, "data": {dumps(data)}}}')

    def finish(self, outcome: Outcome) -> None:
        self._line(dumps(outcome.record()))


# -- the terminal ----------------------------------------------------------------------------------

_SHORT = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 2, 40, 40, 4, 4


def _summary(update: Any, width: int = 72) -> str:
    """A short line about a node's update: ``key=value, ...``."""
    if update is None:
        return "no update"
    if isinstance(update, dict):
        text = ", ".join(f"{k}={_SHORT.repr(v)}" for k, v in update.items()) or "no update"
    else:
        text = _SHORT.repr(update)
    return text if len(text) <= width else text[: width - 1] + "…"


class LiveDisplay:
    """The terminal: a line per finished node, a spinner naming the running nodes, then the
    final state (and what to do next when the run paused)."""

    wants: tuple[str, ...] = ("debug",)

    def __init__(self, console: Console, shown: str = "updates", *,
                 resume_hint: str | None = None) -> None:
        from rich.live import Live
        from rich.spinner import Spinner

        self.console = console
        self.shown = shown
        self.resume_hint = resume_hint
        self.started = time.monotonic()
        self.step = 0
        self.finished = 0
        self.running: dict[str, str] = {}  # task id -> node
        self.done: set[str] = set()  # task ids finished (a start event may come after its end)
        self._spinner = Spinner("dots", style="cyan")
        self._live = Live(self, console=console, transient=True, refresh_per_second=12)

    def __rich__(self) -> Any:
        from rich.text import Text

        names = ", ".join(dict.fromkeys(self.running.values()))
        doing = f" · running {names} · " if names else " · working… · "
        elapsed = time.monotonic() - self.started
        self._spinner.update(text=Text.assemble(
            (f" step {self.step}", "bold"), doing,
            (f"{elapsed:.1f}s", "dim")))
        return self._spinner

    def __enter__(self) -> LiveDisplay:
        self.started = time.monotonic()
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._live.stop()

    def _print(self, *parts: Any) -> None:
        from rich.text import Text

        self._live.console.print(Text.assemble(*parts), highlight=False)

    def event(self, mode: str, data: Any) -> None:
        if mode == "debug" and isinstance(data, dict):
            self._task(data)
        if mode == "updates" and isinstance(data, dict) and data.get(INTERRUPT_KEY) == ():
            self._print(("⏸ ", "yellow"), ("breakpoint", "bold yellow"), " the run stops here")
        if mode == "custom":
            self._print(("  ↳ ", "cyan"), _summary(data, 100))
        if mode == self.shown and mode in ("values", "debug"):
            from rich.pretty import Pretty

            self._live.console.print(Pretty(data, max_length=8, max_string=60), style="dim")

    def _task(self, data: dict[str, Any]) -> None:
        now = time.monotonic()
        task_id, node = str(data.get("task_id")), str(data.get("node"))
        if data.get("type") == "task":
            self.step = data.get("step", self.step)
            if task_id not in self.done:
                self.running[task_id] = node
            return
        if data.get("type") != "task_result":
            return
        self.done.add(task_id)
        self.running.pop(task_id, None)
        # when it finished, since the run started (the engine may deliver a task's start event
        # only with its result, so per-task durations would mislead)
        took = (f"  +{now - self.started:.2f}s", "dim")
        self.finished += 1
        if data.get("interrupts"):
            for i in data["interrupts"]:
                self._print(("⏸ ", "yellow"), (node, "bold"), took, "  asks ",
                            (_SHORT.repr(i.value), "yellow"), (f"  (interrupt {i.id})", "dim"))
        elif data.get("error"):
            self._print(("✗ ", "red"), (node, "bold"), took, ("  failed", "red"))
        else:
            self._print(("✓ ", "green"), (node, "bold"), took, "  ", _summary(data.get("update")))

    def finish(self, outcome: Outcome) -> None:
        from rich.markup import escape
        from rich.panel import Panel
        from rich.pretty import Pretty

        con = self.console
        done = outcome.status == "done"
        title = "final state" if done else "state (paused)"
        con.print(Panel(Pretty(outcome.state, expand_all=False), title=title,
                        title_align="left", border_style="green" if done else "yellow"))
        took = _duration(outcome.elapsed)
        where = f" · thread {escape(outcome.thread)}" if outcome.thread else ""
        if done:
            con.print(f"[green]✔ done[/] in {took} · {self.finished} task(s){where}",
                      highlight=False)
            return
        if outcome.interrupts:
            con.print(f"[yellow]⏸ interrupted[/]: waiting for {len(outcome.interrupts)} "
                      f"answer(s){where}", highlight=False)
            _print_interrupts(con, [interrupt_record(i) for i in outcome.interrupts])
        else:
            nxt = escape(", ".join(outcome.next) or "?")
            con.print(f"[yellow]⏸ paused[/] at a breakpoint before {nxt}{where}", highlight=False)
        if self.resume_hint:
            arg = " --value JSON" if outcome.interrupts else ""
            if len(outcome.interrupts) > 1:
                arg = " --id ID --value JSON"
            con.print(f"[dim]continue with:[/] {escape(self.resume_hint)}{arg}", highlight=False,
                      soft_wrap=True)


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _print_interrupts(con: Console, interrupts: list[dict[str, Any]]) -> None:
    from rich.pretty import Pretty
    from rich.table import Table

    table = Table(box=None, padding=(0, 2, 0, 2), show_edge=False)
    table.add_column("interrupt id", style="bold")
    table.add_column("node")
    table.add_column("value")
    for i in interrupts:
        table.add_row(i["id"], i["node"], Pretty(i["value"]))
    con.print(table)


def print_snapshot(con: Console, record: dict[str, Any]) -> None:
    """``graphflow threads show`` on a terminal."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.pretty import Pretty

    status = record["status"]
    color = {"done": "green", "interrupted": "yellow"}.get(status, "red")
    con.print(f"[bold]thread[/] {escape(record['thread'])} · [{color}]{status}[/] · step "
              f"{record['step']} · checkpoint {record['checkpoint_id']}", highlight=False)
    con.print(f"[bold]next:[/] {escape(', '.join(record['next'])) or '(nothing: finished)'}",
              highlight=False)
    if record["interrupts"]:
        con.print("[bold]pending interrupts:[/]")
        _print_interrupts(con, record["interrupts"])
    if record.get("values_note"):
        con.print(f"[bold]values:[/] {escape(record['values_note'])}", highlight=False)
    else:
        con.print(Panel(Pretty(record["values"]), title="values", title_align="left"))


def print_history(con: Console, thread: str, rows: list[dict[str, Any]]) -> None:
    """``graphflow threads history`` on a terminal (newest first)."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"thread {escape(thread)} (newest first)", title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("source")
    table.add_column("next")
    table.add_column("checkpoint id", no_wrap=True, min_width=32)  # never cut an id
    table.add_column("created at", style="dim")
    for row in rows:
        table.add_row(str(row["step"]), str(row["source"]), ", ".join(row["next"]) or "-",
                      row["checkpoint_id"], row["created_at"][:19].replace("T", " "))
    con.print(table)


# -- loading graphs and stores --------------------------------------------------------------------

class UsageError(Exception):
    """A mistake in the command (exit 2)."""


def load_object(spec: str) -> Any:
    """The object ``MODULE:ATTR`` (or ``path/to/file.py:ATTR``) names; the cwd is importable."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"{spec!r} is not MODULE:ATTR (for example myapp.graphs:app)")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import importlib
    import importlib.util

    try:
        if module_name.endswith(".py") or os.sep in module_name:
            if not os.path.isfile(module_name):
                raise UsageError(f"no file {module_name!r}")
            name = os.path.splitext(os.path.basename(module_name))[0]
            loader = importlib.util.spec_from_file_location(name, module_name)
            assert loader is not None and loader.loader is not None
            module = importlib.util.module_from_spec(loader)
            sys.modules[name] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except UsageError:
        raise
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise UsageError(f"no module named {module_name!r} (looked in the current "
                             f"directory and on PYTHONPATH)") from e
        raise UsageError(f"importing {module_name!r} failed: {oneline(e)}") from e
    except Exception as e:
        raise UsageError(f"importing {module_name!r} failed: {oneline(e)}") from e
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_graph(spec: str) -> CompiledGraph:
    """The graph ``MODULE:ATTR`` names: a compiled graph, a ``StateGraph`` (compiled here) or a
    function taking no arguments that returns either."""
    import inspect

    from .engine.compiled import CompiledGraph
    from .graph.state_graph import StateGraph

    obj = load_object(spec)
    for attempt in range(2):
        if isinstance(obj, CompiledGraph):
            return obj
        if isinstance(obj, StateGraph):
            try:
                return obj.compile()
            except Exception as e:
                raise UsageError(f"compiling {spec} failed: {oneline(e)}") from e
        takes_none = False
        if attempt == 0 and callable(obj) and not isinstance(obj, type):
            with contextlib.suppress(TypeError, ValueError):
                sig = inspect.signature(obj)
                takes_none = all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL,
                                 p.VAR_KEYWORD) for p in sig.parameters.values())
        if not takes_none:
            break
        try:
            obj = obj()
        except Exception as e:
            raise UsageError(f"calling {spec}() failed: {oneline(e)}") from e
    raise UsageError(f"{spec} is not a graph (got {type(obj).__name__}): expected a "
                     f"CompiledGraph, a StateGraph, or a function without arguments returning one")


def parse_json(text: str, option: str) -> Any:
    """``text`` parsed as JSON; a usage error naming ``option`` if it is not."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise UsageError(f"{option} is not valid JSON ({e}): {text!r}") from e


def open_saver(db: str | None, *, create: bool, stack: contextlib.ExitStack) -> Checkpointer:
    """A ``SqliteCheckpointer`` on ``db`` (default ``runs.db``), closed with ``stack``; with
    ``create=False`` a missing file is a usage error instead of a new empty database."""
    from .checkpoint.sqlite import SqliteCheckpointer

    path = db or DEFAULT_DB
    if not create and path != ":memory:" and not os.path.exists(path):
        raise UsageError(f"no database {path!r}: nothing has run there yet (runs with "
                         f"--thread store their threads in it)")
    saver = SqliteCheckpointer(path)
    stack.callback(saver.close)
    try:
        saver.threads()  # opens the file now: a bad one is a usage error, not a run error
    except sqlite3.Error as e:
        raise UsageError(f"cannot use {path!r} as a graphflow database: {e}") from e
    return saver


def attach(graph: CompiledGraph, db: str | None, *, create: bool,
           stack: contextlib.ExitStack) -> CompiledGraph:
    """The graph on ``--db`` (a SQLite file); without ``--db``, on its own checkpointer if it
    has one, else on ``runs.db``."""
    if db is None and graph.checkpointer is not None:
        from .checkpoint.memory import MemoryCheckpointer

        if create and isinstance(graph.checkpointer, MemoryCheckpointer):
            print("graphflow: warning: this graph keeps its threads in a MemoryCheckpointer, "
                  "gone when the command ends; pass --db PATH to keep them", file=sys.stderr)
        return graph
    return graph.with_checkpointer(open_saver(db, create=create, stack=stack))


def pending_text(interrupts: Sequence[Any]) -> str:
    return ", ".join(f"{i.id} from {i.node!r}" for i in interrupts)


def resume_command(thread: str, snap: StateSnapshot, value: Any, iid: str | None, *,
                   flag: str = "--value") -> Any:
    """``Command(resume=...)`` answering the pending interrupt(s) of ``thread`` (``flag``: the
    option the value came from, for the messages)."""
    from . import Command

    ids = [i.id for i in snap.interrupts]
    if not ids:
        more = "continue it without a value" if snap.next else "it has finished"
        raise UsageError(f"thread {thread!r} has no pending interrupt to answer ({more})")
    if iid is not None:
        if iid not in ids:
            raise UsageError(f"thread {thread!r} has no pending interrupt {iid!r}; pending: "
                             f"{pending_text(snap.interrupts)}")
        return Command(resume={iid: value})
    if isinstance(value, dict) and value and all(k in ids for k in value):
        return Command(resume=value)
    if len(ids) == 1:
        return Command(resume={ids[0]: value})
    one = "answer one with --id ID --value JSON, or" if flag == "--value" else "answer"
    raise UsageError(f"thread {thread!r} has {len(ids)} pending interrupts "
                     f"({pending_text(snap.interrupts)}); {one} all with "
                     f"{flag} '{{\"ID\": value, ...}}'")


def check_continue(thread: str, snap: StateSnapshot, *, flag: str = "--value") -> None:
    """Continuing without an answer is for breakpoints and errors, not pending interrupts."""
    if snap.interrupts:
        raise UsageError(f"thread {thread!r} is waiting for an answer to "
                         f"{pending_text(snap.interrupts)}; give it with {flag} JSON")


def oneline(exc: BaseException) -> str:
    """An error as one line (graphflow's own errors already name what failed)."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    name = type(exc).__name__
    from .errors import GraphflowError

    if isinstance(exc, GraphflowError | UsageError) or not text:
        return text or name
    node = getattr(exc, "graphflow_node", None)  # raised by a node's own code
    if node is not None:
        return f"node {node!r} failed: {name}: {text}"
    return f"{name}: {text}"


def stored_snapshot(saver: Checkpointer, thread: str) -> dict[str, Any]:
    """``threads show`` without ``--graph``: the newest checkpoint of ``thread`` as the store
    holds it. Its values are there when the store kept them whole; a checkpoint stored as the
    changes since an earlier one needs the graph's reducers to be rebuilt (``values`` is None
    and ``values_note`` says so)."""
    from .checkpoint.serde import SerializationError
    from .engine.run import pending_interrupts

    try:
        cp = saver.get(thread)
        if cp is None:
            where = getattr(saver, "path", None)
            raise UsageError(f"no thread {thread!r}" + (f" in {where!r}" if where else ""))
        pending = saver.get_writes(thread, cp.id) if cp.next else {}
    except (SerializationError, ValueError) as e:
        if "not registered" not in str(e):
            raise
        raise UsageError(f"thread {thread!r} holds values of types its graph registers: pass "
                         f"--graph MODULE:ATTR to read them") from e
    record = {"thread": thread, "status": thread_status(saver, cp), "step": cp.step,
              "next": [n for n, _, _ in cp.next],
              "interrupts": [interrupt_record(i) for i in pending_interrupts(pending)],
              "checkpoint_id": cp.id, "parent_id": cp.parent_id,
              "created_at": cp.created_at.isoformat(), "metadata": cp.metadata,
              "values": cp.values}
    if cp.values is None:
        record["values_note"] = ("stored as the changes since an earlier checkpoint: pass "
                                 "--graph MODULE:ATTR to rebuild the state")
    return record


def thread_status(saver: Checkpointer, cp: Any) -> str:
    """done | interrupted (an interrupt or a breakpoint) | stopped (an error or a crash)."""
    if not cp.next:
        return "done"
    from .engine.run import BREAKPOINT_TASK, INTERRUPT_KEY

    pending = saver.get_writes(cp.thread, cp.id, ns=cp.ns)
    if BREAKPOINT_TASK in pending or any(k == INTERRUPT_KEY for w in pending.values()
                                         for k, _ in w.writes):
        return "interrupted"
    return "stopped"  # due tasks left by an error or a crash
