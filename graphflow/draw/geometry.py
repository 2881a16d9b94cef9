"""Geometry produced by :func:`~graphflow.draw.layout.layout` (plain dataclasses)."""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

CLUSTER_TITLE_SIZE = 12.0  # font size of cluster titles (the scene draws them)

Point = tuple[float, float]
Curve = tuple[Point, Point, Point]  # control point 1, control point 2, end point


def line(a: Point, b: Point) -> Curve:
    """The straight segment from ``a`` to ``b`` as a cubic Bezier curve."""
    return ((a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
            (a[0] + 2 * (b[0] - a[0]) / 3, a[1] + 2 * (b[1] - a[1]) / 3), b)


@dataclass
class NodeBox:
    """A node's box: centre ``(x, y)``, size, layer and position in the layer."""

    name: Hashable
    label: str
    kind: str
    x: float
    y: float
    width: float
    height: float
    layer: int
    order: int
    cluster: tuple[str, ...] | None = None  # the path of the subgraphs it sits in
    lines: list[str] = field(default_factory=list)  # the label, wrapped (empty: ``label``)

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def top(self) -> float:
        return self.y - self.height / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height / 2


@dataclass
class LabelBox:
    """An edge label, centred on ``(x, y)``."""

    text: str
    x: float
    y: float
    width: float
    height: float


@dataclass
class EdgeRoute:
    """One drawn edge: the parallel edges ``source -> target`` of one kind, merged.

    ``start`` and ``curves`` form a cubic Bezier path ending at the target's border (the
    renderers draw the arrowhead there); ``points`` is the polyline through the ports and
    dummy nodes. ``edges`` holds the ``(key, data)`` of the merged graph edges.
    """

    source: Hashable
    target: Hashable
    kind: str
    label: str | None
    start: Point
    curves: list[Curve]
    points: list[Point]
    label_box: LabelBox | None = None
    reversed: bool = False
    self_loop: bool = False
    edges: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)
    end_gap: float = math.inf  # distance from the arrow's end to the next edge's on that side


@dataclass
class ClusterBox:
    """Background rectangle of an expanded subgraph (top-left corner and size); ``path`` is
    the subgraph names from the outermost down to this one."""

    path: tuple[str, ...]
    label: str
    x: float
    y: float
    width: float
    height: float
    depth: int


@dataclass
class Layout:
    """Result of :func:`layout`: boxes, routed edges, cluster rectangles and canvas size."""

    nodes: dict[Hashable, NodeBox]
    edges: list[EdgeRoute]
    clusters: list[ClusterBox]
    layers: list[list[Hashable]]
    width: float
    height: float
    font_size: float
    label_font_size: float
    dummy_count: int = 0
    direction: str = "TB"  # the flow: "TB" top to bottom, "LR" left to right
