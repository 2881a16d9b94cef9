"""Node-link JSON (``networkx.node_link_data``) with only JSON-serializable attributes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import networkx as nx

from .style import Highlight, HighlightEdges, prepare

_DROPPED = frozenset({"graph"})  # a subgraph node's child compiled graph


def _describe(value: Any) -> str:
    if callable(value):
        module = getattr(value, "__module__", None)
        qualname = getattr(value, "__qualname__", None) or getattr(value, "__name__", None)
        if qualname:
            return f"{module}.{qualname}" if module else str(qualname)
    return repr(value)


def _plain(value: Any, depth: int = 0) -> Any:
    """A JSON-compatible copy of ``value``: containers recursed, the rest stringified."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 20:
        return _describe(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [_plain(v, depth + 1) for v in items]
    return _describe(value)


def _attrs(attrs: Mapping[str, Any], drop: frozenset[str] = frozenset()) -> dict[str, Any]:
    return {str(k): _plain(v) for k, v in attrs.items() if k not in drop}


def _mark(u: Hashable, v: Hashable, edges: frozenset[tuple[Hashable, Hashable]]) -> dict:
    return {"highlight": True} if (u, v) in edges else {}


def to_json(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    indent: int | None = 2,
) -> str:
    """Node-link JSON of ``G`` (``networkx.node_link_data`` layout: ``nodes`` and ``edges``).

    A subgraph node's ``graph`` attribute (the child compiled graph) is dropped; callables
    become ``"module.qualname"`` strings, tuples/sets lists, other objects their ``repr``.
    Highlighted nodes and edges get ``"highlight": true``; an edge a run took ``n`` > 1 times
    (``highlight_edges`` as ``{(u, v): n}``) gets ``"taken": n``.
    """
    G, hi_nodes, hi_edges = prepare(G, highlight, highlight_edges)
    H = G.__class__()
    H.graph.update(_attrs(G.graph))
    index: dict[Any, Any] = {}
    for n, attrs in G.nodes(data=True):
        key = _plain(n)
        key = key if isinstance(key, str | int) else json.dumps(key)
        index[n] = key
        H.add_node(key, **_attrs(attrs, _DROPPED))
        if n in hi_nodes:
            H.nodes[key]["highlight"] = True
    add: Callable[..., Any] = H.add_edge
    if G.is_multigraph():
        for u, v, k, attrs in G.edges(keys=True, data=True):
            add(index[u], index[v], key=_plain(k), **_attrs(attrs), **_mark(u, v, hi_edges))
    else:
        for u, v, attrs in G.edges(data=True):
            add(index[u], index[v], **_attrs(attrs), **_mark(u, v, hi_edges))
    data = nx.node_link_data(H, edges="edges")
    return json.dumps(data, indent=indent, ensure_ascii=False)
