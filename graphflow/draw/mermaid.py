"""Mermaid ``flowchart`` text (renders on GitHub, GitLab, in Markdown previews)."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any

from .style import (
    CLUSTER_FILL,
    CLUSTER_STROKE,
    EDGE_COLORS,
    HIGHLIGHT_COLOR,
    NODE_KINDS,
    ClusterPath,
    Highlight,
    HighlightEdges,
    check_direction,
    clean_text,
    cluster_tree,
    edge_kind,
    edge_text,
    node_kind,
    node_label,
    node_style,
    prepare,
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
_LINKS = {"static": "-->", "conditional": "-.->", "join": "==>", "command": "-.->", "send": "-->"}
_LINK_WIDTH = {"join": "2.5px", "send": "2px"}
# characters Mermaid mangles in a front-matter title (it escapes them twice)
_TITLE_UNSAFE = frozenset("&<>")


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

    def reserve(self, ident: str) -> None:
        """Keep ``ident`` from being given to a node."""
        self._used.add(ident.lower())


def to_mermaid(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    title: bool = True,
    direction: str = "TB",
) -> str:
    """Render ``G`` as Mermaid flowchart text.

    Static edges ``-->``, conditional edges dashed ``-.->`` labelled with the router's answer,
    join edges thick ``==>`` labelled ``join`` (plus a ``%%`` note naming the join's sources),
    command edges dashed, ``Send`` fan-out labelled ``Send``; each edge kind has its colour
    (``linkStyle``). START/END are circles; each node kind has its own shape and
    ``classDef``; nodes of expanded subgraphs sit in ``subgraph`` blocks, shaded like the other
    formats' clusters. The title goes in the front matter, or, when it holds characters Mermaid
    would mangle there (``& < >``), on an invisible block around the whole chart.
    ``direction``: ``"TB"`` or ``"LR"``. ``highlight_edges`` may map edges to how often a run
    took them (shown as ``\u00d7n``).
    """
    G, hi_nodes, hi_edges = prepare(G, highlight, highlight_edges)
    check_direction(direction)
    ids = _Ids()
    lines: list[str] = []
    name = clean_text(str(G.graph.get("name") or ""))
    boxed = bool(title and name and _TITLE_UNSAFE & set(name))
    if title and name and not boxed:
        lines += ["---", f"title: {json.dumps(name, ensure_ascii=False)}", "---"]
    lines.append(f"flowchart {'LR' if direction == 'LR' else 'TD'}")
    styles: list[str] = []
    indent = "    "
    if boxed:
        lines.append(f'    subgraph gf_title["{escape_label(name)}"]')
        lines.append(f"        direction {'LR' if direction == 'LR' else 'TB'}")
        styles.append("    style gf_title fill:none,stroke:none")
        ids.reserve("gf_title")
        indent = "        "

    # nodes, nested into subgraph blocks by their cluster path
    tree, children = cluster_tree(G)

    def emit(cluster: ClusterPath, indent: str) -> None:
        for n in tree[cluster]:
            kind = node_kind(G, n)
            opening, closing = _SHAPES[kind]
            label = escape_label(node_label(G, n))
            lines.append(f'{indent}{ids.get(n, str(n))}{opening}"{label}"{closing}:::gf_{kind}')
        for c in children[cluster]:
            cid = ids.get(("cluster", c), "cluster_" + "_".join(c))
            lines.append(f'{indent}subgraph {cid}["{escape_label(c[-1])}"]')
            emit(c, indent + "    ")
            lines.append(f"{indent}end")
            fill = CLUSTER_FILL[(len(c) - 1) % len(CLUSTER_FILL)]
            styles.append(f"    style {cid} fill:{fill},stroke:{CLUSTER_STROKE}")

    emit((), indent)
    if boxed:
        lines.append("    end")

    link_styles: dict[int, str] = {}
    notes: list[str] = []
    items = G.edges(keys=True, data=True) if G.is_multigraph() else (
        (u, v, None, d) for u, v, d in G.edges(data=True))
    for count, (u, v, _, data) in enumerate(items):
        kind = edge_kind(data)
        text = edge_text(data)
        if kind == "send":
            text = f"Send {text}" if text else "Send"
        link = _LINKS[kind]
        label = f'|"{escape_label(text)}"|' if text else ""
        lines.append(f"    {ids.get(u, str(u))} {link}{label} {ids.get(v, str(v))}")
        if (u, v) in hi_edges:
            link_styles[count] = f"stroke:{HIGHLIGHT_COLOR},stroke-width:3px"
        else:
            width = f",stroke-width:{_LINK_WIDTH[kind]}" if kind in _LINK_WIDTH else ""
            link_styles[count] = f"stroke:{EDGE_COLORS[kind]}{width}"
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
    lines.extend(styles)
    present = [n for n in G.nodes if n in hi_nodes]
    if present:
        lines.append(f"    classDef gf_highlight stroke:{HIGHLIGHT_COLOR},stroke-width:3px")
        lines.append(f"    class {','.join(ids.get(n, str(n)) for n in present)} gf_highlight")
    by_style: dict[str, list[str]] = {}
    for i, style in link_styles.items():
        by_style.setdefault(style, []).append(str(i))
    for style, numbers in by_style.items():
        lines.append(f"    linkStyle {','.join(numbers)} {style}")
    return "\n".join(lines) + "\n"
