"""The error raised when a value cannot be written to, or read back from, checkpoint data."""

from __future__ import annotations

from ...errors import GraphflowError


class SerializationError(GraphflowError, TypeError):
    """A value cannot be written to, or read back from, checkpoint data.

    Attributes:
        path: where in the value the problem is, e.g. ``"messages[3].content"`` (dict keys and
            fields joined with ``.``, list and tuple indexes in brackets); ``""`` for the value
            itself, and for errors while decoding.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path
