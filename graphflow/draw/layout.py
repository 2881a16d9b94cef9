"""A layered (Sugiyama-style) layout in pure Python, shared by the SVG, PNG and ASCII renderers.

Phases:

1. cycle breaking: DFS from START, back edges are reversed (``layering.break_cycles``);
2. layering: longest path plus a pull-down pass, START first, END alone last
   (``layering.assign_layers``); layers are then doubled so that every edge gets at least one
   dummy node in between: the dummy of a labelled edge carries the label, so edge labels take
   real room and never overlap boxes (a layer of unlabelled dummies takes no room);
3. dummy nodes split long edges; crossing reduction by barycenter sweeps
   (``ordering.order_layers``);
4. coordinates across the layers by order-preserving weighted averaging
   (``placement.assign_x``), along them by layer; expanded subgraphs become non-overlapping
   cluster rectangles;
5. edges become cubic Bezier paths through their dummy nodes, with spread-out ports that touch
   each node's outline (``routing``);
6. the canvas is fitted around everything drawn: boxes, clusters, labels and every edge's
   points and control points.

The phases work in *breadth* (across the layers) and *depth* (along the flow) coordinates;
``direction="TB"`` maps them to x and y, ``"LR"`` to y and x. The result types
(:class:`Layout`, :class:`NodeBox`, ...) live in ``geometry``.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import dataclass, replace
from typing import Any

import networkx as nx

from .folding import fold
from .geometry import CLUSTER_TITLE_SIZE, ClusterBox, EdgeRoute, LabelBox, Layout, NodeBox, Point
from .layering import assign_layers, break_cycles
from .ordering import order_layers
from .placement import Sizes, assign_x, separate_clusters
from .routing import PORT_GAP, Route, loop_reach, route_edges, self_loops
from .shapes import inset, side_room
from .style import (
    END,
    START,
    ClusterPath,
    as_graph,
    check_direction,
    clean_text,
    cluster_chain,
    cluster_path,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    text_width,
    wrap_text,
)

Chain = tuple[ClusterPath, ...]  # the clusters a node sits in, outermost first


@dataclass(frozen=True)
class Metrics:
    """Sizes of a layout, in pixels."""

    font_size: float = 13.0
    label_font_size: float = 11.0
    node_height: float = 34.0
    node_sep: float = 28.0
    rank_sep: float = 24.0
    cluster_pad: float = 12.0
    margin: float = 16.0
    padding: float = 14.0  # between a box's text and its sides


COMPACT = Metrics(font_size=11.0, label_font_size=9.5, node_height=24.0, node_sep=14.0,
                  rank_sep=14.0, cluster_pad=7.0, margin=8.0, padding=8.0)


def layout(
    G: Any,
    *,
    direction: str = "TB",
    compact: bool = False,
    wrap: int | None = 24,
    font_size: float | None = None,
    label_font_size: float | None = None,
    node_height: float | None = None,
    node_sep: float | None = None,
    rank_sep: float | None = None,
    cluster_pad: float | None = None,
    margin: float | None = None,
    sweeps: int = 8,
) -> Layout:
    """Compute a layered layout of ``G`` (a graph as returned by ``get_graph``).

    ``direction``: ``"TB"`` (top to bottom) or ``"LR"`` (left to right). ``compact``: smaller
    text, boxes and gaps, and a drawing much deeper than broad (a long pipeline) folded into
    side-by-side bands, an edge crossing a fold running round by the gutter between them
    (``folding``). ``wrap``: node names longer than this many
    characters are broken into lines (``None``: never). The other sizes (pixels) override
    those of the mode. Boxes, edge labels and clusters never overlap; the canvas holds every
    box, label and edge. Nodes with a ``cluster`` path (see :func:`expand_subgraphs`) are
    grouped into cluster rectangles.
    """
    check_direction(direction)
    base = COMPACT if compact else Metrics()
    given = {"font_size": font_size, "label_font_size": label_font_size,
             "node_height": node_height, "node_sep": node_sep, "rank_sep": rank_sep,
             "cluster_pad": cluster_pad, "margin": margin}
    m = replace(base, **{k: float(v) for k, v in given.items() if v is not None})
    return _Layered(as_graph(G), m, direction == "LR", wrap, sweeps, compact).run()


class _Layered:
    """One layout computation (phases 1-6); node ids are ints, dummies after the real nodes."""

    def __init__(self, G: nx.Graph, m: Metrics, lr: bool, wrap: int | None,
                 sweeps: int, fold: bool) -> None:
        self.G, self.m, self.lr, self.sweeps, self.fold = G, m, lr, sweeps, fold
        self.names: list[Hashable] = list(G.nodes)
        self.n = len(self.names)
        self.index = {name: i for i, name in enumerate(self.names)}
        self.kinds = [node_kind(G, v) for v in self.names]
        self.labels = [clean_text(node_label(G, v)) for v in self.names]
        self.lines = [[t] if k in ("start", "end") else wrap_text(t, wrap)
                      for t, k in zip(self.labels, self.kinds, strict=True)]
        self.paths = [cluster_path(G.nodes[v].get("cluster")) for v in self.names]
        self.chains: list[Chain] = [cluster_chain(c) for c in self.paths]
        # the cluster title band: above a cluster's first row (TB), or on its top side (LR)
        self.band = m.font_size + 6.0

    # -- sizes ---------------------------------------------------------------------------------

    def node_size(self, v: int) -> tuple[float, float]:
        """(width, height) of node ``v``'s box."""
        m, kind = self.m, self.kinds[v]
        if kind in ("start", "end"):
            d = max(m.node_height + 8.0, text_width(self.labels[v], m.font_size * 0.8) + 16.0)
            return d, d
        lines = self.lines[v]
        h = max(m.node_height, len(lines) * m.font_size * 1.25 + m.padding)
        text = max((text_width(t, m.font_size) for t in lines), default=0.0)
        return max(text + 2 * (m.padding + side_room(kind, h)), 2 * m.padding + 16.0), h

    def label_size(self, text: str) -> tuple[float, float]:
        """(breadth, depth) of an edge label's box."""
        w, h = text_width(text, self.m.label_font_size) + 12.0, self.m.label_font_size + 8.0
        return (h, w) if self.lr else (w, h)

    # -- the phases ----------------------------------------------------------------------------

    def run(self) -> Layout:
        m, n = self.m, self.n
        routes, loops = _collect_routes(self.G, self.index)
        layer, dfs_order = _layers(n, routes, self.index)
        size = [self.node_size(v) for v in range(n)]
        # breadth and depth of every node (dummies appended later)
        breadth = [h if self.lr else w for w, h in size]
        depth = [w if self.lr else h for w, h in size]
        # heavy fan-in/out: a box wide enough for its ports to stay apart
        ends: dict[tuple[int, bool], int] = {}
        for r in routes:
            top, bottom = (r.u, r.v) if layer[r.u] < layer[r.v] else (r.v, r.u)
            ends[(top, True)] = ends.get((top, True), 0) + 1
            ends[(bottom, False)] = ends.get((bottom, False), 0) + 1
        for (v, _), k in ends.items():
            if k > 1 and self.kinds[v] not in ("start", "end"):
                breadth[v] = max(breadth[v], (k - 1) * PORT_GAP * 0.75 / 0.7)
        extra = [0.0] * n  # room on the breadth+ side for self-loops and their labels
        for v, group in loops.items():
            labels = [self.label_size(r.label)[0] for r in group if r.label]
            extra[v] = loop_reach(len(group)) + 6.0 + max(labels, default=0.0)
        dummy = [False] * n
        chains = list(self.chains)
        for r in routes:
            _split(r, layer, breadth, depth, extra, dummy, chains, self.label_size)
        total = len(layer)
        up: list[list[int]] = [[] for _ in range(total)]
        down: list[list[int]] = [[] for _ in range(total)]
        for r in routes:
            for a, b in itertools.pairwise(r.chain):
                down[a].append(b)
                up[b].append(a)

        # 3. crossing reduction, starting from the depth-first discovery order
        rows: list[list[int]] = [[] for _ in range(max(layer) + 1 if layer else 0)]
        seen = [False] * total
        for root in dfs_order:
            stack = [root]
            while stack:
                v = stack.pop()
                if seen[v]:
                    continue
                seen[v] = True
                rows[layer[v]].append(v)
                stack.extend(reversed(down[v]))
        rows = order_layers(rows, up, down, chains, sweeps=self.sweeps)

        # 4. coordinates: b across the layers, d along them
        band_b, band_d = (self.band, 0.0) if self.lr else (0.0, self.band)
        sizes = Sizes(
            left=[w / 2 for w in breadth],
            right=[w / 2 + e for w, e in zip(breadth, extra, strict=True)],
            dummy=dummy, chains=chains, node_sep=m.node_sep, dummy_sep=14.0,
            cluster_pad=m.cluster_pad, lead=band_b,
        )
        b = assign_x(rows, up, down, sizes)
        if any(chains):
            def extents(xs: list[float]) -> dict[ClusterPath, tuple[float, float, int, int]]:
                bounds = self.cluster_bounds(rows, xs, None, sizes, depth, band_d)
                return {c: (e[0], e[2], int(e[4]), int(e[5])) for c, e in bounds.items()}

            separate_clusters(rows, b, sizes, extents)
        slant = [0.0] * len(rows)  # how far across the edges into each row travel
        for r, row in enumerate(rows):
            slant[r] = max((abs(b[v] - b[u]) for v in row for u in up[v]), default=0.0)
        d = _assign_depth(rows, depth, chains, m.rank_sep, m.cluster_pad, band_d, slant)
        clusters = self.cluster_bounds(rows, b, d, sizes, depth, band_d)
        jumps = fold(rows, b, d, sizes.left, sizes.right, depth, down, clusters, n,
                     2 * m.node_sep) if self.fold else {}

        # 5. edges, in breadth/depth coordinates
        bands = [0.0] * total  # depth of each node's row: dummies cross it straight
        for row in rows:
            h = max((depth[v] for v in row), default=0.0)
            for v in row:
                bands[v] = h
        flip = self.flip

        def touch(v: int, offset: float, end: bool) -> float:
            """How far inside its box node ``v``'s outline is, ``offset`` across the flow."""
            if v >= n:
                return 0.0
            w, h = (depth[v], breadth[v]) if self.lr else (breadth[v], depth[v])
            side = ("right" if end else "left") if self.lr else ("bottom" if end else "top")
            return inset(self.kinds[v], w, h, offset, side)

        edges = route_edges(routes, self.names, b, d, breadth, depth, bands, touch, jumps)
        for v, group in loops.items():
            edges.extend(self_loops(v, group, self.names, b[v] + breadth[v] / 2, d[v], depth[v],
                                    self.label_size, lambda off, v=v: touch(v, off, True)))

        # 6. final coordinates, fitted to the canvas
        boxes: dict[Hashable, NodeBox] = {}
        real_rows: list[list[Hashable]] = []
        for row in rows:
            real = [v for v in row if v < n]
            if not real:
                continue
            for i, v in enumerate(real):
                x, y = flip((b[v], d[v]))
                w, h = flip((breadth[v], depth[v]))
                boxes[self.names[v]] = NodeBox(
                    name=self.names[v], label=self.labels[v], kind=self.kinds[v], x=x, y=y,
                    width=w, height=h, layer=len(real_rows), order=i,
                    cluster=self.paths[v] or None, lines=self.lines[v])
            real_rows.append([self.names[v] for v in real])
        routes_out = [self.flip_route(e) for e in edges]
        cluster_boxes = []
        for c, e in clusters.items():
            x0, y0 = flip((e[0], e[1]))
            x1, y1 = flip((e[2], e[3]))
            cluster_boxes.append(ClusterBox(path=c, label=c[-1], x=x0, y=y0, width=x1 - x0,
                                            height=y1 - y0, depth=len(c) - 1))
        out = Layout(
            nodes=boxes, edges=routes_out,
            clusters=sorted(cluster_boxes, key=lambda c: (c.depth, c.path)),
            layers=real_rows, width=0.0, height=0.0, font_size=m.font_size,
            label_font_size=m.label_font_size, dummy_count=total - n,
            direction="LR" if self.lr else "TB",
        )
        _fit(out, m.margin)
        return out

    def flip(self, p: Point) -> Point:
        """Breadth/depth -> x/y."""
        return (p[1], p[0]) if self.lr else p

    def flip_route(self, e: EdgeRoute) -> EdgeRoute:
        if not self.lr:
            return e
        f = self.flip
        label = e.label_box
        if label is not None:
            label = LabelBox(label.text, label.y, label.x, label.height, label.width)
        return replace(e, start=f(e.start), points=[f(p) for p in e.points],
                       curves=[(f(c[0]), f(c[1]), f(c[2])) for c in e.curves], label_box=label)

    def cluster_bounds(
        self, rows: list[list[int]], b: list[float], d: list[float] | None, sizes: Sizes,
        depth: list[float], band_d: float,
    ) -> dict[ClusterPath, list[float]]:
        """``{cluster: [b0, d0, b1, d1, first_row, last_row]}``, innermost clusters first.

        A cluster encloses its direct members and its child clusters with ``cluster_pad``
        around them and a title band (``band_d`` before its first row in TB, ``sizes.lead``
        on its breadth start in LR). Without ``d`` only the breadth extent is meaningful.
        """
        pad, lead, n = sizes.cluster_pad, sizes.lead, self.n
        ext: dict[ClusterPath, list[float]] = {}
        for r, row in enumerate(rows):
            for v in row:
                chain = sizes.chains[v]
                if not chain:
                    continue
                dc = d[v] if d is not None else 0.0
                box = [b[v] - sizes.left[v] - pad - lead, dc - depth[v] / 2 - pad - band_d,
                       b[v] + sizes.right[v] + pad, dc + depth[v] / 2 + pad, r, r]
                _merge(ext, chain[-1], box)
        deepest = max((len(c) - 1 for c in ext), default=0)
        for level in range(deepest, -1, -1):
            for c in [k for k in ext if len(k) - 1 == level]:
                e = ext[c]
                if not self.lr:
                    # keep the title (top left) clear of the edges entering the first row
                    ports = [b[v] - (0.3 * sizes.left[v] if v < n else 0.0)
                             for v in rows[int(e[4])] if c in sizes.chains[v]]
                    title = text_width(clean_text(c[-1]), CLUSTER_TITLE_SIZE) + 8.0
                    e[0] = min(e[0], min(ports, default=e[0]) - title - 12.0)
                if level:
                    box = [e[0] - pad - lead, e[1] - pad - band_d, e[2] + pad, e[3] + pad,
                           e[4], e[5]]
                    _merge(ext, c[:-1], box)
        return dict(sorted(ext.items(), key=lambda item: -len(item[0])))


def _layers(
    n: int, routes: list[Route], index: dict[Hashable, int]
) -> tuple[list[int], list[int]]:
    """Phases 1-2: break cycles by DFS from START, assign layers, double them.

    Doubling leaves the odd layers to dummy nodes only, so every edge gets at least one dummy:
    the one next to its source carries the edge label. Also returns the DFS discovery order.
    """
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
    layer0 = assign_layers(n, list(dag), pinned_top=index.get(START),
                           pinned_bottom=index.get(END))
    return [2 * x for x in layer0], dfs_order


def _split(
    r: Route,
    layer: list[int],
    breadth: list[float],
    depth: list[float],
    extra: list[float],
    dummy: list[bool],
    chains: list[Chain],
    label_size: Any,
) -> None:
    """Give route ``r`` a chain of dummy nodes, one per layer crossed (lists grow in place).

    A reversed (back) edge runs its chain from the target down to the source. A dummy belongs
    to the clusters both ends of its edge share; a label dummy is as big as its label.
    """
    top, bottom = (r.u, r.v) if layer[r.u] < layer[r.v] else (r.v, r.u)
    r.reversed = top != r.u
    r.chain = [top]
    common = _common_prefix(chains[r.u], chains[r.v])
    for lay in range(layer[top] + 1, layer[bottom]):
        r.chain.append(len(layer))
        layer.append(lay)
        breadth.append(2.0)
        depth.append(0.0)
        dummy.append(True)
        extra.append(0.0)
        chains.append(common)
    r.chain.append(bottom)
    if r.label:
        v = r.chain[-2] if r.reversed else r.chain[1]
        r.label_node = v
        breadth[v], depth[v] = label_size(r.label)


def _collect_routes(
    G: nx.Graph, index: dict[Hashable, int]
) -> tuple[list[Route], dict[int, list[Route]]]:
    """Group parallel edges by (source, target, kind); self-loops separately."""
    grouped: dict[tuple[int, int, str], Route] = {}
    if G.is_multigraph():
        items = ((u, v, k, d) for u, v, k, d in G.edges(keys=True, data=True))
    else:
        items = ((u, v, None, d) for u, v, d in G.edges(data=True))
    for u, v, k, data in items:
        key = (index[u], index[v], edge_kind(data))
        route = grouped.get(key)
        if route is None:
            route = grouped[key] = Route(key[0], key[1], key[2], None, [])
        route.edges.append((k, data))
    routes: list[Route] = []
    loops: dict[int, list[Route]] = {}
    for route in grouped.values():
        texts = [clean_text(t) for t in (edge_text(d) for _, d in route.edges) if t]
        route.label = ", ".join(dict.fromkeys(texts)) or None
        if route.u == route.v:
            loops.setdefault(route.u, []).append(route)
        else:
            routes.append(route)
    return routes, loops


def _common_prefix(a: Chain, b: Chain) -> Chain:
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return tuple(out)


def _merge(ext: dict[ClusterPath, list[float]], c: ClusterPath, box: list[float]) -> None:
    e = ext.get(c)
    if e is None:
        ext[c] = list(box)
        return
    e[0], e[1], e[2], e[3] = min(e[0], box[0]), min(e[1], box[1]), max(e[2], box[2]), max(
        e[3], box[3])
    e[4], e[5] = min(e[4], box[4]), max(e[5], box[5])


def _assign_depth(
    rows: list[list[int]],
    depth: list[float],
    chains: list[Chain],
    rank_sep: float,
    pad: float,
    band: float,
    slant: list[float],
) -> list[float]:
    """Depth coordinate (centre) per node: rows one after the other, at least ``rank_sep``
    apart, with room for the clusters starting and ending at each row.

    A row of unlabelled dummies only takes no room of its own: its dummies sit in the gap
    between their neighbour rows. ``slant[r]`` is how far across the edges between rows
    ``r - 1`` and ``r`` travel: a gap grows with it (up to ``4 * rank_sep``), so that edges
    running far sideways bend smoothly instead of merging into a flat bar.
    """
    first: dict[ClusterPath, int] = {}
    last: dict[ClusterPath, int] = {}
    for r, row in enumerate(rows):
        for v in row:
            for c in chains[v]:
                first.setdefault(c, r)
                last[c] = r
    out = [0.0] * len(depth)
    end: float | None = None  # where the last row placed (and its clusters) ends
    waiting: list[list[int]] = []  # rows of plain dummies, placed in the next gap
    need = 0.0
    for r, row in enumerate(rows):
        before = max((sum(pad + band for c in chains[v] if first[c] == r) for v in row),
                     default=0.0)
        after = max((sum(pad for c in chains[v] if last[c] == r) for v in row), default=0.0)
        h = max((depth[v] for v in row), default=0.0)
        need = max(need, min(0.15 * slant[r], 4.0 * rank_sep))
        if h == 0.0 and before == 0.0 and after == 0.0 and end is not None:
            waiting.append(row)
            continue
        start = before if end is None else end + max(rank_sep, need) + before
        for i, dummies in enumerate(waiting, start=1):
            at = end + (start - before - end) * i / (len(waiting) + 1)  # type: ignore[operator]
            for v in dummies:
                out[v] = at
        waiting, need = [], 0.0
        for v in row:
            out[v] = start + h / 2
        end = start + h + after
    for i, dummies in enumerate(waiting, start=1):  # (dummies after the last real row)
        for v in dummies:
            out[v] = (end or 0.0) + rank_sep * i
    return out


def _fit(L: Layout, margin: float) -> None:
    """Move everything so that the drawing starts ``margin`` from the top left, and size the
    canvas to hold every box, cluster, label and edge point (control points included: a
    Bezier curve stays inside their hull)."""
    xs: list[float] = []
    ys: list[float] = []
    for box in L.nodes.values():
        xs += [box.left, box.right]
        ys += [box.top, box.bottom]
    for c in L.clusters:
        xs += [c.x, c.x + c.width]
        ys += [c.y, c.y + c.height]
    for e in L.edges:
        for px, py in [e.start, *(p for curve in e.curves for p in curve)]:
            xs.append(px)
            ys.append(py)
        lb = e.label_box
        if lb is not None:
            xs += [lb.x - lb.width / 2, lb.x + lb.width / 2]
            ys += [lb.y - lb.height / 2, lb.y + lb.height / 2]
    if not xs:
        L.width = L.height = 2 * margin
        return
    dx, dy = margin - min(xs), margin - min(ys)
    L.width = max(xs) + dx + margin
    L.height = max(ys) + dy + margin
    for box in L.nodes.values():
        box.x += dx
        box.y += dy
    for c in L.clusters:
        c.x += dx
        c.y += dy

    def move(p: Point) -> Point:
        return (p[0] + dx, p[1] + dy)

    for i, e in enumerate(L.edges):
        label = e.label_box
        if label is not None:
            label = LabelBox(label.text, label.x + dx, label.y + dy, label.width, label.height)
        L.edges[i] = replace(e, start=move(e.start), points=[move(p) for p in e.points],
                             curves=[(move(a), move(b), move(c)) for a, b, c in e.curves],
                             label_box=label)
