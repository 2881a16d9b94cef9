"""Terminal rendering: the layout's layers as rows of boxed names, each followed by its edges."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from .layout import layout
from .style import (
    EDGE_KINDS,
    Highlight,
    HighlightEdges,
    clean_text,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    prepare,
)

# box corners/edges: top-left, top-right, bottom-left, bottom-right, horizontal, vertical
_BOXES = {
    "round": "╭╮╰╯─│",
    "square": "┌┐└┘─│",
    "double": "╔╗╚╝═║",
    "heavy": "┏┓┗┛━┃",
}
_ASCII_BOXES = {"round": "/\\\\/-|", "square": "++++-|", "double": "++++=|", "heavy": "####=#"}
_ARROWS = {"static": "──▶", "conditional": "┄┄▶", "join": "══▶", "command": "··▶", "send": "──⋙"}
_ASCII_ARROWS = {"static": "-->", "conditional": "..>", "join": "==>", "command": "~~>",
                 "send": "->>"}


def to_ascii(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    ascii_only: bool = False,
    width: int = 100,
) -> str:
    """Render ``G`` as text for a terminal.

    Each layer of :func:`layout` is a row of boxed node names (kind in brackets for kinds other
    than function/START/END), followed by the edges leaving that layer. ``ascii_only`` avoids
    box-drawing characters; rows wrap at ``width`` columns. Highlighted nodes get a heavy box,
    highlighted edges a ``*`` marker (and ``x3`` / ``\u00d73`` when ``highlight_edges`` maps
    an edge to the times a run took it).
    """
    G, hi_nodes, hi_edges = prepare(G, highlight, highlight_edges)
    boxes = _ASCII_BOXES if ascii_only else _BOXES
    arrows = _ASCII_ARROWS if ascii_only else _ARROWS
    L = layout(G)
    layer_of = {name: box.layer for name, box in L.nodes.items()}
    names = {n: clean_text(node_label(G, n, short=False)) for n in G.nodes}

    out: list[str] = []
    if G.graph.get("name"):
        out.append(f"graph: {clean_text(str(G.graph['name']))}")
        out.append("")
    items = G.edges(keys=True, data=True) if G.is_multigraph() else (
        (u, v, None, d) for u, v, d in G.edges(data=True))
    by_source: dict[Hashable, list[tuple[Hashable, dict[str, Any]]]] = {}
    kinds_used: set[str] = set()
    for u, v, _, data in items:
        by_source.setdefault(u, []).append((v, data))
        kinds_used.add(edge_kind(data))

    for row in L.layers:
        cells = [_box(names[n], node_kind(G, n), n in hi_nodes, boxes) for n in row]
        out.extend(_join_cells(cells, width))
        for n in row:
            for v, data in by_source.get(n, []):
                kind = edge_kind(data)
                mark = "*" if (n, v) in hi_edges else " "
                line = f"  {mark} {names[n]} {arrows[kind]} {names[v]}"
                text = edge_text(data)
                if text:
                    text = clean_text(text)
                    line += f"  [{text.replace(chr(0xD7), 'x') if ascii_only else text}]"
                if v == n:
                    line += "  (self)" if ascii_only else "  ↻"
                elif layer_of[v] <= layer_of[n]:
                    line += "  (back)" if ascii_only else "  ↺"
                out.append(line)
    if kinds_used:
        legend = "   ".join(f"{arrows[k]} {k}" for k in EDGE_KINDS if k in kinds_used)
        out.extend(["", f"edges: {legend}"])
    return "\n".join(line.rstrip() for line in out) + "\n"


def _box(name: str, kind: str, on: bool, boxes: dict[str, str]) -> list[str]:
    style = "heavy" if on else {"start": "round", "end": "round", "subgraph": "double"}.get(
        kind, "square")
    tl, tr, bl, br, h, v = boxes[style]
    text = name if kind in ("function", "start", "end") else f"{name} [{kind}]"
    return [f"{tl}{h * (len(text) + 2)}{tr}", f"{v} {text} {v}", f"{bl}{h * (len(text) + 2)}{br}"]


def _join_cells(cells: list[list[str]], width: int) -> list[str]:
    """Lay boxes side by side, wrapping onto further lines of boxes past ``width`` columns."""
    lines: list[str] = []
    group: list[list[str]] = []
    used = 0
    for cell in cells:
        w = len(cell[0]) + 2
        if group and used + w > width:
            lines.extend(_render_group(group))
            group, used = [], 0
        group.append(cell)
        used += w
    if group:
        lines.extend(_render_group(group))
    return lines


def _render_group(group: list[list[str]]) -> list[str]:
    return ["  ".join(cell[i] for cell in group) for i in range(3)]
