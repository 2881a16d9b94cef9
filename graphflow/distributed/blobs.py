"""Large values kept out of the state, and so out of every checkpoint and every trip between
the driver and the Ray workers.

A node puts a large value (a parsed document, an embedding matrix, a file's bytes) in a
:class:`BlobStore` and writes the small :class:`BlobRef` it gets into the state instead; a node
that needs the value reads it back with ``store.get(ref)``::

    blobs = FileBlobStore("/shared/graphflow-blobs")   # a directory every worker can reach

    def parse(doc: str) -> dict:
        return {"parsed": [blobs.put(heavy_parse(doc))]}      # the state holds BlobRefs

    def summarize(state: State) -> dict:
        return {"summary": summarize_all(blobs.get(r) for r in state["parsed"])}

Blobs are content-addressed (the key is the SHA-256 of the stored JSON), so putting the same
value twice — a task retried after its worker died, a resumed run — stores it once and returns
the same reference. Values are stored as graphflow JSON (the same types as the state; never
pickle). Nothing deletes blobs: a thread's checkpoints may refer to them for as long as the
thread is kept; remove old ones by age if you need to.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..checkpoint.serde import dumps_bytes, loads_bytes, register_type
from ..errors import GraphflowError

__all__ = ["BlobRef", "BlobStore", "FileBlobStore"]


@dataclass(frozen=True, slots=True)
class BlobRef:
    """A reference to a value in a :class:`BlobStore`: what the state holds instead of it.

    Attributes:
        key: the SHA-256 (hex) of the stored bytes.
        size: their length in bytes.
    """

    key: str
    size: int


register_type(BlobRef, "graphflow.BlobRef")


@runtime_checkable
class BlobStore(Protocol):
    """Where large values live: ``put(value) -> BlobRef`` and ``get(ref) -> value``."""

    def put(self, value: Any) -> BlobRef: ...

    def get(self, ref: BlobRef) -> Any: ...


class FileBlobStore:
    """Blobs as files under ``root`` (one per key), written atomically.

    For a cluster of several machines, ``root`` must be a directory they all mount (NFS and
    the like); on one machine any directory will do. Other stores (S3, a database) only need
    ``put`` and ``get``.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"FileBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise GraphflowError(f"{key!r} is not a blob key (64 hex digits)")
        return self.root / key[:2] / key

    def put(self, value: Any) -> BlobRef:
        """Store ``value`` (as graphflow JSON) unless it is there already; its reference."""
        data = dumps_bytes(value)
        key = hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)  # atomic: a reader never sees half a blob
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return BlobRef(key, len(data))

    def get(self, ref: BlobRef) -> Any:
        """The value ``ref`` names (checked against its hash)."""
        if not isinstance(ref, BlobRef):
            raise TypeError(f"expected a BlobRef, got {type(ref).__name__}")
        path = self._path(ref.key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise GraphflowError(f"blob {ref.key[:12]}... is not in {self!r}") from None
        if hashlib.sha256(data).hexdigest() != ref.key:
            raise GraphflowError(f"blob {ref.key[:12]}... in {self!r} is corrupt (its content "
                                 f"does not match its key)")
        return loads_bytes(data)
