"""Node silhouettes of graphflow's own drawings (SVG, PNG): one shape per node kind.

Shapes tell kinds apart without colour (a grayscale print, a colour-blind reader) and follow
the Mermaid output: START/END circles, agent a stadium, tool a parallelogram, router a hexagon,
memory a cylinder, subgraph a box with double sides, function a rounded box.
"""

from __future__ import annotations

import math

from .geometry import Curve, Point
from .geometry import line as _line

SHAPES: dict[str, str] = {
    "start": "circle",
    "end": "circle",
    "function": "rounded",
    "subgraph": "subroutine",
    "agent": "stadium",
    "tool": "parallelogram",
    "router": "hexagon",
    "memory": "cylinder",
}

def shape_of(kind: str) -> str:
    return SHAPES.get(kind, "rounded")


def side_room(kind: str, height: float) -> float:
    """Width a shape needs on each side of its text beyond a plain box's padding."""
    shape = shape_of(kind)
    if shape == "stadium":
        return height * 0.25
    if shape in ("parallelogram", "hexagon"):
        return height * 0.3
    if shape == "subroutine":
        return 4.0
    return 0.0


def slant(height: float) -> float:
    """How far a parallelogram's top edge is shifted right of its bottom edge (and a hexagon's
    side points stick out)."""
    return height * 0.3


def _polygon(points: list[Point]) -> tuple[Point, list[Curve]]:
    curves = [_line(a, b) for a, b in zip(points, [*points[1:], points[0]], strict=True)]
    return points[0], curves


def _arc(c: Point, rx: float, ry: float, a0: float, a1: float) -> Curve:
    """A quarter (or less) of an ellipse around ``c`` from angle ``a0`` to ``a1`` (radians,
    y pointing down)."""
    k = 4 / 3 * math.tan((a1 - a0) / 4)
    p0 = (c[0] + rx * math.cos(a0), c[1] + ry * math.sin(a0))
    p3 = (c[0] + rx * math.cos(a1), c[1] + ry * math.sin(a1))
    c1 = (p0[0] - k * rx * math.sin(a0), p0[1] + k * ry * math.cos(a0))
    c2 = (p3[0] + k * rx * math.sin(a1), p3[1] - k * ry * math.cos(a1))
    return (c1, c2, p3)


def _rounded(x0: float, y0: float, x1: float, y1: float, r: float) -> tuple[Point, list[Curve]]:
    r = max(0.0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    q = math.pi / 2
    curves: list[Curve] = [
        _line((x0 + r, y0), (x1 - r, y0)),
        _arc((x1 - r, y0 + r), r, r, -q, 0.0),
        _line((x1, y0 + r), (x1, y1 - r)),
        _arc((x1 - r, y1 - r), r, r, 0.0, q),
        _line((x1 - r, y1), (x0 + r, y1)),
        _arc((x0 + r, y1 - r), r, r, q, 2 * q),
        _line((x0, y1 - r), (x0, y0 + r)),
        _arc((x0 + r, y0 + r), r, r, 2 * q, 3 * q),
    ]
    return (x0 + r, y0), curves


def outline(kind: str, x: float, y: float, w: float, h: float) -> tuple[Point, list[Curve]]:
    """The closed outline of a ``kind`` node centred on ``(x, y)``: a start point and cubic
    Bezier segments back to it."""
    x0, y0, x1, y1 = x - w / 2, y - h / 2, x + w / 2, y + h / 2
    shape = shape_of(kind)
    if shape == "circle":
        r = min(w, h) / 2
        q = math.pi / 2
        return (x + r, y), [_arc((x, y), r, r, i * q, (i + 1) * q) for i in range(4)]
    if shape == "stadium":
        return _rounded(x0, y0, x1, y1, h / 2)
    if shape == "parallelogram":
        s = slant(h)
        return _polygon([(x0 + s, y0), (x1, y0), (x1 - s, y1), (x0, y1)])
    if shape == "hexagon":
        s = slant(h)
        return _polygon([(x0 + s, y0), (x1 - s, y0), (x1, y), (x1 - s, y1), (x0 + s, y1), (x0, y)])
    if shape == "cylinder":
        ry = cap(h)
        q = math.pi / 2
        curves = [
            _arc((x, y0 + ry), w / 2, ry, -q, 0.0),
            _line((x1, y0 + ry), (x1, y1 - ry)),
            _arc((x, y1 - ry), w / 2, ry, 0.0, q),
            _arc((x, y1 - ry), w / 2, ry, q, 2 * q),
            _line((x0, y1 - ry), (x0, y0 + ry)),
            _arc((x, y0 + ry), w / 2, ry, 2 * q, 3 * q),
        ]
        return (x, y0), curves
    return _rounded(x0, y0, x1, y1, 8.0 if shape == "rounded" else 3.0)


def cap(height: float) -> float:
    """Vertical radius of a cylinder's elliptic top and bottom."""
    return min(6.0, height * 0.18)


def details(kind: str, x: float, y: float, w: float, h: float) -> list[tuple[Point, list[Curve]]]:
    """Open strokes drawn over a shape: a cylinder's front rim, a subroutine's inner sides."""
    shape = shape_of(kind)
    if shape == "cylinder":
        ry = cap(h)
        y0 = y - h / 2
        c = (x, y0 + ry)
        q = math.pi / 2
        return [((x - w / 2, y0 + ry), [_arc(c, w / 2, ry, 2 * q, q), _arc(c, w / 2, ry, q, 0.0)])]
    if shape == "subroutine":
        x0, x1, y0, y1 = x - w / 2 + 7, x + w / 2 - 7, y - h / 2, y + h / 2
        return [((x0, y0), [_line((x0, y0), (x0, y1))]), ((x1, y0), [_line((x1, y0), (x1, y1))])]
    return []


def inset(kind: str, w: float, h: float, offset: float, side: str) -> float:
    """How far inside its bounding box a shape's border is, ``offset`` from the middle of
    ``side`` (``"top"``/``"bottom"``: offset along x; ``"left"``/``"right"``: along y, down
    positive). Edges end there, touching the outline."""
    shape = shape_of(kind)
    vertical = side in ("top", "bottom")
    half = (w if vertical else h) / 2
    off = min(abs(offset), half)
    if shape == "circle":
        r = min(w, h) / 2
        off = min(off, r)
        return r - math.sqrt(r * r - off * off)
    if shape == "cylinder" and vertical:
        ry = cap(h)
        return ry * (1 - math.sqrt(max(0.0, 1 - (off / half) ** 2))) if side == "top" else 0.0
    if vertical:
        return 0.0
    if shape == "stadium":
        r = h / 2
        return r - math.sqrt(max(0.0, r * r - off * off))
    if shape == "hexagon":
        return slant(h) * off / half
    if shape == "parallelogram":
        t = (offset + h / 2) / h  # 0 at the top, 1 at the bottom
        t = min(1.0, max(0.0, t))
        return slant(h) * (1 - t) if side == "left" else slant(h) * t
    return 0.0
