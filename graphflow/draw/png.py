"""PNG output rendered offline with Pillow, from the same scene as the SVG output.

Pillow is the optional extra ``graphflow[draw]``; it is imported only when a PNG is requested.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .scene import Path, Polygon, Rect, Text, build_scene, sample_curve

_INSTALL_HINT = (
    'PNG output needs Pillow, an optional dependency: pip install "graphflow[draw]"'
)


def _import_pillow() -> Any:
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(_INSTALL_HINT) from exc
    return Image, ImageDraw, ImageFont


def _rgb(color: str) -> tuple[int, int, int]:
    color = color.lstrip("#")
    return int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16)


def _blend(color: str, opacity: float) -> tuple[int, int, int]:
    """``color`` at ``opacity`` over white (the canvas background)."""
    r, g, b = _rgb(color)
    return tuple(round(255 + (c - 255) * opacity) for c in (r, g, b))  # type: ignore[return-value]


def _dashes(points: list[tuple[float, float]], on: float, off: float) -> list[list[tuple]]:
    """Split a polyline into dash segments."""
    segments: list[list[tuple]] = []
    current: list[tuple] = [points[0]]
    drawing, left = True, on
    for (xa, ya), (xb, yb) in itertools.pairwise(points):
        length = math.hypot(xb - xa, yb - ya)
        pos = 0.0
        while length - pos > left:
            pos += left
            t = pos / length
            point = (xa + (xb - xa) * t, ya + (yb - ya) * t)
            if drawing:
                current.append(point)
                segments.append(current)
            else:
                current = [point]
            drawing = not drawing
            left = on if drawing else off
        left -= length - pos
        if drawing:
            current.append((xb, yb))
    if drawing and len(current) > 1:
        segments.append(current)
    return segments


# Pillow's built-in font covers ASCII only; other text is set in the first of these found
# (ImageFont.truetype also searches the system font folders by file name).
UNICODE_FONTS = (
    "DejaVuSans.ttf",
    "NotoSans-Regular.ttf",
    "LiberationSans-Regular.ttf",
    "Arial Unicode.ttf",
    "ArialUnicodeMS.ttf",
    "arial.ttf",
    "Arial.ttf",
)


class _Fonts:
    """Pillow fonts by pixel size; without FreeType, the bitmap default font (``scalable`` off).

    ASCII text uses ``ImageFont.load_default(size=...)`` unless ``path`` names a font file;
    other text uses ``path`` or a system Unicode font when one is found.
    """

    def __init__(self, ImageFont: Any, path: str | None = None) -> None:
        self._mod = ImageFont
        self._cache: dict[tuple[int, bool], Any] = {}
        self._path = path
        self._unicode: str | bool | None = path if path else False  # False: not searched yet
        self.scalable = True

    def _unicode_font(self, px: int) -> Any:
        if self._unicode is False:
            self._unicode = None
            for name in UNICODE_FONTS:
                try:
                    self._mod.truetype(name, px)
                except OSError:
                    continue
                self._unicode = name
                break
        return self._mod.truetype(self._unicode, px) if self._unicode else None

    def get(self, size: float, text: str = "") -> Any:
        px = max(6, round(size))
        wide = bool(self._path) or not text.isascii()
        font = self._cache.get((px, wide))
        if font is None:
            try:
                font = self._unicode_font(px) if wide else None
                if font is None:
                    font = self._mod.load_default(size=px)
            except (TypeError, OSError, ImportError, AttributeError):  # old Pillow, no FreeType
                font = self._mod.load_default()
            self._cache[(px, wide)] = font
        self.scalable = isinstance(font, self._mod.FreeTypeFont)
        return font


def to_png(
    G: Any,
    scale: float = 2.0,
    *,
    highlight: Iterable[Hashable] | None = None,
    highlight_edges: Iterable[tuple[Hashable, Hashable]] | None = None,
    title: bool = True,
    legend: bool = True,
    max_pixels: int = 40_000_000,
    font: str | os.PathLike[str] | None = None,
) -> bytes:
    """Render ``G`` to PNG bytes with Pillow; the picture matches :func:`to_svg`.

    ``scale`` is pixels per layout unit (2.0 suits high-DPI screens). Very large graphs are
    scaled down so that the image stays under ``max_pixels``. Raises ``ImportError`` naming
    ``pip install "graphflow[draw]"`` when Pillow is missing. Text is set in Pillow's built-in
    font (``ImageFont.load_default``); non-ASCII labels use a system Unicode font when one is
    found; ``font`` (a TrueType/OpenType file) overrides both.
    """
    Image, ImageDraw, ImageFont = _import_pillow()
    scene = build_scene(G, highlight=highlight, highlight_edges=highlight_edges, title=title,
                        legend=legend)
    area = max(scene.width * scene.height, 1.0)
    scale = max(0.05, min(float(scale), math.sqrt(max_pixels / area)))
    ss = 2 if area * (scale * 2) ** 2 <= max_pixels else 1  # supersampling for antialiasing
    k = scale * ss
    final = (max(1, math.ceil(scene.width * scale)), max(1, math.ceil(scene.height * scale)))
    size = (final[0] * ss, final[1] * ss)
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    fonts = _Fonts(ImageFont, os.fspath(font) if font is not None else None)

    def P(p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] * k, p[1] * k)

    painters: dict[type, Callable[[Any], None]] = {
        Rect: lambda it: _rect(draw, it, k),
        Path: lambda it: _path(draw, it, k, P),
        Polygon: lambda it: draw.polygon([P(p) for p in it.points], fill=_rgb(it.fill)),
        Text: lambda it: _text(img, draw, it, k, fonts, Image),
    }
    for group in scene.groups:
        for item in group.items:
            painters[type(item)](item)
    if ss > 1:
        img = img.resize(final, Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _rect(draw: Any, it: Rect, k: float) -> None:
    box = [it.x * k, it.y * k, (it.x + it.width) * k, (it.y + it.height) * k]
    if box[2] <= box[0] or box[3] <= box[1]:
        return
    radius = max(0.0, min(it.radius * k, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2))
    fill = _blend(it.fill, it.opacity) if it.fill else None
    outline = _blend(it.stroke, it.opacity) if it.stroke else None
    width = max(1, round(it.stroke_width * k)) if it.stroke else 0
    draw.rounded_rectangle(box, radius=radius, fill=fill, outline=outline, width=width)


def _path(draw: Any, it: Path, k: float, P: Callable[[Any], tuple[float, float]]) -> None:
    points = [P(it.start)]
    prev = it.start
    for curve in it.curves:
        length = math.dist(prev, curve[2]) + 1.0
        steps = max(2, min(48, int(length / 4)))
        points.extend(P(p) for p in sample_curve(prev, curve, steps)[1:])
        prev = curve[2]
    width = max(1, round(it.width * k))
    color = _rgb(it.color)
    parts = _dashes(points, it.dash[0] * k, it.dash[1] * k) if it.dash else [points]
    for part in parts:
        if len(part) > 1:
            draw.line(part, fill=color, width=width, joint="curve")


def _text(img: Any, draw: Any, it: Text, k: float, fonts: _Fonts, Image: Any) -> None:
    size = it.size * k
    font = fonts.get(size, it.text)
    x, y = it.x * k, it.y * k
    color = _rgb(it.color)
    if not fonts.scalable:
        _bitmap_text(img, it, x, y, size, font, color, Image)
        return
    if it.max_width:
        room = it.max_width * k
        length = font.getlength(it.text)
        if length > room > 0:
            font = fonts.get(size * room / length, it.text)
    anchor = "mm" if it.anchor == "middle" else "lm"
    stroke = 1 if it.bold else 0
    draw.text((x, y), it.text, fill=color, font=font, anchor=anchor, stroke_width=stroke,
              stroke_fill=color)


def _bitmap_text(
    img: Any, it: Text, x: float, y: float, size: float, font: Any, color: Any, Image: Any
) -> None:
    """Fallback without FreeType: draw with the bitmap font, then scale the glyphs up."""
    from PIL import ImageDraw

    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), it.text, font=font)
    w, h = max(1, right - left), max(1, bottom - top)
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).text((-left, -top), it.text, fill=255, font=font)
    factor = max(1.0, size * 0.75 / h)
    if it.max_width:
        factor = max(0.5, min(factor, it.max_width * (size / it.size) / w))
    mask = mask.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.BILINEAR)
    px = x - mask.width / 2 if it.anchor == "middle" else x
    img.paste(color, (round(px), round(y - mask.height / 2)), mask)
