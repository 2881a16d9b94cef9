"""Aggregators for parallel branches: small functions from the branches' answers to one outcome.

- :func:`collect`: every answer, in branch order.
- :func:`majority_vote`: the most frequent answer, with an agreement score; answers are compared
  through a normalising ``key`` (by default :func:`normalize_answer`, so ``"Paris"`` and
  ``"paris."`` are one vote) and ties are reported, never hidden.
- :func:`llm_judge`: a model picks the best answer (or merges them).
- any function of your own: ``fn(results: list[BranchResult]) -> outcome``.

``collect``, ``majority_vote`` and ``normalize_answer`` are pure functions (property-tested).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..checkpoint.serde import register_type

__all__ = ["BranchResult", "JudgeVerdict", "LLMJudge", "Vote", "collect", "llm_judge",
           "majority_vote", "normalize_answer"]


@register_type(name="graphflow.agents.BranchResult")
@dataclass(slots=True)
class BranchResult:
    """What one branch of a parallel orchestrator gave.

    Attributes:
        index: the branch's position (0-based).
        agent: the agent that ran it.
        status: ``"done"``, ``"failed"``, ``"timeout"`` or ``"cancelled"``.
        output: its final text.
        value: its structured output, if any.
        error: why it did not finish.
    """

    index: int
    agent: str
    status: Literal["done", "failed", "timeout", "cancelled"]
    output: str = ""
    value: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "done"


_EDGE_PUNCT = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)
_SPACES = re.compile(r"\s+")


def normalize_answer(text: Any) -> str:
    """The key answers are compared by: Unicode-normalised (NFKC), case-folded, inner runs of
    whitespace collapsed, punctuation and spaces trimmed at both ends (``" Paris."`` ->
    ``"paris"``)."""
    s = unicodedata.normalize("NFKC", str(text)).casefold()
    return _EDGE_PUNCT.sub("", _SPACES.sub(" ", s)).strip()


def collect(results: Sequence[BranchResult]) -> list[str]:
    """The outputs of the branches that finished, in branch order."""
    return [r.output for r in sorted(results, key=lambda r: r.index) if r.ok]


@register_type(name="graphflow.agents.Vote")
@dataclass(frozen=True)
class Vote:
    """The outcome of :func:`majority_vote`.

    Attributes:
        winner: the winning answer as first given (None when there were no answers); on a tie,
            the tied answer given first.
        key: the winner's normalised key.
        votes: how many answers had the winner's key.
        total: how many answers were counted.
        agreement: ``votes / total`` (0.0 without answers).
        tie: several keys share the top count.
        tied: the tied answers (as first given), in order of first appearance; empty without
            a tie.
        counts: ``(key, count)`` for every key, most votes first (ties in order of first
            appearance).
    """

    winner: str | None
    key: str | None
    votes: int
    total: int
    agreement: float
    tie: bool
    tied: tuple[str, ...]
    counts: tuple[tuple[str, int], ...]


def majority_vote(answers: Sequence[str],
                  key: Callable[[str], Any] = normalize_answer) -> Vote:
    """The most frequent answer under ``key`` and how much the answers agree."""
    counts: dict[Any, int] = {}
    first: dict[Any, str] = {}
    for answer in answers:
        k = key(answer)
        counts[k] = counts.get(k, 0) + 1
        first.setdefault(k, answer)
    total = sum(counts.values())
    if not counts:
        return Vote(None, None, 0, 0, 0.0, False, (), ())
    order = sorted(counts, key=lambda k: -counts[k])  # stable: first appearance breaks ties
    top = counts[order[0]]
    leaders = [k for k in order if counts[k] == top]
    tie = len(leaders) > 1
    return Vote(first[leaders[0]], leaders[0], top, total, top / total, tie,
                tuple(first[k] for k in leaders) if tie else (),
                tuple((k, counts[k]) for k in order))


class JudgeVerdict(BaseModel):
    """What :func:`llm_judge` decided.

    Attributes:
        choice: the index of the chosen branch (``mode="pick"``), None when merged.
        answer: the chosen (or merged) answer.
        reason: the judge's reason.
    """

    choice: int | None = None
    answer: str = ""
    reason: str = ""


register_type(JudgeVerdict, name="graphflow.agents.JudgeVerdict")


class _Pick(BaseModel):
    """The judge's choice."""

    choice: int = Field(description="the number of the best answer")
    reason: str = Field(description="why, in one sentence")


class _Merge(BaseModel):
    """The judge's merged answer."""

    answer: str = Field(description="the best answer, combining what is right in the others")
    reason: str = Field(description="what was taken from where, in one sentence")


for _cls, _name in ((_Pick, "graphflow.agents.JudgePick"),
                    (_Merge, "graphflow.agents.JudgeMerge")):
    register_type(_cls, name=_name)


class LLMJudge:
    """An aggregator that asks a model to pick the best answer or merge them.

    Made by :func:`llm_judge`. Inside a parallel orchestrator its model call is journaled and
    its usage counted under ``name``.
    """

    def __init__(self, model: Any, *, mode: Literal["pick", "merge"] = "pick",
                 instructions: str | None = None, name: str = "judge") -> None:
        if mode not in ("pick", "merge"):
            raise ValueError(f"llm_judge: mode must be 'pick' or 'merge', got {mode!r}")
        self.model = model
        self.mode = mode
        self.instructions = instructions
        self.name = name

    def prompt(self, question: str, results: Sequence[BranchResult]) -> list[Any]:
        from ..messages import HumanMessage, SystemMessage

        task = ("Pick the best answer: reply with its number and your reason."
                if self.mode == "pick" else
                "Write the best answer, combining what is right in them, and your reason.")
        listed = "\n\n".join(f"Answer {i} (from {r.agent}):\n{r.output}"
                             for i, r in enumerate(results))
        system = (self.instructions or "You judge answers to a question.") + " " + task
        return [SystemMessage(content=system),
                HumanMessage(content=f"Question:\n{question}\n\n{listed}\n\nAnswer as JSON.")]

    def verdict(self, reply: Any, results: Sequence[BranchResult]) -> JudgeVerdict:
        """The verdict in the model's reply (``reply.parsed``)."""
        parsed = reply.parsed
        if self.mode == "merge":
            return JudgeVerdict(answer=parsed.answer, reason=parsed.reason)
        if not 0 <= parsed.choice < len(results):
            raise ValueError(f"the judge chose answer {parsed.choice}, but there are "
                             f"{len(results)} (numbered from 0)")
        chosen = results[parsed.choice]
        return JudgeVerdict(choice=chosen.index, answer=chosen.output, reason=parsed.reason)

    def judge(self, question: str, results: Sequence[BranchResult]) -> tuple[JudgeVerdict, Any]:
        """Ask the model; returns the verdict and the model's reply (for its usage)."""
        fmt = _Pick if self.mode == "pick" else _Merge
        reply = self.model.invoke(self.prompt(question, results), response_format=fmt)
        return self.verdict(reply, results), reply


def llm_judge(model: Any, *, mode: Literal["pick", "merge"] = "pick",
              instructions: str | None = None, name: str = "judge") -> LLMJudge:
    """An aggregator where ``model`` picks the best answer (``mode="pick"``) or merges them
    (``"merge"``), through its structured output."""
    return LLMJudge(model, mode=mode, instructions=instructions, name=name)
