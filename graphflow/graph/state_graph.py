"""The graph builder: :class:`StateGraph`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..constants import END, RESERVED, START
from ..errors import GraphValidationError
from ..types import CachePolicy, RetryPolicy
from .nodes import Branch, NodeSpec, input_hint
from .schema import StateSchema, is_schema_class

if TYPE_CHECKING:
    from ..checkpoint.base import Checkpointer
    from ..engine.compiled import CompiledGraph

__all__ = ["StateGraph"]


class StateGraph:
    """Build a graph of nodes over a typed state, then :meth:`compile` it to run it.

    Example::

        class State(TypedDict):
            count: int
            log: Annotated[list[str], operator.add]

        g = StateGraph(State)
        g.add_node("inc", lambda s: {"count": s["count"] + 1, "log": ["inc"]})
        g.add_edge(START, "inc")
        g.add_edge("inc", END)
        app = g.compile()
        app.invoke({"count": 1})  # {"count": 2, "log": ["inc"]}

    Args:
        schema: a ``TypedDict``, a pydantic model or a dataclass. ``Annotated[T, reducer]`` gives a
            key a reducer (``operator.add`` appends lists); other keys take one write per step.
        context_schema: the type of ``invoke(..., context=...)``: a dict given as context is
            turned into it (a dataclass, a pydantic model, a TypedDict).
        input_schema: the keys a run's input may give (by default the state's).
        output_schema: the keys a run returns (by default the state's).

    The state holds the keys of all of these, and of the input schemas of nodes (the type of
    a node's first parameter, or ``add_node(..., input_schema=...)``): a node reads the keys
    of its input schema, so nodes can pass each other keys the state schema does not have
    (private state). Nodes without an input schema read the state schema's keys.
    """

    def __init__(self, schema: type, context_schema: type | None = None, *,
                 input_schema: type | None = None, output_schema: type | None = None) -> None:
        self.schema = StateSchema(schema)
        self.context_schema = context_schema
        self.input_schema = self._part(input_schema)
        self.output_schema = self._part(output_schema)
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: list[tuple[str, str]] = []
        self.joins: list[tuple[tuple[str, ...], str]] = []
        self.branches: list[Branch] = []

    def _part(self, cls: Any) -> StateSchema | None:
        """The parsed schema of a part of the state (input, output, a node's input), its keys
        added to the state's; None for no schema or the state schema itself."""
        if cls is None or cls is self.schema.cls:
            return None
        part = StateSchema(cls)
        self.schema.extend(part)
        return part

    # -- nodes ---------------------------------------------------------------------------------

    def add_node(
        self,
        name: str | Callable[..., Any] | Any,
        fn: Callable[..., Any] | Any = None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        defer: bool = False,
        cache_policy: CachePolicy | None = None,
        input_schema: type | None = None,
        retry_policy: RetryPolicy | None = None,
        destinations: Sequence[str] | None = None,
    ) -> StateGraph:
        """Add a node: ``add_node("name", fn)`` or ``add_node(fn)`` (named after ``fn``).

        ``fn`` is sync or async, takes ``(state)`` or ``(state, ctx)`` (parameters after the
        state are filled by name or annotation: ``ctx``/``RunContext``, ``store``/``BaseStore``;
        see ``graphflow/graph/inject.py``) and returns a dict of the
        keys it updates, ``None``, a :class:`Command`, or :class:`Send` s. A compiled graph is a
        node too (a subgraph). ``retry`` (LangGraph's ``retry_policy``) retries failures with
        backoff; ``timeout`` bounds each attempt in seconds; ``metadata`` is free-form
        (``{"kind": "agent"}`` sets the diagram kind). ``defer=True`` runs the node only once no
        other task is due (after every branch that leads to it has finished). ``cache_policy``
        reuses its result for an input seen before (with ``compile(cache=...)``).
        ``input_schema`` is what the node reads (by default its first parameter's type, if a
        TypedDict, pydantic model or dataclass; else the state).
        ``destinations`` names the nodes a ``Command`` from it (or, for a subgraph, a
        ``Command(graph=Command.PARENT)`` from inside it) may go to, like a
        ``Command[Literal[...]]`` return hint: checked at compile and at run time, and drawn.
        """
        from ..engine.compiled import CompiledGraph

        if fn is None:
            fn = name
            if isinstance(fn, CompiledGraph):
                name = fn.name
            else:
                name = getattr(fn, "__name__", None)
                if not isinstance(name, str) or name == "<lambda>":
                    raise GraphValidationError(
                        f"cannot name node {fn!r}: pass a name, add_node('name', fn)"
                    )
        if not isinstance(name, str) or not name:
            raise GraphValidationError(f"node name must be a non-empty string, got {name!r}")
        if "\x00" in name:
            raise GraphValidationError(
                f"node name {name!r} holds a NUL character: node names are stored in task ids, "
                f"and PostgreSQL cannot store NUL, so no checkpointer accepts it")
        if name in RESERVED:
            raise GraphValidationError(f"node name {name!r} is reserved (START/END)")
        if name in self.nodes:
            raise GraphValidationError(f"duplicate node name {name!r}: each node needs its own")
        if timeout is not None and timeout <= 0:
            raise GraphValidationError(f"node {name!r}: timeout must be > 0, got {timeout!r}")
        if retry_policy is not None:
            if retry is not None and retry != retry_policy:
                raise GraphValidationError(f"node {name!r}: retry= and retry_policy= disagree; "
                                           f"give one")
            retry = retry_policy
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise GraphValidationError(f"node {name!r}: retry must be a RetryPolicy (one: "
                                       f"graphflow takes no list of policies)")
        if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
            raise GraphValidationError(f"node {name!r}: cache_policy must be a CachePolicy")
        sub = fn if isinstance(fn, CompiledGraph) else None
        if sub is None and not callable(fn):
            raise GraphValidationError(f"node {name!r}: {fn!r} is not callable")
        if input_schema is None and sub is None:
            hint = input_hint(fn)
            input_schema = hint if is_schema_class(hint) else None
        if isinstance(destinations, str):
            destinations = [destinations]
        self.nodes[name] = NodeSpec(name, fn, retry=retry, timeout=timeout, metadata=metadata,
                                    subgraph=sub, destinations=destinations, defer=defer,
                                    cache_policy=cache_policy,
                                    input_schema=self._part(input_schema))
        return self

    def add_sequence(self, nodes: Sequence[Callable[..., Any] | tuple[str, Any]]) -> StateGraph:
        """Add nodes (functions, or ``(name, fn)`` pairs) and chain them with edges."""
        if not nodes:
            raise GraphValidationError("add_sequence needs at least one node")
        names = []
        for item in nodes:
            if isinstance(item, tuple):
                self.add_node(item[0], item[1])
                names.append(item[0])
            else:
                before = set(self.nodes)
                self.add_node(item)
                names.append(next(n for n in self.nodes if n not in before))
        for a, b in itertools.pairwise(names):
            self.add_edge(a, b)
        return self

    # -- edges ---------------------------------------------------------------------------------

    def add_edge(self, src: str | Sequence[str], dst: str) -> StateGraph:
        """Add an edge. With a list of sources, ``dst`` runs once after all of them ran (a join)."""
        if isinstance(src, str):
            if src == END:
                raise GraphValidationError("END has no outgoing edges")
            if dst == START:
                raise GraphValidationError("START has no incoming edges")
            self.edges.append((src, dst))
        else:
            sources = tuple(src)
            if not sources:
                raise GraphValidationError(f"join into {dst!r} has no sources")
            if END in sources or dst == START:
                raise GraphValidationError(f"invalid join {list(sources)} -> {dst!r}")
            if len(sources) == 1:
                return self.add_edge(sources[0], dst)
            self.joins.append((sources, dst))
        return self

    def add_conditional_edges(
        self,
        src: str,
        router: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """Route from ``src`` by calling ``router(state)`` (or ``router(state, ctx)``) after it.

        The router returns a node name, ``END``, a list of names, a :class:`Send` or a list of
        them. Declare where it may go with ``path_map`` (a dict from its return values to node
        names, or a list of names) or a ``Literal[...]`` return hint: the graph is then checked
        against it at compile and at run time, and diagrams show the real edges.
        """
        if src == END:
            raise GraphValidationError("END has no outgoing edges")
        if not callable(router):
            raise GraphValidationError(f"router on {src!r} is not callable: {router!r}")
        self.branches.append(Branch(src, router, path_map))
        return self

    def set_entry_point(self, node: str) -> StateGraph:
        """``add_edge(START, node)`` (LangGraph's spelling)."""
        return self.add_edge(START, node)

    def set_finish_point(self, node: str) -> StateGraph:
        """``add_edge(node, END)`` (LangGraph's spelling)."""
        return self.add_edge(node, END)

    def set_conditional_entry_point(
        self, router: Callable[..., Any],
        path_map: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """``add_conditional_edges(START, router, path_map)`` (LangGraph's spelling)."""
        return self.add_conditional_edges(START, router, path_map)

    # -- compile -------------------------------------------------------------------------------

    def compile(self, checkpointer: Checkpointer | bool | None = None, *,
                name: str | None = None, interrupt_before: str | Sequence[str] = (),
                interrupt_after: str | Sequence[str] = (), store: Any = None, cache: Any = None,
                debug: bool = False) -> CompiledGraph:
        """Check the graph and return a runnable :class:`CompiledGraph`.

        Raises :class:`GraphValidationError` for edges naming unknown nodes, no entry point,
        nodes unreachable from START, nodes with no path to END, and routers declaring targets
        that do not exist; warns (:class:`GraphValidationWarning`) about routers that declare
        nothing and nodes with both static edges and a ``Command`` return hint.

        ``interrupt_before`` / ``interrupt_after`` name nodes to pause the run before / after
        (static breakpoints; ``"*"`` is every node); continue with ``invoke(None, thread=...)``.

        ``store`` (a :class:`graphflow.memory.BaseStore`, or any object) is what nodes, routers
        and tools that declare a ``store`` parameter receive (also ``ctx.store``); a run can
        use another one with ``invoke(..., store=...)``.

        ``checkpointer``: a :class:`Checkpointer`; or, for a graph used as a subgraph, True or
        None (it checkpoints with its parent's checkpointer, in its own namespace) or False (it
        never checkpoints: no ``interrupt()`` inside). ``cache``: where nodes added with a
        ``cache_policy`` keep their results (``graphflow.cache.InMemoryCache``,
        ``SqliteCache``).
        """
        from ..checkpoint.base import Checkpointer
        from ..engine.compiled import CompiledGraph
        from .validate import validate

        if debug:
            raise GraphValidationError("compile(debug=True) is not supported; watch a run with "
                                       "stream(..., mode='debug')")
        own = checkpointer
        if isinstance(checkpointer, bool):
            own = None
        elif checkpointer is not None and not isinstance(checkpointer, Checkpointer):
            raise GraphValidationError(
                f"compile(checkpointer=...) takes a Checkpointer (MemoryCheckpointer, "
                f"SqliteCheckpointer, PostgresCheckpointer), True/None for a subgraph that "
                f"checkpoints with its parent, or False; got {checkpointer!r:.60}")
        if cache is not None and not (hasattr(cache, "get") and hasattr(cache, "set")):
            raise GraphValidationError(
                f"compile(cache=...) takes a graphflow.cache cache (InMemoryCache, SqliteCache), "
                f"got {cache!r:.60}")

        nxgraph = validate(self)
        app = CompiledGraph(self, nxgraph, checkpointer=own, name=name or "graph",
                            interrupt_before=interrupt_before, interrupt_after=interrupt_after,
                            store=store, cache=cache)
        app.checkpoints = checkpointer is not False  # False: never, even as a subgraph
        app.inherits_checkpointer = checkpointer is True
        return app
