"""Edge geometry: cubic Bezier paths through dummy nodes, spread-out ports, self-loops."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from .geometry import Curve, EdgeRoute, LabelBox, NodeBox, Point
from .style import text_width


@dataclass
class Route:
    """Parallel edges ``u -> v`` of one kind (node ids), and their chain of dummy nodes."""

    u: int
    v: int
    kind: str
    label: str | None
    edges: list[tuple[Any, dict[str, Any]]]
    chain: list[int] = field(default_factory=list)
    reversed: bool = False
    label_node: int | None = None


def route_edges(
    routes: list[Route],
    names: list[Hashable],
    x: list[float],
    y: list[float],
    width: list[float],
    height: list[float],
    band: list[float],
) -> list[EdgeRoute]:
    # ports: spread the edges leaving a box's bottom / entering its top, ordered by direction
    out_ports: dict[int, list[tuple[float, int]]] = {}
    in_ports: dict[int, list[tuple[float, int]]] = {}
    for i, r in enumerate(routes):
        out_ports.setdefault(r.chain[0], []).append((x[r.chain[1]], i))
        in_ports.setdefault(r.chain[-1], []).append((x[r.chain[-2]], i))
    port_x: dict[tuple[int, int], float] = {}
    for ports, end in ((out_ports, 0), (in_ports, -1)):
        for v, items in ports.items():
            items.sort()
            k = len(items)
            span = min(width[v] * 0.6, 12.0 * (k - 1))
            for j, (_, i) in enumerate(items):
                port_x[(i, end)] = x[v] + (j * span / (k - 1) - span / 2 if k > 1 else 0.0)

    out: list[EdgeRoute] = []
    for i, r in enumerate(routes):
        top, bottom = r.chain[0], r.chain[-1]
        pts: list[Point] = [(port_x[(i, 0)], y[top] + height[top] / 2)]
        for d in r.chain[1:-1]:
            if band[d] > 0:  # a vertical stretch through the row: bends only between rows
                pts.append((x[d], y[d] - band[d] / 2))
                pts.append((x[d], y[d] + band[d] / 2))
            else:
                pts.append((x[d], y[d]))
        pts.append((port_x[(i, -1)], y[bottom] - height[bottom] / 2))
        if r.reversed:
            pts.reverse()
        label_box = None
        if r.label is not None and r.label_node is not None:
            d = r.label_node
            label_box = LabelBox(r.label, x[d], y[d], width[d], height[d])
        curves: list[Curve] = []
        for (x1, y1), (x2, y2) in itertools.pairwise(pts):
            mid = (y2 - y1) / 2
            curves.append(((x1, y1 + mid), (x2, y2 - mid), (x2, y2)))
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=pts[0],
            curves=curves, points=pts, label_box=label_box, reversed=r.reversed,
            edges=r.edges,
        ))
    return out


def self_loops(
    box: NodeBox, group: list[Route], names: list[Hashable], label_font_size: float
) -> list[EdgeRoute]:
    """Loops on the right side of ``box``, nested outwards; their labels stacked beside them."""
    out: list[EdgeRoute] = []
    xr = box.right
    label_h = label_font_size + 8.0
    for i, r in enumerate(group):
        reach = 16.0 + 10.0 * i
        h = min(box.height / 2 - 3, 8.0 + 2 * i)
        p0, p1, p2 = (xr, box.y - h), (xr + reach, box.y), (xr, box.y + h)
        curves: list[Curve] = [
            ((xr + reach * 0.6, p0[1] - 4), (p1[0], box.y - h), p1),
            ((p1[0], box.y + h), (xr + reach * 0.6, p2[1] + 4), p2),
        ]
        label_box = None
        if r.label:
            w = text_width(r.label, label_font_size) + 12.0
            ly = box.y + (i - (len(group) - 1) / 2) * (label_h + 2.0)
            outer = 16.0 + 10.0 * (len(group) - 1)
            label_box = LabelBox(r.label, xr + outer + 4 + w / 2, ly, w, label_h)
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=p0,
            curves=curves, points=[p0, p1, p2], label_box=label_box, self_loop=True,
            edges=r.edges,
        ))
    return out
