"""Waiting in tests without fixed sleeps or tight deadlines: poll a condition until it holds, up
to a generous deadline that scales with ``GRAPHFLOW_TEST_TIME_SCALE`` (default 1; raise it on a
very slow machine)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

SCALE = float(os.environ.get("GRAPHFLOW_TEST_TIME_SCALE", "1"))


def deadline(seconds: float = 60.0) -> float:
    """A monotonic deadline ``seconds`` (scaled) from now."""
    return time.monotonic() + seconds * SCALE


def wait_until(condition: Callable[[], object], what: str, seconds: float = 60.0) -> None:
    """Return as soon as ``condition()`` is true; fail (naming ``what``) after the deadline."""
    end = deadline(seconds)
    pause = 0.002
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
