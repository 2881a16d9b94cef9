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
5. edges become cubic Bezier paths through their dummy nodes, with spread-out ports
   (``routing``).

The result types (:class:`Layout`, :class:`NodeBox`, ...) live in ``geometry``.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from typing import Any

import networkx as nx

from .geometry import CLUSTER_TITLE_SIZE, ClusterBox, EdgeRoute, Layout, NodeBox
from .layering import assign_layers, break_cycles
from .ordering import order_layers
from .placement import Sizes, assign_x, separate_clusters
from .routing import Route, route_edges, self_loops
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


def layout(
    G: Any,
    *,
    font_size: float = 13.0,
    label_font_size: float = 11.0,
    node_height: float = 34.0,
    node_sep: float = 28.0,
    rank_sep: float = 20.0,
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
    layer, dfs_order = _layers(n, routes, index)

    width = [max(text_width(t, font_size) + 28.0, 44.0) for t in labels]
    height = [node_height] * n
    right_extra = [0.0] * n  # room for self-loops and their labels
    for v, group in loops.items():
        outer = 16.0 + 10.0 * (len(group) - 1)
        labels_w = max((text_width(r.label, label_font_size) + 16.0 for r in group if r.label),
                       default=0.0)
        right_extra[v] = outer + 6.0 + labels_w
    dummy = [False] * n
    _split_long_edges(routes, layer, width, height, right_extra, dummy, chains, label_font_size)
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
        def extents(xs: list[float]) -> dict[str, tuple[float, float, int, int]]:
            bounds = _cluster_bounds(rows, xs, None, sizes, height, cluster_label_h, n)
            return {c: (e[0], e[2], int(e[4]), int(e[5])) for c, e in bounds.items()}

        separate_clusters(rows, x, sizes, extents)
    y = _assign_y(rows, height, chains, rank_sep, cluster_pad, cluster_label_h, margin)

    boxes: list[tuple[float, float, float, float]] = []  # everything that must fit the canvas
    for v in range(total):
        if not dummy[v] or height[v]:
            boxes.append((x[v] - sizes.left[v], y[v] - height[v] / 2,
                          x[v] + sizes.right[v], y[v] + height[v] / 2))
    cluster_boxes = {
        c: ClusterBox(path=c, label=c.rsplit(":", 1)[-1], x=e[0], y=e[1], width=e[2] - e[0],
                      height=e[3] - e[1], depth=c.count(":"))
        for c, e in _cluster_bounds(rows, x, y, sizes, height, cluster_label_h, n).items()
    }
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
    band = [0.0] * total  # height of each node's row: dummies cross it vertically
    for row in rows:
        h = max((height[v] for v in row), default=0.0)
        for v in row:
            band[v] = h
    edge_routes: list[EdgeRoute] = route_edges(routes, names, x, y, width, height, band)
    for v, group in loops.items():
        edge_routes.extend(self_loops(node_boxes[names[v]], group, names, label_font_size))

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


def _split_long_edges(
    routes: list[Route],
    layer: list[int],
    width: list[float],
    height: list[float],
    right_extra: list[float],
    dummy: list[bool],
    chains: list[tuple[str, ...]],
    label_font_size: float,
) -> None:
    """Give every route a chain of dummy nodes, one per layer crossed (lists grow in place).

    A reversed (back) edge runs its chain from the target down to the source. A dummy belongs
    to the clusters both ends of its edge share; a label dummy is as big as its label.
    """
    for r in routes:
        top, bottom = (r.u, r.v) if layer[r.u] < layer[r.v] else (r.v, r.u)
        r.reversed = top != r.u
        r.chain = [top]
        common = _common_prefix(chains[r.u], chains[r.v])
        for lay in range(layer[top] + 1, layer[bottom]):
            r.chain.append(len(layer))
            layer.append(lay)
            width.append(2.0)
            height.append(0.0)
            dummy.append(True)
            right_extra.append(0.0)
            chains.append(common)
        r.chain.append(bottom)
        if r.label:
            d = r.chain[-2] if r.reversed else r.chain[1]
            r.label_node = d
            width[d] = text_width(r.label, label_font_size) + 12.0
            height[d] = label_font_size + 8.0


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


def _common_prefix(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        out.append(x)
    return tuple(out)


def _cluster_bounds(
    rows: list[list[int]],
    x: list[float],
    y: list[float] | None,
    sizes: Sizes,
    height: list[float],
    label_h: float,
    n_real: int,
) -> dict[str, list[float]]:
    """``{cluster: [x0, y0, x1, y1, first_row, last_row]}``, innermost clusters first.

    A cluster encloses its direct members and its child clusters with ``cluster_pad`` around
    them and a label band on top. Without ``y`` only the horizontal extent is meaningful.
    """
    pad = sizes.cluster_pad
    ext: dict[str, list[float]] = {}
    for r, row in enumerate(rows):
        for v in row:
            chain = sizes.chains[v]
            if not chain:
                continue
            yc = y[v] if y is not None else 0.0
            box = [x[v] - sizes.left[v] - pad, yc - height[v] / 2 - pad - label_h,
                   x[v] + sizes.right[v] + pad, yc + height[v] / 2 + pad, r, r]
            _merge(ext, chain[-1], box)
    deepest = max((c.count(":") for c in ext), default=0)
    for depth in range(deepest, -1, -1):
        for c in [k for k in ext if k.count(":") == depth]:
            e = ext[c]
            # keep the title (top left) clear of the edges entering the cluster's first row
            ports = [x[v] - (0.3 * sizes.left[v] if v < n_real else 0.0)
                     for v in rows[int(e[4])] if c in sizes.chains[v]]
            title = text_width(c.rsplit(":", 1)[-1], CLUSTER_TITLE_SIZE) + 8.0
            e[0] = min(e[0], min(ports, default=e[0]) - title - 12.0)
            if depth:
                box = [e[0] - pad, e[1] - pad - label_h, e[2] + pad, e[3] + pad, e[4], e[5]]
                _merge(ext, c.rsplit(":", 1)[0], box)
    return dict(sorted(ext.items(), key=lambda item: -item[0].count(":")))


def _merge(ext: dict[str, list[float]], c: str, box: list[float]) -> None:
    e = ext.get(c)
    if e is None:
        ext[c] = list(box)
        return
    e[0], e[1], e[2], e[3] = min(e[0], box[0]), min(e[1], box[1]), max(e[2], box[2]), max(
        e[3], box[3])
    e[4], e[5] = min(e[4], box[4]), max(e[5], box[5])


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
