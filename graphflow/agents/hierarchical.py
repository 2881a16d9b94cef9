""":func:`create_hierarchical_orchestrator`: a manager that plans, delegates in waves, and
synthesizes.

::

    START -> plan -> dispatch --Send(task)--> <specialist> -> dispatch ... -> synthesize -> END
                ^        |
                '--------'  (replan after a failed task)

1. ``plan``: the manager model writes a :class:`Plan` (tasks with ``id``, ``description``,
   ``assignee``, ``depends_on``) through its structured output. The plan is checked
   (:func:`validate_plan`: unknown assignees, duplicate or empty ids, unknown dependencies,
   dependency cycles found with networkx, too many tasks); an invalid plan goes back to the
   manager with the exact problems, at most ``max_plan_attempts`` times in all, then the run
   fails with :class:`PlanValidationError`.
2. ``dispatch`` sends every task whose dependencies are done to its specialist (``Send``), at
   most ``max_concurrency`` at a time: the plan runs as a DAG, in waves of independent tasks.
3. Each specialist sees only its task, its dependencies' results and its own earlier exchanges in
   this run — not the team's whole history. A specialist that fails gives a failed
   :class:`TaskResult` (the run goes on); with ``replan_on_failure`` the manager then plans the
   remaining work again, knowing what is done and what failed (at most ``max_replans`` times).
4. ``synthesize``: the manager writes the answer from the results; it is appended to
   ``messages``.

A specialist may itself be an orchestrator (nested supervisors, up to ``max_depth`` levels). Each
delegation runs as a subgraph of its task: a run killed mid-way resumes without running finished
delegations again or paying again for their model calls, and an ``interrupt()`` inside a
specialist (a ``confirm=True`` tool) pauses the whole hierarchy and resumes in place.
``usage`` holds usage per agent (the manager's own calls under ``manager_name``);
``token_budget`` stops dispatching new tasks once the hierarchy has used that many tokens (the
manager then answers from what is done). For a hard limit, pass ``token_budget=`` to ``invoke``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..checkpoint.serde import register_type
from ..constants import END, START
from ..engine.compiled import CompiledGraph
from ..errors import GraphflowError, TokenBudgetExceeded
from ..graph.state_graph import StateGraph
from ..messages import AIMessage, AnyMessage, HumanMessage, SystemMessage, add_messages
from ..types import Command, Send
from ._team import (
    Member,
    UsageTotals,
    add_usage,
    as_members,
    check_depth,
    check_name,
    described,
    members_text,
    total_usage,
    usage_of,
)
from .supervisor import agent_view

__all__ = [
    "HierarchyState",
    "Plan",
    "PlanTask",
    "PlanValidationError",
    "TaskResult",
    "create_hierarchical_orchestrator",
    "validate_plan",
]


@register_type(name="graphflow.agents.PlanTask")
class PlanTask(BaseModel):
    """One task of a plan."""

    id: str = Field(description="a short unique id, such as t1")
    description: str = Field(description="what to do, with everything the assignee must know")
    assignee: str = Field(description="the name of the specialist who does it")
    depends_on: list[str] = Field(default_factory=list,
                                  description="ids of the tasks whose results it needs")


@register_type(name="graphflow.agents.Plan")
class Plan(BaseModel):
    """The manager's plan: tasks for the specialists."""

    tasks: list[PlanTask] = Field(description="the tasks, in any order")


@register_type(name="graphflow.agents.TaskResult")
@dataclass(slots=True)
class TaskResult:
    """What became of a task: ``output`` (the specialist's answer) or ``error``; ``exchange``
    holds the specialist's request and answer (its own history for its next tasks)."""

    id: str
    assignee: str
    status: Literal["done", "failed"]
    output: str = ""
    error: str | None = None
    exchange: list[Any] = field(default_factory=list)


class _PlanReply(Plan):
    """The manager's plan: tasks for the specialists."""

    # The plan as asked of the model (the docstring is its description for the provider): an
    # answer that does not parse gives None instead of failing the call, and the problem is
    # then read from the text and sent back to the manager.
    model_config = ConfigDict(title="Plan")

    @classmethod
    def model_validate_json(cls, json_data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        try:
            return super().model_validate_json(json_data, **kwargs)
        except ValidationError:
            return None


_PlanReply.__name__ = "Plan"  # the name providers see for the response format
register_type(_PlanReply, name="graphflow.agents.PlanReply")  # journaled with the model's reply


class PlanValidationError(GraphflowError, ValueError):
    """The manager did not produce a plan that can be carried out.

    Attributes:
        orchestrator: the orchestrator's name.
        problems: what was wrong with the last plan.
        attempts: how many plans were asked for.
        plan: the last plan (None if it did not even parse).
    """

    def __init__(self, orchestrator: str, problems: list[str], attempts: int,
                 plan: Plan | None) -> None:
        listed = "\n".join(f"- {p}" for p in problems)
        super().__init__(
            f"orchestrator {orchestrator!r}: the manager gave no valid plan in {attempts} "
            f"attempt(s); the last one had these problems:\n{listed}\nGive the manager clearer "
            f"instructions, a stronger model, or raise max_plan_attempts.")
        self.orchestrator = orchestrator
        self.problems = problems
        self.attempts = attempts
        self.plan = plan


def merge_results(left: dict[str, TaskResult] | None,
                  right: dict[str, TaskResult] | None) -> dict[str, TaskResult]:
    """Reducer: results by task id (a later result of the same id replaces the earlier);
    ``None`` clears them (a new request starts)."""
    if right is None:
        return {}
    return {**(left or {}), **right}


class HierarchyState(TypedDict):
    """The state of a hierarchical orchestrator.

    ``messages`` (the requests in, the answers out), ``plan`` (the current :class:`Plan`),
    ``results`` (:class:`TaskResult` by task id, for the current request, across replans),
    ``replans`` (how many times the manager planned again for it), ``replanning`` (set by
    ``dispatch`` when it asks for a new plan), ``usage`` (per agent, for the thread),
    ``stopped`` (why dispatching stopped early, if it did).
    """

    messages: Annotated[list[AnyMessage], add_messages]
    plan: Plan | None
    results: Annotated[dict[str, TaskResult], merge_results]
    replans: int
    replanning: bool
    usage: Annotated[UsageTotals, add_usage]
    stopped: str | None


def _cycle(tasks: Sequence[PlanTask]) -> list[str] | None:
    """A dependency cycle of ``tasks`` (ids, the first repeated at the end), or None.

    A plan without cycles (the usual case) is confirmed by peeling tasks whose dependencies are
    all peeled (linear time); networkx finds the cycle to report when some task is left."""
    ids = {t.id for t in tasks}
    deps = {t.id: {d for d in t.depends_on if d in ids} for t in tasks}
    waiting = {i: len(d) for i, d in deps.items()}
    needed_by: dict[str, list[str]] = {}
    for i, d in deps.items():
        for dep in d:
            needed_by.setdefault(dep, []).append(i)
    ready = [i for i, n in waiting.items() if n == 0]
    peeled = 0
    while ready:
        i = ready.pop()
        peeled += 1
        for j in needed_by.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if peeled == len(waiting):
        return None
    import networkx as nx

    g = nx.DiGraph()
    g.add_edges_from((d, i) for i, dep in deps.items() for d in dep if waiting[i] and waiting[d])
    edges = nx.find_cycle(g)
    return [u for u, _ in edges] + [edges[0][0]]


def validate_plan(plan: Plan, assignees: Iterable[str], *, max_tasks: int | None = None,
                  done: Mapping[str, TaskResult] | None = None) -> list[str]:
    """The problems of ``plan`` (empty: it can be carried out), each one sentence saying which
    task and what to do.

    ``done``: results of earlier plans: their ids may not be reused, finished ones may be
    depended on, failed ones not.
    """
    names = list(assignees)
    done = done or {}
    problems: list[str] = []
    tasks = plan.tasks
    if max_tasks is not None and len(tasks) > max_tasks:
        problems.append(f"the plan has {len(tasks)} tasks, more than the {max_tasks} allowed; "
                        f"merge some")
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.id] = counts.get(t.id, 0) + 1
    for i, t in enumerate(tasks, 1):
        label = f"task {t.id!r}" if t.id.strip() else f"task #{i}"
        if not t.id.strip():
            problems.append(f"{label} has an empty id; give every task a short unique id")
        elif counts[t.id] > 1 and t.id not in {p.id for p in tasks[:i - 1]}:
            problems.append(f"task id {t.id!r} is used by {counts[t.id]} tasks; give each task "
                            f"its own id")
        if t.id in done:
            problems.append(f"task id {t.id!r} is already used by an earlier task "
                            f"({done[t.id].status}); use a new id")
        if not t.description.strip():
            problems.append(f"{label} has no description; say what to do")
        if t.assignee not in names:
            problems.append(f"{label} is assigned to {t.assignee!r}, who is not a specialist; "
                            f"assign it to one of: {', '.join(names)}")
        for dep in t.depends_on:
            if dep == t.id:
                problems.append(f"{label} depends on itself; remove that dependency")
            elif dep in done and done[dep].status != "done":
                problems.append(f"{label} depends on {dep!r}, which failed; plan around it")
            elif dep not in counts and dep not in done:
                problems.append(f"{label} depends on {dep!r}, which is not a task of the plan")
    cycle = _cycle(tasks)
    if cycle is not None and not any("depends on itself" in p for p in problems):
        chain = " -> ".join(repr(x) for x in cycle)
        problems.append(f"tasks {chain} depend on each other in a cycle, so none of them can "
                        f"start; remove one of these dependencies")
    return problems


def _task_text(task: PlanTask, inputs: Sequence[TaskResult]) -> str:
    text = f"Your task ({task.id}): {task.description}"
    if inputs:
        listed = "\n\n".join(f"[{r.id}, by {r.assignee}]\n{r.output}" for r in inputs)
        text += f"\n\nResults of the tasks it builds on:\n\n{listed}"
    return text


def _report(plan: Plan | None, results: Mapping[str, TaskResult], stopped: str | None) -> str:
    lines = []
    for r in results.values():
        if r.status == "done":
            lines.append(f"[{r.id}, by {r.assignee}] done:\n{r.output}")
        else:
            lines.append(f"[{r.id}, by {r.assignee}] FAILED: {r.error}")
    for t in plan.tasks if plan is not None else ():
        if t.id not in results:
            lines.append(f"[{t.id}, for {t.assignee}] not done (it needs a task that failed)"
                         if not stopped else f"[{t.id}, for {t.assignee}] not done ({stopped})")
    return "\n\n".join(lines) or "(no task was needed)"


def _usage(name: str, model: Any, reply: AIMessage) -> UsageTotals:
    return {name: usage_of([reply], model)}


def create_hierarchical_orchestrator(
    manager: Any,
    specialists: Iterable[Any] | Mapping[str, Any],
    *,
    instructions: str | None = None,
    name: str = "orchestrator",
    manager_name: str = "manager",
    max_concurrency: int | None = None,
    max_tasks: int = 20,
    max_plan_attempts: int = 3,
    replan_on_failure: bool = True,
    max_replans: int = 2,
    max_depth: int = 3,
    token_budget: int | None = None,
    checkpointer: Any = None,
) -> CompiledGraph:
    """A manager model that plans, delegates to specialists as a DAG, and synthesizes.

    Args:
        manager: the manager's :class:`~graphflow.models.ChatModel` (or an
            :class:`~graphflow.agents.Agent`, whose model and instructions are used).
        specialists: :class:`~graphflow.agents.Agent` s or compiled graphs over ``messages``
            (other orchestrators too), or ``(name, graph)`` pairs / a ``{name: graph}`` dict.
        instructions: extra instructions for the manager.
        name: the compiled graph's name.
        manager_name: the manager's name in ``usage`` and on its messages.
        max_concurrency: the most tasks running at once (None: a whole wave).
        max_tasks: the most tasks a plan may have.
        max_plan_attempts: plans asked for in all before :class:`PlanValidationError`.
        replan_on_failure: plan the remaining work again after a failed task.
        max_replans: how many times at most.
        max_depth: the deepest nesting of orchestrators allowed (checked when building).
        token_budget: stop dispatching new tasks once the hierarchy used this many tokens.
        checkpointer: for threads, crash recovery and interrupts.

    Raises :class:`~graphflow.GraphValidationError` for duplicate or invalid names, a
    specialist named like a node of the orchestrator, or nesting deeper than ``max_depth``.
    """
    check_name(name, "orchestrator")
    check_name(manager_name, "manager")
    if max_concurrency is not None and max_concurrency < 1:
        raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
    if max_plan_attempts < 1:
        raise ValueError(f"max_plan_attempts must be >= 1, got {max_plan_attempts}")
    model = getattr(manager, "model", manager) if isinstance(manager, CompiledGraph) else manager
    if isinstance(manager, CompiledGraph) and not instructions:
        instructions = getattr(manager, "instructions", None)
    members = as_members(specialists, "specialist")
    reserved = {"plan", "dispatch", "synthesize"}
    for m in members:
        if m.name in reserved:
            from ..errors import GraphValidationError

            raise GraphValidationError(
                f"orchestrator {name!r}: a specialist is named {m.name!r}, like one of its own "
                f"nodes ({', '.join(sorted(reserved))}); rename it with a (name, graph) pair")
    depth = check_depth(name, members, max_depth)
    by_name = {m.name: m for m in members}
    names = list(by_name)
    planner = SystemMessage(content=(
        (f"{instructions.strip()}\n\n" if instructions else "")
        + "You are the manager of a team of specialists. Break the user's request into tasks "
        "for them. Each task has a short unique id, a description that says everything the "
        "specialist needs (they see only their task and the results of the tasks it depends "
        "on), the assignee (one of the specialists below), and depends_on (the ids of the "
        "tasks whose results it needs; tasks without dependencies run in parallel). No cycles."
        f" At most {max_tasks} tasks. A plan with no tasks means you answer yourself.\n\n"
        f"Specialists:\n{members_text(members)}\n\nAnswer with the plan as JSON."))
    writer = SystemMessage(content=(
        (f"{instructions.strip()}\n\n" if instructions else "")
        + "You are the manager of a team of specialists. They have worked on the user's "
        "request; their results follow. Write the final answer to the user from them. Say "
        "plainly if a part could not be done."))

    def make_plan(state: Any) -> dict[str, Any]:
        replanning = bool(state.get("replanning"))
        done = (state.get("results") or {}) if replanning else {}
        old = state.get("plan") if replanning else None
        prompt: list[Any] = [planner, *agent_view(state["messages"])]
        if old is not None:
            prompt.append(HumanMessage(content=(
                "Progress so far:\n\n" + _report(old, done, None) + "\n\nPlan the remaining "
                "work. Use new task ids; a task may depend on finished tasks by their ids.")))
        usage: UsageTotals = {}
        problems: list[str] = []
        plan: Plan | None = None
        for _ in range(max_plan_attempts):
            reply = model.invoke(prompt, response_format=_PlanReply)
            usage = add_usage(usage, _usage(manager_name, model, reply))
            plan, problems = _read(reply, names, max_tasks, done)
            if not problems:
                break
            prompt = [*prompt, AIMessage(content=reply.content or "(no plan)"),
                      HumanMessage(content="That plan cannot be carried out:\n"
                                   + "\n".join(f"- {p}" for p in problems)
                                   + "\nSend a corrected plan.")]
        if problems or plan is None:
            raise PlanValidationError(name, problems, max_plan_attempts, plan)
        update: dict[str, Any] = {"plan": Plan.model_validate(plan.model_dump()),
                                  "usage": usage, "replanning": False}
        if replanning:
            update["replans"] = (state.get("replans") or 0) + 1
        else:  # a new request: the previous one's results, counters and stop are done with
            update.update(results=None, replans=0, stopped=None)
        return update

    make_plan.graphflow_kind = "agent"  # type: ignore[attr-defined]

    def dispatch(state: Any) -> Any:
        plan: Plan = state["plan"]
        results = state.get("results") or {}
        failed = [t for t in plan.tasks if t.id in results and results[t.id].status == "failed"]
        if failed and replan_on_failure and (state.get("replans") or 0) < max_replans:
            return Command(goto="plan", update={"replanning": True})
        if token_budget is not None:
            used = total_usage(state.get("usage"))
            if used["input_tokens"] + used["output_tokens"] >= token_budget:
                return Command(goto="synthesize", update={
                    "stopped": f"the token budget of {token_budget} was used up"})
        ready = [t for t in plan.tasks if t.id not in results and all(
            d in results and results[d].status == "done" for d in t.depends_on)]
        if not ready:
            return Command(goto="synthesize")
        if max_concurrency is not None:
            ready = ready[:max_concurrency]
        histories: dict[str, list[Any]] = {}  # each specialist's own exchanges, in order
        for r in results.values():
            histories.setdefault(r.assignee, []).extend(r.exchange)
        return Command(goto=[Send(t.assignee, {
            "task": t, "inputs": [results[d] for d in t.depends_on],
            "history": histories.get(t.assignee, [])}) for t in ready])

    dispatch.__annotations__ = {"state": Any, "return": Command[Literal[tuple(
        ["plan", "synthesize", *names])]]}  # type: ignore[misc]
    dispatch.graphflow_kind = "router"  # type: ignore[attr-defined]

    def synthesize(state: Any) -> dict[str, Any]:
        report = _report(state.get("plan"), state.get("results") or {}, state.get("stopped"))
        reply = model.invoke([writer, *agent_view(state["messages"]),
                              HumanMessage(content=f"Results of the team:\n\n{report}")])
        answer = reply.model_copy(update={"name": name})
        return {"messages": [answer], "usage": _usage(manager_name, model, reply)}

    synthesize.graphflow_kind = "agent"  # type: ignore[attr-defined]

    g = StateGraph(HierarchyState)
    g.add_node("plan", make_plan)
    g.add_node("dispatch", dispatch)
    g.add_node("synthesize", synthesize)
    for m in members:
        g.add_node(m.name, _specialist(m))
        g.add_edge(m.name, "dispatch")
    g.add_edge(START, "plan")
    g.add_edge("plan", "dispatch")
    g.add_edge("synthesize", END)
    compiled = g.compile(checkpointer, name=name)
    compiled.team_depth = depth  # type: ignore[attr-defined]
    compiled.description = f"a team of {', '.join(names)} led by a manager"  # type: ignore[attr-defined]
    return compiled


def _read(reply: AIMessage, names: list[str], max_tasks: int,
          done: Mapping[str, TaskResult]) -> tuple[Plan | None, list[str]]:
    """The plan in a reply and its problems (an unreadable answer is one problem)."""
    plan = reply.parsed
    if not isinstance(plan, Plan):
        from ..models.base import parse_structured

        try:
            plan = parse_structured(reply.content, Plan)
        except ValueError as exc:
            cause = exc.__cause__ or exc
            return None, [f"the answer is not a plan in the required JSON format ({cause})"]
    return plan, validate_plan(plan, names, max_tasks=max_tasks, done=done)


def _specialist(member: Member) -> Any:
    def work(arg: dict[str, Any]) -> dict[str, Any]:
        task: PlanTask = arg["task"]
        request = HumanMessage(content=_task_text(task, arg.get("inputs") or []))
        try:
            reply = member.ask([*(arg.get("history") or []), request])
        except TokenBudgetExceeded:
            raise  # a limit of the whole run, not a failure of this task
        except Exception as exc:
            return {"results": {task.id: TaskResult(
                task.id, member.name, "failed", error=f"{type(exc).__name__}: {exc}")}}
        answer = reply.messages[-1] if reply.messages else AIMessage(content=reply.text)
        return {"results": {task.id: TaskResult(task.id, member.name, "done", reply.text,
                                                exchange=[request, answer])},
                "usage": reply.usage}

    return described(work, member.graph, member.name)
