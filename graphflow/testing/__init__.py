"""Tools for testing graphs: :func:`crash_test` kills a run at every boundary and checks that
resuming it loses nothing and repeats nothing."""

from .crash import CrashPoint, CrashReport, crash_test

__all__ = ["CrashPoint", "CrashReport", "crash_test"]
