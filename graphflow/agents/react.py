""":class:`ReActNode`: an agent for models without native tool calling (the ReAct text
protocol).

The model gets a system prompt listing the tools (name, description, JSON schema of the
arguments) and the format::

    Thought: ...
    Action: tool_name
    Action Input: {"arg": "value"}
    Observation: (the tool's result, written by the node)
    ... (repeats)
    Final Answer: ...

Each reply is read by :func:`~graphflow.agents.react_parser.parse_react` (forgiving: JSON
repair, loose labels, unknown tools reported back with the valid names).

Messages the node writes (``return_intermediate_steps=True``, the default) — the same whether
the node runs the tools itself or a :class:`ToolNode` does:

- for an action: the model's reply (its raw ``Thought/Action/Action Input`` text) as an
  ``AIMessage`` carrying the parsed ``ToolCall``, then the tool's ``ToolMessage`` (shown to the
  model as ``Observation: ...``);
- for a reply it could not use: the raw reply as an ``AIMessage`` without tool calls, then a
  ``HumanMessage(name="observation")`` with the explanation (it does not start a new turn);
- at the end: an ``AIMessage`` whose content is just the final answer (or, when
  ``max_iterations`` model calls were made without one, a message saying so).

With ``return_intermediate_steps=False`` only the final ``AIMessage`` is written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..messages import (
    AIMessage,
    HumanMessage,
    Message,
    SystemMessage,
    ToolCall,
    ToolMessage,
    starts_with,
)
from .react_parser import ReActError, ReActFinal, _ToolInfo, parse_react
from .state import OBSERVATION, as_tools, limit_message, messages_of, model_calls_this_turn
from .tool_node import ToolNode

__all__ = ["ReActNode", "react_system_prompt"]

_CACHE_SIZE = 4096
DEFAULT_INTRO = "Answer the user's request as well as you can."

_FORMAT = """To use a tool, reply in exactly this format:

Thought: think about what to do next
Action: the tool to use, one of [{names}]
Action Input: the tool's arguments, as a JSON object

Then stop writing: the tool's result comes back to you as
Observation: the result

Thought, Action, Action Input and Observation can repeat. When you know the answer, reply:

Thought: I now know the final answer
Final Answer: the answer to the user's request"""


def react_system_prompt(tools: Iterable[Any], system: str | None = None) -> str:
    """The system prompt of the ReAct protocol for ``tools`` (``system`` comes first)."""
    tools = list(tools)
    intro = system.strip() if system else DEFAULT_INTRO
    if not tools:
        return (f"{intro}\n\nYou have no tools. Reply in this format:\n\nThought: ...\n"
                f"Final Answer: the answer to the user's request")
    lines = []
    for t in tools:
        lines.append(f"- {t.name}: {t.description or '(no description)'}\n"
                     f"  Arguments (JSON schema): {json.dumps(t.schema, sort_keys=True)}")
    return (f"{intro}\n\nYou can use these tools:\n\n" + "\n".join(lines) + "\n\n"
            + _FORMAT.format(names=", ".join(t.name for t in tools)))


class ReActNode:
    """An agent node speaking the ReAct text protocol, looping inside the node.

    Each iteration calls the model, reads its reply and runs the tool it asked for (tools run
    like in :class:`ToolNode`: errors become Observations, ``confirm=True`` tools pause the
    run; each call is journaled, so a resumed node replays finished model calls and tool calls
    instead of repeating them). The loop stops at a ``Final Answer`` or after
    ``max_iterations`` model calls (counting those already made for the current request), with
    a final message saying the limit was hit.

    Args:
        model: a :class:`~graphflow.models.ChatModel` (no tool-calling support needed).
        tools: ``@tool`` functions, ``Tool`` objects or plain functions.
        max_iterations: the most model calls per request.
        system: instructions put before the protocol's description in the system prompt.
        messages_key: the state key holding the messages.
        execute_tools: False: stop after each action (the ``AIMessage`` carrying the tool
            call) and let a :class:`ToolNode` run it — what :func:`create_react_agent` does.
        return_intermediate_steps: write the actions, observations and unreadable replies to
            the state (see the module docstring); False: only the final answer.
        tool_timeout: seconds each tool call may take (``ToolNode(timeout=...)``).
    """

    graphflow_kind = "agent"
    __name__ = "agent"

    def __init__(self, model: Any, tools: Iterable[Any] = (), *, max_iterations: int = 10,
                 system: str | None = None, messages_key: str = "messages",
                 execute_tools: bool = True, return_intermediate_steps: bool = True,
                 tool_timeout: float | None = None) -> None:
        if max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {max_iterations!r}")
        self.model = model
        self.tools = as_tools(tools)
        self.max_iterations = max_iterations
        self.messages_key = messages_key
        self.execute_tools = execute_tools
        self.return_intermediate_steps = return_intermediate_steps
        self.system_prompt = react_system_prompt(self.tools, system)
        self._system = SystemMessage(content=self.system_prompt)
        self._info = _ToolInfo(self.tools)
        self._tool_node = ToolNode(self.tools, timeout=tool_timeout)
        # rendered transcript messages by id (the state's message objects live on from step
        # to step, so each is rendered once); bounded, checked by identity
        self._rendered: dict[str, tuple[Message, Message]] = {}
        # the last (messages, transcript) pair: the next call usually extends those messages
        self._last: tuple[list[Message], list[Message]] = ([], [])

    def __repr__(self) -> str:
        return f"ReActNode({self.model!r}, tools=[{', '.join(self._info.names)}])"

    # -- the transcript the model reads ------------------------------------------------------

    def transcript(self, messages: Iterable[Message]) -> list[Message]:
        """The conversation as the model sees it: the protocol's system prompt, then the
        messages with tool calls as text and tool results as ``Observation:`` lines."""
        messages = list(messages)
        seen, shown_before = self._last
        if seen and starts_with(messages, seen):
            out, tail = list(shown_before), messages[len(seen):]
        else:
            out, tail = [self._system], messages
        cache = self._rendered
        if len(cache) > _CACHE_SIZE:
            cache.clear()
        for msg in tail:
            hit = cache.get(msg.id)
            if hit is not None and hit[0] is msg:
                out.append(hit[1])
                continue
            shown = self._render(msg)
            if shown is not msg:
                cache[msg.id] = (msg, shown)
            out.append(shown)
        self._last = (messages, list(out))
        return out

    @staticmethod
    def _render(msg: Message) -> Message:
        if isinstance(msg, AIMessage):
            if not msg.tool_calls:
                return msg
            text = msg.content
            if not text.strip():
                text = "\n".join(f"Action: {c.name}\nAction Input: {json.dumps(c.args)}"
                                 for c in msg.tool_calls)
            return AIMessage(id=msg.id, content=text)
        if isinstance(msg, ToolMessage):
            return HumanMessage(id=msg.id, content=f"Observation: {msg.content}")
        if isinstance(msg, HumanMessage) and msg.name == OBSERVATION:
            return HumanMessage(id=msg.id, content=msg.content)  # the name is ours only
        return msg

    # -- one iteration -------------------------------------------------------------------------

    def _read(self, reply: AIMessage, new: list[Message]) -> ToolCall | None:
        """Append what ``reply`` means to ``new``; the tool call to run, if any."""
        step = parse_react(reply.content, self._info)
        if isinstance(step, ReActFinal):
            new.append(reply.model_copy(update={"content": step.answer, "tool_calls": []}))
            return None
        if isinstance(step, ReActError):
            new.append(reply.model_copy(update={"tool_calls": []}))
            new.append(HumanMessage(content=f"Observation: {step.message}", name=OBSERVATION))
            return None
        call = ToolCall(id=f"call_{reply.id[:24]}", name=step.tool, args=step.args)
        new.append(reply.model_copy(update={"tool_calls": [call]}))
        return call

    def _finish(self, new: list[Message]) -> dict[str, Any]:
        if self.return_intermediate_steps:
            return {self.messages_key: new}
        return {self.messages_key: new[-1:]}

    def _tool_state(self, state: Any, messages: list[Message]) -> Any:
        if isinstance(state, dict):
            return {**state, self.messages_key: messages}
        return state

    def _done(self, new: list[Message]) -> bool:
        """Whether the last reply ended the node's work (answer, or an action to hand over)."""
        last = new[-1]
        return isinstance(last, AIMessage) and (not last.tool_calls or not self.execute_tools)

    # -- node entry points ---------------------------------------------------------------------

    def __call__(self, state: Any, ctx: Any = None) -> dict[str, Any]:
        history = messages_of(state, self.messages_key)
        used = model_calls_this_turn(history)
        new: list[Message] = []
        while True:
            if used >= self.max_iterations:
                new.append(limit_message(self.max_iterations))
                return self._finish(new)
            reply = self.model.invoke(self.transcript([*history, *new]))
            used += 1
            call = self._read(reply, new)
            if self._done(new):
                return self._finish(new)
            if call is not None:
                new.extend(self._tool_node.run_calls(
                    [call], state=self._tool_state(state, [*history, *new]), ctx=ctx,
                    start=used))

    invoke = __call__

    async def ainvoke(self, state: Any, ctx: Any = None) -> dict[str, Any]:
        """Async twin of calling the node (``model.ainvoke``, async tool runs)."""
        history = messages_of(state, self.messages_key)
        used = model_calls_this_turn(history)
        new: list[Message] = []
        while True:
            if used >= self.max_iterations:
                new.append(limit_message(self.max_iterations))
                return self._finish(new)
            reply = await self.model.ainvoke(self.transcript([*history, *new]))
            used += 1
            call = self._read(reply, new)
            if self._done(new):
                return self._finish(new)
            if call is not None:
                new.extend(await self._tool_node.arun_calls(
                    [call], state=self._tool_state(state, [*history, *new]), ctx=ctx,
                    start=used))
