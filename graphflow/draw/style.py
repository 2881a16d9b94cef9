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
EDGE_KINDS = ("static", "conditional", "join", "command", "send")


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
    "send": "#c026d3",
}

HIGHLIGHT_COLOR = "#f97316"
CLUSTER_FILL = ("#f8fafc", "#f1f5f9", "#e2e8f0")
CLUSTER_STROKE = "#94a3b8"
FONT_FAMILY = "Helvetica, Arial, 'DejaVu Sans', sans-serif"


DIRECTIONS = ("TB", "LR")


def check_direction(direction: str) -> str:
    """``direction`` if it is one of :data:`DIRECTIONS`, else a ``ValueError`` naming them."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    return direction


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
    attribute) shows its own name, without the ``outer:inner:`` prefix of its expanded name,
    when ``short`` is true.
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
    path = cluster_path(attrs.get("cluster"))
    if short and path:
        prefix = "".join(f"{c}:" for c in path)
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def edge_text(data: Mapping[str, Any]) -> str | None:
    """Text drawn on an edge: its ``label`` (join edges without one read ``join``), then
    ``\u00d7n`` when a run overlay counted it taken ``n`` > 1 times (``taken``)."""
    label = data.get("label")
    text = str(label) if label is not None and str(label) != "" else None
    if text is None and edge_kind(data) == "join":
        text = "join"
    taken = data.get("taken")
    if isinstance(taken, int) and taken > 1:
        count = f"\u00d7{taken}"
        text = f"{text} {count}" if text else count
    return text


ClusterPath = tuple[str, ...]  # the names of the nested subgraphs, outermost first


def cluster_path(value: Any) -> ClusterPath:
    """A node's ``cluster`` attribute as a path: a tuple or list of subgraph names, outermost
    first (what :func:`expand_subgraphs` writes). A plain string is one name, never split: a
    subgraph may be called ``"stage: 2"``."""
    if value is None or value == "" or value == ():
        return ()
    if isinstance(value, tuple | list):
        return tuple(str(part) for part in value)
    return (str(value),)


def cluster_chain(value: Any) -> tuple[ClusterPath, ...]:
    """``("a", "b")`` -> ``(("a",), ("a", "b"))``: the clusters a node sits in, outermost
    first, each as its path."""
    path = cluster_path(value)
    return tuple(path[: i + 1] for i in range(len(path)))


def cluster_tree(
    G: nx.Graph,
) -> tuple[dict[ClusterPath, list[Hashable]], dict[ClusterPath, list[ClusterPath]]]:
    """The nodes directly in each cluster (``()``: the top level) and each cluster's child
    clusters, in the graph's node order: how Mermaid and DOT nest their subgraph blocks."""
    tree: dict[ClusterPath, list[Hashable]] = {(): []}
    children: dict[ClusterPath, list[ClusterPath]] = {(): []}
    for n in G.nodes:
        parent: ClusterPath = ()
        for c in cluster_chain(G.nodes[n].get("cluster")):
            if c not in tree:
                tree[c], children[c] = [], []
                children[parent].append(c)
            parent = c
        tree[parent].append(n)
    return tree, children


def cluster_title(path: ClusterPath) -> str:
    """How a cluster is named to people: its names joined by a right-pointing quote."""
    return " \u203a ".join(clean_text(part) for part in path)


Highlight = Iterable[Hashable] | None
Pair = tuple[Hashable, Hashable]
HighlightEdges = Iterable[Pair] | Mapping[Pair, int] | None


def normalize_highlight(
    highlight: Highlight, highlight_edges: HighlightEdges
) -> tuple[frozenset[Hashable], frozenset[tuple[Hashable, Hashable]]]:
    """Turn the optional highlight arguments into frozensets (empty when ``None``)."""
    nodes = frozenset(highlight or ())
    edges = frozenset((e[0], e[1]) for e in (highlight_edges or ()))
    return nodes, edges


def prepare(
    G: Any, highlight: Highlight, highlight_edges: HighlightEdges
) -> tuple[nx.Graph, frozenset[Hashable], frozenset[tuple[Hashable, Hashable]]]:
    """What every renderer starts with: the graph, and the highlighted nodes and edges.

    ``highlight_edges`` may be a mapping ``{(u, v): n}`` (what ``run_edges`` returns): an edge
    taken ``n`` > 1 times then carries ``taken=n`` (in a copy of the graph), which
    :func:`edge_text` shows.
    """
    G = as_graph(G)
    nodes, edges = normalize_highlight(highlight, highlight_edges)
    if isinstance(highlight_edges, Mapping):
        counts = {(e[0], e[1]): n for e, n in highlight_edges.items()
                  if isinstance(n, int) and n > 1}
        if counts:
            G = G.copy()
            for u, v, data in G.edges(data=True):
                if (u, v) in counts:
                    data["taken"] = counts[(u, v)]
    return G, nodes, edges


def wrap_text(text: str, width: int | None) -> list[str]:
    """``text`` broken into lines of at most about ``width`` characters (``None``: one line).

    Breaks after spaces, ``_``, ``-``, ``.``, ``:``, ``/`` and before a capital that follows
    a lower-case letter (``camelCase``); a part longer than ``width`` is cut.
    """
    if width is None or width < 1 or len(text) <= width:
        return [text]
    parts: list[str] = []
    current = ""
    for i, ch in enumerate(text):
        if current and ch.isupper() and text[i - 1].islower():
            parts.append(current)
            current = ""
        current += ch
        if ch in " _-.:/":
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    lines: list[str] = []
    line = ""
    for part in parts:
        while len(part) > width:  # a part too long for any line: cut it
            if line:
                lines.append(line)
                line = ""
            lines.append(part[:width])
            part = part[width:]
        if line and len(line) + len(part.rstrip()) > width:
            lines.append(line)
            line = ""
        line += part
    if line:
        lines.append(line)
    return [ln.strip() or ln for ln in lines]


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
