"""A real Ray cluster of several nodes on this machine, for tests and benchmarks.

Each node is a ``ray start --block`` process in a session of its own, with its own temp dir,
node IP address (127.0.0.x: Ray replaces 127.0.0.1 with the network card's address) and free
ports, so that it never meets another cluster on the machine. :meth:`LocalRayCluster.stop`
ends exactly the processes it started (``SIGTERM`` to each node, which stops its Ray processes;
its session's process group after a timeout) — never ``ray stop``, which ends every Ray
process on the machine::

    with LocalRayCluster(nodes=2, env={"PYTHONPATH": "src"}) as cluster:
        ray.init(address=cluster.address)
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = ["LocalRayCluster", "RAY_ENV"]

#: The environment every Ray command and driver of a test cluster needs (the same auth mode
#: everywhere; no usage stats).
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """``nodes`` Ray nodes on this machine (the first is the head), ``cpus`` CPUs each.

    Args:
        nodes: how many nodes (one ``ray start`` each).
        cpus: CPUs each node offers.
        object_store_bytes: each node's object store (without it Ray takes ~30% of RAM in
            ``/dev/shm``).
        env: more environment for the nodes and their workers (``PYTHONPATH`` to reach the
            graphs' code, DSNs, ...).
        resources: custom resources per node, e.g. ``[{}, {"parser": 2}]``.
        first_ip: the last byte of the head's address (127.0.0.N); the other nodes take the
            following ones.
    """

    def __init__(self, nodes: int = 2, *, cpus: int = 1, object_store_bytes: int = 100_000_000,
                 env: Mapping[str, str] | None = None,
                 resources: list[dict[str, float]] | None = None, first_ip: int = 20) -> None:
        self.nodes = nodes
        self.cpus = cpus
        self.object_store_bytes = object_store_bytes
        self.resources = resources or [{} for _ in range(nodes)]
        self.ips = [f"127.0.0.{first_ip + i}" for i in range(nodes)]
        self.dir = Path(tempfile.mkdtemp(prefix="gfray-", dir="/tmp"))  # short: socket paths
        home = self.dir / "home"
        home.mkdir()
        (home / "ray_bootstrap_config.yaml").write_text("{}\n")  # no cloud metadata probes
        self.env = {**os.environ, **RAY_ENV, "HOME": str(home), **(env or {})}
        self.port = _free_port()
        self.address = f"{self.ips[0]}:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> LocalRayCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ray(self) -> str:
        return str(Path(sys.executable).with_name("ray"))

    def _start_node(self, i: int, timeout: float) -> None:
        import json

        log = self.dir / f"node{i}.log"
        args = [self._ray(), "start", "--block", f"--node-ip-address={self.ips[i]}",
                f"--num-cpus={self.cpus}", f"--object-store-memory={self.object_store_bytes}",
                "--disable-usage-stats", f"--temp-dir={self.dir / 'ray'}",
                f"--dashboard-agent-listen-port={_free_port()}",
                f"--metrics-export-port={_free_port()}",
                f"--resources={json.dumps(self.resources[i])}"]
        if i == 0:
            args += ["--head", f"--port={self.port}", "--include-dashboard=false",
                     f"--ray-client-server-port={_free_port()}",
                     f"--dashboard-port={_free_port()}"]
        else:
            args += [f"--address={self.address}"]
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        end = time.monotonic() + timeout
        pause = 0.05
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > end:
                text = log.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"Ray node {i} ({self.ips[i]}) did not start "
                                   f"(exit {proc.poll()}):\n{text}")
            time.sleep(pause)
            pause = min(pause * 2, 0.5)

    def start(self, timeout: float = 180.0) -> None:
        """Start every node; return once each says it runs."""
        for i in range(self.nodes):
            self._start_node(i, timeout)

    def kill_node(self, i: int) -> None:
        """Kill node ``i`` and all its Ray processes at once (a lost machine)."""
        proc = self.procs[i]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the nodes this object started (workers first), then delete its temp dir."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the node stops its own Ray processes
        for proc in reversed(self.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
            with contextlib.suppress(ProcessLookupError):  # anything left in its session
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.procs = []
        shutil.rmtree(self.dir, ignore_errors=True)
