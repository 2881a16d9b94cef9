"""Layered layout, phase 3: order the nodes inside each layer to reduce edge crossings.

Works on a *proper* layered graph (every edge joins adjacent layers, long edges already split
by dummy nodes). Barycenter heuristic, alternating downward and upward sweeps, keeping the best
ordering seen. Nodes of one cluster (expanded subgraph) are kept contiguous in every layer and
sibling clusters keep one left-to-right order across all layers.
"""

from __future__ import annotations

from collections.abc import Sequence

Path = tuple[str, ...]  # a cluster: the names of its nested subgraphs
Chains = Sequence[tuple[Path, ...]]  # per node, the clusters it sits in, outermost first


def count_crossings(rows: Sequence[Sequence[int]], down: Sequence[Sequence[int]]) -> int:
    """Number of edge crossings between consecutive layers (Fenwick-tree inversion count)."""
    pos: dict[int, int] = {}
    for row in rows:
        for i, v in enumerate(row):
            pos[v] = i
    total = 0
    for r in range(len(rows) - 1):
        size = len(rows[r + 1])
        if size < 2:
            continue
        targets = [pos[w] for v in rows[r] for w in sorted(down[v], key=pos.__getitem__)]
        tree = [0] * (size + 1)
        for seen, p in enumerate(targets):
            # elements already seen with a position > p cross this edge
            i = p + 1
            le = 0
            while i > 0:
                le += tree[i]
                i -= i & -i
            total += seen - le
            i = p + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
    return total


def order_layers(
    rows: list[list[int]],
    up: Sequence[Sequence[int]],
    down: Sequence[Sequence[int]],
    chains: Chains,
    sweeps: int = 8,
) -> list[list[int]]:
    """Reorder ``rows`` (lists of node ids per layer) to reduce crossings; returns new rows."""
    clustered = any(chains)
    rel: dict[int, float] = {}

    def refresh(rs: list[list[int]]) -> None:
        for row in rs:
            size = len(row)
            for i, v in enumerate(row):
                rel[v] = (i + 0.5) / size

    if clustered:
        rows = [_arrange(row, {v: float(i) for i, v in enumerate(row)}, chains, {}) for row in rows]
    refresh(rows)
    best = [list(r) for r in rows]
    best_cross = count_crossings(rows, down)
    stale = 0
    for _ in range(sweeps):
        for downward in (True, False):
            neigh = up if downward else down
            keys = {v: _bary(v, neigh, rel) for row in rows for v in row}
            ckeys = _cluster_keys(rows, chains, keys) if clustered else {}
            indices = range(1, len(rows)) if downward else range(len(rows) - 2, -1, -1)
            for r in indices:
                row = rows[r]
                for v in row:
                    keys[v] = _bary(v, neigh, rel)
                if clustered:
                    rows[r] = _arrange(row, keys, chains, ckeys)
                else:
                    rows[r] = sorted(row, key=keys.__getitem__)
                size = len(rows[r])
                for i, v in enumerate(rows[r]):
                    rel[v] = (i + 0.5) / size
        cross = count_crossings(rows, down)
        if cross < best_cross:
            best_cross, best, stale = cross, [list(r) for r in rows], 0
        else:
            stale += 1
            if stale >= 2 or best_cross == 0:
                break
    return best


def _bary(v: int, neigh: Sequence[Sequence[int]], rel: dict[int, float]) -> float:
    nb = neigh[v]
    if not nb:
        return rel[v]
    return sum(rel[w] for w in nb) / len(nb)


def _cluster_keys(
    rows: list[list[int]], chains: Chains, keys: dict[int, float]
) -> dict[Path, float]:
    sums: dict[Path, list[float]] = {}
    for row in rows:
        for v in row:
            for c in chains[v]:
                acc = sums.setdefault(c, [0.0, 0.0])
                acc[0] += keys[v]
                acc[1] += 1.0
    return {c: s / k for c, (s, k) in sums.items()}


def _arrange(
    nodes: list[int],
    keys: dict[int, float],
    chains: Chains,
    ckeys: dict[Path, float],
    depth: int = 0,
) -> list[int]:
    """Sort by key, keeping each cluster's nodes together (clusters sorted by their own key)."""
    items: list[tuple[float, int, list[int]]] = []
    groups: dict[Path, list[int]] = {}
    for v in nodes:
        chain = chains[v]
        if len(chain) > depth:
            groups.setdefault(chain[depth], []).append(v)
        else:
            items.append((keys[v], 0, [v]))
    for c, members in groups.items():
        key = ckeys.get(c)
        if key is None:
            key = sum(keys[v] for v in members) / len(members)
        items.append((key, 1, _arrange(members, keys, chains, ckeys, depth + 1)))
    items.sort(key=lambda item: (item[0], item[1]))
    return [v for item in items for v in item[2]]
