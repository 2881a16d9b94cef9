"""Shared vocabulary of every renderer: colours per node/edge kind, labels, text metrics.

Everything here is plain data so that Mermaid, DOT, SVG, PNG and ASCII output agree on what a
kind looks like and on what text a node or an edge shows.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

START = "__start__"
END = "__end__"

NODE_KINDS = ("start", "end", "function", "subgraph", "agent", "tool", "router", "memory")
EDGE_KINDS = ("static", "conditional", "join", "command")


@dataclass(frozen=True)
class KindStyle:
    """Colours of one node kind: box fill, border and text."""

    fill: str
    stroke: str
    text: str


NODE_STYLES: dict[str, KindStyle] = {
    "start": KindStyle("#059669", "#047857", "#ffffff"),
    "end": KindStyle("#334155", "#0f172a", "#ffffff"),
    "function": KindStyle("#e0e7ff", "#4f46e5", "#1e1b4b"),
    "subgraph": KindStyle("#f3e8ff", "#9333ea", "#3b0764"),
    "agent": KindStyle("#fef3c7", "#d97706", "#451a03"),
    "tool": KindStyle("#cffafe", "#0891b2", "#083344"),
    "router": KindStyle("#fce7f3", "#db2777", "#500724"),
    "memory": KindStyle("#e7e5e4", "#57534e", "#1c1917"),
}

EDGE_COLORS: dict[str, str] = {
    "static": "#64748b",
    "conditional": "#2563eb",
    "join": "#0d9488",
    "command": "#7c3aed",
}

HIGHLIGHT_COLOR = "#f97316"
CLUSTER_FILL = ("#f8fafc", "#f1f5f9", "#e2e8f0")
CLUSTER_STROKE = "#94a3b8"
FONT_FAMILY = "Helvetica, Arial, 'DejaVu Sans', sans-serif"


def as_graph(G: Any) -> nx.MultiDiGraph:
    """Accept a networkx graph, or anything with ``get_graph()`` (a compiled graph)."""
    if isinstance(G, nx.Graph):
        return G
    get_graph = getattr(G, "get_graph", None)
    if callable(get_graph):
        return get_graph()
    raise TypeError(f"expected a networkx graph or a compiled graph, got {type(G).__name__}")


def node_kind(G: nx.Graph, n: Hashable) -> str:
    """The node's ``kind``; START/END by name when the attribute is missing; unknown -> function."""
    kind = G.nodes[n].get("kind")
    if kind in NODE_STYLES:
        return kind
    if n == START:
        return "start"
    if n == END:
        return "end"
    return "function"


def edge_kind(data: Mapping[str, Any]) -> str:
    """The edge's ``kind``, ``static`` when missing or unknown."""
    kind = data.get("kind")
    return kind if kind in EDGE_COLORS else "static"


def node_style(kind: str) -> KindStyle:
    return NODE_STYLES.get(kind, NODE_STYLES["function"])


def node_label(G: nx.Graph, n: Hashable, *, short: bool = True) -> str:
    """Display text of a node.

    START/END show as ``START``/``END``. A node inside an expanded subgraph (``cluster``
    attribute) shows its own name without the ``cluster:`` prefix when ``short`` is true.
    """
    attrs = G.nodes[n]
    label = attrs.get("label")
    if isinstance(label, str) and label:
        return label
    if n == START:
        return "START"
    if n == END:
        return "END"
    name = str(n)
    if short and attrs.get("cluster"):
        prefix = f"{attrs['cluster']}:"
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def edge_text(data: Mapping[str, Any]) -> str | None:
    """Text drawn on an edge: its ``label``; join edges without a label read ``join``."""
    label = data.get("label")
    if label is not None and str(label) != "":
        return str(label)
    if edge_kind(data) == "join":
        return "join"
    return None


def cluster_chain(path: str | None) -> tuple[str, ...]:
    """``"a:b:c"`` -> ``("a", "a:b", "a:b:c")``: the clusters a node sits in, outermost first."""
    if not path:
        return ()
    parts = str(path).split(":")
    return tuple(":".join(parts[: i + 1]) for i in range(len(parts)))


def normalize_highlight(
    highlight: Iterable[Hashable] | None,
    highlight_edges: Iterable[tuple[Hashable, Hashable]] | None,
) -> tuple[frozenset[Hashable], frozenset[tuple[Hashable, Hashable]]]:
    """Turn the optional highlight arguments into frozensets (empty when ``None``)."""
    nodes = frozenset(highlight or ())
    edges = frozenset((e[0], e[1]) for e in (highlight_edges or ()))
    return nodes, edges


def clean_text(text: str) -> str:
    """One line of printable text: newlines/tabs become spaces, other control chars are dropped."""
    out = []
    for ch in text:
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cs") or ch in "\ufffe\uffff":
            continue
        else:
            out.append(ch)
    return "".join(out)


# Approximate advance widths (in em) of a Helvetica/Arial-like font; deliberately a little
# generous so that labels never overflow their boxes in either SVG viewers or the PNG font.
_NARROW = set("ijlI.,:;|!'`()[]{}fTtr ")
_WIDE = set("mwMW@%")
_UPPER_WIDE = set("ABCDGHKNOQRUVXY&")


def text_width(text: str, size: float) -> float:
    """Estimated width in pixels of ``text`` set at ``size`` px."""
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += 0.34
        elif ch in _WIDE:
            em += 0.90
        elif ch in _UPPER_WIDE:
            em += 0.74
        elif ch.isupper():
            em += 0.68
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            em += 1.05
        else:
            em += 0.58
    return em * size
