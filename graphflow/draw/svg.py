"""Self-contained SVG output drawn from the shared layout (no browser, service or binary)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .scene import Group, Item, Path, Polygon, Rect, Text, build_scene
from .style import FONT_FAMILY, Highlight, HighlightEdges, clean_text


def _n(value: float) -> str:
    """Compact number formatting (no exponent, at most 2 decimals)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _attr(text: str) -> str:
    return quoteattr(clean_text(text))


def _item(item: Item) -> str:
    if isinstance(item, Rect):
        parts = [f'<rect x="{_n(item.x)}" y="{_n(item.y)}" width="{_n(item.width)}" '
                 f'height="{_n(item.height)}" rx="{_n(item.radius)}"']
        parts.append(f' fill="{item.fill}"' if item.fill else ' fill="none"')
        if item.stroke:
            parts.append(f' stroke="{item.stroke}" stroke-width="{_n(item.stroke_width)}"')
        if item.opacity != 1.0:
            parts.append(f' opacity="{_n(item.opacity)}"')
        return "".join(parts) + "/>"
    if isinstance(item, Text):
        anchor = "middle" if item.anchor == "middle" else "start"
        weight = ' font-weight="bold"' if item.bold else ""
        baseline = item.y + item.size * 0.35
        return (f'<text x="{_n(item.x)}" y="{_n(baseline)}" font-size="{_n(item.size)}" '
                f'text-anchor="{anchor}" fill="{item.color}"{weight}>'
                f"{escape(clean_text(item.text))}</text>")
    if isinstance(item, Path):
        d = [f"M{_n(item.start[0])},{_n(item.start[1])}"]
        for (ax, ay), (bx, by), (cx, cy) in item.curves:
            d.append(f"C{_n(ax)},{_n(ay)} {_n(bx)},{_n(by)} {_n(cx)},{_n(cy)}")
        if item.closed:
            d.append("Z")
        extra = ""
        if item.dash:
            extra += f' stroke-dasharray="{_n(item.dash[0])} {_n(item.dash[1])}"'
        if item.opacity != 1.0:
            extra += f' opacity="{_n(item.opacity)}"'
        join = ' stroke-linejoin="round"' if item.closed else ""
        return (f'<path d="{" ".join(d)}" fill="{item.fill or "none"}" stroke="{item.color}" '
                f'stroke-width="{_n(item.width)}" stroke-linecap="round"{join}{extra}/>')
    if isinstance(item, Polygon):
        pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in item.points)
        return f'<polygon points="{pts}" fill="{item.fill}"/>'
    raise TypeError(f"unknown scene item {item!r}")


def _group(group: Group) -> list[str]:
    name = f" data-name={_attr(group.name)}" if group.name is not None else ""
    lines = [f'<g class="{group.cls}"{name}>', f"<title>{escape(clean_text(group.title))}</title>"]
    lines.extend(_item(item) for item in group.items)
    lines.append("</g>")
    return lines


def to_svg(
    G: Any,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    title: bool = True,
    legend: bool = True,
    direction: str = "TB",
    compact: bool = False,
    wrap: int | None = 24,
) -> str:
    """Render ``G`` as a standalone SVG document (a string).

    Each node kind has its colour and its shape (START/END circles, agent a stadium, tool a
    parallelogram, router a hexagon, memory a cylinder, subgraph a box with double sides,
    function a rounded box); Bezier edges with arrowheads (conditional dashed and labelled
    with the router's answer, join thick, command dotted, ``Send`` fan-out with a crow's
    foot), cluster rectangles for expanded subgraphs, a legend of the kinds present.
    ``highlight`` (node names) and ``highlight_edges`` (``(u, v)`` pairs, or ``{(u, v): n}``
    to show how often each was taken) are drawn emphasized in orange. ``direction`` (``"TB"``
    or ``"LR"``), ``compact`` and ``wrap`` are :func:`layout` options.
    """
    scene = build_scene(G, highlight=highlight, highlight_edges=highlight_edges, title=title,
                        legend=legend, direction=direction, compact=compact, wrap=wrap)
    w, h = _n(scene.width), _n(scene.height)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family={quoteattr(FONT_FAMILY)}>',
    ]
    if scene.title:
        lines.append(f"<title>{escape(scene.title)}</title>")
    lines.append(f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>')
    for group in scene.groups:
        lines.extend(_group(group))
    lines.append("</svg>")
    return "\n".join(lines) + "\n"
