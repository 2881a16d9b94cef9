"""The compiled topology of a graph: everything routing needs, looked up in O(1) per node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..constants import END, START
from ..graph.nodes import Branch, NodeSpec
from .ids import escape_name

if TYPE_CHECKING:
    from ..graph.state_graph import StateGraph

__all__ = ["Program"]


class Program:
    """Per node: static targets, joins it feeds and routers on it."""

    __slots__ = ("branches_of", "joins", "joins_of", "name_ids", "specs", "static_out")

    def __init__(self, g: StateGraph) -> None:
        self.specs: dict[str, NodeSpec] = dict(g.nodes)
        # node names as they appear inside task ids (escaped: see ids.py)
        self.name_ids = {n: escape_name(n) for n in (START, END, *self.specs)}
        names = [START, *g.nodes]
        out: dict[str, list[str]] = {n: [] for n in names}
        for src, dst in g.edges:
            if dst != END and dst not in out[src]:
                out[src].append(dst)
        self.static_out = {n: tuple(v) for n, v in out.items()}
        self.joins: list[tuple[frozenset[str], str]] = [(frozenset(s), d) for s, d in g.joins]
        self.joins_of = {
            n: tuple(i for i, (srcs, dst) in enumerate(self.joins) if n in srcs and dst != END)
            for n in names
        }
        self.branches_of: dict[str, tuple[Branch, ...]] = {
            n: tuple(b for b in g.branches if b.source == n) for n in names
        }
