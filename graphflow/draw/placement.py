"""Layered layout, phase 4: horizontal coordinates.

Every layer keeps its order and minimum gaps (so boxes never overlap). Repeated sweeps move
each node towards the weighted mean of its neighbours in the adjacent layer; the best positions
that respect the order and gaps are found exactly by isotonic regression (pool adjacent
violators). Long edges (dummy chains) weigh more, which straightens them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class Sizes:
    """Per-node horizontal extents and cluster chains of the proper layered graph."""

    left: list[float]  # extent left of the centre
    right: list[float]  # extent right of the centre (includes room for self-loops)
    dummy: list[bool]
    chains: Sequence[tuple[tuple[str, ...], ...]]  # per node, the cluster paths it sits in
    node_sep: float
    dummy_sep: float
    cluster_pad: float
    lead: float = 0.0  # extra room before a cluster's first member (its title band, LR)


def gap(s: Sizes, a: int, b: int) -> float:
    """Minimum distance between the centres of ``a`` and its right-hand neighbour ``b``."""
    if s.dummy[a] and s.dummy[b]:
        sep = s.dummy_sep
    elif s.dummy[a] or s.dummy[b]:
        sep = (s.dummy_sep + s.node_sep) / 2
    else:
        sep = s.node_sep
    ca, cb = s.chains[a], s.chains[b]
    common = 0
    for x, y in zip(ca, cb, strict=False):
        if x != y:
            break
        common += 1
    boundaries = len(ca) - common + len(cb) - common
    return (s.right[a] + s.left[b] + sep + boundaries * s.cluster_pad
            + (len(cb) - common) * s.lead)


def assign_x(
    rows: Sequence[Sequence[int]],
    up: Sequence[Sequence[int]],
    down: Sequence[Sequence[int]],
    sizes: Sizes,
    passes: int = 6,
) -> list[float]:
    """x coordinate (box centre) per node id."""
    n = len(sizes.left)
    x = [0.0] * n
    gaps = [[gap(sizes, row[i], row[i + 1]) for i in range(len(row) - 1)] for row in rows]
    for row, g in zip(rows, gaps, strict=True):
        pos = 0.0
        for i, v in enumerate(row):
            if i:
                pos += g[i - 1]
            x[v] = pos
        shift = pos / 2
        for v in row:
            x[v] -= shift

    dummy = sizes.dummy

    def weight(a: int, b: int) -> float:
        if dummy[a] and dummy[b]:
            return 8.0
        if dummy[a] or dummy[b]:
            return 2.0
        return 1.0

    def sweep(r: int, neighbour_lists: tuple[Sequence[Sequence[int]], ...]) -> None:
        row = rows[r]
        if not row:
            return
        desired: list[float] = []
        weights: list[float] = []
        for v in row:
            total = wsum = 0.0
            for neigh in neighbour_lists:
                for w in neigh[v]:
                    k = weight(v, w)
                    total += k * x[w]
                    wsum += k
            if wsum:
                desired.append(total / wsum)
                weights.append(wsum)
            else:
                desired.append(x[v])
                weights.append(0.25)
        for v, value in zip(row, _pav(desired, weights, gaps[r]), strict=True):
            x[v] = value

    last = len(rows) - 1
    for _ in range(passes):
        for r in range(1, last + 1):
            sweep(r, (up,))
        for r in range(last - 1, -1, -1):
            sweep(r, (down,))
    for _ in range(2):
        for r in range(last + 1):
            sweep(r, (up, down))
    for r in range(1, last + 1):  # finally hang nodes under their parents: straight chains
        sweep(r, (up,))
    return x


def _pav(desired: list[float], weights: list[float], gaps: list[float]) -> list[float]:
    """Minimise sum w_i (x_i - d_i)^2 subject to x_{i+1} - x_i >= gaps_i (in order)."""
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    # blocks of [weighted sum, weight, count]; the optimum is non-decreasing in y = x - offset
    blocks: list[list[float]] = []
    for d, w, off in zip(desired, weights, offsets, strict=True):
        blocks.append([(d - off) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            s, wt, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += wt
            blocks[-1][2] += c
    out: list[float] = []
    i = 0
    for s, wt, c in blocks:
        level = s / wt
        for _ in range(int(c)):
            out.append(level + offsets[i])
            i += 1
    return out


def separate_clusters(
    rows: Sequence[Sequence[int]],
    x: list[float],
    sizes: Sizes,
    rects: Callable[[list[float]], dict[tuple[str, ...], tuple[float, float, int, int]]],
    max_rounds: int = 60,
) -> None:
    """Push nodes right until no node sits inside a cluster rectangle it does not belong to.

    ``rects(x)`` returns ``{cluster: (x0, x1, first_row, last_row)}`` for the current
    coordinates. Only suffixes of rows move, and only to the right, so the order and the gaps
    of every row are preserved. Gives up after ``max_rounds`` fixes (pathological inputs).
    """
    for _ in range(max_rounds):
        if not _fix_one(rows, x, sizes, rects(x)):
            return


def _fix_one(
    rows: Sequence[Sequence[int]],
    x: list[float],
    sizes: Sizes,
    boxes: dict[tuple[str, ...], tuple[float, float, int, int]],
) -> bool:
    chains = sizes.chains
    for c, (cx0, cx1, r0, r1) in boxes.items():
        ancestors = {c[:i] for i in range(1, len(c))}
        for r in range(r0, r1 + 1):
            row = rows[r]
            members = [i for i, v in enumerate(row) if c in chains[v]]
            for i, v in enumerate(row):
                if c in chains[v]:
                    continue
                own = sum(1 for path in chains[v] if path not in ancestors)
                margin = sizes.node_sep / 2 + own * sizes.cluster_pad
                right_side = i > members[-1] if members else x[v] > (cx0 + cx1) / 2
                if right_side:
                    need = cx1 + margin + own * sizes.lead - (x[v] - sizes.left[v])
                    if need > 0.01:
                        for w in row[i:]:
                            x[w] += need
                        return True
                else:
                    need = x[v] + sizes.right[v] + margin - cx0
                    if need > 0.01:
                        _shift_cluster(rows, c, chains, x, need, r0, r1)
                        return True
    return False


def _shift_cluster(
    rows: Sequence[Sequence[int]],
    c: tuple[str, ...],
    chains: Sequence[tuple[tuple[str, ...], ...]],
    x: list[float],
    delta: float,
    r0: int,
    r1: int,
) -> None:
    """Move cluster ``c`` (and whatever lies right of it in its rows) right by ``delta``."""
    for r in range(r0, r1 + 1):
        row = rows[r]
        for i, v in enumerate(row):
            if c in chains[v]:
                for w in row[i:]:
                    x[w] += delta
                break
