"""Diagram methods of compiled graphs (the drawing itself lives in :mod:`graphflow.draw`)."""

from __future__ import annotations

import base64
import contextlib
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..constants import END, START
from .ids import child_namespace, escape_name, make_task_id

if TYPE_CHECKING:
    import networkx as nx

    from ..checkpoint.base import Checkpoint, Checkpointer

__all__ = ["Drawable"]


class Drawable:
    """``to_mermaid``/``to_dot``/``to_svg``/``to_png``/``to_ascii``/``to_json``/``draw`` and
    inline display in Jupyter, for anything with ``get_graph()``."""

    checkpointer: Checkpointer | None

    def get_graph(self, *, expand_subgraphs: bool | int = False) -> nx.MultiDiGraph:
        raise NotImplementedError

    def run_path(self, thread: str, *, expand: bool | int = False, ns: str = ""
                 ) -> tuple[set[str], set[tuple[str, str]]]:
        """The nodes and edges that ``thread`` executed, from its checkpoint history.

        Edges are the ones the run really took, as each checkpoint records them
        (``metadata["edges"]``: static edges, routers' answers, ``goto``, ``Send``, joins).
        With ``expand`` (as for ``get_graph(expand_subgraphs=...)``) the nodes and edges inside
        subgraphs are included too (as ``parent:child``), read from their own namespaces.
        ``ns``: the namespace inside the thread (a subgraph's run).
        """
        trace = self._trace_thread(thread, expand, ns)
        return trace.nodes(), set(trace.edges)

    def run_edges(self, thread: str, *, expand: bool | int = False, ns: str = ""
                  ) -> dict[tuple[str, str], int]:
        """How many times ``thread`` took each edge: ``{(source, target): n}``.

        ``n`` counts loop iterations and ``Send`` fan-out (three ``Send`` s in one step count
        3). Renderers take this dict as ``highlight_edges=`` and show the count on an edge
        taken more than once. Checkpoints stored before graphflow recorded edges add none.
        """
        return dict(self._trace_thread(thread, expand, ns).edges)

    def _trace_thread(self, thread: str, expand: bool | int, ns: str = "") -> _Trace:
        if self.checkpointer is None:
            raise ValueError("drawing a run needs a checkpointer: compile(checkpointer=...)")
        if not self.checkpointer.list(thread, limit=1, ns=ns):
            raise ValueError(f"thread {thread!r} has no checkpoint to draw")
        return self._trace(thread, ns, expand)

    def _history(self, thread: str, ns: str) -> list[Checkpoint]:
        """The checkpoints that led to the newest one of the run in ``ns`` of ``thread``, oldest
        first (the other branches of a forked history left out)."""
        assert self.checkpointer is not None
        newest_first = self.checkpointer.list(thread, ns=ns)
        by_id = {cp.id: cp for cp in newest_first}
        line: list[Checkpoint] = []
        cp = newest_first[0] if newest_first else None
        while cp is not None and len(line) <= len(by_id):
            line.append(cp)
            cp = by_id.get(cp.parent_id or "")
        return line[::-1]

    @staticmethod
    def _subgraph_run(ns: str, cp: Checkpoint, node: str, index: int) -> str:
        """The namespace in which the subgraph task ``(node, index)``, due after ``cp`` in the
        run in ``ns``, keeps its own checkpoints (as the engine names it: the parent task's
        id, under the parent's namespace)."""
        branch = cp.metadata.get("branch")
        task = make_task_id(cp.step + 1, escape_name(node), index,
                            branch if isinstance(branch, str) else "")
        return child_namespace(ns, task)

    def _trace(self, thread: str, ns: str, expand: bool | int) -> _Trace:
        """The edges taken by the run in namespace ``ns`` of ``thread`` (``""``: the thread's
        own run), counted; with ``expand``, a subgraph node's edges lead into what ran inside
        it."""
        specs = self._program.specs  # type: ignore[attr-defined]
        history = self._history(thread, ns)
        trace = _Trace()
        inside: dict[tuple[int, str], _Trace] = {}  # (step, subgraph node) -> what ran in it
        for cp in history:
            trace.wrote.update(n for n, _, _ in cp.writes if n in specs and not (
                expand and specs[n].subgraph is not None))  # an expanded subgraph is no node
            for node, index, _ in cp.next if expand else ():
                spec = specs.get(node)
                if spec is None or spec.subgraph is None:
                    continue
                child = spec.subgraph.with_checkpointer(self.checkpointer)
                child_ns = self._subgraph_run(ns, cp, node, index)
                if not child.checkpointer.list(thread, limit=1, ns=child_ns):
                    continue  # the task has not run (yet)
                deeper = True if expand is True else int(expand) - 1
                run = child._trace(thread, child_ns, deeper)
                inside.setdefault((cp.step + 1, node), _Trace()).nest(node, run)
        for cp in history:
            for u, v, n in _recorded_edges(cp):
                out_of, into = inside.get((cp.step, u)), inside.get((cp.step + 1, v))
                for a in out_of.exits if out_of is not None else (u,):
                    for b in into.entries if into is not None else (v,):
                        trace.edges[(a, b)] += n
        for run in inside.values():
            trace.edges.update(run.edges)
            trace.wrote |= run.wrote
        return trace

    def _diagram(self, expand: bool | int, run: str | None, kw: dict[str, Any]) -> Any:
        if run is not None:
            trace = self._trace_thread(run, expand)
            kw.setdefault("highlight", trace.nodes())
            kw.setdefault("highlight_edges", dict(trace.edges))
        return self.get_graph(expand_subgraphs=expand)

    def to_mermaid(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> str:
        """Mermaid flowchart text (renders on GitHub)."""
        from ..draw import to_mermaid

        return to_mermaid(self._diagram(expand, run, kw), **kw)

    def to_dot(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> str:
        """Graphviz DOT text."""
        from ..draw import to_dot

        return to_dot(self._diagram(expand, run, kw), **kw)

    def to_svg(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> str:
        """A self-contained SVG drawn by graphflow (no browser, service or binary)."""
        from ..draw import to_svg

        return to_svg(self._diagram(expand, run, kw), **kw)

    def to_png(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> bytes:
        """A PNG drawn offline with Pillow (``pip install "graphflow[draw]"``)."""
        from ..draw import to_png

        return to_png(self._diagram(expand, run, kw), **kw)

    def to_ascii(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> str:
        """A drawing for the terminal."""
        from ..draw import to_ascii

        return to_ascii(self._diagram(expand, run, kw), **kw)

    def to_json(self, *, expand: bool | int = False, run: str | None = None, **kw: Any) -> str:
        """Node-link JSON."""
        from ..draw import to_json

        return to_json(self._diagram(expand, run, kw), **kw)

    def draw(self, path: str | os.PathLike[str], *, expand: bool | int = False,
             run: str | None = None, **kw: Any) -> Path:
        """Write a diagram; the format follows the suffix (.svg .png .mmd .dot .json .txt).

        ``run=thread`` highlights the nodes and edges that thread executed.
        """
        from ..draw import draw

        return draw(self._diagram(expand, run, kw), path, **kw)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Inline display in Jupyter: an SVG and, with Pillow, a PNG beside it (for exports
        to PDF and viewers without SVG), made offline; plain text if drawing fails."""
        bundle: dict[str, Any] = {"text/plain": repr(self)}

        def wanted(mime: str) -> bool:
            return (not include or mime in include) and not (exclude and mime in exclude)

        with contextlib.suppress(Exception):  # a notebook must never break on display
            if wanted("image/svg+xml"):
                bundle["image/svg+xml"] = self.to_svg()
        with contextlib.suppress(Exception):  # no Pillow: no PNG
            if wanted("image/png"):
                bundle["image/png"] = base64.b64encode(self.to_png()).decode("ascii")
        return bundle


class _Trace:
    """What a run took: its edges (counted) and the nodes that wrote; for a subgraph's run
    nested into its parent, also the names the parent's edges enter and leave it by."""

    def __init__(self) -> None:
        self.edges: Counter[tuple[str, str]] = Counter()
        self.wrote: set[str] = set()
        self.entries: list[str] = []
        self.exits: list[str] = []

    def nodes(self) -> set[str]:
        out = {START, *self.wrote}
        for u, v in self.edges:
            out.update((u, v))
        return out

    def nest(self, node: str, run: _Trace) -> None:
        """Add ``run``, a run of subgraph ``node``, in the parent's names (``node:child``).

        (A run that went straight from its START to its END is not drawn through.)"""
        def name(n: str) -> str:
            return f"{node}:{n}"

        for (u, v), n in run.edges.items():
            if u == START and v != END:
                self.entries.append(name(v))
            elif v == END and u != START:
                self.exits.append(name(u))
            elif START not in (u, v) and END not in (u, v):
                self.edges[(name(u), name(v))] += n
        self.entries = list(dict.fromkeys(self.entries))
        self.exits = list(dict.fromkeys(self.exits))
        self.wrote |= {name(n) for n in run.wrote}


def _recorded_edges(cp: Checkpoint) -> list[tuple[str, str, int]]:
    """A checkpoint's ``metadata["edges"]`` as ``(source, target, n)``; malformed entries
    (the store is untrusted) are left out."""
    out = []
    for item in cp.metadata.get("edges") or ():
        if not isinstance(item, list | tuple) or len(item) not in (2, 3):
            continue
        u, v, *rest = item
        n = rest[0] if rest else 1
        if isinstance(u, str) and isinstance(v, str) and type(n) is int and n > 0:
            out.append((u, v, n))
    return out
