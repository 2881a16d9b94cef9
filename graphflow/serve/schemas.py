"""Request and response bodies of the HTTP API (they make its OpenAPI spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "STREAM_MODES", "CommandBody", "ErrorBody", "GraphInfo", "Health", "InterruptBody",
    "RunBody", "RunCreate", "RunOutput", "StateUpdate", "ThreadBody", "ThreadCreate",
    "ThreadState", "UpdateResult",
]

StreamMode = Literal["updates", "values", "messages", "custom", "debug"]
STREAM_MODES = ("updates", "values", "messages", "custom", "debug")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(BaseModel):
    """Every error: a stable ``error`` code, a sentence saying what was wrong and where, and
    details (the fields at fault, the run holding a busy thread, ...)."""

    error: str = Field(description="a stable code: unauthorized, not_found, invalid_request, "
                                   "thread_busy, too_large, too_many_runs, conflict, ...")
    message: str
    detail: Any = None


class Health(BaseModel):
    status: Literal["ok"]
    worker: str
    graphs: list[str]
    running: int
    queued: int


class GraphInfo(BaseModel):
    name: str
    nodes: list[str]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    mermaid: str
    interrupt_before: list[str]
    interrupt_after: list[str]


class ThreadCreate(_Strict):
    graph: str = Field(description="the name of a graph this server serves (GET /graphs)",
                       min_length=1)
    thread_id: str | None = Field(default=None, min_length=1, max_length=256,
                                  description="default: a new random id")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ThreadBody(BaseModel):
    thread_id: str
    graph: str
    created_at: float
    metadata: dict[str, Any]
    status: Literal["idle", "busy", "interrupted", "error"]
    last_run: str | None = None


class InterruptBody(BaseModel):
    id: str
    node: str
    value: Any = None


class ThreadState(BaseModel):
    values: Any
    next: list[str]
    interrupts: list[InterruptBody]
    checkpoint_id: str
    parent_id: str | None
    step: int
    created_at: str
    metadata: dict[str, Any]


class StateUpdate(_Strict):
    values: dict[str, Any]
    as_node: str | None = Field(default=None, description="write as if this node returned "
                                                          "the values (its edges decide next)")
    checkpoint_id: str | None = Field(default=None, description="fork from this checkpoint")


class UpdateResult(BaseModel):
    checkpoint_id: str


class CommandBody(_Strict):
    resume: Any = Field(description="the answer to the pending interrupt, or {interrupt_id: "
                                    "answer} when several are pending")


class RunCreate(_Strict):
    input: dict[str, Any] | None = Field(
        default=None, description="the input; null continues the thread (after an error, a "
                                  "cancel or a breakpoint)")
    command: CommandBody | None = Field(default=None, description="answer pending interrupts "
                                                                  "(instead of input)")
    stream_mode: list[StreamMode] | StreamMode = Field(
        default_factory=lambda: ["updates", "values"],
        description="the events the run records and streams, as app.stream's modes")
    metadata: dict[str, Any] = Field(default_factory=dict)
    recursion_limit: int | None = Field(default=None, ge=1, le=1_000_000)
    token_budget: int | None = Field(default=None, ge=1)
    multitask_strategy: Literal["reject", "enqueue"] | None = Field(
        default=None, description="when the thread has an active run: reject (409) or run "
                                  "after it; default: the server's setting")


class RunOutput(BaseModel):
    values: Any
    next: list[str]
    interrupts: list[InterruptBody]
    checkpoint_id: str | None
    step: int


class RunBody(BaseModel):
    run_id: str
    thread_id: str
    graph: str
    status: Literal["pending", "running", "success", "error", "interrupted", "cancelled"]
    created_at: float
    started_at: float | None
    ended_at: float | None
    attempts: int
    cancel_requested: bool
    stream_mode: list[str]
    metadata: dict[str, Any]
    output: RunOutput | None = None
    error: dict[str, Any] | None = None
    usage: dict[str, Any] | None = Field(
        default=None, description="this run's input_tokens, output_tokens and cost, and the "
                                  "thread's totals (thread_total)")
