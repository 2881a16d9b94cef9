"""Graphviz DOT text (for the ``dot`` tool and anything that reads DOT)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .layering import break_cycles
from .style import (
    CLUSTER_FILL,
    CLUSTER_STROKE,
    EDGE_COLORS,
    HIGHLIGHT_COLOR,
    START,
    ClusterPath,
    Highlight,
    HighlightEdges,
    check_direction,
    clean_text,
    cluster_tree,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    node_style,
    prepare,
)

_FONT = "Helvetica,Arial,sans-serif"

# Graphviz shape and style per node kind
_SHAPES: dict[str, tuple[str, str]] = {
    "start": ("circle", "filled"),
    "end": ("doublecircle", "filled"),
    "function": ("box", "rounded,filled"),
    "subgraph": ("box3d", "filled"),
    "agent": ("box", "rounded,filled,bold"),
    "tool": ("component", "filled"),
    "router": ("hexagon", "filled"),
    "memory": ("cylinder", "filled"),
}

_EDGE_ATTRS: dict[str, dict[str, str]] = {
    "static": {},
    "conditional": {"style": "dashed"},
    "join": {"style": "bold", "penwidth": "2", "arrowhead": "normal", "arrowtail": "dot",
             "dir": "both"},
    "command": {"style": "dashed", "arrowhead": "vee"},
    "send": {"penwidth": "1.6", "arrowhead": "normalcrow"},  # a crow's foot: a fan-out
}


def quote(text: str) -> str:
    """A DOT double-quoted string shown literally: no ``\\n``/``\\N`` escapes and no HTML
    entities (Graphviz decodes ``&...;`` in labels, so ``&`` is written ``&amp;``)."""
    text = clean_text(text).replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _attrs(attrs: dict[str, str]) -> str:
    if not attrs:
        return ""
    body = ", ".join(f"{k}={quote(v)}" for k, v in attrs.items())
    return f" [{body}]"


def _node_id(n: Hashable) -> str:
    # A trailing backslash would escape the closing quote in every Graphviz version; names are
    # otherwise kept as-is (the label carries the display text).
    text = clean_text(str(n)).replace("&", "&amp;")
    if text.endswith("\\"):
        text += " "
    return '"' + text.replace('"', '\\"') + '"'


def to_dot(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    title: bool = True,
    direction: str = "TB",
) -> str:
    """Render ``G`` as a Graphviz ``digraph``.

    Quoted ids, a shape and colours per node kind (START a circle, END a double circle),
    conditional edges dashed and labelled with the router's answer, join edges bold with a dot
    at the tail, command edges dashed, ``Send`` fan-out with a crow's foot; nodes of expanded
    subgraphs are placed in nested ``cluster_`` subgraphs. ``direction`` (``"TB"``/``"LR"``)
    is the ``rankdir``; ``highlight_edges`` may map edges to how often a run took them.
    """
    G, hi_nodes, hi_edges = prepare(G, highlight, highlight_edges)
    name = clean_text(str(G.graph.get("name") or "graphflow"))
    lines = [f"digraph {quote(name)} {{"]
    graph_attrs = {"rankdir": check_direction(direction), "fontname": _FONT, "nodesep": "0.35",
                   "ranksep": "0.45"}
    if title and G.graph.get("name"):
        graph_attrs.update({"label": name, "labelloc": "t", "fontsize": "16"})
    lines.append(f"    graph{_attrs(graph_attrs)};")
    lines.append(f"    node{_attrs({'fontname': _FONT, 'fontsize': '12', 'penwidth': '1.4'})};")
    lines.append(f"    edge{_attrs({'fontname': _FONT, 'fontsize': '10', 'arrowsize': '0.8'})};")

    tree, children = cluster_tree(G)
    cluster_ids: dict[ClusterPath, str] = {}  # unique, whatever the names contain

    def emit(cluster: ClusterPath, indent: str, depth: int) -> None:
        for n in tree[cluster]:
            kind = node_kind(G, n)
            st = node_style(kind)
            shape, style = _SHAPES[kind]
            attrs = {"label": node_label(G, n), "shape": shape, "style": style,
                     "fillcolor": st.fill, "color": st.stroke, "fontcolor": st.text}
            if kind in ("start", "end"):
                attrs.update({"fontsize": "9", "width": "0.55", "fixedsize": "true"})
            if n in hi_nodes:
                attrs.update({"color": HIGHLIGHT_COLOR, "penwidth": "3"})
            lines.append(f"{indent}{_node_id(n)}{_attrs(attrs)};")
        for c in children[cluster]:
            cid = "cluster_" + ":".join(c)
            while cid in cluster_ids.values():
                cid += "_"
            cluster_ids[c] = cid
            lines.append(f"{indent}subgraph {quote(cid)} {{")
            attrs = {"label": c[-1], "style": "rounded,filled",
                     "fillcolor": CLUSTER_FILL[depth % len(CLUSTER_FILL)],
                     "color": CLUSTER_STROKE, "fontname": _FONT, "fontsize": "12",
                     "labeljust": "l"}
            lines.append(f"{indent}    graph{_attrs(attrs)};")
            emit(c, indent + "    ", depth + 1)
            lines.append(f"{indent}}}")

    emit((), "    ", 0)

    back = _back_edges(G)

    items = G.edges(keys=True, data=True) if G.is_multigraph() else (
        (u, v, None, d) for u, v, d in G.edges(data=True))
    for u, v, _, data in items:
        kind = edge_kind(data)
        attrs = dict(_EDGE_ATTRS[kind])
        color = EDGE_COLORS[kind]
        attrs["color"] = color
        text = edge_text(data)
        if text:
            attrs.update({"label": f" {text} ", "fontcolor": color})
        if (u, v) in hi_edges:
            attrs.update({"color": HIGHLIGHT_COLOR, "penwidth": "3"})
        if (u, v) in back:  # loops: let the forward flow decide the ranks, as in layout()
            attrs["constraint"] = "false"
        lines.append(f"    {_node_id(u)} -> {_node_id(v)}{_attrs(attrs)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _back_edges(G: Any) -> set[tuple[Hashable, Hashable]]:
    """Edges closing a cycle in a depth-first search from START (self-loops excluded)."""
    names = list(G.nodes)
    index = {n: i for i, n in enumerate(names)}
    succ: list[list[int]] = [[] for _ in names]
    for u, v in G.edges():
        if u != v and index[v] not in succ[index[u]]:
            succ[index[u]].append(index[v])
    roots = [index[START]] if START in index else []
    back, _ = break_cycles(len(names), succ, roots)
    return {(names[u], names[v]) for u, v in back}

