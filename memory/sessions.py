"""Sessions: state scoped to a session, a user, the app or one process (temp), and a message
history per session with export and pruning.

State keys choose their scope by prefix, as in AGNT5 and Google's ADK: ``"app:theme"`` is shared
by every user of the app, ``"user:name"`` by every session of one user, ``"temp:draft"`` lives
only in this process (never persisted), and a bare key (``"cart"``) belongs to the session.
Everything persistent lives in a :class:`BaseStore`, under the namespaces ``("app", app)``,
``("user", app, user)`` and ``("session", app, user, session)``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

from graphflow.messages import Message, SystemMessage, to_message
from graphflow.models.tokens import REPLY_PRIMING

from .conversation import SUMMARY_PROMPT, _transcript, trim_messages
from .store.base import BaseStore, namespace_key

__all__ = ["KeepPinned", "Session", "SessionManager", "SlidingWindow", "SummarizeOld"]

SCOPES = ("app", "user", "temp")


class SessionManager:
    """Opens sessions of one app in a store."""

    def __init__(self, store: BaseStore, app: str = "default") -> None:
        namespace_key((app,))
        self.store = store
        self.app = app

    def session(self, user: str, session_id: str | None = None) -> Session:
        """The session ``session_id`` of ``user`` (a new id when None)."""
        return Session(self, user, session_id or uuid.uuid4().hex)

    def sessions(self, user: str) -> list[str]:
        """The ids of ``user``'s sessions that hold state or messages."""
        found = self.store.list_namespaces(("session", self.app, user), max_depth=4)
        return sorted({ns[3] for ns in found if len(ns) >= 4})

    def delete(self, user: str, session_id: str) -> None:
        """Delete a session's state and messages (user and app state stay)."""
        base = ("session", self.app, user, session_id)
        for ns in self.store.list_namespaces(base):
            for item in self.store.search(ns, limit=1_000_000):
                self.store.delete(ns, item.key)


class Session(MutableMapping[str, Any]):
    """One conversation of one user: a mapping of scoped state (see the module docs) and a
    message history."""

    def __init__(self, manager: SessionManager, user: str, session_id: str) -> None:
        namespace_key((user, session_id))
        self.manager = manager
        self.store = manager.store
        self.user = user
        self.id = session_id
        self.temp: dict[str, Any] = {}
        self._ns = {
            "app": ("app", manager.app),
            "user": ("user", manager.app, user),
            "session": ("session", manager.app, user, session_id),
        }
        self._messages_ns = (*self._ns["session"], "messages")

    # -- scoped state ----------------------------------------------------------------------------

    def _where(self, key: str) -> tuple[str, str]:
        if not isinstance(key, str) or not key:
            raise KeyError(f"session state keys are non-empty strings, got {key!r}")
        scope, sep, name = key.partition(":")
        if sep and scope in SCOPES:
            if not name:
                raise KeyError(f"session state key {key!r} has a scope but no name")
            return scope, name
        return "session", key

    def __getitem__(self, key: str) -> Any:
        scope, name = self._where(key)
        if scope == "temp":
            return self.temp[name]
        item = self.store.get(self._ns[scope], name)
        if item is None:
            raise KeyError(key)
        return item.value["v"]

    def __setitem__(self, key: str, value: Any) -> None:
        scope, name = self._where(key)
        if scope == "temp":
            self.temp[name] = value
            return
        self.store.put(self._ns[scope], name, {"v": value}, index=False)

    def __delitem__(self, key: str) -> None:
        scope, name = self._where(key)
        if scope == "temp":
            del self.temp[name]
            return
        if self.store.get(self._ns[scope], name) is None:
            raise KeyError(key)
        self.store.delete(self._ns[scope], name)

    def _keys(self) -> list[str]:
        out = []
        for scope in ("app", "user", "session"):
            ns = self._ns[scope]
            names = [i.key for i in self.store.search(ns, limit=1_000_000) if i.namespace == ns]
            out += [n if scope == "session" else f"{scope}:{n}" for n in sorted(names)]
        return out + [f"temp:{k}" for k in self.temp]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    # -- messages ----------------------------------------------------------------------------

    def _records(self) -> list[Any]:
        items = self.store.search(self._messages_ns, limit=1_000_000)
        return sorted(items, key=lambda i: i.key)

    def add_messages(self, messages: Sequence[Any], *, pinned: bool = False) -> None:
        """Append messages (``pinned``: kept by :class:`KeepPinned` pruning)."""
        records = self._records()
        seq = int(records[-1].key) + 1 if records else 0
        for n, raw in enumerate(messages):
            msg = to_message(raw)
            if not isinstance(msg, Message):
                raise TypeError(f"session history takes messages, got {raw!r:.60}")
            self.store.put(self._messages_ns, f"{seq + n:012d}",
                           {"message": msg.model_dump(mode="json"), "pinned": pinned},
                           index=False)

    def add_message(self, message: Any, *, pinned: bool = False) -> None:
        self.add_messages([message], pinned=pinned)

    def messages(self) -> list[Message]:
        """The history, oldest first."""
        return [_load(r.value["message"]) for r in self._records()]

    def pinned(self) -> list[Message]:
        return [_load(r.value["message"]) for r in self._records() if r.value.get("pinned")]

    def pin(self, message_id: str) -> None:
        """Mark a stored message as pinned."""
        for r in self._records():
            if r.value["message"].get("id") == message_id:
                self.store.put(self._messages_ns, r.key, {**r.value, "pinned": True},
                               index=False)
                return
        raise KeyError(f"session {self.id!r} has no message with id {message_id!r}")

    def export_jsonl(self, target: str | Path | IO[str]) -> int:
        """Write the history as JSON lines (one message per line, with ``pinned``); returns
        the number of lines."""
        lines = [json.dumps({**r.value["message"], "pinned": bool(r.value.get("pinned"))},
                            ensure_ascii=False) for r in self._records()]
        text = "".join(line + "\n" for line in lines)
        if isinstance(target, (str, Path)):
            Path(target).write_text(text, encoding="utf-8")
        else:
            target.write(text)
        return len(lines)

    def prune(self, strategy: Callable[[list[Message], list[bool]], list[Message]]) -> int:
        """Replace the history with what ``strategy`` keeps (see :class:`SlidingWindow`,
        :class:`SummarizeOld`, :class:`KeepPinned`); returns how many messages were removed."""
        records = self._records()
        msgs = [_load(r.value["message"]) for r in records]
        flags = [bool(r.value.get("pinned")) for r in records]
        kept = strategy(msgs, flags)
        pinned_ids = {m.id for m, f in zip(msgs, flags, strict=True) if f}
        for r in records:
            self.store.delete(self._messages_ns, r.key)
        for n, msg in enumerate(kept):
            self.store.put(self._messages_ns, f"{n:012d}",
                           {"message": msg.model_dump(mode="json"),
                            "pinned": msg.id in pinned_ids}, index=False)
        before = {m.id for m in msgs}
        return len(msgs) - sum(1 for m in kept if m.id in before)

    def __repr__(self) -> str:
        return f"Session(user={self.user!r}, id={self.id!r})"


def _load(data: dict[str, Any]) -> Message:
    msg = to_message(dict(data))  # by its "type": one of the four message classes, nothing else
    assert isinstance(msg, Message)
    return msg


class SlidingWindow:
    """Keep the newest ``max_messages`` messages (and/or those within ``max_tokens``), never
    separating a tool call from its results; system messages are kept (and not counted)."""

    def __init__(self, max_messages: int | None = None, *, max_tokens: int | None = None,
                 model: str = "gpt-4o-mini") -> None:
        if max_messages is None and max_tokens is None:
            raise ValueError("SlidingWindow needs max_messages and/or max_tokens")
        self.max_messages = max_messages
        self.max_tokens = max_tokens
        self.model = model

    def __call__(self, msgs: list[Message], pinned: list[bool]) -> list[Message]:
        kept = msgs
        if self.max_tokens is not None:
            kept = trim_messages(kept, self.max_tokens, model=self.model)
        if self.max_messages is not None:
            kept = _last_n(kept, self.max_messages)
        return kept


def _last_n(msgs: list[Message], n: int) -> list[Message]:
    """The newest ``n`` messages besides the (kept) system messages, tool calls whole."""
    # every other message costs 1 "token"; the request overhead is added to the budget
    return trim_messages(msgs, n + REPLY_PRIMING,
                         token_counter=lambda m: 0 if type(m) is SystemMessage else 1)


class SummarizeOld:
    """Replace all but the newest ``keep_last`` messages by one system message summarizing
    them (one model call)."""

    def __init__(self, model: Any, *, keep_last: int = 10, words: int = 200) -> None:
        self.model = model
        self.keep_last = keep_last
        self.words = words

    def __call__(self, msgs: list[Message], pinned: list[bool]) -> list[Message]:
        recent = _last_n(msgs, self.keep_last)
        recent_ids = {m.id for m in recent}
        old = [m for m in msgs if m.id not in recent_ids and type(m) is not SystemMessage]
        if not old:
            return msgs
        answer = self.model.invoke([
            SystemMessage(content=SUMMARY_PROMPT.format(words=self.words)),
            ("user", "Current summary:\n(none yet)\n\nNew messages:\n" + _transcript(old))])
        summary = SystemMessage(content="Summary of the earlier conversation:\n"
                                + answer.content.strip())
        n = 0  # the summary goes after the (pinned) system messages the window starts with
        while n < len(recent) and type(recent[n]) is SystemMessage:
            n += 1
        return [*recent[:n], summary, *recent[n:]]


class KeepPinned:
    """Apply another strategy, then put back the pinned messages it dropped (in their
    original order)."""

    def __init__(self, inner: Callable[[list[Message], list[bool]], list[Message]]) -> None:
        self.inner = inner

    def __call__(self, msgs: list[Message], pinned: list[bool]) -> list[Message]:
        kept = self.inner(msgs, pinned)
        kept_ids = {m.id for m in kept}
        back = {m.id for m, p in zip(msgs, pinned, strict=True) if p and m.id not in kept_ids}
        if not back:
            return kept
        order = {m.id: i for i, m in enumerate(msgs)}
        restored = [m for m in msgs if m.id in back]
        merged = sorted([*kept, *restored], key=lambda m: order.get(m.id, -1))
        return merged
