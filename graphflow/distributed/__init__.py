"""Graphs on a Ray cluster: a step's tasks as Ray tasks, whole runs as Ray tasks.

Needs the ``ray`` extra: ``pip install "graphflow[ray]"``. See ``docs/distributed.md``.

::

    from graphflow.distributed import RayExecutor, ray_node, submit

    g.add_node("parse", parse, metadata=ray_node(num_cpus=2))      # this node's tasks on Ray
    app = g.compile(checkpointer=PostgresCheckpointer(dsn))        # in myapp/graphs.py
    on_ray = app.with_executor(RayExecutor("myapp.graphs:app"))
    on_ray.invoke({"docs": [...]}, thread="t1")                    # fan-out on the cluster
    submit(on_ray, {"docs": [...]}, thread="t2").result()          # the whole run on a worker

Importing this package does not import Ray; connecting does (on first use).
"""

from .blobs import BlobRef, BlobStore, FileBlobStore
from .errors import (
    ClusterUnavailableError,
    ExecutorBusyError,
    RemoteError,
    RunStoppedError,
    WorkerLostError,
)
from .executor import RayExecutor, RunHandle, ray_node, submit

__all__ = [
    "BlobRef",
    "BlobStore",
    "ClusterUnavailableError",
    "ExecutorBusyError",
    "FileBlobStore",
    "RayExecutor",
    "RemoteError",
    "RunHandle",
    "RunStoppedError",
    "WorkerLostError",
    "ray_node",
    "submit",
]
