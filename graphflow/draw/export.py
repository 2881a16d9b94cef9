"""``draw(G, path)``: write a diagram, format chosen by the file suffix."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .ascii import to_ascii
from .dot import to_dot
from .expand import expand_subgraphs
from .mermaid import to_mermaid
from .nodelink import to_json
from .png import to_png
from .style import as_graph
from .svg import to_svg

FORMATS: dict[str, Callable[..., str | bytes]] = {
    ".svg": to_svg,
    ".png": to_png,
    ".mmd": to_mermaid,
    ".dot": to_dot,
    ".json": to_json,
    ".txt": to_ascii,
}


def draw(G: Any, path: str | os.PathLike[str], *, expand: bool | int = False, **kw: Any) -> Path:
    """Write a diagram of ``G`` to ``path``; the suffix picks the format.

    ``.svg`` :func:`to_svg`, ``.png`` :func:`to_png`, ``.mmd`` :func:`to_mermaid`,
    ``.dot`` :func:`to_dot`, ``.json`` :func:`to_json`, ``.txt`` :func:`to_ascii`. Other
    keyword arguments (``highlight=``, ``highlight_edges=``, ``scale=``...) go to that
    renderer. ``expand`` inlines subgraphs first (see :func:`expand_subgraphs`). Returns the
    path; an unknown suffix raises ``ValueError`` naming the allowed ones.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    render = FORMATS.get(suffix)
    if render is None:
        allowed = ", ".join(FORMATS)
        raise ValueError(
            f"cannot tell the diagram format from {str(target)!r}: "
            f"the suffix must be one of {allowed}"
        )
    graph = as_graph(G)
    if expand:
        graph = expand_subgraphs(graph, depth=expand)
    result = render(graph, **kw)
    if isinstance(result, bytes):
        target.write_bytes(result)
    else:
        target.write_text(result, encoding="utf-8")
    return target
