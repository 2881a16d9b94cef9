"""Crash-recovery proof for any graph: kill it with SIGKILL at every boundary, resume it in a new
process, and check that the outcome equals an uninterrupted run and that no finished task ran
twice.

Point it at your own graph::

    # mypkg/graphs.py
    def make(checkpointer):          # builds and compiles the graph on the given checkpointer
        ...
        return g.compile(checkpointer=checkpointer)

    report = crash_test("mypkg.graphs:make", {"question": "..."}, store="sqlite:/tmp/runs.db")
    report.check()                  # raises AssertionError listing every problem
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint.serde import dumps
from ._instrument import KINDS

__all__ = ["CrashPoint", "CrashReport", "crash_test"]


@dataclass
class CrashPoint:
    """One kill: the ``at``-th event of ``kind`` ("node", "journal", "writes", "checkpoint")."""

    kind: str
    at: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class CrashReport:
    """The reference outcome, the event counts of an uninterrupted run, and every kill."""

    reference: str
    counts: dict[str, int]
    points: list[CrashPoint]

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.points)

    def check(self) -> None:
        """Raise ``AssertionError`` listing every problem found."""
        bad = [f"kill at {p.kind} #{p.at}: {msg}" for p in self.points for msg in p.problems]
        if bad:
            raise AssertionError("crash test failed:\n" + "\n".join(bad))


def _child(request: dict[str, Any], env: dict[str, str], timeout: float
           ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphflow.testing._crash_child", json.dumps(request)],
        capture_output=True, text=True, env=env, timeout=timeout)


def _twice(side_db: str) -> list[str]:
    with sqlite3.connect(side_db) as db:
        rows = db.execute("SELECT task, count(*) FROM done GROUP BY task HAVING count(*) > 1")
        return [f"task {task!r} completed {n} times" for task, n in rows]


def crash_test(
    factory: str,
    input: Any,
    *,
    store: str,
    kinds: Iterable[str] = KINDS,
    workdir: str | os.PathLike[str] | None = None,
    pythonpath: Iterable[str] = (),
    timeout: float = 120.0,
    normalize: str | None = None,
) -> CrashReport:
    """Kill a run of ``factory``'s graph at every event of ``kinds``; resume; compare.

    Args:
        factory: ``"module:function"``; the function takes a checkpointer and returns the
            compiled graph (built on that checkpointer). Importable in a fresh process.
        input: the run's input (serializable).
        store: ``"sqlite:PATH"`` (each kill gets its own file next to PATH) or
            ``"postgres:DSN"`` (each kill gets its own thread).
        kinds: which events to kill at: "node" (a node was entered), "journal" (a ``ctx.step``
            result was stored, mid-node), "writes" (a task's writes were stored), "checkpoint"
            (a step boundary was stored).
        workdir: where side tables go (a temporary folder by default).
        pythonpath: folders to put on the child's ``sys.path``.
        timeout: seconds per child process.
        normalize: ``"module:function"`` applied to the final state before it is compared,
            for what legitimately differs between runs (random message ids, timestamps).
    """
    work = Path(workdir or tempfile.mkdtemp(prefix="graphflow-crash-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*pythonpath, *filter(None, [env.get("PYTHONPATH")])])
    kind, _, where = store.partition(":")

    def request(tag: str, **extra: Any) -> dict[str, Any]:
        if kind == "sqlite":
            base = Path(where)
            suffix = base.suffix or ".db"
            spec = f"sqlite:{base.with_name(f'{base.stem}-{tag}{suffix}')}"
        else:
            spec = store
        return {"factory": factory, "store": spec, "thread": f"crash-{tag}-{uuid.uuid4().hex[:8]}",
                "input": dumps(input), "side_db": str(work / f"side-{tag}.db"),
                "normalize": normalize, **extra}

    ref_req = request("reference")
    ref = _child(ref_req, env, timeout)
    if ref.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed:\n{ref.stderr[-4000:]}")
    reference = json.loads(ref.stdout.strip().splitlines()[-1])
    points: list[CrashPoint] = []
    for k in kinds:
        for at in range(1, reference["counts"].get(k, 0) + 1):
            point = CrashPoint(k, at)
            points.append(point)
            req = request(f"{k}{at}", kill_kind=k, kill_at=at)
            killed = _child(req, env, timeout)
            if killed.returncode != -9:
                point.problems.append(
                    f"expected SIGKILL, got exit {killed.returncode}: {killed.stderr[-800:]}")
                continue
            resumed = _child({**req, "input": None, "kill_kind": None}, env, timeout)
            if resumed.returncode != 0:
                point.problems.append(f"resume failed: {resumed.stderr[-2000:]}")
                continue
            out = json.loads(resumed.stdout.strip().splitlines()[-1])
            if out["result"] != reference["result"]:
                point.problems.append(
                    f"final state differs:\n  got      {out['result']}\n  expected "
                    f"{reference['result']}")
            if out["next"]:
                point.problems.append(f"run did not finish: next={out['next']}")
            point.problems.extend(_twice(req["side_db"]))
    return CrashReport(reference["result"], reference["counts"], points)
