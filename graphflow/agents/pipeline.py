""":func:`create_pipeline`: agents in sequence, each stage's output the next one's input.

::

    START -> stage_1 -> stage_2 -> ... -> stage_n -> END
                  \\---------\\---(a stage failed)---> END

Each :class:`Stage` has an agent, an optional ``transform`` (the previous stage's output -> this
stage's input; the first stage gets the conversation) and an optional ``validate`` (a pydantic
model the answer must parse into, or a function that returns the value or raises). A rejected
answer is sent back to the stage's agent with the reason, up to ``retries`` times; then the
pipeline stops: ``failure`` names the stage, the reason and the attempts, a closing message says
so, and every earlier stage's output stays in ``outputs`` (and in ``messages``). An agent that
raises stops the pipeline the same way (retry such errors with the node's ``RetryPolicy`` in the
agent's own graph).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel

from ..checkpoint.serde import register_type
from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..errors import GraphValidationError, TokenBudgetExceeded
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, HumanMessage, Message, add_messages
from ._team import (
    Member,
    Reply,
    UsageTotals,
    add_usage,
    as_member,
    check_depth,
    check_name,
    described,
)
from .supervisor import agent_view

__all__ = ["PipelineState", "Stage", "StageFailure", "create_pipeline"]


@dataclass
class Stage:
    """One stage of a pipeline.

    Args:
        agent: an :class:`~graphflow.agents.Agent` or a compiled graph over ``messages``.
        name: the stage's name (default: the agent's); a node name, and its key in ``outputs``.
        transform: ``fn(previous_output) -> str | messages``: this stage's input from the
            previous stage's output (its validated value, or its text). Default: the text (a
            pydantic value as JSON); the first stage gets the pipeline's conversation.
        validate: a pydantic model class (the answer must be JSON of it; the instance is the
            output), or ``fn(text) -> value`` that raises (``ValueError``, ``AssertionError``,
            ...) to reject; None accepts any answer (the text is the output).
        retries: how many times a rejected answer is sent back (default: the pipeline's).
    """

    agent: Any
    name: str | None = None
    transform: Callable[[Any], Any] | None = None
    validate: type[BaseModel] | Callable[[str], Any] | None = None
    retries: int | None = None


@register_type(name="graphflow.agents.StageFailure")
class StageFailure(BaseModel):
    """Why a pipeline stopped: the stage, the last reason, and the attempts made."""

    stage: str
    error: str
    attempts: int


def merge_outputs(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: outputs by stage name."""
    return {**(left or {}), **(right or {})}


class PipelineState(TypedDict):
    """``messages`` (the input, then each stage's answer), ``outputs`` (each finished stage's
    output by name), ``failure`` (:class:`StageFailure` when it stopped early), ``usage``."""

    messages: Annotated[list[AnyMessage], add_messages]
    outputs: Annotated[dict[str, Any], merge_outputs]
    failure: StageFailure | None
    usage: Annotated[UsageTotals, add_usage]


def _as_stage(item: Any) -> Stage:
    return item if isinstance(item, Stage) else Stage(item)


def _as_input(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [HumanMessage(content=value)]
    if isinstance(value, Message):
        return [value]
    if isinstance(value, BaseModel):
        return [HumanMessage(content=value.model_dump_json())]
    if isinstance(value, Sequence):
        return list(value)
    return [HumanMessage(content=json.dumps(value, default=str))]


def _checked(stage: Stage, reply: Reply) -> tuple[Any, str | None]:
    """The stage's output, or the reason its answer is rejected."""
    check = stage.validate
    if check is None:
        return reply.text, None
    if isinstance(check, type) and issubclass(check, BaseModel):
        if isinstance(reply.value, check):
            return reply.value, None
        from ..models.base import parse_structured

        try:
            return parse_structured(reply.text, check), None
        except ValueError as exc:
            return None, f"it is not JSON of {check.__name__}: {exc.__cause__ or exc}"
    try:
        value = check(reply.text)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (reply.text if value is None else value), None


def create_pipeline(stages: Iterable[Any], *, name: str = "pipeline", retries: int = 1,
                    max_depth: int = 4, checkpointer: Any = None) -> CompiledGraph:
    """Agents in sequence with input transforms and output validators.

    Args:
        stages: :class:`Stage` s (or agents, for stages without transform or validator).
        name: the compiled graph's name.
        retries: how many times a rejected answer goes back to its stage (per stage default).
        max_depth: the deepest nesting of orchestrators allowed.
        checkpointer: for threads and crash recovery.
    """
    check_name(name, "pipeline")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    plan = [_as_stage(s) for s in stages]
    if not plan:
        raise GraphValidationError(f"pipeline {name!r} needs at least one stage")
    members: list[tuple[Stage, Member, str]] = []
    for s in plan:
        if isinstance(s.validate, type) and issubclass(s.validate, BaseModel):
            from ..checkpoint.serde import register_schema_types

            register_schema_types(s.validate)  # its instances are stored in ``outputs``
        member = as_member(s.agent, "stage")
        members.append((s, member, check_name(s.name or member.name, "stage")))
    names = [n for _, _, n in members]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise GraphValidationError(
            f"pipeline {name!r}: two stages are named {dupes[0]!r}; give them name=...")
    depth = check_depth(name, [m for _, m, _ in members], max_depth)

    g = StateGraph(PipelineState)
    for i, (stage, member, stage_name) in enumerate(members):
        previous = names[i - 1] if i else None
        g.add_node(stage_name, _stage_node(stage, member, stage_name, previous, retries))
        following = names[i + 1] if i + 1 < len(names) else None
        if following is None:
            g.add_edge(stage_name, END)
        else:
            g.add_conditional_edges(stage_name, _onward(following), [following, END])
    g.add_edge(START, names[0])
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = depth  # type: ignore[attr-defined]
    return compiled


def _onward(following: str) -> Callable[[Any], str]:
    def onward(state: Any) -> str:
        return END if state.get("failure") is not None else following

    onward.__annotations__ = {"state": Any, "return": Literal[following, END]}  # type: ignore[valid-type]
    return onward


def _stage_node(stage: Stage, member: Member, stage_name: str, previous: str | None,
                default_retries: int) -> Any:
    tries = 1 + (default_retries if stage.retries is None else stage.retries)

    def run_stage(state: Any) -> dict[str, Any]:
        if previous is None:
            given = agent_view(state["messages"])
            messages = _as_input(stage.transform(given)) if stage.transform else given
        else:
            before = state["outputs"][previous]
            messages = _as_input(stage.transform(before) if stage.transform else before)
        usage: UsageTotals = {}
        problem = ""
        for attempt in range(1, tries + 1):
            try:
                reply = member.ask(messages)
            except TokenBudgetExceeded:
                raise
            except Exception as exc:
                problem = f"{type(exc).__name__}: {exc}"
                return _stopped(stage_name, problem, attempt, usage)
            usage = add_usage(usage, {stage_name: reply.usage[member.name], **{
                k: v for k, v in reply.usage.items() if k != member.name}})
            value, problem = _checked(stage, reply)  # type: ignore[assignment]
            if problem is None:
                answer = AIMessage(content=reply.text, name=stage_name)
                return {"outputs": {stage_name: value}, "messages": [answer], "usage": usage}
            last = reply.messages[-1] if reply.messages else AIMessage(content=reply.text)
            messages = [*messages, last, HumanMessage(content=(
                f"Your answer was rejected: {problem}. Answer again, correcting that."))]
        return _stopped(stage_name, problem, tries, usage)

    return described(run_stage, member.graph, stage_name)


def _stopped(stage: str, problem: str, attempts: int, usage: UsageTotals) -> dict[str, Any]:
    return {"failure": StageFailure(stage=stage, error=problem, attempts=attempts),
            "usage": usage,
            "messages": [AIMessage(content=(
                f"The pipeline stopped at stage {stage!r} after {attempts} attempt(s): "
                f"{problem}"), name=stage)]}
