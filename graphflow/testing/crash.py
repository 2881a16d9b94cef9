"""Crash-recovery proof for any graph: kill it with SIGKILL at every boundary, resume it in a new
process, and check that the outcome equals an uninterrupted run and that no finished task ran
twice; count the journaled calls (effects) that ran again.

What it proves is graphflow's guarantee: finished tasks and journaled results are exactly-once
(never run again, never recomputed); effects are at-least-once (a kill after an effect and
before its result is stored repeats it on resume), and exactly-once at an API that honours
``ctx.idempotency_key()``.

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
    """One kill: the ``at``-th event of ``kind`` ("node", "effect", "journal", "writes",
    "checkpoint"). ``problems``: what went wrong (the state differs, a finished task ran again,
    the resume failed). ``repeated_effects``: journaled calls whose function ran more than once
    across the kill and the resume — expected after a kill at an ``effect`` (the function had
    returned, its result was not stored yet), which is why effects should carry
    ``ctx.idempotency_key()``."""

    kind: str
    at: int
    problems: list[str] = field(default_factory=list)
    repeated_effects: list[str] = field(default_factory=list)

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

    @property
    def repeated_effects(self) -> list[str]:
        """Every journaled call that ran more than once, as ``"kill at KIND #N: ..."``."""
        return [f"kill at {p.kind} #{p.at}: {msg}" for p in self.points
                for msg in p.repeated_effects]

    def check(self, *, exactly_once_effects: bool = False) -> None:
        """Raise ``AssertionError`` listing every problem found.

        Journaled results are exactly-once; effects are at-least-once (a kill between an
        effect and the storing of its result repeats it). With ``exactly_once_effects`` a
        repeated effect is a problem too: use it for graphs whose every effect is made in
        ``ctx.step`` and never repeats (e.g. the kill kinds exclude ``effect``).
        """
        bad = [f"kill at {p.kind} #{p.at}: {msg}" for p in self.points for msg in p.problems]
        if exactly_once_effects:
            bad.extend(self.repeated_effects)
        if bad:
            raise AssertionError("crash test failed:\n" + "\n".join(bad))


class _ForkServer:
    """The children's parent: one process that imported everything, forking one per run."""

    def __init__(self, factory: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "graphflow.testing._crash_child", "serve", factory],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=env)

    def run(self, request: dict[str, Any]) -> tuple[int, str, str]:
        """Run one child; its exit status (negative: killed by that signal), stdout, stderr."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            err = self.proc.stderr.read() if self.proc.stderr is not None else ""
            raise RuntimeError(f"the crash-test fork server died (exit {self.proc.returncode})"
                               f":\n{err[-4000:]}")
        rc = json.loads(line)["rc"]
        return rc, Path(request["stdout"]).read_text(), Path(request["stderr"]).read_text()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def _twice(side_db: str) -> list[str]:
    with sqlite3.connect(side_db) as db:
        rows = db.execute("SELECT ns, task, count(*) FROM done GROUP BY ns, task "
                          "HAVING count(*) > 1").fetchall()
    return [f"task {task!r}{f' in subgraph {ns!r}' if ns else ''} completed {n} times"
            for ns, task, n in rows]


def _repeated(side_db: str) -> list[str]:
    with sqlite3.connect(side_db) as db:
        rows = db.execute("SELECT ns, task, idx, count(*) FROM effects GROUP BY ns, task, idx "
                          "HAVING count(*) > 1").fetchall()
    return [f"journaled call #{idx} of task {task!r}{f' in subgraph {ns!r}' if ns else ''} "
            f"ran {n} times" for ns, task, idx, n in rows]


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

    Each kill and each resume runs in a child process forked from a server that imported the
    graph once (so a kill point costs milliseconds). A point's ``problems`` list what went
    wrong; its ``repeated_effects`` list journaled calls that ran again (see :class:`CrashPoint`).

    Args:
        factory: ``"module:function"``; the function takes a checkpointer and returns the
            compiled graph (built on that checkpointer). Importable in a fresh process.
        input: the run's input (serializable).
        store: ``"sqlite:PATH"`` (each kill gets its own file next to PATH) or
            ``"postgres:DSN"`` (each kill gets its own thread).
        kinds: which events to kill at: "node" (a node was entered), "effect" (a ``ctx.step``
            function returned, its result not stored yet), "journal" (a ``ctx.step`` result was
            stored, mid-node), "writes" (a task's writes were stored), "checkpoint" (a step
            boundary was stored).
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
                "stdout": str(work / f"out-{tag}.txt"), "stderr": str(work / f"err-{tag}.txt"),
                "timeout": timeout, "normalize": normalize, **extra}

    server = _ForkServer(factory, env)
    try:
        rc, out, err = server.run(request("reference"))
        if rc != 0:
            raise RuntimeError(f"the uninterrupted run failed:\n{err[-4000:]}")
        reference = json.loads(out.strip().splitlines()[-1])
        points: list[CrashPoint] = []
        for k in kinds:
            for at in range(1, reference["counts"].get(k, 0) + 1):
                point = CrashPoint(k, at)
                points.append(point)
                req = request(f"{k}{at}", kill_kind=k, kill_at=at)
                rc, _, err = server.run(req)
                if rc != -9:
                    point.problems.append(f"expected SIGKILL, got exit {rc}: {err[-800:]}")
                    continue
                rc, out, err = server.run({**req, "input": None, "kill_kind": None})
                if rc != 0:
                    point.problems.append(f"resume failed (exit {rc}): {err[-2000:]}")
                    continue
                result = json.loads(out.strip().splitlines()[-1])
                if result["result"] != reference["result"]:
                    point.problems.append(
                        f"final state differs:\n  got      {result['result']}\n  expected "
                        f"{reference['result']}")
                if result["next"]:
                    point.problems.append(f"run did not finish: next={result['next']}")
                point.problems.extend(_twice(req["side_db"]))
                point.repeated_effects.extend(_repeated(req["side_db"]))
    finally:
        server.close()
    return CrashReport(reference["result"], reference["counts"], points)
