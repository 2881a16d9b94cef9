"""Run ``graphflow serve`` as a real process on 127.0.0.1 for tests, and read its SSE streams."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from waiting import SCALE, wait_until

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A ``graphflow serve`` process; ``url`` once it answers ``/health``."""

    args: list[str]
    env: dict[str, str]
    cwd: Path = SUPPORT
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        env = {**os.environ, **self.env, "PYTHONPATH": os.pathsep.join(
            [str(SUPPORT), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "OTEL_TRACES_EXPORTER": self.env.get("OTEL_TRACES_EXPORTER", "none")}
        self.log = Path(self.env["GRAPHFLOW_TEST_GATES"]) / f"server-{self.port}.log"
        out = open(self.log, "ab")  # noqa: SIM115 (the process writes it)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graphflow.cli", "serve", *self.args, "--port",
             str(self.port), "--log-level", "warning"], cwd=self.cwd, env=env, stdout=out,
            stderr=subprocess.STDOUT)
        out.close()
        wait_until(self._ready, f"the server on port {self.port} to answer /health", 60)
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"the server exited ({self.proc.returncode}):\n"
                                 f"{self.log.read_text() if self.log else ''}")
        try:
            return httpx.get(self.url + "/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed — a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(30)

    def stop(self) -> None:
        """SIGTERM: a graceful shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60 * SCALE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)


@dataclass
class Event:
    id: int | None
    event: str
    data: object


def sse(response: httpx.Response) -> Iterator[Event]:
    """Parse a ``text/event-stream`` response into events (comments and retry: skipped)."""
    assert response.headers["content-type"].startswith("text/event-stream")
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if not line:
            if "event" in fields or "data" in fields:
                yield Event(int(fields["id"]) if "id" in fields else None,
                            fields.get("event", "message"), json.loads(fields.get("data", "null")))
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        fields[name] = value[1:] if value.startswith(" ") else value


def wait_status(client: httpx.Client, thread: str, run: str, statuses: tuple[str, ...],
                seconds: float = 60) -> dict:
    """Poll the run until its status is one of ``statuses``; the run."""
    box: dict = {}

    def done() -> bool:
        box["run"] = client.get(f"/threads/{thread}/runs/{run}").json()
        return box["run"]["status"] in statuses

    wait_until(done, f"run {run} to reach {statuses}", seconds)
    return box["run"]


def gate_started(gates: Path, thread: str, node: str = "gate") -> None:
    wait_until(lambda: (gates / f"{thread}.{node}.started").exists(),
               f"node {node} of {thread} to start", 60)


def ran(gates: Path, thread: str) -> list[str]:
    path = gates / f"{thread}.ran"
    return path.read_text().split() if path.exists() else []


def elapsed(t0: float) -> float:
    return time.monotonic() - t0
