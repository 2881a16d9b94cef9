"""kill -9 of a sleeping run's worker: the thread sleeps in a SQLite file while no process runs;
`graphflow worker` wakes it at the right time; a worker killed in the middle of the woken run is
replaced by another that finishes it, running no journaled effect twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "support"))
from durable_graphs import make_sleeper
from waiting import wait_until

from graphflow.checkpoint.sqlite import SqliteCheckpointer

SUPPORT = Path(__file__).parent / "support"


def _worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "graphflow.cli", "worker", "durable_graphs:sleeper_app",
         "--poll", "0.1"],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, cwd=SUPPORT)


def test_a_killed_worker_is_replaced_and_the_sleeping_run_finishes_once(tmp_path):
    db, effects, hang = tmp_path / "runs.db", tmp_path / "effects", tmp_path / "hang"
    env = {**os.environ, "PYTHONPATH": str(SUPPORT), "DURABLE_DB": str(db),
           "DURABLE_EFFECTS": str(effects)}
    os.environ["DURABLE_EFFECTS"] = str(effects)
    thread = f"t-{uuid.uuid4().hex}"
    try:
        with SqliteCheckpointer(db) as saver:  # this process starts the run; it pauses, durably
            out = make_sleeper(saver).invoke({"seconds": 0.5, "log": []}, thread=thread)
        deadline = out["__interrupt__"][0].value.until
    finally:
        del os.environ["DURABLE_EFFECTS"]

    first = _worker({**env, "DURABLE_HANG_AFTER_WAKE": str(hang)}, tmp_path / "w1.log")
    try:
        wait_until(hang.exists, "the first worker to wake the thread")
        assert time.time() >= deadline  # not a moment before its time
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    second = _worker(env, tmp_path / "w2.log")
    try:
        def finished() -> bool:
            with SqliteCheckpointer(db) as saver:
                snap = make_sleeper(saver).get_state(thread)
                return snap is not None and not snap.next
        wait_until(finished, "the second worker to finish the thread")
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, (tmp_path / "w2.log").read_text()
    with SqliteCheckpointer(db) as saver:
        state = make_sleeper(saver).get_state(thread).values
        assert saver.waits(thread) == []
    assert state["log"] == ["before", "nap", "after"]
    assert state["woke_at"] >= deadline
    # the effect journaled before the kill is not repeated: each ran once
    assert effects.read_text().split() == ["before", "nap"]
    assert '"outcome": "finished"' in (tmp_path / "w2.log").read_text()
