""":func:`create_parallel_orchestrator`: the same input to N agents (or N samples of one), then
one outcome from their answers.

::

    START -> fan_out --Send(i)--> <agent> (x N) -> aggregate -> END

Each branch is a ``Send`` task that asks its agent (as a subgraph of the task, so a resumed run
does not ask finished branches again). ``max_concurrency`` bounds how many branches run at once;
``timeout`` bounds each branch (a branch over it counts as failed, status ``"timeout"``).
Failure policy: ``fail_fast=True`` stops at the first failed branch (branches not started yet are
cancelled, and the run fails with that branch's error); otherwise the run keeps going as long as
``min_successes`` branches can still succeed (default: 1) and the failures are reported in
``branches`` next to the outcome. The ``aggregate`` turns the successful :class:`BranchResult`
s into ``outcome``: ``"collect"``, ``"vote"`` (:func:`majority_vote`), an :func:`llm_judge`, or
any function; its text is appended to ``messages``.
"""

from __future__ import annotations

import functools
import operator
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypedDict

from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..engine.interrupts import SCOPE
from ..errors import GraphflowError, GraphValidationError, TokenBudgetExceeded
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, add_messages
from ..types import Command, Send
from ._team import (
    Member,
    UsageTotals,
    add_usage,
    as_member,
    check_depth,
    check_name,
    described,
    usage_of,
)
from .aggregate import BranchResult, LLMJudge, collect, majority_vote, normalize_answer
from .supervisor import agent_view

__all__ = ["BranchFailedError", "ParallelState", "create_parallel_orchestrator"]

Aggregate = Literal["collect", "vote"] | LLMJudge | Callable[[list[BranchResult]], Any]


class BranchFailedError(GraphflowError):
    """Too few branches succeeded (or, with ``fail_fast``, one failed).

    Attributes:
        orchestrator: the orchestrator's name.
        failures: the branches that did not finish (:class:`BranchResult` s).
    """

    def __init__(self, orchestrator: str, message: str, failures: list[BranchResult]) -> None:
        super().__init__(message)
        self.orchestrator = orchestrator
        self.failures = failures


class ParallelState(TypedDict):
    """``messages`` (the input in, the outcome's text out), ``branches`` (every
    :class:`BranchResult`, the current request's from ``branches_start`` on; sort them by
    ``.index`` for branch order), ``outcome`` (what the aggregate returned), ``usage``."""

    messages: Annotated[list[AnyMessage], add_messages]
    branches: Annotated[list[BranchResult], operator.add]
    branches_start: int
    outcome: Any
    usage: Annotated[UsageTotals, add_usage]


class _Gate:
    """Per run: the concurrency limit, and the flag that stops branches not yet started."""

    def __init__(self, limit: int | None) -> None:
        self.slots = threading.BoundedSemaphore(limit) if limit else None
        self.stop: str | None = None  # why branches that have not started are cancelled
        self.failed = 0
        self.lock = threading.Lock()


def _failure(index: int, member: Member, status: str, error: str) -> BranchResult:
    return BranchResult(index=index, agent=member.name, status=status,  # type: ignore[arg-type]
                        error=error)


def create_parallel_orchestrator(
    branches: Any,
    *,
    aggregate: Aggregate = "collect",
    samples: int | None = None,
    max_concurrency: int | None = None,
    timeout: float | None = None,
    fail_fast: bool = False,
    min_successes: int | None = None,
    key: Callable[[str], Any] = normalize_answer,
    name: str = "parallel",
    max_depth: int = 4,
    checkpointer: Any = None,
) -> CompiledGraph:
    """The same input to several agents at once, and one outcome from their answers.

    Args:
        branches: a list of :class:`~graphflow.agents.Agent` s / compiled graphs over
            ``messages`` (a name may repeat: the same agent asked several times), or one agent
            with ``samples``.
        aggregate: ``"collect"`` (the list of answers), ``"vote"`` (a
            :class:`~graphflow.agents.Vote`), an :func:`llm_judge`, or a function of the
            successful :class:`BranchResult` s.
        samples: ask the one agent in ``branches`` this many times.
        max_concurrency: the most branches running at once.
        timeout: seconds each branch may take (a sync agent that overruns keeps running in its
            thread; its answer is dropped).
        fail_fast: fail the run at the first failed branch.
        min_successes: without ``fail_fast``, the fewest successes the outcome needs (default
            1); fewer raise :class:`BranchFailedError` listing the failures, and once that many
            can no longer succeed the branches not yet started are cancelled.
        key: how ``"vote"`` normalises answers (default :func:`normalize_answer`).
        name: the compiled graph's name.
        max_depth: the deepest nesting of orchestrators allowed.
        checkpointer: for threads and crash recovery.
    """
    check_name(name, "orchestrator")
    items = list(branches) if isinstance(branches, (list, tuple)) else [branches]
    if samples is not None:
        if len(items) != 1 or samples < 1:
            raise GraphValidationError(
                f"orchestrator {name!r}: samples= needs exactly one agent and samples >= 1 "
                f"(got {len(items)} agent(s), samples={samples})")
        items = items * samples
    lineup = [as_member(x, "branch") for x in items]
    if not lineup:
        raise GraphValidationError(f"orchestrator {name!r} needs at least one branch")
    members: dict[str, Member] = {}
    for m in lineup:
        if members.setdefault(m.name, m).graph is not m.graph:
            raise GraphValidationError(
                f"orchestrator {name!r}: two different graphs are named {m.name!r}; rename one "
                f"with a (name, graph) pair")
    for node in ("fan_out", "aggregate"):
        if node in members:
            raise GraphValidationError(
                f"orchestrator {name!r}: a branch is named {node!r}, like one of its own nodes")
    n = len(lineup)
    need = 1 if min_successes is None else min_successes
    if not 1 <= need <= n:
        raise GraphValidationError(
            f"orchestrator {name!r}: min_successes must be between 1 and the {n} branches, got "
            f"{min_successes}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if not (aggregate in ("collect", "vote") or callable(aggregate)
            or isinstance(aggregate, LLMJudge)):
        raise ValueError(f"aggregate must be 'collect', 'vote', an llm_judge(...) or a "
                         f"function, got {aggregate!r:.80}")
    depth = check_depth(name, list(members.values()), max_depth)
    gates: weakref.WeakKeyDictionary[Any, _Gate] = weakref.WeakKeyDictionary()
    gates_lock = threading.Lock()

    def gate() -> _Gate:
        scope = SCOPE.get(None)
        if scope is None:  # called by hand, not by the engine: a gate of its own
            return _Gate(max_concurrency)
        with gates_lock:
            g = gates.get(scope[0])
            if g is None:
                g = gates[scope[0]] = _Gate(max_concurrency)
            return g

    def fan_out(state: Any) -> Command:
        seen = agent_view(state["messages"])
        return Command(update={"branches_start": len(state.get("branches") or ())},
                       goto=[Send(m.name, {"index": i, "messages": seen})
                             for i, m in enumerate(lineup)])

    fan_out.__annotations__ = {"state": Any, "return": Command[Literal[tuple(members)]]}
    fan_out.graphflow_kind = "router"  # type: ignore[attr-defined]

    def branch_node(member: Member) -> Any:
        def branch(arg: dict[str, Any]) -> dict[str, Any]:
            index = arg["index"]
            g = gate()
            result, usage = _run_branch(g, member, index, arg["messages"])
            if not result.ok:
                with g.lock:
                    g.failed += 1
                    if fail_fast and g.stop is None:
                        g.stop = f"branch {index} ({member.name}) failed first: {result.error}"
                    elif n - g.failed < need and g.stop is None:
                        g.stop = (f"{g.failed} branches failed, so {need} can no longer "
                                  f"succeed")
                if fail_fast:
                    raise BranchFailedError(name, f"orchestrator {name!r}: branch {index} "
                                            f"({member.name}) {result.status}: {result.error}",
                                            [result])
            return {"branches": [result], "usage": usage}

        return described(branch, member.graph, member.name)

    def _run_branch(g: _Gate, member: Member, index: int,
                    messages: list[Any]) -> tuple[BranchResult, UsageTotals]:
        if g.slots is not None:
            g.slots.acquire()
        try:
            if g.stop is not None:
                if fail_fast:
                    raise BranchFailedError(name, f"orchestrator {name!r}: branch {index} "
                                            f"({member.name}) cancelled: {g.stop}", [])
                return _failure(index, member, "cancelled", g.stop), {}
            try:
                reply = _ask(member, messages, timeout)
            except _Overran:
                return _failure(index, member, "timeout",
                                f"no answer within {timeout:g}s"), {}
            except TokenBudgetExceeded:
                raise
            except Exception as exc:
                return _failure(index, member, "failed", f"{type(exc).__name__}: {exc}"), {}
            return BranchResult(index, member.name, "done", reply.text, reply.value), reply.usage
        finally:
            if g.slots is not None:
                g.slots.release()

    def aggregate_node(state: Any) -> dict[str, Any]:
        mine = (state.get("branches") or [])[state.get("branches_start") or 0:]
        results = sorted(mine, key=lambda r: r.index)
        done = [r for r in results if r.ok]
        failures = [r for r in results if not r.ok]
        if len(done) < need:
            listed = "; ".join(f"branch {r.index} ({r.agent}) {r.status}: {r.error}"
                               for r in failures)
            raise BranchFailedError(
                name, f"orchestrator {name!r}: {len(done)} of {n} branches succeeded, "
                f"{need} needed ({listed})", failures)
        usage: UsageTotals = {}
        if aggregate == "collect":
            outcome: Any = collect(done)
            text = "\n\n".join(f"[{r.agent} #{r.index}]\n{r.output}" for r in done)
        elif aggregate == "vote":
            outcome = majority_vote([r.output for r in done], key=key)
            text = outcome.winner or ""
        elif isinstance(aggregate, LLMJudge):
            question = "\n".join(m.text for m in agent_view(state["messages"]))
            outcome, reply = aggregate.judge(question, done)
            text = outcome.answer
            usage = {aggregate.name: usage_of([reply], aggregate.model)}
        else:
            outcome = aggregate(done)
            text = outcome if isinstance(outcome, str) else str(outcome)
        return {"outcome": outcome, "usage": usage,
                "messages": [AIMessage(content=text, name=name)]}

    aggregate_node.graphflow_kind = "agent" if isinstance(  # type: ignore[attr-defined]
        aggregate, LLMJudge) else "function"

    g = StateGraph(ParallelState)
    g.add_node("fan_out", fan_out)
    for m in members.values():
        g.add_node(m.name, branch_node(m))
        g.add_edge(m.name, "aggregate")
    g.add_node("aggregate", aggregate_node)
    g.add_edge(START, "fan_out")
    g.add_edge("aggregate", END)
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = depth  # type: ignore[attr-defined]
    return compiled


class _Overran(Exception):
    """A branch took longer than its timeout."""


def _ask(member: Member, messages: Sequence[Any], timeout: float | None) -> Any:
    """``member.ask(messages)``, within ``timeout`` seconds (:class:`_Overran` past it; the
    call keeps its worker thread until it returns, and its answer is dropped)."""
    if timeout is None:
        return member.ask(messages)
    from .. import _workers

    job = _workers.start(functools.partial(member.ask, messages))  # in this task's context
    if not job.wait(timeout):
        raise _Overran(f"branch {member.name!r} timed out after {timeout:g}s")
    return job.result()
