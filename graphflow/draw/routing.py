"""Edge geometry: cubic Bezier paths through dummy nodes, spread-out ports, self-loops.

Coordinates here are *breadth* (across the layers) and *depth* (along the flow); the layout
maps them to x/y for its direction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .folding import Jump, detour
from .geometry import Curve, EdgeRoute, LabelBox, Point

PORT_GAP = 20.0  # preferred distance between the ends of two edges on one side of a box
_KAPPA = 0.5523  # Bezier handles of a quarter ellipse, per unit radius


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


def loop_reach(count: int) -> float:
    """How far the outermost of ``count`` self-loops on one node reaches out of its box."""
    return 26.0 + 12.0 * (count - 1)


def route_edges(
    routes: list[Route],
    names: list[Hashable],
    b: list[float],
    d: list[float],
    breadth: list[float],
    depth: list[float],
    bands: list[float],
    touch: Callable[[int, float, bool], float],
    jumps: dict[tuple[int, int], Jump] | None = None,
) -> list[EdgeRoute]:
    """One path per route, from the source's outline to the target's.

    The edges leaving a box (and those entering it) get ports spread across its side, ordered
    by where they head, at most :data:`PORT_GAP` apart; ``touch(node, offset, end)`` says how
    far inside the box the outline is there (``end``: the side the flow leaves by). A chain
    step in ``jumps`` crosses a fold of the layout: it takes that detour (``folding``).
    """
    jumps = jumps or {}
    out_ports: dict[int, list[tuple[float, int]]] = {}
    in_ports: dict[int, list[tuple[float, int]]] = {}
    for i, r in enumerate(routes):
        out_ports.setdefault(r.chain[0], []).append((b[r.chain[1]], i))
        in_ports.setdefault(r.chain[-1], []).append((b[r.chain[-2]], i))
    port: dict[tuple[int, int], float] = {}  # (route, 0 start / -1 end) -> offset from centre
    spacing: dict[tuple[int, int], float] = {}  # ... -> distance to the neighbouring port
    for ports, end in ((out_ports, 0), (in_ports, -1)):
        for v, items in ports.items():
            items.sort()
            k = len(items)
            span = min(breadth[v] * 0.7, PORT_GAP * (k - 1))
            for j, (_, i) in enumerate(items):
                port[(i, end)] = j * span / (k - 1) - span / 2 if k > 1 else 0.0
                spacing[(i, end)] = span / (k - 1) if k > 1 else math.inf

    out: list[EdgeRoute] = []
    for i, r in enumerate(routes):
        top, bottom = r.chain[0], r.chain[-1]
        o0, o1 = port[(i, 0)], port[(i, -1)]
        pts: list[Point] = [(b[top] + o0, d[top] + depth[top] / 2 - touch(top, o0, True))]
        detours: dict[int, Jump] = {}  # index in pts -> the detour to the next point
        for prev, v in itertools.pairwise(r.chain[:-1]):
            if (prev, v) in jumps:
                detours[len(pts) - 1] = jumps[(prev, v)]
            if bands[v] > 0:  # a straight stretch through the row: bends only between rows
                pts.append((b[v], d[v] - bands[v] / 2))
                pts.append((b[v], d[v] + bands[v] / 2))
            else:
                pts.append((b[v], d[v]))
        if (r.chain[-2], bottom) in jumps:
            detours[len(pts) - 1] = jumps[(r.chain[-2], bottom)]
        pts.append((b[bottom] + o1, d[bottom] - depth[bottom] / 2 + touch(bottom, o1, False)))
        curves: list[Curve] = []
        for k, ((b1, d1), (b2, d2)) in enumerate(itertools.pairwise(pts)):
            if k in detours:
                curves.extend(detour((b1, d1), (b2, d2), detours[k]))
                continue
            mid = (d2 - d1) / 2
            curves.append(((b1, d1 + mid), (b2, d2 - mid), (b2, d2)))
        start = pts[0]
        if r.reversed:
            start, curves = _reverse(start, curves)
            pts.reverse()
        label_box = None
        if r.label is not None and r.label_node is not None:
            v = r.label_node
            label_box = LabelBox(r.label, b[v], d[v], breadth[v], depth[v])
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=start,
            curves=curves, points=pts, label_box=label_box, reversed=r.reversed,
            edges=r.edges, end_gap=spacing[(i, 0 if r.reversed else -1)],
        ))
    return out


def _reverse(start: Point, curves: list[Curve]) -> tuple[Point, list[Curve]]:
    """The same path, run from its end to ``start``."""
    points = [start, *(c[2] for c in curves)]
    back = [(c[1], c[0], points[i]) for i, c in reversed(list(enumerate(curves)))]
    return points[-1], back


def self_loops(
    v: int,
    group: list[Route],
    names: list[Hashable],
    side: float,
    centre: float,
    depth: float,
    label_size: Callable[[str], tuple[float, float]],
    touch: Callable[[float], float],
) -> list[EdgeRoute]:
    """Loops out of node ``v``'s breadth-end side (at breadth ``side``), nested outwards, each
    a half ellipse ending square to the box; their labels stacked beyond the outermost."""
    out: list[EdgeRoute] = []
    outer = loop_reach(len(group))
    for i, r in enumerate(group):
        reach = loop_reach(i + 1)
        h = max(4.0, min(depth / 2 - 4.0, 10.0 + 4.0 * i))
        p0 = (side - touch(-h), centre - h)
        p2 = (side - touch(h), centre + h)
        tip = (side + reach, centre)
        curves: list[Curve] = [
            ((p0[0] + reach * _KAPPA, p0[1]), (tip[0], centre - h * _KAPPA), tip),
            ((tip[0], centre + h * _KAPPA), (p2[0] + reach * _KAPPA, p2[1]), p2),
        ]
        label_box = None
        if r.label:
            lb, ld = label_size(r.label)
            offset = (i - (len(group) - 1) / 2) * (ld + 2.0)
            label_box = LabelBox(r.label, side + outer + 4.0 + lb / 2, centre + offset, lb, ld)
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=p0,
            curves=curves, points=[p0, tip, p2], label_box=label_box, self_loop=True,
            edges=r.edges,
        ))
    return out
