"""The crash-recovery proof: a graph with parallel branches, Send fan-out, a join, a subgraph and a
loop is SIGKILLed at every boundary in a subprocess (on entering each node, between an effect and
the storing of its journaled result, mid-node after each journaled ctx.step, after each task's
writes are stored, after each checkpoint), resumed in a new process, and must end exactly like an
uninterrupted run with no finished task run twice. Its side effect is at-least-once (called again
after a kill between the effect and its journal entry) and exactly-once where it counts: the API
it calls applies each idempotency key once."""

import sqlite3
from pathlib import Path

import pytest

from graphflow.testing import crash_test

SUPPORT = str(Path(__file__).parent / "support")
INPUT = {"items": [], "rounds": 0}
EXPECTED = ["plan", "a", "b", "work0", "work1", "work2", "merge:3", "s1", "s2", "merge:5", "s1",
            "s2"]


def _check(report, effects_db: Path) -> None:
    report.check()
    assert '"rounds":2' in report.reference
    for item in EXPECTED:
        assert f'"{item}"' in report.reference
    assert report.counts["journal"] == 2 and report.counts["node"] == 12
    assert report.counts["effect"] == 2
    kinds = {p.kind for p in report.points}
    assert kinds == {"node", "effect", "journal", "writes", "checkpoint"}
    # at-least-once, honestly: a kill after the effect and before its journal entry repeats it,
    # and only such a kill does
    for p in report.points:
        assert bool(p.repeated_effects) == (p.kind == "effect"), (p.kind, p.at)
    with pytest.raises(AssertionError, match="ran 2 times"):
        report.check(exactly_once_effects=True)
    with sqlite3.connect(effects_db) as db:
        calls, = db.execute("SELECT count(*) FROM calls").fetchone()
        applied, = db.execute("SELECT count(*) FROM charges").fetchone()
    runs = len(report.points) + 1
    # exactly-once where the API honours the key: 2 charges per run (reference + each kill
    # point), each applied once; the calls repeated after the effect kills carried the same key
    assert applied == 2 * runs
    assert calls == applied + report.counts["effect"]


# one subprocess run per boundary: minutes on a loaded machine, so a generous bound
@pytest.mark.timeout(600)
def test_crash_at_every_boundary_sqlite(tmp_path, monkeypatch):
    effects = tmp_path / "effects.db"
    monkeypatch.setenv("CRASH_EFFECTS_DB", str(effects))
    report = crash_test("crash_graph:make", INPUT, store=f"sqlite:{tmp_path / 'runs.db'}",
                        pythonpath=[SUPPORT], workdir=tmp_path)
    _check(report, effects)


@pytest.mark.timeout(600)
def test_crash_at_every_boundary_postgres(tmp_path, monkeypatch, pg_dsn):
    effects = tmp_path / "effects.db"
    monkeypatch.setenv("CRASH_EFFECTS_DB", str(effects))
    report = crash_test("crash_graph:make", INPUT, store=f"postgres:{pg_dsn}",
                        pythonpath=[SUPPORT], workdir=tmp_path)
    _check(report, effects)


def test_report_lists_problems_when_state_differs(tmp_path, monkeypatch):
    """The harness itself can fail: a graph whose result depends on the process differs."""
    monkeypatch.setenv("CRASH_EFFECTS_DB", str(tmp_path / "effects.db"))
    report = crash_test("flaky_graph:make", {"pids": []}, store=f"sqlite:{tmp_path / 'r.db'}",
                        kinds=["checkpoint"], pythonpath=[SUPPORT], workdir=tmp_path)
    assert not report.ok
    with pytest.raises(AssertionError, match="final state differs"):
        report.check()
