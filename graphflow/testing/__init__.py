"""Tools for testing graphs: :func:`crash_test` kills a run at every boundary and checks that
resuming it loses nothing, runs no finished task twice, and reports which effects ran again."""

from .crash import CrashPoint, CrashReport, crash_test

__all__ = ["CrashPoint", "CrashReport", "crash_test"]
