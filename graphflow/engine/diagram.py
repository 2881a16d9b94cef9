"""Diagram methods of compiled graphs (the drawing itself lives in :mod:`graphflow.draw`)."""

from __future__ import annotations

import contextlib
import itertools
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..constants import END, START
from .ids import child_tasks

if TYPE_CHECKING:
    import networkx as nx

    from ..checkpoint.base import Checkpointer

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

        With ``expand`` (as for ``get_graph(expand_subgraphs=...)``) the nodes that ran inside
        subgraphs are included too (as ``parent:child``), read from their own namespaces.
        ``ns``: the namespace inside the thread (a subgraph's run).
        """
        if self.checkpointer is None:
            raise ValueError("drawing a run needs a checkpointer: compile(checkpointer=...)")
        history = self.checkpointer.list(thread, ns=ns)[::-1]  # oldest first
        if not history:
            raise ValueError(f"thread {thread!r} has no checkpoint to draw")
        ran: list[set[str]] = [{START}]
        for cp in history:
            nodes = {n for n, _, _ in cp.writes if n in self._node_names()}
            if nodes:
                ran.append(nodes)
        if not history[-1].next:
            ran.append({END})
        graph = self.get_graph()
        edges = {(u, v) for before, after in itertools.pairwise(ran)
                 for u in before for v in after if graph.has_edge(u, v)}
        for u, v in graph.edges():  # a node's own loop counts when it ran twice in a row
            if u == v and any(u in step for step in ran[1:]):
                edges.add((u, v))
        nodes = set().union(*ran)
        if not expand:
            return nodes, edges
        nodes |= self._ran_inside(thread, ns, expand)
        expanded = self.get_graph(expand_subgraphs=expand)
        edges = {(u, v) for u, v in expanded.edges() if u in nodes and v in nodes}
        return nodes, edges

    def _ran_inside(self, thread: str, ns: str, expand: bool | int) -> set[str]:
        """Nodes that ran inside this graph's subgraphs, as ``parent:child`` names (each
        subgraph task checkpoints in a namespace of its own: see ``graphflow.engine.ids``)."""
        deeper = True if expand is True else int(expand) - 1
        specs = self._program.specs  # type: ignore[attr-defined]
        out: set[str] = set()
        saver = self.checkpointer
        if saver is None:
            return out
        for child_ns, name in child_tasks(ns, saver.namespaces(thread)):
            spec = specs.get(name)
            if spec is None or spec.subgraph is None:
                continue
            child = spec.subgraph.with_checkpointer(saver)
            inner, _ = child.run_path(thread, expand=deeper, ns=child_ns) if deeper else \
                child.run_path(thread, ns=child_ns)
            out |= {f"{name}:{n}" for n in inner if n not in (START, END)}
        return out

    def _node_names(self) -> set[str]:
        return set(self.get_graph().nodes)

    def _diagram(self, expand: bool | int, run: str | None, kw: dict[str, Any]) -> Any:
        if run is not None:
            nodes, edges = self.run_path(run, expand=expand)
            kw.setdefault("highlight", nodes)
            kw.setdefault("highlight_edges", edges)
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
        """Inline display in Jupyter: an SVG, made offline; plain text if drawing fails."""
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        with contextlib.suppress(Exception):  # a notebook must never break on display
            bundle["image/svg+xml"] = self.to_svg()
        return bundle
