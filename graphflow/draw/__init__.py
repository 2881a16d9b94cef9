"""Diagrams of graphflow graphs: Mermaid, Graphviz DOT, SVG, PNG, ASCII and JSON.

Every function takes the ``networkx.MultiDiGraph`` returned by ``CompiledGraph.get_graph()``
(or the compiled graph itself). SVG, PNG and ASCII use graphflow's own layered layout
(:func:`layout`, pure Python: ``direction="TB"``/``"LR"``, ``compact=True``, ``wrap=``);
PNG needs Pillow (``pip install "graphflow[draw]"``), imported only when a PNG is made.
Renderers accept ``highlight=`` (node names) and ``highlight_edges=`` (``(u, v)`` pairs, or
``{(u, v): n}`` to show how often a run took each) to emphasize, say, the path of a run. See
docs/diagrams.md.
"""

from __future__ import annotations

from .ascii import to_ascii
from .dot import to_dot
from .expand import expand_subgraphs
from .export import FORMATS, draw
from .geometry import ClusterBox, EdgeRoute, LabelBox, Layout, NodeBox
from .layout import layout
from .mermaid import to_mermaid
from .nodelink import to_json
from .png import to_png
from .svg import to_svg

__all__ = [
    "FORMATS",
    "ClusterBox",
    "EdgeRoute",
    "LabelBox",
    "Layout",
    "NodeBox",
    "draw",
    "expand_subgraphs",
    "layout",
    "to_ascii",
    "to_dot",
    "to_json",
    "to_mermaid",
    "to_png",
    "to_svg",
]
