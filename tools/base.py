"""The :class:`Tool` class and the :func:`tool` decorator."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, overload

from pydantic import BaseModel, ValidationError

from graphflow import _workers as workers
from graphflow import interrupt
from graphflow.errors import GraphflowError
from graphflow.tracing import traced_atool, traced_tool

from .schema import Signature, ToolDefinitionError, analyze, json_schema

__all__ = [
    "Tool",
    "ToolArgumentError",
    "ToolConfirmationError",
    "ToolRejected",
    "ToolTimeoutError",
    "tool",
]

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class ToolArgumentError(GraphflowError, ValueError):
    """The arguments of a tool call do not fit the tool's schema.

    The message names the tool and every bad argument with pydantic's reason, e.g.
    ``tool 'add': invalid arguments: 'a': Input should be a valid integer (got 'x'); 'b': Field
    required`` — meant to be sent back to the model as is.

    Attributes:
        tool: the tool's name.
        errors: pydantic's error list (``ValidationError.errors()``), empty for a non-dict input.
    """

    def __init__(self, tool: str, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.tool = tool
        self.errors = errors or []


class ToolTimeoutError(GraphflowError, TimeoutError):
    """A tool call ran longer than the tool's ``timeout``.

    Attributes:
        tool: the tool's name.
        timeout: the limit in seconds.
    """

    def __init__(self, tool: str, timeout: float) -> None:
        super().__init__(f"tool {tool!r} timed out after {timeout:g}s")
        self.tool = tool
        self.timeout = timeout


class ToolConfirmationError(GraphflowError, RuntimeError):
    """A ``confirm=True`` tool was called where the run cannot pause to ask a human."""


class ToolRejected(str):
    """The result of a ``confirm=True`` tool call that the human rejected.

    A ``str`` (the text to send back to the model, which says the call was rejected by the
    user), so it can be used as message content directly; check
    ``isinstance(result, ToolRejected)`` to mark the tool message as an error.

    Attributes:
        tool: the tool's name.
        reason: the reason the human gave, if any.
    """

    tool: str
    reason: str | None

    def __new__(cls, tool: str, reason: str | None = None) -> ToolRejected:
        text = f"Error: the call of tool {tool!r} was rejected by the user."
        if reason:
            text += f" Reason: {reason}"
        self = super().__new__(cls, text)
        self.tool = tool
        self.reason = reason
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (ToolRejected, (self.tool, self.reason))


def _describe_input(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_errors(tool: str, errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors:
        loc = ".".join(str(x) for x in err.get("loc", ())) or "(arguments)"
        part = f"{loc!r}: {err.get('msg', 'invalid')}"
        if err.get("type") not in ("missing", "extra_forbidden") and "input" in err:
            part += f" (got {_describe_input(err['input'])})"
        elif err.get("type") == "extra_forbidden":
            part = f"{loc!r}: unexpected argument (the tool does not take it)"
        parts.append(part)
    return f"tool {tool!r}: invalid arguments: " + "; ".join(parts)


def _is_async(fn: Any) -> bool:
    while hasattr(fn, "func") and not inspect.isfunction(fn):  # functools.partial
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None))  # noqa: B004 - callable objects with async __call__


class Tool:
    """A function the model can call, with its JSON schema and argument validation.

    Args:
        fn: the function (sync or async). Its type hints give the argument schema; its
            Google-style docstring gives the description (first paragraph) and the argument
            descriptions (``Args:`` section).
        name: the tool's name (default: the function's name); must match
            ``^[a-zA-Z0-9_-]{1,64}$``.
        description: overrides the docstring's description.
        confirm: ask a human before each call (via ``interrupt``; needs a running graph with a
            checkpointer): ``"approve"``/``True`` runs the call, ``"reject"``/``False`` (or
            ``{"reject": reason}``) returns a :class:`ToolRejected`, ``{"edit": {...}}`` runs it
            with the edited arguments (validated again).
        timeout: seconds a call may take; a longer call raises :class:`ToolTimeoutError` (a sync
            function keeps running in its thread; its result is dropped).

    Parameters annotated :class:`InjectedState` (or named ``state``), :class:`RunContext` or
    :class:`InjectedStore` are injected by :meth:`invoke` and hidden from the schema.
    """

    def __init__(self, fn: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None, confirm: bool = False,
                 timeout: float | None = None) -> None:
        if not callable(fn):
            raise ToolDefinitionError(f"Tool() needs a function, got {fn!r}")
        if name is None:
            base = fn
            while hasattr(base, "func") and not hasattr(base, "__name__"):  # partial
                base = base.func
            name = getattr(base, "__name__", None) or type(fn).__name__
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ToolDefinitionError(
                f"invalid tool name {name!r}: a tool name must be 1 to 64 characters among "
                f"letters, digits, '_' and '-' (pattern ^[a-zA-Z0-9_-]{{1,64}}$); "
                f"pass name=... to @tool / Tool()")
        if timeout is not None and not timeout > 0:
            raise ToolDefinitionError(f"tool {name!r}: timeout must be > 0 seconds, "
                                      f"got {timeout!r}")
        self.func = fn
        self.name = name
        self.confirm = bool(confirm)
        self.timeout = timeout
        self.is_async = _is_async(fn)
        self._description = description
        self._signature: Signature | None = None
        self._schema: dict[str, Any] | None = None
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__wrapped__ = fn

    # ------------------------------------------------------------------ introspection

    def _sig(self) -> Signature:
        sig = self._signature
        if sig is None:
            sig = self._signature = analyze(self.func, self.name)
        return sig

    @property
    def description(self) -> str:
        """The description sent to the model (``description=`` or the docstring's first
        paragraph)."""
        if self._description is not None:
            return self._description
        return self._sig().description

    @property
    def args_model(self) -> type[BaseModel]:
        """The pydantic model that validates the arguments (fields aliased to the names)."""
        return self._sig().model

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON schema of the arguments (built once, then cached; do not mutate it)."""
        schema = self._schema
        if schema is None:
            model = self._sig().model
            try:
                schema = json_schema(model)
            except Exception as exc:  # a type pydantic validates but cannot describe
                raise ToolDefinitionError(
                    f"tool {self.name!r}: cannot build the JSON schema of its arguments: "
                    f"{exc}") from exc
            self._schema = schema
        return schema

    parameters = schema

    @property
    def injected(self) -> dict[str, str]:
        """The parameters :meth:`invoke` fills in: name -> ``"state"``, ``"context"`` or
        ``"store"``. They are not in :attr:`schema`; the model cannot set them."""
        return {p.name: p.injected for p in self._sig().params if p.injected is not None}

    def to_openai(self) -> dict[str, Any]:
        """The tool in OpenAI's format: ``{"type": "function", "function": {...}}``."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.schema}}

    def to_anthropic(self) -> dict[str, Any]:
        """The tool in Anthropic's format: ``{"name", "description", "input_schema"}``."""
        return {"name": self.name, "description": self.description, "input_schema": self.schema}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation, confirmation or timeout)."""
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        extra = "".join([", confirm=True" if self.confirm else "",
                         f", timeout={self.timeout:g}" if self.timeout else ""])
        return f"Tool(name={self.name!r}{extra})"

    # ------------------------------------------------------------------ arguments

    def validate(self, args: Mapping[str, Any] | str | None) -> dict[str, Any]:
        """Validate the model's arguments; returns parameter name -> value (with defaults).

        ``args`` is a dict (a JSON object text or None are accepted too). Raises
        :class:`ToolArgumentError` naming the tool and each bad argument.
        """
        return self._values(self._validated(args))

    def _values(self, model: BaseModel) -> dict[str, Any]:
        fields = self._sig().fields
        return {fields[f]: getattr(model, f) for f in fields}

    def _validated(self, args: Any) -> BaseModel:
        if type(args) is not dict:  # models send dicts; the rest is turned into one first
            args = self._as_dict(args)
        try:
            return self._sig().model.model_validate(args)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            raise ToolArgumentError(self.name, _format_errors(self.name, errors),
                                    errors) from None

    def _as_dict(self, args: Any) -> dict[str, Any]:
        """``args`` given as None, JSON text, a pydantic model or any mapping, as a dict."""
        if args is None:
            return {}
        if isinstance(args, str | bytes):
            try:
                args = json.loads(args or "{}")
            except ValueError as exc:
                raise ToolArgumentError(
                    self.name, f"tool {self.name!r}: the arguments are not valid JSON "
                               f"({exc}): {args!r:.200}") from None
        if isinstance(args, BaseModel):
            args = args.model_dump(by_alias=True)
        if not isinstance(args, Mapping):
            raise ToolArgumentError(
                self.name, f"tool {self.name!r}: the arguments must be a JSON object "
                           f"(a dict), got {type(args).__name__}")
        return dict(args)

    def _bind(self, values: dict[str, Any], state: Any, ctx: Any,
              ) -> tuple[list[Any], dict[str, Any]]:
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for p in self._sig().params:
            if p.injected is None:
                value = values[p.name]
            else:
                value = self._injected_value(p.injected, p.state_key, state, ctx)
                if value is None and p.default is not inspect.Parameter.empty:
                    value = p.default
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                positional.append(value)
            else:
                keywords[p.name] = value
        return positional, keywords

    @staticmethod
    def _injected_value(kind: str, key: str | None, state: Any, ctx: Any) -> Any:
        if kind == "state":
            if key is None or state is None:
                return state
            if isinstance(state, Mapping):
                return state.get(key)
            return getattr(state, key, None)
        if kind == "context":
            return ctx
        store = getattr(ctx, "store", None)
        if store is not None:
            return store
        context = getattr(ctx, "context", None)
        if isinstance(context, Mapping):
            return context.get("store")
        return getattr(context, "store", None)

    # ------------------------------------------------------------------ confirmation

    def _confirm(self, model: BaseModel) -> dict[str, Any] | ToolRejected:
        question = {
            "tool": self.name,
            "args": model.model_dump(mode="json", by_alias=True),
            "question": (f"Allow the tool {self.name!r} to run with these arguments? Answer "
                         f"'approve', 'reject' or {{'edit': {{...new arguments...}}}}."),
        }
        try:
            answer = interrupt(question)
        except GraphflowError as exc:
            raise ToolConfirmationError(
                f"tool {self.name!r} has confirm=True: confirmation needs a running graph with "
                f"a checkpointer (call the tool inside a node of a graph compiled with "
                f"checkpointer=... and invoked with thread=...), so the run can pause and ask "
                f"a human ({exc})") from exc
        if answer is True or (isinstance(answer, str) and answer.strip().lower() == "approve"):
            return self._values(model)
        if answer is False or (isinstance(answer, str) and answer.strip().lower() == "reject"):
            return ToolRejected(self.name)
        if isinstance(answer, Mapping) and len(answer) == 1:
            if "edit" in answer:
                return self.validate(answer["edit"])
            if "reject" in answer:
                reason = answer["reject"]
                return ToolRejected(self.name, reason if isinstance(reason, str) else None)
        # Fail closed: an answer we cannot read never runs the tool.
        return ToolRejected(self.name, f"unrecognized confirmation answer {answer!r} (expected "
                                       f"'approve', 'reject' or {{'edit': {{...}}}})")

    # ------------------------------------------------------------------ calling

    def _prepare(self, args: Any, state: Any, ctx: Any,
                 ) -> tuple[list[Any], dict[str, Any]] | ToolRejected:
        model = self._validated(args)
        if not self.confirm:
            return self._bind(self._values(model), state, ctx)
        confirmed = self._confirm(model)
        if isinstance(confirmed, ToolRejected):
            return confirmed
        return self._bind(confirmed, state, ctx)

    @traced_tool
    def invoke(self, args: Mapping[str, Any] | None = None, *, state: Any = None,
               ctx: Any = None) -> Any:
        """Validate ``args``, ask for confirmation if needed, call the function, return its
        result.

        Args:
            args: the model's arguments (a dict).
            state: the graph state, for parameters annotated ``InjectedState``/named ``state``.
            ctx: the node's :class:`RunContext`, for parameters annotated ``RunContext`` and
                for the store (``ctx.store``, else taken from ``ctx.context``).

        Raises:
            ToolArgumentError: the arguments do not validate.
            ToolTimeoutError: the call took longer than ``timeout``.
            ToolConfirmationError: ``confirm=True`` outside a checkpointed graph run.
            Exception: whatever the function raised, unchanged.
        """
        prepared = self._prepare(args, state, ctx)
        if isinstance(prepared, ToolRejected):
            return prepared
        positional, keywords = prepared
        if self.is_async:
            return self._run_coroutine(lambda: self._acall(positional, keywords))
        if self.timeout is None:
            result = self.func(*positional, **keywords)
        else:  # on a worker thread, so that the caller can stop waiting
            job = workers.start(functools.partial(self.func, *positional, **keywords))
            if not job.wait(self.timeout):
                raise ToolTimeoutError(self.name, self.timeout)
            result = job.result()
        if inspect.isawaitable(result):  # a sync function that returned a coroutine
            return self._run_coroutine(lambda: self._await(result))
        return result

    @traced_atool
    async def ainvoke(self, args: Mapping[str, Any] | None = None, *, state: Any = None,
                      ctx: Any = None) -> Any:
        """Async :meth:`invoke`. A sync function runs in a thread (the loop is not blocked)."""
        prepared = self._prepare(args, state, ctx)
        if isinstance(prepared, ToolRejected):
            return prepared
        positional, keywords = prepared
        if self.is_async:
            return await self._acall(positional, keywords)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(job: workers.Job) -> None:
            def set_outcome() -> None:
                if future.done():
                    return
                if job.error is not None:
                    future.set_exception(job.error)
                else:
                    future.set_result(job.value)
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(set_outcome)

        workers.start(functools.partial(self.func, *positional, **keywords), then=settle)
        result = await self._with_timeout(future)
        if inspect.isawaitable(result):
            result = await self._with_timeout(result)
        return result

    async def _with_timeout(self, awaitable: Any) -> Any:
        if self.timeout is None:
            return await awaitable
        try:
            async with asyncio.timeout(self.timeout) as scope:
                return await awaitable
        except TimeoutError:
            if scope.expired():
                raise ToolTimeoutError(self.name, self.timeout) from None
            raise

    async def _acall(self, positional: list[Any], keywords: dict[str, Any]) -> Any:
        return await self._with_timeout(self.func(*positional, **keywords))

    async def _await(self, awaitable: Any) -> Any:
        return await self._with_timeout(awaitable)

    @staticmethod
    def _run_coroutine(make: Callable[[], Any]) -> Any:
        """Run a coroutine to completion from sync code (in a worker thread when this thread
        already runs an event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(make())
        job = workers.start(lambda: asyncio.run(make()))
        job.wait()
        return job.result()


@overload
def tool(fn: Callable[..., Any], /) -> Tool: ...


@overload
def tool(*, name: str | None = None, description: str | None = None, confirm: bool = False,
         timeout: float | None = None) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(fn: Callable[..., Any] | None = None, /, *, name: str | None = None,
         description: str | None = None, confirm: bool = False,
         timeout: float | None = None) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` of a function: ``@tool`` or ``@tool(name=..., confirm=True)``.

    Example::

        @tool
        def add(a: int, b: int = 1) -> int:
            '''Add two integers.

            Args:
                a: the first number.
                b: the second number.
            '''
            return a + b

        add.schema        # {"type": "object", "properties": {"a": ..., "b": ...}, ...}
        add.invoke({"a": 2})  # 3
    """
    if fn is not None:
        if isinstance(fn, str):
            raise ToolDefinitionError(
                f"@tool({fn!r}): pass the name as a keyword: @tool(name={fn!r})")
        return Tool(fn, name=name, description=description, confirm=confirm, timeout=timeout)

    def decorate(f: Callable[..., Any]) -> Tool:
        return Tool(f, name=name, description=description, confirm=confirm, timeout=timeout)

    return decorate
