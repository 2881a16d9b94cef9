"""Compile-time checks of a :class:`StateGraph`, done on a networkx graph of it.

The same ``MultiDiGraph`` is what ``CompiledGraph.get_graph()`` returns and what diagrams draw:
node attribute ``kind``; edge attributes ``kind`` (static, join, conditional, command, send: a
router hinted to return ``Send`` s), ``label`` (a router's answer), ``router`` and ``join``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ..constants import END, START
from ..errors import GraphValidationError, GraphValidationWarning

if TYPE_CHECKING:
    import networkx as nx

    from .state_graph import StateGraph

__all__ = ["validate"]


def _names(items: Any) -> str:
    return ", ".join(repr(x) for x in sorted(items))


def validate(g: StateGraph) -> nx.MultiDiGraph:
    """Check ``g`` and return its networkx picture; raise :class:`GraphValidationError`."""
    import networkx as nx

    nodes = g.nodes
    sources_ok = set(nodes) | {START}
    targets_ok = set(nodes) | {END}

    def check(src: str, dst: str, what: str) -> None:
        if src not in sources_ok:
            raise GraphValidationError(f"{what} starts at unknown node {src!r}; add_node it first")
        if dst not in targets_ok:
            raise GraphValidationError(f"{what} leads to unknown node {dst!r}; add_node it first")

    G = nx.MultiDiGraph()
    G.add_node(START, kind="start", metadata={})
    for name, spec in nodes.items():
        attrs: dict[str, Any] = {"kind": spec.kind, "metadata": spec.metadata}
        # a subgraph node, or a node that runs a graph inside and says so (graphflow_graph):
        # diagrams draw the graph as a cluster
        inner = spec.subgraph if spec.subgraph is not None else getattr(
            spec.fn, "graphflow_graph", None)
        if inner is not None:
            attrs["graph"] = inner
        G.add_node(name, **attrs)
    G.add_node(END, kind="end", metadata={})

    for src, dst in g.edges:
        check(src, dst, f"edge {src!r} -> {dst!r}")
        G.add_edge(src, dst, kind="static", label=None)
    for srcs, dst in g.joins:
        for src in srcs:
            check(src, dst, f"join {list(srcs)} -> {dst!r}")
            G.add_edge(src, dst, kind="join", label=None, join=srcs)
    for b in g.branches:
        if b.source not in sources_ok:
            raise GraphValidationError(
                f"router {b.name!r} is on unknown node {b.source!r}; add_node it first")
        for target, label in b.labels():
            if target not in targets_ok:
                raise GraphValidationError(
                    f"router {b.name!r} on node {b.source!r} declares target {target!r}, "
                    f"which is not a node of the graph")
            kind = "send" if b.sends else "conditional"
            G.add_edge(b.source, target, kind=kind, label=label, router=b.name)
    for name, spec in nodes.items():
        for target in spec.command_targets or ():
            if target not in targets_ok:
                raise GraphValidationError(
                    f"node {name!r} declares Command target {target!r}, which is not a node")
            G.add_edge(name, target, kind="command", label=None)

    if G.out_degree(START) == 0:
        raise GraphValidationError(
            "graph has no entry point: add_edge(START, 'first_node') or add a conditional edge "
            "from START")

    # Reachability, with undeclared routing counted as "may go anywhere".
    reach = nx.DiGraph(G)
    anywhere = [*nodes, END]
    for b in g.branches:
        if b.targets is None:
            warnings.warn(
                f"router {b.name!r} on node {b.source!r} declares no targets: give "
                f"add_conditional_edges a path_map or the router a Literal[...] return hint, so "
                f"the graph can be checked and drawn",
                GraphValidationWarning, stacklevel=3)
            reach.add_edges_from((b.source, t) for t in anywhere)
    for name, spec in nodes.items():
        if spec.dynamic:
            reach.add_edges_from((name, t) for t in anywhere)
        has_static = any(src == name for src, _ in g.edges) or any(
            name in srcs for srcs, _ in g.joins)
        if has_static and (spec.command_targets or spec.dynamic):
            warnings.warn(
                f"node {name!r} has static edges and returns Command: a Command's goto replaces "
                f"the static edges for that step", GraphValidationWarning, stacklevel=3)

    unreachable = set(nodes) - nx.descendants(reach, START)
    if unreachable:
        raise GraphValidationError(
            f"node(s) {_names(unreachable)} cannot be reached from START; add an edge into them, "
            f"declare them where a Command goes to them (a -> Command[Literal[...]] return hint, "
            f"or add_node(..., destinations=[...]) for a subgraph handing over with "
            f"Command.PARENT), or remove them")
    ends = sorted(n for n in nodes if reach.out_degree(n) == 0)
    if ends:  # a node with no way out ends its branch (as in LangGraph): said, not refused
        warnings.warn(
            f"node(s) {_names(ends)} have no outgoing edge, so a branch ends there; say so with "
            f"add_edge(node, END) to silence this warning", GraphValidationWarning, stacklevel=3)
        reach.add_edges_from((n, END) for n in ends)
    dead = set(nodes) - nx.ancestors(reach, END)
    if dead:
        raise GraphValidationError(
            f"node(s) {_names(dead)} have no path to END: they only lead to each other, so a "
            f"run that reaches them never finishes; add an edge (or a router target) to END")
    return G
