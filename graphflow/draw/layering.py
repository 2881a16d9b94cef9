"""Layered layout, phases 1-2: cycle breaking and layer assignment.

Nodes are integers ``0..n-1``; edges are ``(u, v)`` pairs without self-loops or duplicates.
"""

from __future__ import annotations

from collections.abc import Sequence


def break_cycles(
    n: int, succ: Sequence[Sequence[int]], roots: Sequence[int]
) -> tuple[set[tuple[int, int]], list[int]]:
    """Depth-first search from ``roots`` (in order, then every unvisited node).

    Returns the back edges (edges into a node that is still on the DFS stack: reversing them
    makes the graph acyclic) and the DFS discovery order.
    """
    state = [0] * n  # 0 = new, 1 = on stack, 2 = done
    back: set[tuple[int, int]] = set()
    order: list[int] = []
    for root in [*roots, *range(n)]:
        if state[root]:
            continue
        state[root] = 1
        order.append(root)
        stack = [(root, iter(succ[root]))]
        while stack:
            v, it = stack[-1]
            for w in it:
                if state[w] == 0:
                    state[w] = 1
                    order.append(w)
                    stack.append((w, iter(succ[w])))
                    break
                if state[w] == 1:
                    back.add((v, w))
            else:
                state[v] = 2
                stack.pop()
    return back, order


def assign_layers(
    n: int,
    edges: Sequence[tuple[int, int]],
    *,
    pinned_top: int | None = None,
    pinned_bottom: int | None = None,
) -> list[int]:
    """Layer index per node for an acyclic edge list, so that every edge points downwards.

    Longest-path layering from the sources, then a "network-simplex-lite" pass that pulls a
    node down towards its successors when it has more outgoing than incoming edges (this
    shortens the total edge length). ``pinned_top`` stays in layer 0, ``pinned_bottom`` gets a
    layer of its own below everything else. Empty layers are removed.
    """
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succ[u].append(v)
        pred[v].append(u)

    indeg = [len(p) for p in pred]
    queue = [v for v in range(n) if indeg[v] == 0]
    topo: list[int] = []
    head = 0
    while head < len(queue):
        v = queue[head]
        head += 1
        topo.append(v)
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                queue.append(w)
    if len(topo) != n:  # not acyclic: should not happen after break_cycles
        raise ValueError("assign_layers needs an acyclic graph")

    layer = [0] * n
    for v in topo:
        for w in succ[v]:
            if layer[w] < layer[v] + 1:
                layer[w] = layer[v] + 1

    for v in reversed(topo):
        if v in (pinned_top, pinned_bottom) or not succ[v]:
            continue
        if len(succ[v]) > len(pred[v]):
            layer[v] = max(layer[v], min(layer[w] for w in succ[v]) - 1)

    if pinned_bottom is not None and n > 1 and pred[pinned_bottom]:
        deepest = max(layer[v] for v in range(n) if v != pinned_bottom)
        if layer[pinned_bottom] <= deepest:
            layer[pinned_bottom] = deepest + 1

    used = sorted(set(layer))
    remap = {old: new for new, old in enumerate(used)}
    return [remap[x] for x in layer]
