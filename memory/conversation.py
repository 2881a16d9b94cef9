"""Conversation windows: :func:`trim_messages` and :class:`ConversationMemory`.

Tokens are counted with the models' own counter (:mod:`graphflow.models.tokens`, tiktoken's
cl100k_base, offline). Trimming walks back from the newest message and stops when the budget is
spent, so its cost grows with the window, not with the history: a 10,000-message history is
trimmed as fast as a 100-message one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Literal

from graphflow.messages import (
    AIMessage,
    HumanMessage,
    Message,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    all_messages,
    to_messages,
)

__all__ = ["SUMMARY_PROMPT", "ConversationMemory", "trim_messages"]

Counter = Callable[[Message], int]


_COUNTS: dict[tuple[Any, ...], int] = {}  # (model, class, id, name, content) -> tokens
_COUNTS_MAX = 200_000


def _counter(model: str, token_counter: Counter | None) -> Counter:
    """The tiktoken counter of the models, remembering each message's count: an agent trims
    the same history plus a few new messages every turn, so after the first turn only the new
    messages are encoded. Messages with tool calls are counted each time (their arguments are
    dicts)."""
    if token_counter is not None:
        return token_counter
    from graphflow.models.tokens import message_counter

    count = message_counter(model)
    cache = _COUNTS

    def cached(msg: Message) -> int:
        if getattr(msg, "tool_calls", None):
            return count(msg)
        key = (model, type(msg), msg.id, msg.name, msg.content)
        n = cache.get(key)
        if n is None:
            if len(cache) >= _COUNTS_MAX:
                cache.clear()
            n = cache[key] = count(msg)
        return n

    return cached


def _as_list(messages: Any) -> list[Message]:
    if type(messages) is not list:
        messages = to_messages(messages)
    if not all_messages(messages):
        messages = [m for m in to_messages(messages) if isinstance(m, Message)]  # no Remove...
    return messages  # type: ignore[no-any-return]


def _window_start(msgs: list[Message], budget: int, count: Counter,
                  start_on: str | None, pinned: bool = True) -> int:
    """Index where the kept tail starts: as many of the newest messages as fit in ``budget``,
    an assistant tool call never separated from its results; system messages cost nothing here
    (they are pinned and counted by the caller)."""
    start = len(msgs)
    spent = 0
    i = len(msgs) - 1
    while i >= 0:
        # the unit ending at i: a message, or an assistant tool call with its tool results
        j = i
        while j >= 0 and type(msgs[j]) is ToolMessage:
            j -= 1
        if j < i and not (j >= 0 and isinstance(msgs[j], AIMessage) and msgs[j].tool_calls):
            j = i  # tool results without their call (already broken): each stands alone
        cost = sum(count(msgs[x]) for x in range(j, i + 1)
                   if not pinned or type(msgs[x]) is not SystemMessage)
        if spent + cost > budget:
            break
        spent += cost
        start = j
        i = j - 1
    if start_on == "human":
        while start < len(msgs) and not isinstance(msgs[start], (HumanMessage, SystemMessage)):
            start += 1
    return start


def _positions(msgs: list[Message], cls: type) -> list[int]:
    """Indices of the messages of exactly ``cls``, found with C-level list scans (a long
    history has few system messages: the loop runs once per match, not per message)."""
    kinds = list(map(type, msgs))
    out: list[int] = []
    i = -1
    for _ in range(kinds.count(cls)):
        i = kinds.index(cls, i + 1)
        out.append(i)
    return out


def trim_messages(messages: Any, max_tokens: int, *, model: str = "gpt-4o-mini",
                  token_counter: Counter | None = None, keep_system: bool = True,
                  start_on: Literal["human"] | None = None) -> list[Message]:
    """The newest messages that fit in ``max_tokens``, the way a model request counts them.

    - System messages are pinned (kept wherever they are; ``keep_system=False`` treats them
      as any other message).
    - An assistant message with tool calls is kept together with its tool results, or dropped
      with them: a trimmed history never holds a call without its result or the reverse.
    - ``start_on="human"``: drop leading non-user messages of the kept tail (providers such as
      Anthropic want the conversation to start with a user turn).
    - ``token_counter``: count a message another way (default: tiktoken, as ``count_tokens``).

    When the pinned system messages alone exceed the budget, only they are returned.
    """
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
    msgs = _as_list(messages)
    count = _counter(model, token_counter)
    from graphflow.models.tokens import REPLY_PRIMING

    pinned = _positions(msgs, SystemMessage) if keep_system else []
    budget = max_tokens - REPLY_PRIMING - sum(count(msgs[i]) for i in pinned)
    if budget <= 0:
        return [msgs[i] for i in pinned]
    start = _window_start(msgs, budget, count, start_on, keep_system)
    return [msgs[i] for i in pinned if i < start] + msgs[start:]


SUMMARY_PROMPT = (
    "You keep a running summary of a conversation between a user and an assistant. Update the "
    "summary with the new messages: keep names, facts, preferences, decisions, results of tool "
    "calls and open questions; drop chit-chat. Answer with the updated summary only, at most "
    "{words} words.")


def _transcript(msgs: Sequence[Message]) -> str:
    lines = []
    for m in msgs:
        text = m.content
        if isinstance(m, AIMessage) and m.tool_calls:
            calls = ", ".join(f"{c.name}({c.args})" for c in m.tool_calls)
            text = f"{text} [calls {calls}]".strip()
        lines.append(f"{m.role}: {text}")
    return "\n".join(lines)


class ConversationMemory:
    """A token-budgeted window over a conversation, with an optional running summary of what
    falls out of it.

    Use it three ways:

    - ``prepare(messages)`` — what the model sees this turn: pinned system messages, the
      summary of older turns (as a system message), then the newest messages that fit. Agents
      call this (see :class:`Prepares`).
    - as a graph node (``g.add_node("memory", ConversationMemory(...))``, diagram kind
      ``"memory"``): writes the updated summary into ``state[summary_key]`` and, with
      ``prune=True``, removes summarized messages from the state.
    - ``update(messages, summary)`` — the summary as a value, for your own nodes.

    Summaries are incremental: each update folds only the messages that left the window since
    the last one into the previous summary (one model call with the old summary plus those
    messages), never the whole history again. A summary is a dict ``{"text", "through",
    "count"}``: its text, the id of the last message it covers, how many messages it covers.

    Args:
        max_tokens: the window's budget (the summary message included).
        model: the model name tokens are counted for.
        summarizer: a chat model that writes the summary (None: older messages are dropped).
        summary_words: the summary's length limit, told to the summarizer.
        messages_key, summary_key: state keys used as a node.
        prune: as a node, also remove the summarized messages from the state.
    """

    graphflow_kind = "memory"

    def __init__(self, max_tokens: int = 3000, *, model: str = "gpt-4o-mini",
                 summarizer: Any = None, summary_words: int = 200,
                 token_counter: Counter | None = None, messages_key: str = "messages",
                 summary_key: str = "summary", prune: bool = False) -> None:
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.model = model
        self.summarizer = summarizer
        self.summary_words = summary_words
        self.token_counter = token_counter
        self.messages_key = messages_key
        self.summary_key = summary_key
        self.prune = prune
        self.__name__ = "memory"
        # conversation (its first message's id) -> its latest summary, for prepare()
        self._summaries: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    # -- the window --------------------------------------------------------------------------

    def _split(self, msgs: list[Message], summary: dict[str, Any] | None,
               budget: int | None = None) -> tuple[list[Message], list[Message]]:
        """(what the model sees without the summary message, the messages left out)."""
        budget = self.max_tokens if budget is None else budget
        has_summary = bool(summary and summary.get("text"))
        if self.summarizer is not None or has_summary:
            kept = trim_messages(msgs, budget, model=self.model, token_counter=self.token_counter)
            if has_summary or len(kept) < len(msgs):
                # room for the summary, the same each turn (the limit the summarizer is given,
                # or the summary's real size if it is longer), so the window does not move
                # when the summary changes: each message leaves it, and is summarized, once
                count = _counter(self.model, self.token_counter)
                reserve = int(self.summary_words * 1.5) + 20
                if has_summary:
                    reserve = max(reserve, count(self._summary_message(summary)))  # type: ignore
                budget -= reserve
        kept = trim_messages(msgs, max(budget, 0), model=self.model,
                             token_counter=self.token_counter, start_on="human")
        kept_ids = {id(m) for m in kept}
        dropped = [m for m in msgs if id(m) not in kept_ids]
        return kept, dropped

    @staticmethod
    def _summary_message(summary: dict[str, Any]) -> SystemMessage:
        return SystemMessage(id="conversation-summary",
                             content="Summary of the earlier conversation:\n" + summary["text"])

    def _pending(self, dropped: list[Message], summary: dict[str, Any] | None,
                 ) -> list[Message]:
        """Dropped messages the summary does not cover yet (system messages never count)."""
        through = (summary or {}).get("through")
        new = [m for m in dropped if type(m) is not SystemMessage]
        if through is not None:
            ids = [m.id for m in new]
            if through in ids:
                new = new[ids.index(through) + 1:]
        return new

    def _request(self, summary: dict[str, Any] | None, new: list[Message]) -> list[Message]:
        old = (summary or {}).get("text") or "(none yet)"
        return [SystemMessage(content=SUMMARY_PROMPT.format(words=self.summary_words)),
                HumanMessage(content=f"Current summary:\n{old}\n\nNew messages:\n"
                                     f"{_transcript(new)}")]

    def _folded(self, summary: dict[str, Any] | None, new: list[Message], text: str,
                ) -> dict[str, Any]:
        return {"text": text.strip(), "through": new[-1].id,
                "count": int((summary or {}).get("count", 0)) + len(new)}

    def _new(self, msgs: list[Message], summary: dict[str, Any] | None,
             budget: int | None) -> list[Message]:
        """The messages to fold into the summary now (none without a summarizer)."""
        if self.summarizer is None:
            return []
        _, dropped = self._split(msgs, summary, budget)
        return self._pending(dropped, summary)

    def update(self, messages: Any, summary: dict[str, Any] | None = None, *,
               max_tokens: int | None = None) -> dict[str, Any] | None:
        """The summary after folding in the messages that left the window (the same summary
        when none did, or when there is no summarizer)."""
        new = self._new(_as_list(messages), summary, max_tokens)
        if not new:
            return summary
        answer = self.summarizer.invoke(self._request(summary, new))
        return self._folded(summary, new, answer.content)

    async def aupdate(self, messages: Any, summary: dict[str, Any] | None = None, *,
                      max_tokens: int | None = None) -> dict[str, Any] | None:
        """Async :meth:`update`."""
        new = self._new(_as_list(messages), summary, max_tokens)
        if not new:
            return summary
        answer = await self.summarizer.ainvoke(self._request(summary, new))
        return self._folded(summary, new, answer.content)

    def window(self, messages: Any, summary: dict[str, Any] | None = None, *,
               max_tokens: int | None = None) -> list[Message]:
        """What the model sees, given a summary (no model call); ``max_tokens`` overrides the
        budget (HybridMemory gives the window what its recalled memories leave)."""
        msgs = _as_list(messages)
        kept, _ = self._split(msgs, summary, max_tokens)
        if not (summary and summary.get("text")):
            return kept
        n = 0
        while n < len(kept) and type(kept[n]) is SystemMessage:
            n += 1
        return [*kept[:n], self._summary_message(summary), *kept[n:]]

    # -- the Agent interface -----------------------------------------------------------------

    def _remembered(self, msgs: list[Message]) -> tuple[str, dict[str, Any] | None]:
        key = msgs[0].id if msgs else ""
        with self._lock:
            return key, self._summaries.get(key)

    def _remember(self, key: str, summary: dict[str, Any] | None) -> None:
        if summary is None:
            return
        with self._lock:
            self._summaries[key] = summary
            self._summaries.move_to_end(key)
            while len(self._summaries) > 1024:
                self._summaries.popitem(last=False)

    def prepare(self, messages: Any, *, max_tokens: int | None = None) -> list[Message]:
        """What the model sees this turn (summarizing what left the window, incrementally:
        the summary of this conversation so far is kept by this object between calls)."""
        msgs = _as_list(messages)
        key, summary = self._remembered(msgs)
        summary = self.update(msgs, summary, max_tokens=max_tokens)
        self._remember(key, summary)
        return self.window(msgs, summary, max_tokens=max_tokens)

    async def aprepare(self, messages: Any, *, max_tokens: int | None = None) -> list[Message]:
        """Async :meth:`prepare`."""
        msgs = _as_list(messages)
        key, summary = self._remembered(msgs)
        summary = await self.aupdate(msgs, summary, max_tokens=max_tokens)
        self._remember(key, summary)
        return self.window(msgs, summary, max_tokens=max_tokens)

    # -- as a node ---------------------------------------------------------------------------

    def _node_update(self, state: Any, summary: dict[str, Any] | None,
                     old: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if summary is not old:
            out[self.summary_key] = summary
        if self.prune and summary:
            msgs = _as_list(_get(state, self.messages_key) or [])
            ids = [m.id for m in msgs]
            through = summary.get("through")
            if through in ids:
                end = ids.index(through) + 1
                out[self.messages_key] = [RemoveMessage(id=m.id) for m in msgs[:end]
                                          if type(m) is not SystemMessage]
        return out

    def __call__(self, state: Any) -> dict[str, Any]:
        old = _get(state, self.summary_key)
        summary = self.update(_get(state, self.messages_key) or [], old)
        return self._node_update(state, summary, old)

    def anode(self) -> AsyncConversationNode:
        """This memory as an async node (the summarizer called with ``ainvoke``)."""
        return AsyncConversationNode(self)

    def __repr__(self) -> str:
        return (f"ConversationMemory(max_tokens={self.max_tokens}, "
                f"summarizer={self.summarizer!r})")


class AsyncConversationNode:
    """``ConversationMemory`` as an async node (``memory.anode()``)."""

    graphflow_kind = "memory"

    def __init__(self, memory: ConversationMemory) -> None:
        self.memory = memory
        self.__name__ = "memory"

    async def __call__(self, state: Any) -> dict[str, Any]:
        m = self.memory
        old = _get(state, m.summary_key)
        summary = await m.aupdate(_get(state, m.messages_key) or [], old)
        return m._node_update(state, summary, old)


def _get(state: Any, key: str) -> Any:
    if isinstance(state, dict):
        return state.get(key)
    return getattr(state, key, None)

