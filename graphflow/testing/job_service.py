"""A real external job service on 127.0.0.1, and an async agent that drives it over HTTP.

:class:`JobService` is a small HTTP server (standard library, in a thread of the process that
starts it) holding jobs:

- ``POST /jobs`` ``{"inputs": ..., "idempotency_key": "..."}`` -> ``201 {"id": ...}``; the
  same key again -> ``200`` with the same id (one job).
- ``GET /jobs/ID`` -> ``{"id", "phase", "outputs", "message"}``; a job whose inputs hold
  ``"seconds"`` succeeds by itself after that long, with ``{"echo": inputs}``.
- ``DELETE /jobs/ID`` -> cancels it (idempotent).
- ``POST /jobs/ID/finish`` ``{"phase": "succeeded", "outputs": ...}`` -> ends it (for tests).
- ``GET /stats`` -> how many create requests, jobs and deletes it saw.

:class:`HttpJobAgent` is the async agent of that service (``create``/``get``/``delete`` with
``httpx``), the kind of agent users write for their own services.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["HttpJobAgent", "JobService"]


class _Job:
    def __init__(self, job_id: str, inputs: Any) -> None:
        self.id = job_id
        self.inputs = inputs
        self.phase = "running"
        self.outputs: Any = None
        self.message = ""
        self.created = time.monotonic()

    def view(self) -> dict[str, Any]:
        seconds = self.inputs.get("seconds") if isinstance(self.inputs, dict) else None
        if self.phase == "running" and seconds is not None and \
                time.monotonic() - self.created >= float(seconds):
            self.phase, self.outputs = "succeeded", {"echo": self.inputs}
        return {"id": self.id, "phase": self.phase, "outputs": self.outputs,
                "message": self.message}


class JobService:
    """The job service; ``with JobService() as svc: svc.url``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.jobs: dict[str, _Job] = {}
        self.by_key: dict[str, str] = {}
        self.stats = {"create_requests": 0, "jobs": 0, "deletes": 0, "gets": 0}
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                with service.lock:
                    if parts == ["jobs"]:
                        body = self._body()
                        service.stats["create_requests"] += 1
                        key = body.get("idempotency_key")
                        if key and key in service.by_key:
                            return self._send(200, {"id": service.by_key[key]})
                        service.stats["jobs"] += 1
                        job = _Job(f"job-{service.stats['jobs']}", body.get("inputs"))
                        service.jobs[job.id] = job
                        if key:
                            service.by_key[key] = job.id
                        return self._send(201, {"id": job.id})
                    if len(parts) == 3 and parts[0] == "jobs" and parts[2] == "finish":
                        job = service.jobs.get(parts[1])
                        if job is None:
                            return self._send(404, {"error": "no such job"})
                        body = self._body()
                        job.phase = body.get("phase", "succeeded")
                        job.outputs = body.get("outputs")
                        job.message = body.get("message", "")
                        return self._send(200, job.view())
                return self._send(404, {"error": "not found"})

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                with service.lock:
                    if parts == ["stats"]:
                        return self._send(200, dict(service.stats))
                    if len(parts) == 2 and parts[0] == "jobs" and parts[1] in service.jobs:
                        service.stats["gets"] += 1
                        return self._send(200, service.jobs[parts[1]].view())
                return self._send(404, {"error": "not found"})

            def do_DELETE(self) -> None:
                parts = self.path.strip("/").split("/")
                with service.lock:
                    job = service.jobs.get(parts[1]) if len(parts) == 2 else None
                    if job is None:
                        return self._send(404, {"error": "no such job"})
                    service.stats["deletes"] += 1
                    if job.phase == "running":
                        job.phase, job.message = "cancelled", "deleted by the client"
                    return self._send(200, job.view())

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> JobService:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="job-service")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> JobService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def job(self, job_id: str) -> dict[str, Any]:
        with self.lock:
            return self.jobs[job_id].view()


class HttpJobAgent:
    """The async agent of a :class:`JobService` at ``url``: the handle is ``{"id": ...}``."""

    task_type = "http-job"

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _client(self) -> Any:
        import httpx

        return httpx.Client(base_url=self.url, timeout=self.timeout)

    def create(self, inputs: Any, *, idempotency_key: str | None = None) -> dict[str, str]:
        with self._client() as c:
            r = c.post("/jobs", json={"inputs": inputs, "idempotency_key": idempotency_key})
            r.raise_for_status()
            return {"id": r.json()["id"]}

    def get(self, handle: dict[str, str]) -> dict[str, Any]:
        with self._client() as c:
            r = c.get(f"/jobs/{handle['id']}")
            r.raise_for_status()
            return r.json()

    def delete(self, handle: dict[str, str]) -> None:
        with self._client() as c:
            r = c.delete(f"/jobs/{handle['id']}")
            if r.status_code != 404:
                r.raise_for_status()
