"""Inline subgraph nodes into their parent graph (``expand_subgraphs``)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import networkx as nx

from .style import END, START, as_graph, cluster_path

_MAX_DEPTH = 64  # guards against a (pathological) graph that contains itself


def _child_graph(attrs: dict[str, Any]) -> nx.MultiDiGraph | None:
    if attrs.get("kind") != "subgraph":
        return None
    child = attrs.get("graph")
    get_graph = getattr(child, "get_graph", None)
    if not callable(get_graph):
        return None
    G = get_graph()
    return G if isinstance(G, nx.Graph) else None


def expand_subgraphs(G: Any, depth: bool | int = True) -> nx.MultiDiGraph:
    """Return a copy of ``G`` with subgraph nodes replaced by their child graph's nodes.

    Each node of kind ``"subgraph"`` whose ``graph`` attribute has a ``get_graph()`` method is
    removed; the child's nodes (except its START/END) are added as ``"parent:child"`` with a
    ``cluster`` attribute: the path of subgraph names they sit in, outermost first
    (``("outer", "inner")`` for nested levels; a tuple, so that names may contain ``:``). Edges
    into the subgraph node are wired to the targets of the child's START, edges out of it leave
    from the sources of the child's END. Rewired edges keep the parent edge's attributes; a
    join's ``join`` tuple has the subgraph name replaced by those END sources.

    ``depth``: ``True`` expands every level, an int expands that many levels, ``0``/``False``
    returns an unchanged copy.
    """
    G = as_graph(G)
    levels = _MAX_DEPTH if depth is True else int(depth)
    return _expand(G, max(0, min(levels, _MAX_DEPTH)))


def _expand(G: nx.MultiDiGraph, levels: int) -> nx.MultiDiGraph:
    H = nx.MultiDiGraph()
    H.graph.update(G.graph)
    if levels <= 0:
        H.add_nodes_from(G.nodes(data=True))
        H.add_edges_from(G.edges(keys=True, data=True))
        return H

    # child graphs, already expanded below this level
    children: dict[Hashable, nx.MultiDiGraph] = {}
    for n, attrs in G.nodes(data=True):
        child = _child_graph(attrs)
        if child is not None:
            children[n] = _expand(child, levels - 1)

    entries: dict[Hashable, list[Hashable]] = {}  # subgraph -> prefixed entry nodes (END = pass)
    exits: dict[Hashable, list[Hashable]] = {}  # subgraph -> prefixed exit nodes (START = pass)

    for n, attrs in G.nodes(data=True):
        child = children.get(n)
        if child is None:
            H.add_node(n, **attrs)
            continue
        prefix = f"{n}:"

        def name(c: Hashable, prefix: str = prefix) -> Hashable:
            return c if c in (START, END) else f"{prefix}{c}"

        for c, cattrs in child.nodes(data=True):
            if c in (START, END):
                continue
            new = dict(cattrs)
            new["cluster"] = (str(n), *cluster_path(cattrs.get("cluster")))
            H.add_node(name(c), **new)
        entries[n] = [name(v) for v in _unique(child.successors(START))] if START in child else []
        exits[n] = [name(u) for u in _unique(child.predecessors(END))] if END in child else []
        for u, v, k, data in child.edges(keys=True, data=True):
            if u == START or v == END:
                continue
            new = dict(data)
            if "join" in new and isinstance(new["join"], tuple | list):
                new["join"] = tuple(name(s) for s in new["join"])
            H.add_edge(name(u), name(v), key=k, **new)

    for u, v, data in G.edges(data=True):
        sources = _resolve_sources(u, exits)
        targets = _resolve_targets(v, entries)
        new = dict(data)
        if "join" in new and isinstance(new["join"], tuple | list):
            joined: list[Hashable] = []
            for s in new["join"]:
                joined.extend(exits.get(s, [s]))
            new["join"] = tuple(joined)
        for s in sources:
            for t in targets:
                H.add_edge(s, t, **dict(new))

    # a child whose START leads straight to its END lets the parent's flow pass through
    for n, targets in entries.items():
        if END not in targets:
            continue
        for a, _, in_data in G.in_edges(n, data=True):
            for _, b, out_data in G.out_edges(n, data=True):
                if n in (a, b):
                    continue
                for s in _resolve_sources(a, exits):
                    for t in _resolve_targets(b, entries):
                        H.add_edge(s, t, **{**in_data, **out_data})
    return H


def _resolve_sources(u: Hashable, exits: dict[Hashable, list[Hashable]]) -> list[Hashable]:
    """Nodes an edge out of ``u`` now leaves from (a subgraph passing START->END is skipped)."""
    if u not in exits:
        return [u]
    return [s for s in exits[u] if s != START]


def _resolve_targets(v: Hashable, entries: dict[Hashable, list[Hashable]]) -> list[Hashable]:
    if v not in entries:
        return [v]
    return [t for t in entries[v] if t != END]


def _unique(items: Any) -> list[Hashable]:
    seen: dict[Hashable, None] = {}
    for item in items:
        seen.setdefault(item, None)
    return list(seen)
