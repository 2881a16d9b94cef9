"""A layered (Sugiyama-style) layout in pure Python, shared by the SVG, PNG and ASCII renderers.

Phases:

1. cycle breaking: DFS from START, back edges are reversed (``layering.break_cycles``);
2. layering: longest path plus a pull-down pass, START on top, END alone at the bottom
   (``layering.assign_layers``); layers are then doubled so that every edge gets at least one
   dummy node in between: the dummy of a labelled edge carries the label, so edge labels take
   real room and never overlap boxes;
3. dummy nodes split long edges; crossing reduction by barycenter sweeps
   (``ordering.order_layers``);
4. x coordinates by order-preserving weighted averaging (``placement.assign_x``), y by layer;
   expanded subgraphs become non-overlapping cluster rectangles;
5. edges become cubic Bezier paths through their dummy nodes, with spread-out ports.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .layering import assign_layers, break_cycles
from .ordering import order_layers
from .placement import Sizes, assign_x, separate_clusters
from .style import (
    END,
    START,
    as_graph,
    clean_text,
    cluster_chain,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    text_width,
)

Point = tuple[float, float]
Curve = tuple[Point, Point, Point]  # control point 1, control point 2, end point


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
    cluster: str | None = None

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


@dataclass
class ClusterBox:
    """Background rectangle of an expanded subgraph (top-left corner and size)."""

    path: str
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


@dataclass
class _Route:
    u: int
    v: int
    kind: str
    label: str | None
    edges: list[tuple[Any, dict[str, Any]]]
    chain: list[int] = field(default_factory=list)
    reversed: bool = False
    label_node: int | None = None


def layout(
    G: Any,
    *,
    font_size: float = 13.0,
    label_font_size: float = 11.0,
    node_height: float = 34.0,
    node_sep: float = 28.0,
    rank_sep: float = 16.0,
    cluster_pad: float = 12.0,
    margin: float = 16.0,
    sweeps: int = 8,
) -> Layout:
    """Compute a layered top-to-bottom layout of ``G`` (a graph as returned by ``get_graph``).

    Box widths come from the label lengths; boxes (and edge labels) never overlap. Nodes with a
    ``cluster`` attribute (see :func:`expand_subgraphs`) are grouped into cluster rectangles.
    """
    G = as_graph(G)
    names = list(G.nodes)
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    kinds = [node_kind(G, v) for v in names]
    labels = [clean_text(node_label(G, v)) for v in names]
    clusters = [G.nodes[v].get("cluster") for v in names]
    chains: list[tuple[str, ...]] = [cluster_chain(c) for c in clusters]

    routes, loops = _collect_routes(G, index)

    # 1. cycle breaking
    succ: list[list[int]] = [[] for _ in range(n)]
    pairs: dict[tuple[int, int], None] = {}
    for r in routes:
        if (r.u, r.v) not in pairs:
            pairs[(r.u, r.v)] = None
            succ[r.u].append(r.v)
    indeg = [0] * n
    for _, v in pairs:
        indeg[v] += 1
    roots = ([index[START]] if START in index else []) + [v for v in range(n) if indeg[v] == 0]
    back, dfs_order = break_cycles(n, succ, roots)
    dag = {((v, u) if (u, v) in back else (u, v)): None for u, v in pairs}

    # 2. layering (doubled: odd layers hold only dummies and edge labels)
    layer0 = assign_layers(
        n, list(dag), pinned_top=index.get(START), pinned_bottom=index.get(END)
    )
    layer = [2 * x for x in layer0]

    width = [max(text_width(t, font_size) + 28.0, 44.0) for t in labels]
    height = [node_height] * n
    dummy = [False] * n
    right_extra = [0.0] * n
    for v, group in loops.items():
        extra = 0.0
        for i, r in enumerate(group):
            extra = 16.0 + 10.0 * i
            if r.label:
                extra += text_width(r.label, label_font_size) + 12.0
        right_extra[v] = extra + 6.0

    # 3. dummy nodes, proper layered graph
    for r in routes:
        top, bottom = (r.u, r.v) if layer[r.u] < layer[r.v] else (r.v, r.u)
        r.reversed = top != r.u
        r.chain = [top]
        common = _common_prefix(chains[r.u], chains[r.v])
        for lay in range(layer[top] + 1, layer[bottom]):
            d = len(layer)
            layer.append(lay)
            width.append(2.0)
            height.append(0.0)
            dummy.append(True)
            right_extra.append(0.0)
            chains.append(common)
            r.chain.append(d)
        r.chain.append(bottom)
        if r.label:
            d = r.chain[-2] if r.reversed else r.chain[1]
            r.label_node = d
            width[d] = text_width(r.label, label_font_size) + 12.0
            height[d] = label_font_size + 8.0
    total = len(layer)
    up: list[list[int]] = [[] for _ in range(total)]
    down: list[list[int]] = [[] for _ in range(total)]
    for r in routes:
        for a, b in zip(r.chain, r.chain[1:], strict=False):
            down[a].append(b)
            up[b].append(a)

    nrows = max(layer) + 1 if layer else 0
    rows: list[list[int]] = [[] for _ in range(nrows)]
    seen = [False] * total
    for root in dfs_order:  # initial order: depth-first discovery
        stack = [root]
        while stack:
            v = stack.pop()
            if seen[v]:
                continue
            seen[v] = True
            rows[layer[v]].append(v)
            stack.extend(reversed(down[v]))
    rows = order_layers(rows, up, down, chains, sweeps=sweeps)

    # 4. coordinates
    sizes = Sizes(
        left=[w / 2 for w in width],
        right=[w / 2 + e for w, e in zip(width, right_extra, strict=True)],
        dummy=dummy,
        chains=chains,
        node_sep=node_sep,
        dummy_sep=10.0,
        cluster_pad=cluster_pad,
    )
    x = assign_x(rows, up, down, sizes)
    cluster_label_h = font_size + 6.0
    if any(chains):
        separate_clusters(rows, x, sizes, lambda xs: _cluster_extents(rows, xs, sizes))
    y = _assign_y(rows, height, chains, rank_sep, cluster_pad, cluster_label_h, margin)

    boxes: list[tuple[float, float, float, float]] = []  # everything that must fit the canvas
    for v in range(total):
        if not dummy[v] or height[v]:
            boxes.append((x[v] - sizes.left[v], y[v] - height[v] / 2,
                          x[v] + sizes.right[v], y[v] + height[v] / 2))
    cluster_boxes = _cluster_rects(rows, x, y, sizes, height, cluster_pad, cluster_label_h)
    for cb in cluster_boxes.values():
        boxes.append((cb.x, cb.y, cb.x + cb.width, cb.y + cb.height))
    dx = margin - min((b[0] for b in boxes), default=0.0)
    for v in range(total):
        x[v] += dx
    for cb in cluster_boxes.values():
        cb.x += dx
    canvas_w = max((b[2] for b in boxes), default=0.0) + dx + margin
    canvas_h = max((b[3] for b in boxes), default=0.0) + margin

    node_boxes: dict[Hashable, NodeBox] = {}
    real_rows: list[list[Hashable]] = []
    for row in rows:
        real = [v for v in row if v < n]
        if real:
            for i, v in enumerate(real):
                node_boxes[names[v]] = NodeBox(
                    name=names[v], label=labels[v], kind=kinds[v], x=x[v], y=y[v],
                    width=width[v], height=height[v], layer=len(real_rows), order=i,
                    cluster=str(clusters[v]) if clusters[v] else None,
                )
            real_rows.append([names[v] for v in real])

    # 5. edge geometry
    edge_routes = _route_edges(routes, names, x, y, width, height, node_boxes, rows)
    for v, group in loops.items():
        edge_routes.extend(_self_loops(node_boxes[names[v]], group, names, label_font_size))

    return Layout(
        nodes=node_boxes,
        edges=edge_routes,
        clusters=sorted(cluster_boxes.values(), key=lambda c: (c.depth, c.path)),
        layers=real_rows,
        width=canvas_w,
        height=canvas_h,
        font_size=font_size,
        label_font_size=label_font_size,
        dummy_count=total - n,
    )


def _collect_routes(
    G: nx.Graph, index: dict[Hashable, int]
) -> tuple[list[_Route], dict[int, list[_Route]]]:
    """Group parallel edges by (source, target, kind); self-loops separately."""
    grouped: dict[tuple[int, int, str], _Route] = {}
    if G.is_multigraph():
        items = ((u, v, k, d) for u, v, k, d in G.edges(keys=True, data=True))
    else:
        items = ((u, v, None, d) for u, v, d in G.edges(data=True))
    for u, v, k, data in items:
        key = (index[u], index[v], edge_kind(data))
        route = grouped.get(key)
        if route is None:
            route = grouped[key] = _Route(key[0], key[1], key[2], None, [])
        route.edges.append((k, data))
    routes: list[_Route] = []
    loops: dict[int, list[_Route]] = {}
    for route in grouped.values():
        texts = [clean_text(t) for t in (edge_text(d) for _, d in route.edges) if t]
        route.label = ", ".join(dict.fromkeys(texts)) or None
        if route.u == route.v:
            loops.setdefault(route.u, []).append(route)
        else:
            routes.append(route)
    return routes, loops


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return tuple(out)


def _cluster_extents(
    rows: list[list[int]], x: list[float], sizes: Sizes
) -> dict[str, tuple[float, float, int, int]]:
    """Horizontal extent (with padding, nested levels included) and row span per cluster."""
    ext: dict[str, list[float]] = {}
    for r, row in enumerate(rows):
        for v in row:
            chain = sizes.chains[v]
            for depth, c in enumerate(chain):
                pad = (len(chain) - depth) * sizes.cluster_pad
                lo, hi = x[v] - sizes.left[v] - pad, x[v] + sizes.right[v] + pad
                e = ext.get(c)
                if e is None:
                    ext[c] = [lo, hi, r, r]
                else:
                    e[0] = min(e[0], lo)
                    e[1] = max(e[1], hi)
                    e[3] = r
    return {c: (e[0], e[1], int(e[2]), int(e[3])) for c, e in ext.items()}


def _assign_y(
    rows: list[list[int]],
    height: list[float],
    chains: list[tuple[str, ...]],
    rank_sep: float,
    pad: float,
    label_h: float,
    margin: float,
) -> list[float]:
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for r, row in enumerate(rows):
        for v in row:
            for c in chains[v]:
                first.setdefault(c, r)
                last[c] = r
    y = [0.0] * len(height)
    cursor = margin
    for r, row in enumerate(rows):
        above = max((sum(pad + label_h for c in chains[v] if first[c] == r) for v in row),
                    default=0.0)
        below = max((sum(pad for c in chains[v] if last[c] == r) for v in row), default=0.0)
        h = max((height[v] for v in row), default=0.0)
        cursor += above
        for v in row:
            y[v] = cursor + h / 2
        cursor += h + below + rank_sep
    return y


def _cluster_rects(
    rows: list[list[int]],
    x: list[float],
    y: list[float],
    sizes: Sizes,
    height: list[float],
    pad: float,
    label_h: float,
) -> dict[str, ClusterBox]:
    ext: dict[str, list[float]] = {}
    for row in rows:
        for v in row:
            chain = sizes.chains[v]
            for depth, c in enumerate(chain):
                levels = len(chain) - depth
                x0 = x[v] - sizes.left[v] - levels * pad
                x1 = x[v] + sizes.right[v] + levels * pad
                y0 = y[v] - height[v] / 2 - levels * (pad + label_h)
                y1 = y[v] + height[v] / 2 + levels * pad
                e = ext.setdefault(c, [x0, y0, x1, y1])
                e[0], e[1] = min(e[0], x0), min(e[1], y0)
                e[2], e[3] = max(e[2], x1), max(e[3], y1)
    # a parent must enclose its children's rectangles (their bands may come from other rows)
    for c in sorted(ext, key=lambda p: -p.count(":")):
        if ":" in c:
            parent = c.rsplit(":", 1)[0]
            if parent in ext:
                e, p = ext[c], ext[parent]
                p[0], p[1] = min(p[0], e[0] - pad), min(p[1], e[1] - pad - label_h)
                p[2], p[3] = max(p[2], e[2] + pad), max(p[3], e[3] + pad)
    return {
        c: ClusterBox(path=c, label=c.rsplit(":", 1)[-1], x=e[0], y=e[1], width=e[2] - e[0],
                      height=e[3] - e[1], depth=c.count(":"))
        for c, e in ext.items()
    }


def _route_edges(
    routes: list[_Route],
    names: list[Hashable],
    x: list[float],
    y: list[float],
    width: list[float],
    height: list[float],
    boxes: dict[Hashable, NodeBox],
    rows: list[list[int]],
) -> list[EdgeRoute]:
    del rows
    n = len(names)
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
            pts.append((x[d], y[d]))
        pts.append((port_x[(i, -1)], y[bottom] - height[bottom] / 2))
        if r.reversed:
            pts.reverse()
        label_box = None
        if r.label is not None and r.label_node is not None:
            d = r.label_node
            label_box = LabelBox(r.label, x[d], y[d], width[d], height[d])
        curves: list[Curve] = []
        for (x1, y1), (x2, y2) in zip(pts, pts[1:], strict=False):
            mid = (y2 - y1) / 2
            curves.append(((x1, y1 + mid), (x2, y2 - mid), (x2, y2)))
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=pts[0],
            curves=curves, points=pts, label_box=label_box, reversed=r.reversed,
            edges=r.edges,
        ))
    del n, boxes
    return out


def _self_loops(
    box: NodeBox, group: list[_Route], names: list[Hashable], label_font_size: float
) -> list[EdgeRoute]:
    out: list[EdgeRoute] = []
    xr = box.right
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
            label_box = LabelBox(r.label, xr + reach + 4 + w / 2, box.y, w, label_font_size + 8)
        out.append(EdgeRoute(
            source=names[r.u], target=names[r.v], kind=r.kind, label=r.label, start=p0,
            curves=curves, points=[p0, p1, p2], label_box=label_box, self_loop=True,
            edges=r.edges,
        ))
    return out
