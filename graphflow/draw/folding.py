"""Folding a deep layered layout into side-by-side bands (compact mode).

A long pipeline drawn top to bottom is a thin, very tall picture. Folding cuts its rows into
``k`` bands of about equal depth and sets them side by side, like the columns of a newspaper;
an edge crossing a cut runs below its band, up the gutter to the next band and into it from
above. Cuts only fall between rows that no cluster spans. Coordinates are breadth (across the
layers) and depth (along the flow), as in the rest of the layout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .geometry import Curve, Point
from .geometry import line as _line

LANE = 7.0  # distance between the lanes of the edges crossing one cut
Jump = tuple[float, float, float]  # gutter breadth, depth below the band, depth above the next


def fold(
    rows: Sequence[Sequence[int]],
    b: list[float],
    d: list[float],
    left: Sequence[float],
    right: Sequence[float],
    depth: Sequence[float],
    down: Sequence[Sequence[int]],
    clusters: dict[tuple[str, ...], list[float]],
    n_real: int,
    gap: float,
    ratio: float = 1.3,
) -> dict[tuple[int, int], Jump]:
    """Fold when the drawing is more than about ``ratio`` times deeper than broad and at
    least two bands help; moves ``b``/``d`` in place (and the ``clusters`` boxes,
    ``[b0, d0, b1, d1, first_row, last_row]``). Returns, for each edge segment ``(u, v)``
    crossing a cut, where its detour runs."""
    n_rows = len(rows)
    if n_rows < 4:
        return {}
    top = [min((d[v] - depth[v] / 2 for v in row), default=0.0) for row in rows]
    bottom = [max((d[v] + depth[v] / 2 for v in row), default=0.0) for row in rows]
    lo = [min((b[v] - left[v] for v in row), default=math.inf) for row in rows]
    hi = [max((b[v] + right[v] for v in row), default=-math.inf) for row in rows]
    row_of = {v: r for r, row in enumerate(rows) for v in row}
    open_at = [False] * (n_rows + 1)  # a cluster spans the boundary before row r
    for c in clusters.values():
        r0, r1 = int(c[4]), int(c[5])
        for r in range(r0 + 1, r1 + 1):
            open_at[r] = True
        top[r0], bottom[r1] = min(top[r0], c[1]), max(bottom[r1], c[3])
        for r in range(r0, r1 + 1):
            lo[r], hi[r] = min(lo[r], c[0]), max(hi[r], c[2])
    total_depth = max(bottom) - min(top)
    breadth = max(hi) - min(lo)
    k = round(math.sqrt(total_depth / (ratio * (breadth + gap))))
    if k < 2:
        return {}
    cuts: list[int] = []
    for j in range(1, k):
        goal = min(top) + total_depth * j / k
        options = [r for r in range(2, n_rows) if not open_at[r] and (not cuts or r > cuts[-1])
                   and any(v < n_real for v in rows[r])]  # a band starts with a real row
        if not options:
            break
        cuts.append(min(options, key=lambda r: abs(top[r] - goal)))
    cuts = sorted(set(cuts))
    if not cuts:
        return {}
    bands = list(zip([0, *cuts], [*cuts, n_rows], strict=True))
    band_of = [0] * n_rows
    for j, (r0, r1) in enumerate(bands):
        for r in range(r0, r1):
            band_of[r] = j
    crossing: list[list[tuple[int, int]]] = [[] for _ in bands]  # per cut, its segments
    for row in rows:
        for u in row:
            for v in down[u]:
                if band_of[row_of[v]] != band_of[row_of[u]]:
                    crossing[band_of[row_of[u]]].append((u, v))
    # move each band: to the top, and right of the one before with a gutter between
    first_top = min(top)
    cursor = 0.0
    edges: list[tuple[float, float, float]] = []  # per band: its right side, top, bottom
    for j, (r0, r1) in enumerate(bands):
        band_top = min(top[r0:r1])
        dd = first_top - band_top
        left_side = min(lo[r0:r1])
        db = 0.0 if j == 0 else cursor - left_side
        for r in range(r0, r1):
            for v in rows[r]:
                b[v] += db
                d[v] += dd
        for c in clusters.values():
            if r0 <= c[4] < r1:
                c[0], c[2], c[1], c[3] = c[0] + db, c[2] + db, c[1] + dd, c[3] + dd
        right_side = max(hi[r0:r1]) + db
        edges.append((right_side, first_top, max(bottom[r0:r1]) + dd))
        cursor = right_side + gap + LANE * len(crossing[j])
    jumps: dict[tuple[int, int], Jump] = {}
    for j, segments in enumerate(crossing[:-1]):
        right_side, band_top, band_bottom = edges[j]
        for lane, (u, v) in enumerate(sorted(segments, key=lambda s: -b[s[0]])):
            jumps[(u, v)] = (right_side + gap / 2 + LANE * lane,
                             band_bottom + gap / 2 + LANE * lane,
                             band_top - gap / 2 - LANE * lane)
    return jumps


def detour(p: Point, q: Point, jump: Jump, radius: float = 8.0) -> list[Curve]:
    """The path from ``p`` (end of a band) to ``q`` (start of the next): down below the band,
    across to the gutter, up it, across above the next band and down into ``q``; corners
    rounded."""
    gutter, below, above = jump
    corners = [p, (p[0], below), (gutter, below), (gutter, above), (q[0], above), q]
    return rounded(corners, radius)


def rounded(points: list[Point], radius: float) -> list[Curve]:
    """A polyline of horizontal and vertical legs as Bezier curves, corners rounded."""
    curves: list[Curve] = []
    cursor = points[0]
    for i in range(1, len(points) - 1):
        a, c, e = points[i - 1], points[i], points[i + 1]
        r = min(radius, math.dist(a, c) / 2, math.dist(c, e) / 2)
        into = _toward(c, a, r)
        out = _toward(c, e, r)
        curves.append(_line(cursor, into))
        curves.append((_toward(into, c, r * 0.55), _toward(out, c, r * 0.55), out))
        cursor = out
    curves.append(_line(cursor, points[-1]))
    return curves


def _toward(a: Point, b: Point, dist: float) -> Point:
    length = math.dist(a, b)
    if length < 1e-9:
        return a
    t = dist / length
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t)


