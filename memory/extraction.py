""":class:`MemoryExtractor`: an LLM decides what a conversation adds to long-term memory.

The Mem0 pattern, in two structured-output calls: the model first lists the facts worth keeping
from the conversation; then, shown the stored memories most similar to those facts, it decides
per fact whether to ADD a new memory, UPDATE an existing one (its text replaced, its id kept),
DELETE one the conversation contradicts, or do NOTHING. Stored memories are shown to the model
with short numbers, not their real ids, so it cannot invent an id: a decision naming an
unknown number is ignored. Inside a graph both calls and every write are journaled: a resumed
node repeats nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from graphflow.checkpoint.serde import register_type
from graphflow.messages import HumanMessage, Message, SystemMessage

from .base import MemoryHit
from .conversation import _as_list, _transcript
from .nodes import resolve_memory

__all__ = ["DECIDE_PROMPT", "EXTRACT_PROMPT", "ExtractedFacts", "MemoryDecision",
           "MemoryDecisions", "MemoryExtractor"]

EXTRACT_PROMPT = (
    "You extract facts worth remembering about the user from a conversation: preferences, "
    "personal details, plans, decisions, corrections of earlier facts. Each fact is one short, "
    "self-contained sentence in the third person (\"The user is vegetarian.\"). Ignore "
    "greetings, questions without information, and what the assistant said unless the user "
    "confirmed it. Answer with JSON: {\"facts\": [...]} (an empty list when there is nothing).")

DECIDE_PROMPT = (
    "You manage a long-term memory. For each new fact, compare it with the stored memories and "
    "decide one event: ADD (new information: give its text), UPDATE (it refines or corrects a "
    "stored memory: give that memory's id and the new full text), DELETE (it contradicts a "
    "stored memory that is no longer true: give that memory's id), or NONE (already known or "
    "not worth keeping). Use only ids from the list. Answer with JSON: {\"memory\": [{\"event\": "
    "..., \"id\": ..., \"text\": ...}, ...]}.")


class ExtractedFacts(BaseModel):
    """The first call's answer."""

    facts: list[str] = Field(default_factory=list)


class MemoryDecision(BaseModel):
    """One decision of the second call."""

    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    id: str | None = None
    text: str = ""


class MemoryDecisions(BaseModel):
    """The second call's answer."""

    memory: list[MemoryDecision] = Field(default_factory=list)


for _cls in (ExtractedFacts, MemoryDecision, MemoryDecisions):  # journaled model answers
    register_type(_cls, name=f"graphflow.memory.{_cls.__name__}")


class MemoryExtractor:
    """A node (diagram kind ``"memory"``) that updates long-term memory from the conversation.

    Args:
        model: a chat model able to answer with structured output.
        memory: where memories live (a :class:`VectorMemory`, :class:`StoreMemory` or store;
            None: the graph's store under ``namespace``). Needs ``delete`` for DELETE events.
        messages_key: the state key holding the conversation.
        last: how many of the newest messages to read each time (None: all).
        k: stored memories shown per fact.
        output_key: if given, the state key receiving what was done (a list of dicts
            ``{"event", "id", "text"}``).
    """

    graphflow_kind = "memory"

    def __init__(self, model: Any, memory: Any = None, *, messages_key: str = "messages",
                 last: int | None = 6, k: int = 5, namespace: Sequence[str] = ("memories",),
                 output_key: str | None = None) -> None:
        self.model = model
        self.memory = memory
        self.messages_key = messages_key
        self.last = last
        self.k = k
        self.namespace = tuple(namespace)
        self.output_key = output_key
        self.__name__ = "extract_memories"

    def extract(self, messages: Sequence[Message]) -> list[str]:
        """The facts the model finds in ``messages`` (first call)."""
        convo = [m for m in messages if type(m) is not SystemMessage]
        if not convo:
            return []
        answer = self.model.invoke([SystemMessage(content=EXTRACT_PROMPT),
                                    HumanMessage(content=_transcript(convo))],
                                   response_format=ExtractedFacts)
        facts = answer.parsed.facts if answer.parsed is not None else []
        return [f.strip() for f in facts if f and f.strip()]

    def decide(self, facts: Sequence[str], existing: Sequence[MemoryHit],
               ) -> list[tuple[MemoryDecision, str | None]]:
        """The model's decisions (second call), each with the real id it refers to."""
        numbered = {str(n): hit for n, hit in enumerate(existing)}
        stored = "\n".join(f'{{"id": "{n}", "text": {hit.text!r}}}'
                           for n, hit in numbered.items()) or "(none)"
        new = "\n".join(f"- {f}" for f in facts)
        answer = self.model.invoke([
            SystemMessage(content=DECIDE_PROMPT),
            HumanMessage(content=f"Stored memories:\n{stored}\n\nNew facts:\n{new}")],
            response_format=MemoryDecisions)
        out = []
        for d in (answer.parsed.memory if answer.parsed is not None else []):
            if d.event in ("UPDATE", "DELETE"):
                hit = numbered.get(str(d.id))
                if hit is None:
                    continue  # an id the model made up: ignored
                out.append((d, hit.id))
            else:
                out.append((d, None))
        return out

    def run(self, messages: Any, memory: Any) -> list[dict[str, Any]]:
        """Extract, decide and apply; returns what was done."""
        msgs = _as_list(messages)
        if self.last is not None:
            msgs = msgs[-self.last:]
        facts = self.extract(msgs)
        if not facts:
            return []
        existing: dict[str, MemoryHit] = {}
        for fact in facts:
            for hit in memory.search(fact, self.k):
                existing.setdefault(hit.id, hit)
        done = []
        for decision, real_id in self.decide(facts, list(existing.values())):
            if decision.event == "ADD" and decision.text:
                real_id = memory.add([decision.text])[0]
            elif decision.event == "UPDATE" and decision.text:
                memory.add([decision.text], ids=[real_id])
            elif decision.event == "DELETE":
                delete = getattr(memory, "delete", None)
                if delete is None:
                    raise TypeError(f"MemoryExtractor: {memory!r} cannot delete memories")
                delete([real_id])
            else:
                continue
            done.append({"event": decision.event, "id": real_id, "text": decision.text})
        return done

    def __call__(self, state: Any, store: Any = None) -> dict[str, Any]:
        memory = resolve_memory(self.memory, store, self.namespace, "MemoryExtractor")
        messages = (state.get(self.messages_key) if isinstance(state, dict)
                    else getattr(state, self.messages_key, None)) or []
        done = self.run(messages, memory)
        return {self.output_key: done} if self.output_key else {}
