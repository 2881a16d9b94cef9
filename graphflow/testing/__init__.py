"""Tools for testing graphs: :func:`crash_test` kills a run at every boundary and checks that
resuming it loses nothing, runs no finished task twice, and reports which effects ran again;
:class:`LocalRayCluster` starts real Ray nodes on this machine (and stops only those)."""

from .crash import CrashPoint, CrashReport, crash_test
from .ray_cluster import LocalRayCluster

__all__ = ["CrashPoint", "CrashReport", "LocalRayCluster", "crash_test"]
