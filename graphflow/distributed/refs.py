"""How a graph reaches Ray workers: by reference, never pickled.

A worker imports the graph from an importable ``"module:attr"`` reference — the same code
deployed on every machine of the cluster (an installed package, or ``PYTHONPATH``):

- ``attr`` is a :class:`CompiledGraph`: used as it is (with its own checkpointer), or moved to
  ``store`` when one is given;
- ``attr`` is a factory ``make(checkpointer)`` returning the compiled graph (the convention of
  ``graphflow.testing.crash_test``): called once per worker process with the checkpointer that
  ``store`` names (None without one).

Each worker process loads a reference once and keeps it. The driver sends, with every task, a
fingerprint of its graph (name and node names); a worker whose graph differs refuses the task,
naming both, instead of running other code under the same task ids.
"""

from __future__ import annotations

import hashlib
import threading
from typing import TYPE_CHECKING, Any

from ..errors import GraphflowError

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer
    from ..engine.compiled import CompiledGraph

__all__ = ["check_ref", "fingerprint", "load_graph", "open_store"]

_graphs: dict[tuple[str, str | None], CompiledGraph] = {}
_lock = threading.Lock()


def check_ref(ref: Any) -> str:
    """``ref`` if it looks like ``"module:attr"``; a clear error otherwise."""
    if not isinstance(ref, str) or ref.count(":") != 1 or not all(ref.split(":")):
        raise GraphflowError(
            f"graph={ref!r} is not a 'module:attr' reference; Ray workers import the graph by "
            f"it (e.g. 'myapp.graphs:app' for a compiled graph, or 'myapp.graphs:make' for a "
            f"function make(checkpointer) returning one)")
    return ref


def open_store(spec: str) -> Checkpointer:
    """A checkpointer from ``"postgresql://..."`` (a DSN) or ``"sqlite:PATH"``."""
    if spec.startswith(("postgresql://", "postgres://")):
        from ..checkpoint.postgres import PostgresCheckpointer

        return PostgresCheckpointer(spec)
    if spec.startswith("sqlite:"):
        from ..checkpoint.sqlite import SqliteCheckpointer

        return SqliteCheckpointer(spec.removeprefix("sqlite:"))
    raise GraphflowError(f"store={spec[:16]!r}... is neither a PostgreSQL DSN "
                         f"('postgresql://...') nor 'sqlite:PATH'")


def fingerprint(graph: CompiledGraph) -> str:
    """A short digest of what task ids depend on: the graph's name and its nodes' names."""
    names = "\x00".join([graph.name, *sorted(graph._program.specs)])
    return hashlib.blake2b(names.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def load_graph(ref: str, store: str | None = None) -> CompiledGraph:
    """The graph ``ref`` names (see the module docstring), loaded once per process."""
    key = (ref, store)
    graph = _graphs.get(key)
    if graph is not None:
        return graph
    with _lock:
        graph = _graphs.get(key)
        if graph is None:
            graph = _graphs[key] = _load(ref, store)
    return graph


def _load(ref: str, store: str | None) -> CompiledGraph:
    from .._cli_render import UsageError, load_object
    from ..engine.compiled import CompiledGraph

    try:
        obj = load_object(check_ref(ref))
    except UsageError as exc:
        raise GraphflowError(f"the Ray worker cannot load graph {ref!r}: {exc} (deploy the "
                             f"same code on every machine of the cluster)") from exc
    saver = open_store(store) if store else None
    if isinstance(obj, CompiledGraph):
        return obj if saver is None else obj.with_checkpointer(saver)
    if callable(obj):
        made = obj(saver)
        if isinstance(made, CompiledGraph):
            return made
        obj = made
    raise GraphflowError(f"graph {ref!r} is a {type(obj).__name__}, not a compiled graph nor "
                         f"a function make(checkpointer) returning one")
