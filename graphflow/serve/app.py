"""The HTTP API: a FastAPI application over compiled graphs (see ``docs/serving.md``).

Resources (all JSON but the streams, which are Server-Sent Events)::

    GET    /health
    GET    /graphs                                 GET /graphs/{graph}   /graphs/{graph}/svg
    POST   /threads        GET /threads            GET, DELETE /threads/{thread}
    GET    /threads/{thread}/state                 POST /threads/{thread}/state
    GET    /threads/{thread}/history
    POST   /threads/{thread}/runs                  (background: 202)
    POST   /threads/{thread}/runs/wait             (the run, once it ended)
    POST   /threads/{thread}/runs/stream           (its events, live)
    GET    /threads/{thread}/runs                  GET /threads/{thread}/runs/{run}
    POST   /threads/{thread}/runs/{run}/cancel
    GET    /threads/{thread}/runs/{run}/stream     (join; Last-Event-ID resumes)
    GET    /threads/{thread}/runs/{run}/wait       (join and wait)
    GET    /ui                                     (the run inspector)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..engine.ids import check_thread_id
from ..errors import GraphflowError, InvalidThreadIdError, InvalidUpdateError, ThreadBusyError
from .config import ServeConfig
from .runner import RunExecutor, Worker, error_record, jsonable
from .schemas import (
    STREAM_MODES,
    ErrorBody,
    GraphInfo,
    Health,
    RunBody,
    RunCreate,
    StateUpdate,
    ThreadBody,
    ThreadCreate,
    ThreadState,
    UpdateResult,
)
from .store import BusyThread, RunRecord, RunStore, ThreadRecord

if TYPE_CHECKING:
    from ..checkpoint._sql import SqlCheckpointer
    from ..engine.compiled import CompiledGraph

__all__ = ["ApiError", "create_app"]

_MAX_INT = 2**62  # offsets and event ids beyond this cannot be stored
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 422, 429)}
_SSE = {200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
              "description": "Server-Sent Events: `id` (the event's number in its run), "
                             "`event` (metadata, updates, values, messages, custom, debug, "
                             "error, end) and `data` (JSON). Reconnect with Last-Event-ID."}}


class ApiError(Exception):
    """An error answered as ``ErrorBody`` with ``status``."""

    def __init__(self, status: int, error: str, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.detail = detail
        self.headers = headers


def _error_response(exc: ApiError) -> JSONResponse:
    body = {"error": exc.error, "message": exc.message, "detail": exc.detail}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


# -- in-process wake-ups ---------------------------------------------------------------------------

class _Bell:
    """Wakes the streams and waits of a run when its worker (in this process) stores events or
    ends it; readers of runs executing elsewhere poll the database instead."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.waiters: dict[str, set[asyncio.Event]] = {}

    def ring(self, run_id: str) -> None:  # from any thread
        loop = self.loop
        if loop is not None and run_id in self.waiters:
            with contextlib.suppress(RuntimeError):  # the loop closed
                loop.call_soon_threadsafe(self._ring, run_id)

    def _ring(self, run_id: str) -> None:
        for event in self.waiters.get(run_id, ()):
            event.set()

    @contextlib.contextmanager
    def listen(self, run_id: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self.waiters.setdefault(run_id, set()).add(event)
        try:
            yield event
        finally:
            waiting = self.waiters.get(run_id)
            if waiting is not None:
                waiting.discard(event)
                if not waiting:
                    del self.waiters[run_id]


async def _nap(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    event.clear()


# -- records as bodies -----------------------------------------------------------------------------

def _run_body(rec: RunRecord) -> dict[str, Any]:
    return {"run_id": rec.run_id, "thread_id": rec.thread_id, "graph": rec.graph,
            "status": rec.status, "created_at": rec.created_at, "started_at": rec.started_at,
            "ended_at": rec.ended_at, "attempts": rec.attempts,
            "cancel_requested": rec.cancel_requested, "stream_mode": rec.stream_modes,
            "metadata": rec.metadata, "output": rec.output, "error": rec.error,
            "usage": rec.usage}


def _snapshot_body(snap: Any) -> dict[str, Any]:
    return {"values": jsonable(snap.values), "next": list(snap.next),
            "interrupts": jsonable(list(snap.interrupts)), "checkpoint_id": snap.checkpoint_id,
            "parent_id": snap.parent_id, "step": snap.step,
            "created_at": snap.created_at.isoformat(), "metadata": jsonable(snap.metadata)}


def _schema_of(schema: Any) -> dict[str, Any]:
    """The JSON schema of a graph's state: an object with a property per key (a key whose
    type pydantic cannot describe gets an empty schema: any value). ``required`` lists the
    keys an input must give (``Required[...]`` keys of a TypedDict, fields of a pydantic or
    dataclass state without a default)."""
    from pydantic import TypeAdapter

    if schema.kind != "typeddict":
        with contextlib.suppress(Exception):
            return TypeAdapter(schema.cls).json_schema()
    props: dict[str, Any] = {}
    for name, channel in schema.channels.items():
        try:
            props[name] = TypeAdapter(channel.annotation).json_schema()
        except Exception:
            props[name] = {}
    out: dict[str, Any] = {"title": schema.cls.__name__, "type": "object", "properties": props}
    required = schema.missing_input({}, given=True)
    if required:
        out["required"] = required
    return out


def _sse(seq: int, event: str, data: str) -> bytes:
    return f"id: {seq}\nevent: {event}\ndata: {data}\n\n".encode()


# -- the app ---------------------------------------------------------------------------------------

class _Server:
    """What the routes share: graphs, store, worker, config."""

    def __init__(self, graphs: dict[str, CompiledGraph], saver: SqlCheckpointer,
                 config: ServeConfig, executor: RunExecutor | None) -> None:
        self.graphs = {name: g if g.checkpointer is saver else g.with_checkpointer(saver)
                       for name, g in graphs.items()}
        self.saver = saver
        self.config = config
        self.store = RunStore(saver)
        self.worker = Worker(self.store, self.graphs, config, executor)
        self.bell = _Bell()
        self.worker.listeners.append(self.bell.ring)

    # -- lookups ---------------------------------------------------------------------------------

    def graph(self, name: str) -> CompiledGraph:
        graph = self.graphs.get(name)
        if graph is None:
            raise ApiError(404, "not_found", f"no graph {name!r}; this server serves "
                                             f"{sorted(self.graphs)}")
        return graph

    def thread(self, thread_id: str, owner: str) -> ThreadRecord:
        rec = self.store.get_thread(thread_id)
        if rec is None or rec.owner != owner:  # another key's thread does not exist for you
            raise ApiError(404, "not_found", f"no thread {thread_id!r}")
        return rec

    def run(self, thread: ThreadRecord, run_id: str) -> RunRecord:
        rec = self.store.get_run(run_id)
        if rec is None or rec.thread_id != thread.thread_id:
            raise ApiError(404, "not_found",
                           f"no run {run_id!r} in thread {thread.thread_id!r}")
        return rec

    def thread_body(self, rec: ThreadRecord) -> dict[str, Any]:
        runs = self.store.list_runs(rec.thread_id, limit=1)
        status = "idle"
        if runs:
            last = runs[0].status
            status = {"pending": "busy", "running": "busy", "interrupted": "interrupted",
                      "error": "error"}.get(last, "idle")
        return {"thread_id": rec.thread_id, "graph": rec.graph, "created_at": rec.created_at,
                "metadata": rec.metadata, "status": status,
                "last_run": runs[0].run_id if runs else None}

    # -- runs ------------------------------------------------------------------------------------

    def create_run(self, thread: ThreadRecord, body: RunCreate) -> RunRecord:
        if body.input is not None and body.command is not None:
            raise ApiError(422, "invalid_request", "give either input or command, not both",
                           detail=[{"loc": ["body", "command"], "msg": "input is given too"}])
        if self.worker.queued >= self.config.max_queued:
            raise ApiError(429, "too_many_runs",
                           f"this server has {self.config.max_queued} runs waiting already; "
                           f"try again later", headers={"Retry-After": "1"})
        modes = [body.stream_mode] if isinstance(body.stream_mode, str) else body.stream_mode
        strategy = body.multitask_strategy or self.config.multitask_strategy
        rec = RunRecord(
            run_id=str(uuid.uuid4()), thread_id=thread.thread_id, graph=thread.graph,
            owner=thread.owner, status="pending", input=body.input,
            command=None if body.command is None else {"resume": body.command.resume},
            stream_modes=list(dict.fromkeys(m for m in modes if m in STREAM_MODES)),
            options={"recursion_limit": body.recursion_limit,
                     "token_budget": body.token_budget},
            base_checkpoint=None, worker=self.worker.id, created_at=0.0,
            metadata=body.metadata)
        try:
            stored = self.store.create_run(rec, enqueue=strategy == "enqueue")
        except BusyThread as busy:
            raise ApiError(409, "thread_busy",
                           f"thread {thread.thread_id!r} has an active run ({busy.run_id}); "
                           f"wait for it, cancel it, or send multitask_strategy='enqueue'",
                           detail={"run_id": busy.run_id}) from None
        if stored.worker == self.worker.id:
            self.worker.submit(stored.run_id, stored.thread_id)
        return stored

    async def wait_run(self, run_id: str) -> RunRecord:
        while True:
            with self.bell.listen(run_id) as woken:
                rec = await run_in_threadpool(self.store.get_run, run_id)
                if rec is None or rec.finished:
                    if rec is None:
                        raise ApiError(404, "not_found", f"run {run_id!r} was deleted")
                    return rec
                await _nap(woken, self.config.poll)

    async def events(self, run_id: str, after: int) -> AsyncIterator[bytes]:
        """The run's events after ``after``, live until its ``end`` event."""
        yield b"retry: 1000\n\n"
        idle = 0.0
        ended = False
        while True:
            with self.bell.listen(run_id) as woken:
                rows = await run_in_threadpool(self.store.events_after, run_id, after)
                for row in rows:
                    after = row.seq
                    yield _sse(row.seq, row.event, row.data)
                    if row.event == "end":
                        return
                if rows:
                    idle = 0.0
                    continue
                rec = await run_in_threadpool(self.store.get_run, run_id)
                if rec is None:
                    return
                if rec.finished:  # its end event is stored just after: look once more
                    if ended:
                        return  # ended without an end event (its server died just then)
                    ended = True
                await _nap(woken, self.config.poll)
                idle += self.config.poll
                if idle >= 15:
                    idle = 0.0
                    yield b": keep-alive\n\n"


def _stream_response(events: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(events, media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes (413), declared or not."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        too_large = ApiError(413, "too_large", f"the request body is larger than this "
                                               f"server's limit of {self.limit} bytes")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                size = 0
            if size > self.limit:
                await _error_response(too_large)(scope, receive, send)
                return
        seen = 0
        answered = False

        async def counted() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large
            return message

        async def guarded(message: dict[str, Any]) -> None:
            # over the limit, the app answers whatever its body parser made of the error:
            # answer 413 instead
            nonlocal answered
            if seen <= self.limit:
                await send(message)
            elif not answered:
                answered = True
                await _error_response(too_large)(scope, receive, send)

        await self.app(scope, counted, guarded)


# -- dependencies (module level: FastAPI resolves the annotations here) ----------------------------

def _server(request: Request) -> _Server:
    return request.app.state.graphflow


def _owner(request: Request,
           x_api_key: Annotated[str | None, Header(alias="X-Api-Key",
                                                   description="an API key of this server")
                                ] = None,
           authorization: Annotated[str | None, Header()] = None) -> str:
    """The owner id of the caller's key (401 without an accepted one)."""
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    who = _server(request).config.owner_of(key)
    if who is None:
        what = "a wrong API key" if key else "no API key"
        raise ApiError(401, "unauthorized", f"{what}: send a key of this server in the "
                                            f"X-Api-Key header",
                       headers={"WWW-Authenticate": "ApiKey"})
    return who


Owner = Annotated[str, Depends(_owner)]


def _check_id(thread_id: str) -> str:
    try:
        check_thread_id(thread_id)
    except InvalidThreadIdError as e:
        raise ApiError(422, "invalid_request", str(e),
                       detail=[{"loc": ["path", "thread_id"], "msg": str(e)}]) from None
    return thread_id


ThreadId = Annotated[str, Path(min_length=1, max_length=256, pattern=r"^[^\x00]*\S[^\x00]*$",
                               description="the thread's id (up to 256 characters, not blank)")]


def _thread(thread_id: ThreadId, request: Request, who: Owner) -> ThreadRecord:
    """The thread of the path, if the caller's key owns it (404 otherwise)."""
    return _server(request).thread(_check_id(thread_id), who)


Thread = Annotated[ThreadRecord, Depends(_thread)]


def create_app(graphs: dict[str, CompiledGraph] | CompiledGraph, *,
               checkpointer: SqlCheckpointer | None = None, db: str | None = None,
               config: ServeConfig | None = None,
               executor: RunExecutor | None = None) -> FastAPI:
    """A FastAPI application serving ``graphs`` (a dict by name, or one graph).

    Threads, runs and their events live in one SQL database: ``checkpointer`` (a
    ``SqliteCheckpointer`` or ``PostgresCheckpointer``), or ``db`` (a SQLite path or a
    ``postgresql://`` DSN), or the checkpointer the graphs share, or ``runs.db``. Several
    server processes may share one PostgreSQL database (one writer per thread holds across
    them). The worker starts with the application (its lifespan) and stops with it; runs it
    was executing resume in the next server (see :class:`ServeConfig`).
    """
    from contextlib import asynccontextmanager

    if not isinstance(graphs, dict):
        graphs = {graphs.name or "graph": graphs}
    if not graphs:
        raise GraphflowError("create_app needs at least one graph")
    for name in graphs:
        if not name or "/" in name:
            raise GraphflowError(f"graph name {name!r}: a name is non-empty and has no '/'")
    config = config or ServeConfig()
    saver = checkpointer or open_store(db, graphs)
    server = _Server(graphs, saver, config, executor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.bell.loop = asyncio.get_running_loop()
        await run_in_threadpool(server.worker.start)
        try:
            yield
        finally:
            await run_in_threadpool(server.worker.stop)

    app = FastAPI(title="graphflow", version=_version(), lifespan=lifespan,
                  description="Threads, runs and streams of graphflow graphs. Authenticate "
                              "with the X-Api-Key header when the server has keys.",
                  responses=_ERRORS)
    app.state.graphflow = server
    app.add_middleware(_BodyLimit, limit=config.max_body_bytes)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""),
                   "type": e.get("type", "")} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(str(p) for p in f['loc'])}: {f['msg']}" for f in fields)
        return _error_response(ApiError(422, "invalid_request", where or "invalid request",
                                        detail=fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = f"no route {request.method} {request.url.path}" if exc.status_code in (
            404, 405) else str(exc.detail)
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:  # every method of the path, not only one route's
            headers = {**(headers or {}), "Allow": ", ".join(_methods(app, request))}
        return _error_response(ApiError(exc.status_code, code, message, headers=headers))

    # -- health and graphs -------------------------------------------------------------------

    @app.get("/health", response_model=Health, tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness: the worker and what it runs (no key needed)."""
        with server.worker._lock:
            running = len(server.worker._running)
        return {"status": "ok", "worker": server.worker.id, "graphs": sorted(server.graphs),
                "running": running, "queued": server.worker.queued}

    def graph_info(name: str, graph: CompiledGraph) -> dict[str, Any]:
        schema = _schema_of(graph.schema)
        return {"name": name, "nodes": list(graph._program.specs),
                "input_schema": schema, "output_schema": schema,
                "mermaid": graph.to_mermaid(),
                "interrupt_before": sorted(graph.interrupt_before),
                "interrupt_after": sorted(graph.interrupt_after)}

    @app.get("/graphs", response_model=list[GraphInfo], tags=["graphs"])
    def list_graphs(who: Owner) -> list[dict[str, Any]]:
        """The graphs served: nodes, input/output JSON schema, Mermaid diagram."""
        return [graph_info(n, g) for n, g in sorted(server.graphs.items())]

    @app.get("/graphs/{graph}", response_model=GraphInfo, tags=["graphs"])
    def get_graph(graph: str, who: Owner) -> dict[str, Any]:
        return graph_info(graph, server.graph(graph))

    @app.get("/graphs/{graph}/svg", tags=["graphs"], response_class=Response,
             responses={200: {"content": {"image/svg+xml": {"schema": {"type": "string"}}},
                              "description": "graphflow's own SVG drawing"}})
    def graph_svg(graph: str, who: Owner, request: Request,
                  thread_id: Annotated[str | None, Query(max_length=256)] = None) -> Response:
        """The diagram; with ``thread_id``, the path that thread ran is highlighted."""
        g = server.graph(graph)
        run = None
        if thread_id is not None:
            rec = _thread(check_id(thread_id), request, who)
            if rec.graph != graph:
                raise ApiError(422, "invalid_request", f"thread {thread_id!r} runs graph "
                                                       f"{rec.graph!r}, not {graph!r}")
            if g.checkpointer.get(thread_id) is not None:
                run = thread_id
        return Response(g.to_svg(run=run), media_type="image/svg+xml")

    # -- threads -----------------------------------------------------------------------------

    check_id = _check_id

    @app.post("/threads", response_model=ThreadBody, status_code=201, tags=["threads"])
    def create_thread(body: ThreadCreate, who: Owner) -> dict[str, Any]:
        """A new thread of a graph, owned by the caller's key."""
        server.graph(body.graph)
        thread_id = check_id(body.thread_id) if body.thread_id else str(uuid.uuid4())
        rec = server.store.create_thread(thread_id, body.graph, who, body.metadata)
        if rec is None:
            raise ApiError(409, "conflict", f"thread {thread_id!r} exists already")
        return server.thread_body(rec)

    @app.get("/threads", response_model=list[ThreadBody], tags=["threads"])
    def list_threads(who: Owner, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     offset: Annotated[int, Query(ge=0, le=_MAX_INT)] = 0) -> list[dict[str, Any]]:
        """The caller's threads, newest first."""
        return [server.thread_body(t) for t in server.store.list_threads(who, limit=limit,
                                                                          offset=offset)]

    @app.get("/threads/{thread_id}", response_model=ThreadBody, tags=["threads"])
    def get_thread(thread: Thread) -> dict[str, Any]:
        return server.thread_body(thread)

    @app.delete("/threads/{thread_id}", status_code=204, tags=["threads"],
                response_class=Response)
    def delete_thread(thread: Thread) -> Response:
        """Delete the thread, its checkpoints, runs and events (409 while a run writes it)."""
        if server.store.first_active(thread.thread_id) is not None:
            raise ApiError(409, "thread_busy", f"thread {thread.thread_id!r} has an active run; "
                                               f"cancel it first")
        graph = server.graph(thread.graph)
        try:
            if graph.checkpointer.get(thread.thread_id) is not None:
                graph.delete_thread(thread.thread_id)
        except ThreadBusyError as e:
            raise ApiError(409, "thread_busy", str(e)) from None
        server.store.delete_thread(thread.thread_id)
        return Response(status_code=204)

    def snapshot(thread: ThreadRecord, checkpoint_id: str | None = None) -> Any:
        graph = server.graph(thread.graph)
        try:
            snap = graph.get_state(thread.thread_id, checkpoint=checkpoint_id)
        except InvalidThreadIdError as e:
            raise ApiError(422, "invalid_request", str(e)) from None
        if snap is None:
            what = f"checkpoint {checkpoint_id!r}" if checkpoint_id else "state yet"
            raise ApiError(404, "not_found", f"thread {thread.thread_id!r} has no {what}")
        return snap

    @app.get("/threads/{thread_id}/state", response_model=ThreadState, tags=["threads"])
    def get_state(thread: Thread, checkpoint_id: Annotated[
            str | None, Query(pattern="^[0-9a-f]{32}$")] = None) -> dict[str, Any]:
        """The thread's state at its newest checkpoint (or ``checkpoint_id``)."""
        return _snapshot_body(snapshot(thread, checkpoint_id))

    @app.post("/threads/{thread_id}/state", response_model=UpdateResult, tags=["threads"])
    def update_state(thread: Thread, body: StateUpdate) -> dict[str, Any]:
        """Write values into the thread as if ``as_node`` returned them (reducers apply)."""
        graph = server.graph(thread.graph)
        if server.store.first_active(thread.thread_id) is not None:
            raise ApiError(409, "thread_busy", f"thread {thread.thread_id!r} has an active run")
        try:
            cid = graph.update_state(thread.thread_id, body.values, as_node=body.as_node,
                                     checkpoint=body.checkpoint_id)
        except ThreadBusyError as e:
            raise ApiError(409, "thread_busy", str(e)) from None
        except (InvalidUpdateError, GraphflowError, ValueError, TypeError) as e:
            raise ApiError(422, "invalid_request", str(e), detail=error_record(e)) from None
        return {"checkpoint_id": cid}

    @app.get("/threads/{thread_id}/history", response_model=list[ThreadState], tags=["threads"])
    def history(thread: Thread, limit: Annotated[int, Query(ge=1, le=1000)] = 100
                ) -> list[dict[str, Any]]:
        """The thread's checkpoints, newest first (each with its state)."""
        graph = server.graph(thread.graph)
        return [_snapshot_body(s) for s in graph.get_state_history(thread.thread_id,
                                                                   limit=limit)]

    # -- runs --------------------------------------------------------------------------------

    @app.post("/threads/{thread_id}/runs", response_model=RunBody, status_code=202,
              tags=["runs"])
    def create_run(thread: Thread, body: RunCreate) -> dict[str, Any]:
        """Start a run in the background; its record is stored before this answers."""
        return _run_body(server.create_run(thread, body))

    @app.post("/threads/{thread_id}/runs/wait", response_model=RunBody, tags=["runs"])
    async def create_and_wait(thread: Thread, body: RunCreate) -> dict[str, Any]:
        """Start a run and answer when it ended (success, error, interrupted, cancelled)."""
        rec = await run_in_threadpool(server.create_run, thread, body)
        return _run_body(await server.wait_run(rec.run_id))

    @app.post("/threads/{thread_id}/runs/stream", tags=["runs"], responses=_SSE,
              response_class=StreamingResponse)
    async def create_and_stream(thread: Thread, body: RunCreate) -> StreamingResponse:
        """Start a run and stream its events (the same as ``app.stream``'s) until it ends;
        the run goes on if the connection drops: rejoin with GET .../runs/{run}/stream."""
        rec = await run_in_threadpool(server.create_run, thread, body)
        return _stream_response(server.events(rec.run_id, 0))

    @app.get("/threads/{thread_id}/runs", response_model=list[RunBody], tags=["runs"])
    def list_runs(thread: Thread, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Annotated[int, Query(ge=0, le=_MAX_INT)] = 0) -> list[dict[str, Any]]:
        """The thread's runs, newest first."""
        return [_run_body(r) for r in server.store.list_runs(thread.thread_id, limit=limit,
                                                              offset=offset)]

    @app.get("/threads/{thread_id}/runs/{run_id}", response_model=RunBody, tags=["runs"])
    def get_run(thread: Thread, run_id: str) -> dict[str, Any]:
        return _run_body(server.run(thread, run_id))

    @app.post("/threads/{thread_id}/runs/{run_id}/cancel", response_model=RunBody,
              status_code=202, tags=["runs"])
    def cancel_run(thread: Thread, run_id: str) -> dict[str, Any]:
        """Cancel: a queued run ends at once; a running one at its next step boundary (its
        thread keeps every finished step). A finished run is left as it is (409)."""
        rec = server.run(thread, run_id)
        if rec.finished:
            raise ApiError(409, "conflict", f"run {run_id!r} has ended ({rec.status})",
                           detail={"status": rec.status})
        server.store.request_cancel(run_id)
        server.worker.cancel(run_id)
        return _run_body(server.run(thread, run_id))

    @app.get("/threads/{thread_id}/runs/{run_id}/stream", tags=["runs"], responses=_SSE,
             response_class=StreamingResponse)
    def join_stream(thread: Thread, run_id: str,
                    last_event_id: Annotated[str | None, Header()] = None,
                    after: Annotated[int | None, Query(ge=0, le=_MAX_INT)] = None
                    ) -> StreamingResponse:
        """The run's events from the start — or after the ``Last-Event-ID`` header (or
        ``after``) — live until it ends."""
        server.run(thread, run_id)
        start = after or 0
        if last_event_id:
            try:
                start = min(max(int(last_event_id), 0), _MAX_INT)
            except ValueError:
                raise ApiError(422, "invalid_request", f"Last-Event-ID {last_event_id!r} is "
                                                       f"not an event id of this stream") from None
        return _stream_response(server.events(run_id, start))

    @app.get("/threads/{thread_id}/runs/{run_id}/wait", response_model=RunBody, tags=["runs"])
    async def join_wait(thread: Thread, run_id: str) -> dict[str, Any]:
        """Wait for the run to end; the run."""
        await run_in_threadpool(server.run, thread, run_id)
        return _run_body(await server.wait_run(run_id))

    app.openapi = lambda: _with_links(app)  # type: ignore[method-assign]
    if config.ui:
        from .ui import mount_ui

        mount_ui(app)
    return app


def _methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the routes of the request's path answer."""
    from starlette.routing import Match

    found: list[tuple[int, set[str]]] = []
    for route in app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        allowed = getattr(route, "methods", None)
        if match != Match.NONE and allowed:
            found.append((getattr(route, "path", "").count("{"), set(allowed)))
    # the most specific path is the resource: /runs/wait, not /runs/{run_id} with "wait"
    fewest = min((n for n, _ in found), default=0)
    return sorted(set().union(*(m for n, m in found if n == fewest)))


def _with_links(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI spec, with links from the responses that make threads and runs to the
    operations that take their ids (clients and schemathesis follow them)."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    spec = get_openapi(title=app.title, version=app.version, description=app.description,
                       routes=app.routes)
    paths = spec.get("paths", {})
    targets = {"thread_id": [], "run_id": []}
    for ops in paths.values():
        for op in ops.values():
            names = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
            for key in targets:
                if key in names:
                    targets[key].append((op["operationId"], names))
    sources = {("/threads", "post", "201"): "thread_id",
               ("/threads/{thread_id}/runs", "post", "202"): "run_id"}
    for (path, method, status), key in sources.items():
        response = paths.get(path, {}).get(method, {}).get("responses", {}).get(status)
        if response is None:
            continue
        links = response.setdefault("links", {})
        for op_id, names in targets[key]:
            params = {n: f"$response.body#/{n}" for n in names if n in ("thread_id", "run_id")}
            links[op_id] = {"operationId": op_id, "parameters": params}
    app.openapi_schema = spec
    return spec


def open_store(db: str | None, graphs: dict[str, CompiledGraph]) -> SqlCheckpointer:
    """The database of a server: ``db`` (a SQLite path, or a PostgreSQL URL), else the SQL
    checkpointer every graph already has, else ``runs.db``."""
    from ..checkpoint._sql import SqlCheckpointer

    if db is None:
        savers = {id(g.checkpointer): g.checkpointer for g in graphs.values()}
        if len(savers) == 1:
            (only,) = savers.values()
            if isinstance(only, SqlCheckpointer):
                return only
        db = os.environ.get("GRAPHFLOW_DB") or "runs.db"
    if db.startswith(("postgres://", "postgresql://")):
        from ..checkpoint.postgres import PostgresCheckpointer

        return PostgresCheckpointer(db, pool_size=16)
    from ..checkpoint.sqlite import SqliteCheckpointer

    return SqliteCheckpointer(db)


def _version() -> str:
    from .. import __version__

    return __version__
