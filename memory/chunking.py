"""Splitting documents into chunks for ingestion."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["Chunker", "as_chunker", "split_text"]

Chunker = Callable[[str], list[str]]
_BREAKS = (re.compile(r"\n\s*\n"), re.compile(r"(?<=[.!?])\s+"), re.compile(r"\s+"))


def split_text(text: str, size: int = 1000, overlap: int = 100) -> list[str]:
    """Chunks of at most ``size`` characters, cut at a paragraph, else a sentence, else a word
    boundary; consecutive chunks share up to ``overlap`` characters (whole words)."""
    if size <= 0:
        raise ValueError(f"chunk size must be > 0, got {size}")
    if not 0 <= overlap < size:
        raise ValueError(f"chunk overlap must be in [0, size), got {overlap}")
    text = text.strip()
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            window = text[start:end]
            for pattern in _BREAKS:
                cuts = [m.start() for m in pattern.finditer(window) if m.start() > size // 3]
                if cuts:
                    end = start + cuts[-1]
                    break
        chunk = text[start:end].strip()
        if chunk:
            chunks.append(chunk)
        if end >= len(text):
            break
        nxt = max(end - overlap, start + 1)
        while overlap and nxt < end and not text[nxt - 1].isspace():
            nxt += 1  # start the overlap on a word boundary
        start = nxt
    return chunks


def as_chunker(chunking: Any) -> Chunker | None:
    """``None``/``False`` (whole documents), a chunk size in characters, a ``(size, overlap)``
    pair, or a function ``text -> chunks``."""
    if chunking is None or chunking is False:
        return None
    if callable(chunking):
        return chunking  # type: ignore[no-any-return]
    if isinstance(chunking, int) and not isinstance(chunking, bool):
        return lambda text: split_text(text, chunking, min(chunking // 10, 200))
    if isinstance(chunking, tuple) and len(chunking) == 2:
        size, overlap = chunking
        return lambda text: split_text(text, size, overlap)
    raise TypeError(f"chunking= takes None, a size, (size, overlap) or a function text -> "
                    f"chunks; got {chunking!r}")
