"""The agent interfaces of pipelines (LangStream's shapes). Subclassing them is optional: the
runtime calls methods by name, so a class with just ``read`` is a source, one with ``process``
(or ``process_record``) a processor, one with ``write`` a sink. Every method may be
``async def``; ``init(config)``, ``start()`` and ``close()`` are called when present."""

from __future__ import annotations

from typing import Any

from .record import Record

__all__ = ["CommitCallback", "Processor", "SingleRecordProcessor", "Sink", "Source"]


class Source:
    """Reads records. ``read()`` returns a list (empty: nothing now, asked again shortly) or
    None (the source is exhausted: the pipeline drains and ends)."""

    def init(self, config: dict[str, Any]) -> None:
        """Called once with the step's configuration."""

    def read(self) -> list[Any] | None:
        raise NotImplementedError

    def commit(self, records: list[Record]) -> None:
        """Called, in read order, with records whose every derived record was written and
        committed by the sink (or skipped / dead-lettered): safe to forget."""

    def close(self) -> None:
        """Called once when the pipeline stops."""


class Processor:
    """Transforms records: ``process(records)`` returns, for each input record, the list of
    records it became or the exception it raised."""

    def init(self, config: dict[str, Any]) -> None:
        pass

    def process(self, records: list[Record]) -> list[tuple[Record, list[Any] | Exception]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SingleRecordProcessor(Processor):
    """A processor written one record at a time: ``process_record(record) -> list``."""

    def process_record(self, record: Record) -> list[Any]:
        raise NotImplementedError

    def process(self, records: list[Record]) -> list[tuple[Record, list[Any] | Exception]]:
        out: list[tuple[Record, list[Any] | Exception]] = []
        for record in records:
            try:
                out.append((record, self.process_record(record)))
            except Exception as exc:
                out.append((record, exc))
        return out


class CommitCallback:
    """Handed to a sink by ``set_commit_callback``: the sink calls ``commit(records)`` once
    records are durably written (possibly later, from any thread)."""

    def commit(self, records: list[Record]) -> None:
        raise NotImplementedError


class Sink:
    """Writes records; reports them written through the commit callback. A sink without
    ``set_commit_callback`` has its records committed when ``write`` returns."""

    def init(self, config: dict[str, Any]) -> None:
        pass

    def set_commit_callback(self, callback: CommitCallback) -> None:
        self.commit_callback = callback

    def write(self, records: list[Record]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass
