"""What ``CompiledGraph.get_graph()`` returns: the graph's networkx ``MultiDiGraph``, which also
answers LangGraph's drawable-graph calls.

It is a ``networkx.MultiDiGraph`` (node attribute ``kind``; edge attributes ``kind``,
``label``, ...), so networkx algorithms and graphflow's renderers take it as it is. On top:

- iterating ``.edges`` yields :class:`Edge` s: still ``(source, target, key)`` tuples, with
  ``.source``, ``.target``, ``.data`` (the router's label) and ``.conditional`` (a router's or a
  ``Command``'s edge) as LangGraph's edges have;
- ``draw_mermaid()``, ``draw_mermaid_png()``, ``draw_png()``, ``draw_ascii()`` and
  ``print_ascii()``, made offline by graphflow's own renderers (PNG needs Pillow: ``pip install
  "graphflow[draw]"``), never by a web service;
- ``to_networkx()``: a plain ``MultiDiGraph`` copy.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import networkx as nx
from networkx.classes.reportviews import OutMultiEdgeView

__all__ = ["Edge", "GraphView"]

_CONDITIONAL = frozenset({"conditional", "command"})


class Edge(tuple):
    """An edge of a :class:`GraphView`: the tuple ``(source, target, key)``, with LangGraph's
    attribute names ``source``, ``target``, ``data`` (the router's label, or None) and
    ``conditional`` (the edge of a router or a ``Command``)."""

    def __new__(cls, source: str, target: str, key: int, attrs: dict[str, Any]) -> Edge:
        return super().__new__(cls, (source, target, key))

    def __init__(self, source: str, target: str, key: int, attrs: dict[str, Any]) -> None:
        self.source = source
        self.target = target
        self.key = key
        self.data = attrs.get("label")
        self.conditional = attrs.get("kind") in _CONDITIONAL

    def __repr__(self) -> str:
        return (f"Edge(source={self.source!r}, target={self.target!r}, data={self.data!r}, "
                f"conditional={self.conditional})")


class _EdgeView(OutMultiEdgeView):
    """``G.edges``: networkx's view, iterating :class:`Edge` s."""

    __slots__ = ()

    def __iter__(self) -> Any:
        for n, nbrs in self._nodes_nbrs():
            for nbr, kdict in nbrs.items():
                for key, attrs in kdict.items():
                    yield Edge(n, nbr, key, attrs)


class GraphView(nx.MultiDiGraph):
    """A compiled graph's picture: a networkx ``MultiDiGraph`` that LangGraph's drawing calls
    also work on (see the module docstring)."""

    @property
    def edges(self) -> _EdgeView:  # type: ignore[override]
        return _EdgeView(self)

    def to_networkx(self) -> nx.MultiDiGraph:
        """A plain ``networkx.MultiDiGraph`` copy."""
        return nx.MultiDiGraph(self)

    def draw_mermaid(self, **kw: Any) -> str:
        """Mermaid flowchart text (``graphflow.draw.to_mermaid``)."""
        from . import to_mermaid

        return to_mermaid(self, **kw)

    def draw_mermaid_png(self, output_file_path: str | os.PathLike[str] | None = None, *,
                         draw_method: Any = None, **kw: Any) -> bytes:
        """A PNG of the graph, drawn here by graphflow's renderer (LangGraph renders Mermaid
        through a web service; ``draw_method`` is accepted and ignored). Written to
        ``output_file_path`` too, when given."""
        from . import to_png

        data = to_png(self, **kw)
        if output_file_path is not None:
            Path(output_file_path).write_bytes(data)
        return data

    draw_png = draw_mermaid_png

    def draw_ascii(self, **kw: Any) -> str:
        """A drawing for the terminal (``graphflow.draw.to_ascii``)."""
        from . import to_ascii

        return to_ascii(self, **kw)

    def print_ascii(self, **kw: Any) -> None:
        """Print :meth:`draw_ascii`."""
        print(self.draw_ascii(**kw))
