"""S1: a 5-node graph served over HTTP (``graphflow serve``, SQLite, one process).

A load generator on loopback (httpx, asyncio) keeps ``CONCURRENCY`` clients busy, each running
``POST /threads/{t}/runs/wait`` on a thread of its own, one run after another, for a fixed time
after a warm-up; then one client alone, for the latency of a run with nothing else going on.
Compared with ``invoke`` of the same graph in-process on the same kind of store (a SQLite file),
the difference is what the server adds: HTTP, JSON, the run record, its stored events, the
worker's thread hand-off.

Reports ``S1_runs_per_s`` (sustained, CONCURRENCY clients), ``S1_p50_ms`` / ``S1_p99_ms``
(their run latencies), ``S1_c1_p50_ms`` / ``S1_c1_p99_ms`` (one client), ``S1_inprocess_ms``
(median invoke in-process) and ``S1_overhead_ms`` (``S1_c1_p50_ms - S1_inprocess_ms``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import check, log

CONCURRENCY = 8
HERE = Path(__file__).resolve().parent


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _load(url: str, clients: int, warmup: float, seconds: float) -> list[float]:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=120) as c:
        threads = []
        for _ in range(clients):
            r = await c.post("/threads", json={"graph": "chain5"})
            threads.append(r.json()["thread_id"])
        latencies: list[float] = []
        start = time.monotonic()
        measure_from, stop_at = start + warmup, start + warmup + seconds

        async def client(thread: str) -> None:
            while True:
                t0 = time.monotonic()
                if t0 >= stop_at:
                    return
                r = await c.post(f"/threads/{thread}/runs/wait",
                                 json={"input": {"n": 0}, "stream_mode": ["updates"]})
                t1 = time.monotonic()
                run = r.json()
                check(run.get("status") == "success" and run["output"]["values"]["n"] == 5,
                      f"a run over HTTP went wrong: {str(run)[:300]}")
                if t0 >= measure_from:
                    latencies.append(t1 - t0)

        await asyncio.gather(*(client(t) for t in threads))
        return latencies


def _inprocess(quick: bool, path: str) -> float:
    sys.path.insert(0, str(HERE))
    from _serve_graph import chain5

    from graphflow.checkpoint import SqliteCheckpointer

    with SqliteCheckpointer(path) as saver:
        app = chain5.with_checkpointer(saver)
        times = []
        for i in range(20 if quick else 200):
            t0 = time.perf_counter()
            out = app.invoke({"n": 0}, thread=f"t{i % 8}")
            times.append(time.perf_counter() - t0)
        check(out["n"] == 5, "the in-process run went wrong")
    return statistics.median(times[len(times) // 10:])


def run(quick: bool) -> dict:
    try:
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"S1 needs the serve extra: pip install 'graphflow[serve]' "
                           f"({exc})") from exc
    warmup, seconds = (1.0, 3.0) if quick else (3.0, 15.0)
    with tempfile.TemporaryDirectory() as tmp:
        port = _port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
               "OTEL_TRACES_EXPORTER": "none"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "graphflow.cli", "serve", "chain5=_serve_graph:chain5",
             "--db", os.path.join(tmp, "runs.db"), "--port", str(port), "--log-level",
             "warning", "--max-runs", str(CONCURRENCY)], cwd=HERE, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                check(proc.poll() is None and time.monotonic() < deadline,
                      "the server did not start")
                time.sleep(0.1)
            log(f"S1: {CONCURRENCY} clients for {seconds:.0f} s after {warmup:.0f} s warm-up")
            many = asyncio.run(_load(url, CONCURRENCY, warmup, seconds))
            log("S1: one client")
            one = asyncio.run(_load(url, 1, warmup, seconds / 2))
        finally:
            proc.terminate()
            proc.wait(60)
        inproc = _inprocess(quick, os.path.join(tmp, "inprocess.db"))
    check(len(many) > 0 and len(one) > 0, "no run finished in the measured time")
    c1 = statistics.median(one)
    return {
        "S1_runs_per_s": round(len(many) / seconds, 1),
        "S1_p50_ms": round(_pct(many, 0.5) * 1e3, 2),
        "S1_p99_ms": round(_pct(many, 0.99) * 1e3, 2),
        "S1_c1_p50_ms": round(c1 * 1e3, 2),
        "S1_c1_p99_ms": round(_pct(one, 0.99) * 1e3, 2),
        "S1_inprocess_ms": round(inproc * 1e3, 3),
        "S1_overhead_ms": round((c1 - inproc) * 1e3, 2),
    }
