""":class:`ToolNode` runs the tool calls of the last AI message; :func:`tools_condition` routes
to it.

Every call of one AI message runs at the same time: async tools with ``asyncio.gather`` on the
event loop (a ToolNode holding an async tool is an async node); sync tools on the node's own
thread and on reused worker threads, without a thread started per call. The node's thread
takes the calls one by one; whoever takes a call while others are still waiting first asks
for one more worker (one request outstanding at a time), so quick calls are mostly done by
the node's thread before a worker even wakes up, while calls that block (I/O, a sleep, waiting
for each other) each end up on a thread of their own within moments. The results come back as
``ToolMessage`` s in the order of the calls. Failures — arguments that do not validate,
an unknown tool name, an exception in the tool, a call over ``timeout`` — become
``ToolMessage(status="error")`` whose text names the tool and the problem, for the model to
read and correct (``handle_errors=False``: they raise instead).

A tool may return a :class:`~graphflow.Command` (``update``, ``goto``, ``graph``) to steer the
graph, as a handoff tool does: the node then returns a ``Command`` whose update holds every call's
``ToolMessage`` (in call order) and the commands' other keys. The call's ``ToolMessage`` is the
first ``ToolMessage`` in the command's ``update[messages_key]`` with an empty (or its own)
``tool_call_id``, else a plain "done" message. **One goto per reply**: when several calls of one
AI message return a ``Command`` with a ``goto``, the first in call order wins and each later one
gets an error ``ToolMessage`` instead (its command is dropped), so control never goes two ways.

Durability: each call runs in a journal scope of its own, keyed by its position. Its result is
journaled, so when the node runs again (resumed after a ``confirm=True`` tool paused the run,
after a crash, or retried) calls that already finished are not run again, and tools that make
model calls or ``ctx.step`` s inside replay them deterministically even though the calls ran
in parallel. ``interrupt()`` calls (``confirm=True`` tools) of parallel calls pause the run
together: resume them with ``Command(resume={interrupt_id: answer, ...})``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel

from .. import _workers as workers
from ..constants import END
from ..engine.context import RunContext
from ..engine.interrupts import SCOPE, GraphInterrupt
from ..engine.task import Task
from ..errors import GraphflowError
from ..messages import AIMessage, Message, ToolCall, ToolMessage, message_kind, raw_args
from ..tools import (
    ToolArgumentError,
    ToolConfirmationError,
    ToolRejected,
    ToolTimeoutError,
)
from ..types import Command
from .state import as_tools, messages_of

__all__ = ["ToolNode", "UnknownToolError", "pending_tool_calls", "tool_output_text",
           "tools_condition"]

ErrorHandler = bool | str | Callable[[Exception], str]


class UnknownToolError(GraphflowError, LookupError):
    """The model called a tool the node does not have.

    Attributes:
        tool: the name the model used.
        valid: the names of the node's tools.
    """

    def __init__(self, tool: str, valid: Sequence[str]) -> None:
        shown = ", ".join(valid) if valid else "(none)"
        super().__init__(f"there is no tool named {tool!r}. Valid tools: {shown}.")
        self.tool = tool
        self.valid = list(valid)


# -- per-call journal scopes -----------------------------------------------------------------

_SCOPE_STRIDE = 1_000_000


def _call_scope(position: int, ctx: Any) -> tuple[Any, Task, RunContext] | None:
    """A journal scope for the ``position``-th tool call of the running task (None outside a
    graph). It is a task of the same node whose index no Send uses: its model calls,
    ``ctx.step`` s and ``interrupt`` s are journaled apart from the node's and its siblings'."""
    scope = SCOPE.get(None)
    if scope is None:
        return None
    run, task = scope
    sub = Task(task.spec, (task.index + 2) * _SCOPE_STRIDE + position)
    sub_ctx = RunContext(run, task.name, run.step, sub.index, sub)
    sub_ctx.attempt = getattr(ctx, "attempt", 1)
    return run, sub, sub_ctx


def _result_key(run: Any, sub: Task) -> str:
    """Where a call's ToolMessage is journaled: beside its scope's own journal (which holds the
    model calls and steps the tool made, in order), so a tool that fails or pauses after
    such a call replays it at the same position when it runs again."""
    return run.id_of(sub) + "#result"


def _capture(fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    try:
        return True, fn(*args)
    except BaseException as exc:  # GraphInterrupt included: settled after every call ended
        return False, exc


async def _acapture(awaitable: Any) -> tuple[bool, Any]:
    try:
        return True, await awaitable
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        return False, exc


def _plain(outcomes: list[ToolMessage | Commanded]) -> list[ToolMessage]:
    for o in outcomes:
        if type(o) is Commanded:
            raise GraphflowError(
                f"tool {o.message.name!r} returned a Command, which only a ToolNode in a graph "
                f"can carry out (run_calls returns messages); call the node instead")
    return outcomes  # type: ignore[return-value]


def _settle(outcomes: Sequence[tuple[bool, Any]]) -> list[Any]:
    """The messages, or the first error in call order, or every call's interrupts at once."""
    interrupts: list[Any] = []
    for ok, value in outcomes:
        if ok:
            continue
        if isinstance(value, GraphInterrupt):
            interrupts.extend(value.interrupts)
        else:
            raise value
    if interrupts:
        raise GraphInterrupt(interrupts)
    return [value for _, value in outcomes]


class Commanded:
    """The outcome of a call whose tool returned a :class:`Command`: its message and command."""

    __slots__ = ("command", "message")

    def __init__(self, message: ToolMessage, command: Command) -> None:
        self.message = message
        self.command = command

    def stored(self) -> dict[str, Any]:
        """A journal entry for it (a Command is not stored as such)."""
        c = self.command
        return {"message": self.message, "update": c.update, "goto": _gotos(c.goto),
                "graph": c.graph}

    @classmethod
    def restored(cls, entry: Any) -> ToolMessage | Commanded:
        if isinstance(entry, dict):
            return cls(entry["message"], Command(update=entry["update"], goto=entry["goto"],
                                                 graph=entry["graph"]))
        return entry  # type: ignore[no-any-return]


def _gotos(goto: Any) -> list[Any]:
    if not goto:
        return []
    return [goto] if isinstance(goto, str) or not isinstance(goto, Sequence) else list(goto)


def _goto_names(goto: Any) -> str:
    return ", ".join(repr(getattr(g, "node", g)) for g in _gotos(goto))


def merge_commands(outcomes: Sequence[ToolMessage | Commanded], calls: Sequence[ToolCall],
                   messages_key: str) -> dict[str, Any] | Command:
    """The node's result: ``{messages_key: [...]}``, or one Command when tools returned some
    (the first goto in call order wins; later ones become error messages)."""
    if not any(type(o) is Commanded for o in outcomes):
        return {messages_key: list(outcomes)}
    messages: list[Any] = []
    update: dict[str, Any] = {}
    winner: tuple[ToolCall, Command] | None = None
    for call, outcome in zip(calls, outcomes, strict=True):
        if type(outcome) is not Commanded:
            messages.append(outcome)
            continue
        command = outcome.command
        if command.goto and winner is not None:
            first, chosen = winner
            messages.append(ToolMessage(
                tool_call_id=call.id, name=call.name, status="error",
                content=(f"Error: {call.name!r} was not carried out: {first.name!r} came first "
                         f"in the same reply and already passes control to "
                         f"{_goto_names(chosen.goto)}. Only one handover per reply is "
                         f"carried out; ask for one at a time.")))
            continue
        if command.goto:
            winner = (call, command)
        messages.append(outcome.message)
        for key, value in (command.update or {}).items():
            if key == messages_key:
                messages.extend(m for m in value if m is not None)
            else:
                update[key] = value
    update = {messages_key: messages, **update}
    if winner is None:
        return Command(update=update)
    chosen = winner[1]
    return Command(update=update, goto=chosen.goto, graph=chosen.graph)


# -- results -----------------------------------------------------------------------------------

_JSON_SCALARS = (int, float, bool, type(None))


def tool_output_text(result: Any) -> str:
    """The text of a ``ToolMessage`` for what a tool returned: strings as they are, pydantic
    models, dicts, lists, numbers, booleans and None as JSON, anything else ``str()``."""
    kind = type(result)
    if kind is str:
        return result  # type: ignore[no-any-return]
    if kind is int:
        return str(result)  # what json.dumps writes, without the encoder's setup
    if kind in _JSON_SCALARS:
        return json.dumps(result)
    if isinstance(result, str):
        return str(result)
    if isinstance(result, BaseModel):
        return result.model_dump_json()
    if isinstance(result, (dict, list, tuple, int, float)):
        try:
            return json.dumps(result, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(result)
    return str(result)


def _describe(tool: str, exc: Exception) -> str:
    if isinstance(exc, UnknownToolError):
        return f"Error: {exc}"
    if isinstance(exc, ToolArgumentError):
        return f"Error: {exc}. Call the tool again with corrected arguments."
    if isinstance(exc, (ToolTimeoutError, ToolConfirmationError)):
        return f"Error: {exc}"
    return f"Error: tool {tool!r} failed: {type(exc).__name__}: {exc}"


def pending_tool_calls(messages: Sequence[Message]) -> tuple[AIMessage | None, list[ToolCall]]:
    """The last AI message and those of its tool calls that have no ``ToolMessage`` yet."""
    done: set[str] = set()
    for msg in reversed(messages):
        kind = message_kind(msg)
        if kind == "tool":
            done.add(msg.tool_call_id)  # type: ignore[attr-defined]
        elif kind == "ai":
            calls = msg.tool_calls  # type: ignore[attr-defined]
            return msg, [c for c in calls if c.id not in done] if done else list(calls)  # type: ignore[return-value]
    return None, []


# -- the node ----------------------------------------------------------------------------------

class ToolNode:
    """A node that runs the tool calls of the last AI message, all at once.

    Args:
        tools: ``@tool`` functions, ``Tool`` objects, or plain functions (wrapped with
            ``@tool``).
        handle_errors: ``True`` (default): a failing call becomes an error ``ToolMessage``
            naming the tool and the problem; a string: that text instead; a function: called
            with the exception, returns the text; ``False``: the exception propagates (the run
            fails with ``NodeError``).
        timeout: seconds each call may take (on top of a tool's own ``timeout``); a call over
            it gets an error ``ToolMessage`` (a sync tool keeps running in its thread, its
            result is dropped).
        messages_key: the state key holding the messages.

    Returns ``{messages_key: [ToolMessage, ...]}`` in the order of the calls, or a ``Command``
    when tools returned some (see the module docstring: one goto per reply). Tools that ask for
    the graph state (``InjectedState``) or the run context (``RunContext``) get them.
    ``confirm=True`` tools pause the run (``interrupt``); the pause is never swallowed.
    """

    graphflow_kind = "tool"
    __name__ = "tools"  # add_node(ToolNode(...)) names the node "tools"

    def __new__(cls, tools: Iterable[Any] = (), **kwargs: Any) -> ToolNode:
        converted = as_tools(tools)
        if cls is ToolNode and any(getattr(t, "is_async", False) for t in converted):
            cls = AsyncToolNode  # async tools: an async node, calls gathered on the loop
        self = super().__new__(cls)
        self._converted = converted
        return self

    def __init__(self, tools: Iterable[Any] = (), *, handle_errors: ErrorHandler = True,
                 timeout: float | None = None, messages_key: str = "messages") -> None:
        self.tools: list[Any] = self.__dict__.pop("_converted", None) or as_tools(tools)
        self.tools_by_name: dict[str, Any] = {t.name: t for t in self.tools}
        if timeout is not None and not timeout > 0:
            raise ValueError(f"ToolNode: timeout must be > 0 seconds, got {timeout!r}")
        self.handle_errors = handle_errors
        self.timeout = timeout
        self.messages_key = messages_key

    def __repr__(self) -> str:
        return f"{type(self).__name__}([{', '.join(self.tools_by_name)}])"

    # -- node entry points --------------------------------------------------------------------

    def __call__(self, state: Any, ctx: RunContext | None = None) -> dict[str, Any]:
        return self.invoke(state, ctx)

    def invoke(self, state: Any, ctx: RunContext | None = None) -> dict[str, Any] | Command:
        """Run the pending calls of the last AI message in ``state``; returns the update."""
        calls = self._calls(state)
        return merge_commands(self._outcomes(calls, state, ctx, 0), calls, self.messages_key)

    async def ainvoke(self, state: Any, ctx: RunContext | None = None
                      ) -> dict[str, Any] | Command:
        """Async :meth:`invoke`: async tools run on the loop, sync ones in threads."""
        calls = self._calls(state)
        return merge_commands(await self._aoutcomes(calls, state, ctx, 0), calls,
                              self.messages_key)

    def _calls(self, state: Any) -> list[ToolCall]:
        ai, calls = pending_tool_calls(messages_of(state, self.messages_key))
        if ai is None or not ai.tool_calls:
            raise ValueError(
                f"ToolNode: the last AI message in {self.messages_key!r} has no tool calls to "
                f"run (route here with tools_condition)")
        return calls

    # -- running calls ------------------------------------------------------------------------

    def run_calls(self, calls: Sequence[ToolCall], *, state: Any = None,
                  ctx: RunContext | None = None, start: int = 0) -> list[ToolMessage]:
        """Run ``calls`` concurrently and return their messages in order (see
        :func:`graphflow._workers.run_all`: this thread runs calls too, and worker threads join
        in as fast as calls keep it busy).

        ``start`` offsets the calls' journal positions (a node that runs tools several times
        gives each batch its own positions). A tool returning a ``Command`` is an error here:
        only the node (:meth:`invoke`) can carry a command out.
        """
        return _plain(self._outcomes(list(calls), state, ctx, start))

    async def arun_calls(self, calls: Sequence[ToolCall], *, state: Any = None,
                         ctx: RunContext | None = None, start: int = 0) -> list[ToolMessage]:
        """Async :meth:`run_calls` (``asyncio.gather``)."""
        return _plain(await self._aoutcomes(list(calls), state, ctx, start))

    def _outcomes(self, calls: list[ToolCall], state: Any, ctx: Any,
                  start: int) -> list[ToolMessage | Commanded]:
        if not calls:
            return []
        if len(calls) == 1:
            return _settle([_capture(self._run_one, start, calls[0], state, ctx)])
        return _settle(workers.run_all([
            functools.partial(self._run_one, start + i, c, state, ctx)
            for i, c in enumerate(calls)]))

    async def _aoutcomes(self, calls: list[ToolCall], state: Any, ctx: Any,
                         start: int) -> list[ToolMessage | Commanded]:
        if not calls:
            return []
        if len(calls) == 1:
            return _settle([await _acapture(self._arun_one(start, calls[0], state, ctx))])
        outcomes = await asyncio.gather(*(
            _acapture(self._arun_one(start + i, c, state, ctx)) for i, c in enumerate(calls)))
        return _settle(outcomes)

    def _run_one(self, position: int, call: ToolCall, state: Any,
                 ctx: Any) -> ToolMessage | Commanded:
        scoped = _call_scope(position, ctx)
        if scoped is None:
            return self._guarded(call, state, ctx)
        run, sub, sub_ctx = scoped
        key = _result_key(run, sub)
        done = run.journal(key)
        if done:
            return Commanded.restored(done[0])
        token = SCOPE.set((run, sub))
        try:
            msg = self._guarded(call, state, sub_ctx)
        finally:
            SCOPE.reset(token)
        run.record(key, 0, msg.stored() if type(msg) is Commanded else msg)
        return msg

    async def _arun_one(self, position: int, call: ToolCall, state: Any,
                        ctx: Any) -> ToolMessage | Commanded:
        scoped = _call_scope(position, ctx)
        if scoped is None:
            return await self._aguarded(call, state, ctx)
        run, sub, sub_ctx = scoped
        key = _result_key(run, sub)
        done = run.journal(key)
        if done:
            return Commanded.restored(done[0])
        token = SCOPE.set((run, sub))
        try:
            msg = await self._aguarded(call, state, sub_ctx)
        finally:
            SCOPE.reset(token)
        run.record(key, 0, msg.stored() if type(msg) is Commanded else msg)
        return msg

    def _guarded(self, call: ToolCall, state: Any, ctx: Any) -> ToolMessage:
        """:meth:`_execute` within the node's ``timeout``."""
        if self.timeout is None:
            return self._execute(call, state, ctx)
        job = workers.start(functools.partial(self._execute, call, state, ctx))
        if not job.wait(self.timeout):  # the call keeps its worker; its result is dropped
            return self._failure(call, self._timeout_error(call))
        return job.result()  # type: ignore[no-any-return]

    async def _aguarded(self, call: ToolCall, state: Any, ctx: Any) -> ToolMessage:
        if self.timeout is None:
            return await self._aexecute(call, state, ctx)
        try:
            async with asyncio.timeout(self.timeout) as scope:
                return await self._aexecute(call, state, ctx)
        except TimeoutError:
            if scope.expired():
                return self._failure(call, self._timeout_error(call))
            raise

    def _timeout_error(self, call: ToolCall) -> Exception:
        return ToolTimeoutError(call.name, self.timeout or 0.0)

    @staticmethod
    def _args(call: ToolCall) -> Any:
        # a call whose JSON did not parse keeps its text under "__raw__": hand the text to the
        # tool, which explains that it is not valid JSON
        raw = raw_args(call.args)
        return call.args if raw is None else raw

    def _execute(self, call: ToolCall, state: Any, ctx: Any) -> ToolMessage:
        tool = self.tools_by_name.get(call.name)
        if tool is None:
            return self._failure(call, UnknownToolError(call.name, list(self.tools_by_name)))
        try:
            result = tool.invoke(self._args(call), state=state, ctx=ctx)
        except Exception as exc:
            return self._failure(call, exc)
        return self._success(call, result)

    async def _aexecute(self, call: ToolCall, state: Any, ctx: Any) -> ToolMessage:
        tool = self.tools_by_name.get(call.name)
        if tool is None:
            return self._failure(call, UnknownToolError(call.name, list(self.tools_by_name)))
        try:
            if hasattr(tool, "ainvoke"):
                result = await tool.ainvoke(self._args(call), state=state, ctx=ctx)
            else:
                result = await asyncio.to_thread(tool.invoke, self._args(call), state=state,
                                                 ctx=ctx)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            return self._failure(call, exc)
        return self._success(call, result)

    def _success(self, call: ToolCall, result: Any) -> ToolMessage | Commanded:
        if type(result) is str:
            return ToolMessage(tool_call_id=call.id, name=call.name, content=result)
        if isinstance(result, Command):
            return self._commanded(call, result)
        if isinstance(result, ToolMessage):
            return result.model_copy(update={"tool_call_id": call.id,
                                             "name": result.name or call.name})
        if isinstance(result, ToolRejected):
            return ToolMessage(tool_call_id=call.id, name=call.name, status="error",
                               content=str(result))
        return ToolMessage(tool_call_id=call.id, name=call.name,
                           content=tool_output_text(result))

    def _commanded(self, call: ToolCall, command: Command) -> Commanded:
        """The call's message (taken out of the command's messages) and the command."""
        update = dict(command.update or {})
        extra = list(update.get(self.messages_key) or ())
        for i, m in enumerate(extra):
            if isinstance(m, ToolMessage) and m.tool_call_id in ("", call.id):
                message = m.model_copy(update={"tool_call_id": call.id,
                                               "name": m.name or call.name})
                del extra[i]
                break
        else:
            message = ToolMessage(tool_call_id=call.id, name=call.name, content="done")
        if self.messages_key in update:
            update[self.messages_key] = extra
        return Commanded(message, Command(update=update, goto=command.goto,
                                          graph=command.graph))

    def _failure(self, call: ToolCall, exc: Exception) -> ToolMessage:
        handler = self.handle_errors
        if handler is False:
            raise exc
        if isinstance(handler, str):
            text = handler
        elif callable(handler) and handler is not True:
            text = str(handler(exc))
        else:
            text = _describe(call.name, exc)
        return ToolMessage(tool_call_id=call.id, name=call.name, status="error", content=text)


class AsyncToolNode(ToolNode):
    """A :class:`ToolNode` with an async tool: an async node (``ToolNode(...)`` picks it)."""

    async def __call__(self, state: Any,  # type: ignore[override]
                       ctx: RunContext | None = None) -> dict[str, Any]:
        return await self.ainvoke(state, ctx)


def tools_condition(state: Any, *,
                    messages_key: str = "messages") -> Literal["tools", "__end__"]:
    """Route to ``"tools"`` when the last AI message has tool calls without results yet,
    else to ``END``. Use as ``add_conditional_edges("agent", tools_condition)``."""
    if isinstance(state, Mapping) and messages_key not in state:
        return END  # type: ignore[return-value]
    _, calls = pending_tool_calls(messages_of(state, messages_key))
    return "tools" if calls else END  # type: ignore[return-value]
