"""Mermaid ``flowchart TD`` text (renders on GitHub, GitLab, in Markdown previews)."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable
from typing import Any

from .style import (
    EDGE_COLORS,
    HIGHLIGHT_COLOR,
    NODE_KINDS,
    as_graph,
    clean_text,
    cluster_chain,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    node_style,
    normalize_highlight,
)

# words Mermaid's flowchart grammar treats as keywords (an id equal to one breaks the chart)
_RESERVED = {
    "end", "graph", "subgraph", "flowchart", "style", "class", "classdef", "click", "call",
    "linkstyle", "direction", "default", "href", "interpolate", "accdescr", "acctitle",
    "td", "tb", "bt", "lr", "rl",
}

# node shape per kind: (opening, closing) around the quoted label
_SHAPES: dict[str, tuple[str, str]] = {
    "start": ("((", "))"),
    "end": ("((", "))"),
    "function": ("[", "]"),
    "subgraph": ("[[", "]]"),
    "agent": ("([", "])"),
    "tool": ("[/", "/]"),
    "router": ("{{", "}}"),
    "memory": ("[(", ")]"),
}

# link syntax per edge kind
_LINKS = {"static": "-->", "conditional": "-.->", "join": "==>", "command": "-.->"}


def escape_label(text: str) -> str:
    """Escape text for a double-quoted Mermaid label (entity codes, one line)."""
    text = clean_text(text)
    for ch, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"),
                     ("`", "#96;"), ("&", "#amp;")):
        text = text.replace(ch, code)
    return text


class _Ids:
    """Stable, unique, keyword-safe Mermaid identifiers."""

    def __init__(self) -> None:
        self._by_key: dict[Hashable, str] = {}
        self._used: set[str] = set()

    def get(self, key: Hashable, text: str) -> str:
        found = self._by_key.get(key)
        if found is not None:
            return found
        base = re.sub(r"[^0-9A-Za-z_]", "_", text) or "n"
        if base.lower() in _RESERVED or base[0].isdigit():
            base = f"n_{base}"
        ident, i = base, 2
        while ident.lower() in self._used:
            ident, i = f"{base}_{i}", i + 1
        self._used.add(ident.lower())
        self._by_key[key] = ident
        return ident


def to_mermaid(
    G: Any,
    *,
    highlight: Iterable[Hashable] | None = None,
    highlight_edges: Iterable[tuple[Hashable, Hashable]] | None = None,
    title: bool = True,
) -> str:
    """Render ``G`` as Mermaid flowchart text.

    Static edges ``-->``, conditional edges dashed ``-.->`` with a ``|"label"|`` when they have
    one, join edges thick ``==>`` labelled ``join`` (plus a ``%%`` note naming the join's
    sources), command edges dashed and coloured. START/END are circles; each node kind has its
    own shape and ``classDef``; nodes of expanded subgraphs sit in ``subgraph`` blocks.
    """
    G = as_graph(G)
    hi_nodes, hi_edges = normalize_highlight(highlight, highlight_edges)
    ids = _Ids()
    lines: list[str] = []
    name = G.graph.get("name")
    if title and name:
        lines += ["---", f"title: {json.dumps(clean_text(str(name)), ensure_ascii=False)}", "---"]
    lines.append("flowchart TD")

    # nodes, nested into subgraph blocks by their cluster path
    tree: dict[str, list[Hashable]] = {"": []}
    children: dict[str, list[str]] = {"": []}
    for n in G.nodes:
        chain = cluster_chain(G.nodes[n].get("cluster"))
        parent = ""
        for c in chain:
            if c not in tree:
                tree[c] = []
                children[c] = []
                children[parent].append(c)
            parent = c
        tree[parent].append(n)

    def emit(cluster: str, indent: str) -> None:
        for n in tree[cluster]:
            kind = node_kind(G, n)
            opening, closing = _SHAPES[kind]
            label = escape_label(node_label(G, n))
            lines.append(f'{indent}{ids.get(n, str(n))}{opening}"{label}"{closing}:::gf_{kind}')
        for c in children[cluster]:
            cid = ids.get(("cluster", c), f"cluster_{c}")
            lines.append(f'{indent}subgraph {cid}["{escape_label(c.rsplit(":", 1)[-1])}"]')
            emit(c, indent + "    ")
            lines.append(f"{indent}end")

    emit("", "    ")

    link_styles: dict[int, str] = {}
    notes: list[str] = []
    items = G.edges(keys=True, data=True) if G.is_multigraph() else (
        (u, v, None, d) for u, v, d in G.edges(data=True))
    for count, (u, v, _, data) in enumerate(items):
        kind = edge_kind(data)
        text = edge_text(data)
        link = _LINKS[kind]
        label = f'|"{escape_label(text)}"|' if text else ""
        lines.append(f"    {ids.get(u, str(u))} {link}{label} {ids.get(v, str(v))}")
        if (u, v) in hi_edges:
            link_styles[count] = f"stroke:{HIGHLIGHT_COLOR},stroke-width:3px"
        elif kind == "command":
            link_styles[count] = f"stroke:{EDGE_COLORS['command']}"
        if kind == "join" and data.get("join"):
            sources = ", ".join(clean_text(str(s)) for s in data["join"])
            note = f"    %% join: {clean_text(str(v))} waits for all of: {sources}"
            if note not in notes:
                notes.append(note)
    lines.extend(notes)

    kinds = [k for k in NODE_KINDS if any(node_kind(G, n) == k for n in G.nodes)]
    for kind in kinds:
        st = node_style(kind)
        lines.append(f"    classDef gf_{kind} fill:{st.fill},stroke:{st.stroke},color:{st.text}")
    present = [n for n in G.nodes if n in hi_nodes]
    if present:
        lines.append(f"    classDef gf_highlight stroke:{HIGHLIGHT_COLOR},stroke-width:3px")
        lines.append(f"    class {','.join(ids.get(n, str(n)) for n in present)} gf_highlight")
    for i, style in link_styles.items():
        lines.append(f"    linkStyle {i} {style}")
    return "\n".join(lines) + "\n"
