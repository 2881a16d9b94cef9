"""A compiled graph as a pipeline processor: record -> graph input -> graph output -> records."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import GraphflowError
from .record import Record, to_record

if TYPE_CHECKING:
    from ..engine.compiled import CompiledGraph

__all__ = ["GraphProcessor", "graph_processor"]


class GraphProcessor:
    """Runs a compiled graph (sync or async nodes alike) once per record, concurrently.

    Made by :func:`graph_processor`; see there for the arguments.
    """

    def __init__(self, graph: CompiledGraph, *, input: str | Callable[[Record], Any] | None,
                 output: str | Callable[[Any, Record], list[Any]] | None,
                 thread: Callable[[Record], str] | None, concurrency: int) -> None:
        self.graph = graph
        self.input = input
        self.output = output
        self.thread = thread
        self.concurrency = concurrency

    def __repr__(self) -> str:
        return f"GraphProcessor({self.graph.name!r})"

    def _input(self, record: Record) -> Any:
        if callable(self.input):
            return self.input(record)
        if isinstance(self.input, str):
            return {self.input: record.value()}
        return record.value()

    def _records(self, out: Any, record: Record) -> list[Record]:
        if callable(self.output):
            return [to_record(x) for x in self.output(out, record)]
        value = out[self.output] if isinstance(self.output, str) else out
        return [Record(value, record.key(), record.origin(), record.timestamp(),
                       record.headers())]

    async def _one(self, record: Record) -> Any:
        graph = self.graph
        inp = self._input(record)
        thread = self.thread(record) if self.thread is not None else None
        if thread is None:
            out = await graph.ainvoke(inp)
        else:  # a record delivered again continues (or reuses) the run of its first delivery
            snap = await asyncio.to_thread(graph.get_state, thread)
            if snap is None:
                out = await graph.ainvoke(inp, thread=thread)
            elif snap.next:
                out = await graph.ainvoke(None, thread=thread)
            else:
                out = snap.values
        if isinstance(out, dict) and "__interrupt__" in out:
            raise GraphflowError(f"graph {graph.name!r} paused on an interrupt for record key "
                                 f"{record.key()!r}; a pipeline cannot answer it")
        return self._records(out, record)

    async def process(self, records: list[Record]) -> list[tuple[Record, Any]]:
        """One ``(record, [records] | exception)`` per record, the graph run concurrently."""
        limit = asyncio.Semaphore(self.concurrency)

        async def guarded(r: Record) -> Any:
            async with limit:
                try:
                    return await self._one(r)
                except Exception as exc:
                    return exc

        results = await asyncio.gather(*(guarded(r) for r in records))
        return list(zip(records, results, strict=True))


def graph_processor(graph: CompiledGraph, *, input: str | Callable[[Record], Any] | None = None,
                    output: str | Callable[[Any, Record], list[Any]] | None = None,
                    thread: Callable[[Record], str] | None = None,
                    concurrency: int = 16) -> GraphProcessor:
    """``graph`` as a pipeline processor.

    Args:
        input: how a record becomes the graph's input: a state key (``{key: value}``), a
            function of the record, or None (the record's value, a dict, is the input).
        output: how the final state becomes records: a state key (one record with that value),
            a function ``(state, record) -> list``, or None (one record holding the state).
            Output records keep the input's key and headers.
        thread: a function of the record naming the thread to run on (the graph needs a
            checkpointer): a record delivered again (after a crash) continues its run, or
            reuses its result, instead of starting over.
        concurrency: graph runs at once within a batch.
    """
    return GraphProcessor(graph, input=input, output=output, thread=thread,
                          concurrency=concurrency)
