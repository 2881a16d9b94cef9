"""Turn a :class:`~graphflow.draw.layout.Layout` into drawing primitives.

The SVG and PNG renderers both draw this scene, so the two outputs show the same picture:
same shapes, colours, paths, arrowheads, labels, clusters and legend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from .geometry import CLUSTER_TITLE_SIZE, Curve, EdgeRoute, Layout, NodeBox, Point, line
from .layout import layout
from .shapes import details, outline, shape_of, side_room
from .style import (
    CLUSTER_FILL,
    CLUSTER_STROKE,
    EDGE_COLORS,
    EDGE_KINDS,
    HIGHLIGHT_COLOR,
    NODE_KINDS,
    Highlight,
    HighlightEdges,
    clean_text,
    cluster_title,
    node_style,
    prepare,
    text_width,
)

LEGEND_ROW_H = 22.0


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    radius: float
    fill: str | None
    stroke: str | None
    stroke_width: float = 1.0
    opacity: float = 1.0


@dataclass
class Text:
    """Text centred vertically on ``y``; ``anchor`` is ``"middle"`` or ``"start"``."""

    x: float
    y: float
    text: str
    size: float
    color: str
    anchor: str = "middle"
    bold: bool = False
    max_width: float | None = None


@dataclass
class Path:
    """A stroked path; a ``closed`` one may be filled (a node's outline)."""

    start: Point
    curves: list[Curve]
    color: str
    width: float
    dash: tuple[float, float] | None = None
    fill: str | None = None
    closed: bool = False
    opacity: float = 1.0


@dataclass
class Polygon:
    points: list[Point]
    fill: str


Item = Rect | Text | Path | Polygon


@dataclass
class Group:
    """Items of one graph element; ``cls`` is ``node``/``edge``/``cluster``/``legend``/``title``."""

    cls: str
    title: str
    items: list[Item] = field(default_factory=list)
    name: str | None = None


@dataclass
class Scene:
    width: float
    height: float
    title: str | None
    groups: list[Group]


EDGE_DASH: dict[str, tuple[float, float] | None] = {
    "static": None,
    "conditional": (6.0, 4.0),
    "join": None,
    "command": (2.0, 3.0),
    "send": None,
}


def build_scene(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    title: bool = True,
    legend: bool = True,
    lay: Layout | None = None,
    direction: str = "TB",
    compact: bool = False,
    wrap: int | None = 24,
) -> Scene:
    """Lay out ``G`` (unless ``lay`` is given) and produce the scene to draw."""
    G, hi_nodes, hi_edges = prepare(G, highlight, highlight_edges)
    L = lay if lay is not None else layout(G, direction=direction, compact=compact, wrap=wrap)
    title_size = 12.0 if compact else 15.0
    name = G.graph.get("name")
    heading = clean_text(str(name)) if title and name else None
    top = title_size * 2 if heading else 0.0
    groups: list[Group] = []
    if heading:
        groups.append(Group("title", heading, [Text(L.font_size, title_size * 1.2, heading,
                                                    title_size, "#0f172a", anchor="start",
                                                    bold=True)]))

    for c in L.clusters:
        fill = CLUSTER_FILL[c.depth % len(CLUSTER_FILL)]
        rect = Rect(c.x, c.y + top, c.width, c.height, 10.0, fill, CLUSTER_STROKE, 1.2)
        groups.append(Group("cluster", cluster_title(c.path), [rect], name=_path_name(c.path)))
    groups.extend(_cluster_labels(L, top))  # under the edges: a title never hides one

    plain, emphasized = [], []
    for e in L.edges:
        on = (e.source, e.target) in hi_edges
        (emphasized if on else plain).append(_edge_group(e, top, on, L.label_font_size))
    groups.extend(plain)
    for box in L.nodes.values():
        groups.append(_node_group(box, top, box.name in hi_nodes, L.font_size))
    groups.extend(emphasized)  # highlighted edges on top of everything

    height = L.height + top
    width = L.width
    if heading:  # the title must not be cut off by a narrow drawing
        width = max(width, 2 * L.font_size + text_width(heading, title_size) * 1.1)
    legend_group = None
    if legend:
        kinds = [k for k in NODE_KINDS if any(b.kind == k for b in L.nodes.values())]
        ekinds = [k for k in EDGE_KINDS if any(e.kind == k for e in L.edges)]
        legend_group, lw, lh = _legend(kinds, ekinds, height, max(width, 320.0),
                                       highlighted=bool(hi_nodes or hi_edges),
                                       size=9.5 if compact else 11.0)
        width = max(width, lw)
        height += lh
    if width > L.width + 1.0:  # centre the drawing under a wider title or legend
        dx = (width - L.width) / 2
        for group in groups:
            if group.cls != "title":
                group.items = [_shift(item, dx) for item in group.items]
    if legend_group is not None:
        groups.append(legend_group)
    return Scene(width=width, height=height, title=heading, groups=groups)


def _path_name(path: tuple[str, ...]) -> str:
    """A cluster's path as a JSON list (``data-name`` of its SVG group): unambiguous, whatever
    characters the subgraph names contain."""
    return json.dumps(list(path), ensure_ascii=False)


def _shift(item: Item, dx: float) -> Item:
    """``item`` moved right by ``dx``."""
    if isinstance(item, Rect | Text):
        return replace(item, x=item.x + dx)
    if isinstance(item, Path):
        curves = [tuple((px + dx, py) for px, py in c) for c in item.curves]
        return replace(item, start=(item.start[0] + dx, item.start[1]),
                       curves=curves)  # type: ignore[arg-type]
    return replace(item, points=[(px + dx, py) for px, py in item.points])


def _cluster_labels(L: Layout, top: float) -> list[Group]:
    """Cluster titles in each cluster's title band, on the side fewer edges cross (left
    preferred). They are drawn before the edges, so an edge crossing one stays visible."""
    samples: list[Point] = []
    for e in L.edges:
        prev = e.start
        for curve in e.curves:
            samples.extend(sample_curve(prev, curve, 12))
            prev = curve[2]
    groups = []
    size = CLUSTER_TITLE_SIZE
    for c in L.clusters:
        label = clean_text(c.label)
        w = min(text_width(label, size) + 8.0, c.width - 12.0)
        y0, y1 = c.y + 3.0, c.y + 21.0
        sides = [c.x + 6.0, c.x + c.width - 6.0 - w]

        def crossings(x0: float, y0: float = y0, y1: float = y1, w: float = w) -> int:
            return sum(1 for px, py in samples if x0 <= px <= x0 + w and y0 <= py <= y1)

        x0 = min(sides, key=crossings)
        items: list[Item] = [Text(x0 + 4.0, (y0 + y1) / 2 + top, label, size, "#475569",
                                  anchor="start", bold=True, max_width=w - 6.0)]
        groups.append(Group("cluster-label", cluster_title(c.path), items))
    return groups


def sample_curve(p0: Point, curve: Curve, steps: int) -> list[Point]:
    """``steps + 1`` points along the cubic Bezier from ``p0`` through ``curve``."""
    (x1, y1), (x2, y2), (x3, y3) = curve
    out = []
    for i in range(steps + 1):
        t = i / steps
        u = 1 - t
        a, b, cc, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
        out.append((a * p0[0] + b * x1 + cc * x2 + d * x3, a * p0[1] + b * y1 + cc * y2 + d * y3))
    return out


def _moved(start: Point, curves: list[Curve], dy: float) -> tuple[Point, list[Curve]]:
    return (start[0], start[1] + dy), [((a[0], a[1] + dy), (b[0], b[1] + dy), (c[0], c[1] + dy))
                                       for a, b, c in curves]


def _node_group(box: NodeBox, top: float, on: bool, font_size: float) -> Group:
    st = node_style(box.kind)
    w, h = box.width, box.height
    start, curves = _moved(*outline(box.kind, box.x, box.y, w, h), top)
    items: list[Item] = []
    if on:  # a halo around the outline
        items.append(Path(start, curves, HIGHLIGHT_COLOR, 9.0, closed=True, opacity=0.35))
    stroke_w = 2.0 if box.kind in ("agent", "router") else 1.4
    items.append(Path(start, curves, HIGHLIGHT_COLOR if on else st.stroke,
                      3.0 if on else stroke_w, fill=st.fill, closed=True))
    for s, c in details(box.kind, box.x, box.y, w, h):
        s, c = _moved(s, c, top)
        items.append(Path(s, c, st.stroke, 1.2))
    if box.kind == "end":  # END: a double circle, as in DOT
        s, c = _moved(*outline("end", box.x, box.y, w - 7, h - 7), top)
        items.append(Path(s, c, st.text, 1.2, closed=True))
    circle = shape_of(box.kind) == "circle"
    size = font_size * 0.8 if circle else font_size
    room = (w - 12.0 if circle else w - 2 * (8.0 + side_room(box.kind, h)))
    lines = box.lines or [box.label]
    step = size * 1.25
    for i, text in enumerate(lines):
        y = box.y + top + (i - (len(lines) - 1) / 2) * step
        items.append(Text(box.x, y, text, size, st.text, bold=circle, max_width=room))
    return Group("node", str(box.name), items, name=str(box.name))


def _edge_group(e: EdgeRoute, top: float, on: bool, label_size: float) -> Group:
    color = HIGHLIGHT_COLOR if on else EDGE_COLORS.get(e.kind, EDGE_COLORS["static"])
    width = 3.0 if on else (2.4 if e.kind == "join" else 1.6 if e.kind == "send" else 1.4)
    arrow = 10.0 if on or e.kind == "join" else 8.5
    arrow = max(5.0, min(arrow, e.end_gap * 0.8))  # crowded ends: narrower heads stay apart
    start, curves = _moved(e.start, e.curves, top)
    items: list[Item] = []
    if e.kind == "send":  # a fan-out: the edge splits into prongs, one arrow each
        curves, tip, direction = _shorten(curves, arrow * 2.4)
        spread = min(arrow * 1.1, e.end_gap * 0.35)
        items.append(Path(start, curves, color, width))
        items.extend(_prongs(curves[-1][2], tip, direction, spread, arrow * 0.75, color, width))
    else:
        curves, tip, direction = _shorten(curves, arrow * 0.8)
        items.append(Path(start, curves, color, width, EDGE_DASH.get(e.kind)))
        items.append(Polygon(_arrowhead(tip, direction, arrow, arrow * 0.5), color))
    if e.kind == "join":
        items.append(Rect(start[0] - 3, start[1] - 3, 6, 6, 3, color, None))
    if e.label_box is not None:
        b = e.label_box
        items.append(Rect(b.x - b.width / 2, b.y + top - b.height / 2, b.width, b.height, 4.0,
                          "#ffffff", color, 0.8, opacity=0.95))
        items.append(Text(b.x, b.y + top, b.text, label_size, color, max_width=b.width - 6))
    title = f"{e.source} -> {e.target} ({e.kind})"
    return Group("edge", title, items, name=title)


def _prongs(split: Point, tip: Point, direction: Point, spread: float, arrow: float,
            color: str, width: float) -> list[Item]:
    """The end of a ``Send`` edge: three prongs from ``split`` to beside and at ``tip``, each
    with its own small arrowhead (one edge, many tasks)."""
    ux, uy = direction
    out: list[Item] = []
    for side in (-1.0, 0.0, 1.0):
        end = (tip[0] - uy * spread * side, tip[1] + ux * spread * side)
        dx, dy = end[0] - split[0], end[1] - split[1]
        length = math.hypot(dx, dy) or 1.0
        d = (dx / length, dy / length)
        stop = (end[0] - d[0] * arrow * 0.8, end[1] - d[1] * arrow * 0.8)
        out.append(Path(split, [line(split, stop)], color, max(1.0, width * 0.85)))
        out.append(Polygon(_arrowhead(end, d, arrow, arrow * 0.5), color))
    return out


def _shorten(curves: list[Curve], by: float) -> tuple[list[Curve], Point, Point]:
    """Pull the path's end back by ``by`` (room for the arrowhead); return tip and direction."""
    c1, c2, tip = curves[-1]
    dx, dy = tip[0] - c2[0], tip[1] - c2[1]
    length = math.hypot(dx, dy)
    if length < 1e-6:
        dx, dy = tip[0] - c1[0], tip[1] - c1[1]
        length = math.hypot(dx, dy) or 1.0
    ux, uy = dx / length, dy / length
    end = (tip[0] - ux * by, tip[1] - uy * by)
    c2n = (c2[0] - ux * by, c2[1] - uy * by)
    return [*curves[:-1], (c1, c2n, end)], tip, (ux, uy)


def _arrowhead(tip: Point, direction: Point, length: float, half: float) -> list[Point]:
    ux, uy = direction
    bx, by = tip[0] - ux * length, tip[1] - uy * length
    return [tip, (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)]


def _legend(
    kinds: list[str], ekinds: list[str], y0: float, max_width: float, *,
    highlighted: bool = False, size: float = 11.0,
) -> tuple[Group, float, float]:
    """Swatches for the node kinds and edge kinds present (and the highlight), wrapped."""
    group = Group("legend", "legend")
    x, row = 16.0, 0
    widest = 0.0
    entries: list[tuple[str, str]] = [("node", k) for k in kinds] + [("edge", k) for k in ekinds]
    if highlighted:
        entries.append(("highlight", "highlighted path"))
    for what, kind in entries:
        w = 30.0 + text_width(kind, size) + 16.0
        if x + w > max_width - 8.0 and x > 16.0:
            x, row = 16.0, row + 1
        cy = y0 + 10.0 + row * LEGEND_ROW_H + LEGEND_ROW_H / 2
        if what == "node":
            st = node_style(kind)
            sw = 14.0 if shape_of(kind) == "circle" else 24.0
            start, curves = outline(kind, x + 11.0, cy, sw, 14.0)
            group.items.append(Path(start, curves, st.stroke, 1.2, fill=st.fill, closed=True))
        else:
            color = HIGHLIGHT_COLOR if what == "highlight" else EDGE_COLORS[kind]
            width = 3.0 if what == "highlight" else 2.4 if kind == "join" else 1.4
            if kind == "send":
                group.items.append(Path((x, cy), [line((x, cy), (x + 9, cy))], color, width))
                group.items.extend(_prongs((x + 9, cy), (x + 24, cy), (1.0, 0.0), 5.0, 5.5,
                                           color, width))
            else:
                group.items.append(Path((x, cy), [((x + 8, cy), (x + 14, cy), (x + 17, cy))],
                                        color, width, EDGE_DASH.get(kind)))
                group.items.append(Polygon(_arrowhead((x + 24, cy), (1.0, 0.0), 7.0, 3.5),
                                           color))
        group.items.append(Text(x + 28.0, cy, kind, size, "#334155", anchor="start"))
        x += w
        widest = max(widest, x)
    height = 20.0 + (row + 1) * LEGEND_ROW_H if entries else 0.0
    return group, widest + 8.0, height
