"""graphflow._workers: the reused daemon threads tool calls and timeouts run on."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from graphflow import _workers as workers

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_job_returns_its_value_or_raises_its_error_in_the_waiter():
    job = workers.start(lambda: 6 * 7)
    assert job.wait(10) and job.done and job.result() == 42

    def boom():
        raise KeyError("lost")

    job = workers.start(boom)
    assert job.wait(10)
    with pytest.raises(KeyError, match="lost"):
        job.result()


def test_a_job_sees_the_submitters_context_and_runs_on_a_daemon_thread():
    token = WHO.set("the caller")
    try:
        job = workers.start(lambda: (WHO.get(), threading.current_thread().daemon))
    finally:
        WHO.reset(token)
    assert job.wait(10) and job.result() == ("the caller", True)


def test_no_job_waits_for_a_busy_worker():
    gate = threading.Barrier(12, timeout=10)  # all twelve must run at once
    jobs = [workers.start(gate.wait) for _ in range(12)]
    assert all(job.wait(20) for job in jobs)
    assert all(job.error is None for job in jobs)


def test_then_runs_on_the_worker_when_the_job_is_done():
    seen = threading.Event()
    got = []
    workers.start(lambda: "done", then=lambda job: (got.append(job.value), seen.set()))
    assert seen.wait(10) and got == ["done"]


def test_idle_workers_end_and_new_work_still_runs(monkeypatch):
    monkeypatch.setattr(workers, "IDLE_SECONDS", 0.05)
    pool = workers._Pool()
    ran = []
    jobs = [workers.Job(lambda: ran.append(threading.current_thread()), None) for _ in range(3)]
    for job in jobs:
        pool.submit(job)
    assert all(job.wait(10) for job in jobs)
    deadline = time.monotonic() + 30
    # a worker spawned for a job that an earlier worker took may never appear in ``ran``:
    # wait for every idle slot to be given back, not just for the workers that ran jobs
    while (pool._idle or any(t.is_alive() for t in ran)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.is_alive() for t in ran), "idle workers did not end"
    assert pool._idle == 0
    job = workers.Job(lambda: "after", None)
    pool.submit(job)
    assert job.wait(10) and job.result() == "after"
