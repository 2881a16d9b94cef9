"""The compiled topology of a graph: everything routing needs, looked up in O(1) per node."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..constants import END, START
from ..graph.nodes import Branch, NodeSpec
from ..graph.schema import StateSchema
from .ids import escape_name

if TYPE_CHECKING:
    from ..graph.state_graph import StateGraph

__all__ = ["Program"]


class Program:
    """Per node: static targets, joins it feeds and routers on it."""

    __slots__ = ("branches_of", "deferred", "input_keys", "inputs", "joins", "joins_of",
                 "name_ids", "out_keys", "shaped", "specs", "state_keys", "static_edges",
                 "static_out")

    def __init__(self, g: StateGraph) -> None:
        self.specs: dict[str, NodeSpec] = dict(g.nodes)
        # node names as they appear inside task ids (escaped: see ids.py)
        self.name_ids = {n: escape_name(n) for n in (START, END, *self.specs)}
        names = [START, *g.nodes]
        out: dict[str, dict[str, None]] = {n: {} for n in names}
        for src, dst in g.edges:
            out[src][dst] = None
        self.static_out = {n: tuple(d for d in v if d != END) for n, v in out.items()}
        # the (source, target) pairs a node's static edges fire, END included: what a
        # checkpoint's metadata["edges"] records
        self.static_edges = {n: tuple((n, d) for d in v) for n, v in out.items()}
        self.joins: list[tuple[frozenset[str], str]] = [(frozenset(s), d) for s, d in g.joins]
        self.joins_of = {
            n: tuple(i for i, (srcs, dst) in enumerate(self.joins) if n in srcs and dst != END)
            for n in names
        }
        self.branches_of: dict[str, tuple[Branch, ...]] = {
            n: tuple(b for b in g.branches if b.source == n) for n in names
        }
        schema = g.schema
        # the keys snapshots and "values" show (all), the keys a run returns (the output
        # schema's, or the state schema's own), and the keys an input may give
        self.state_keys = tuple(schema.channels)
        self.out_keys = (g.output_schema or schema).own_keys

        # what each node (and, under None, each router) reads: (keys, schema to view them
        # with); keys None is the whole state. "shaped": some read differs from a copy of
        # the state (private keys, input schemas, managed values)
        private = len(schema.channels) > len(schema.own_keys)
        # what an input may give: the input schema's keys (the state schema's own ones when
        # the graph has private keys); None: any key of the state
        given = g.input_schema or (schema if private else None)
        self.input_keys = None if given is None else frozenset(given.own_keys)
        self.inputs: dict[str | None, tuple[tuple[str, ...] | None, StateSchema]] = {
            None: (schema.own_keys if private else None, schema)}
        for name, spec in self.specs.items():
            own = spec.input_schema
            self.inputs[name] = (tuple(own.channels), own) if own is not None else \
                self.inputs[None]
        self.shaped = private or bool(schema.managed) or any(
            spec.input_schema is not None for spec in self.specs.values())
        self.deferred = any(spec.defer for spec in self.specs.values())
