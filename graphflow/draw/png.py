"""PNG output rendered offline with Pillow, from the same scene as the SVG output.

Pillow is the optional extra ``graphflow[draw]``; it is imported only when a PNG is requested.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

from .scene import Path, Polygon, Rect, Text, build_scene, sample_curve
from .style import Highlight, HighlightEdges

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


# Text is set in one typeface (the first of PRIMARY_FONTS found, else Pillow's built-in font);
# a character it lacks comes from the first of the other fonts found that has it (CJK, symbols).
PRIMARY_FONTS = (
    "DejaVuSans.ttf",
    "NotoSans-Regular.ttf",
    "LiberationSans-Regular.ttf",
    "Arial.ttf",
    "arial.ttf",
    "Helvetica.ttc",
)
FALLBACK_FONTS = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJKjp-Regular.otf",
    "NotoSansCJKkr-Regular.otf",
    "SourceHanSans-Regular.ttc",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "DroidSansFallback.ttf",
    "msyh.ttc",
    "YuGothR.ttc",
    "malgun.ttf",
    "PingFang.ttc",
    "Hiragino Sans GB.ttc",
    "AppleSDGothicNeo.ttc",
    "Arial Unicode.ttf",
    "ArialUnicodeMS.ttf",
    "NotoSansSymbols2-Regular.ttf",
    "Symbola.ttf",
)
_NOT_A_CHARACTER = "\U0010ffff"  # no font maps it: renders as the font's missing-glyph box


def _font_dirs() -> list[str]:
    home = os.path.expanduser("~")
    if sys.platform == "win32":
        return [os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts"),
                os.path.join(os.environ.get("LOCALAPPDATA", home), "Microsoft", "Windows",
                             "Fonts")]
    if sys.platform == "darwin":
        return ["/System/Library/Fonts", "/Library/Fonts", os.path.join(home, "Library/Fonts")]
    data = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
    dirs = [os.path.join(d, "fonts") for d in data.split(":") if d]
    return [*dirs, os.path.join(home, ".fonts"), os.path.join(home, ".local/share/fonts")]


@functools.lru_cache(maxsize=1)
def system_fonts() -> dict[str, str]:
    """Font files in the system's font folders: file name (lower case) -> path. Searched once
    per process."""
    found: dict[str, str] = {}
    for folder in _font_dirs():
        for root, _, files in os.walk(folder):
            for name in files:
                if name.lower().endswith((".ttf", ".otf", ".ttc")):
                    found.setdefault(name.lower(), os.path.join(root, name))
    return found


class _Fonts:
    """The fonts a picture's text is set in, by pixel size: one primary typeface for all the
    text it covers and, per character, fallbacks for the rest.

    ``path`` (a font file) replaces the primary. Without FreeType, Pillow's bitmap default font
    is used for everything (``scalable`` off).
    """

    def __init__(self, ImageFont: Any, path: str | None = None) -> None:
        self._mod = ImageFont
        self._cache: dict[tuple[str | None, int], Any] = {}
        self._covers: dict[tuple[str | None, str], bool] = {}
        found = system_fonts()
        named = [found[n.lower()] for n in PRIMARY_FONTS if n.lower() in found]
        extra = [found[n.lower()] for n in FALLBACK_FONTS if n.lower() in found]
        primary = path or next((p for p in named if self._opens(p)), None)
        # None stands for Pillow's own font
        self.chain: list[str | None] = [primary] + [p for p in [*named, *extra]
                                                    if p != primary and self._opens(p)]
        self.scalable = self._font(self.chain[0], 12) is not None and isinstance(
            self._font(self.chain[0], 12), ImageFont.FreeTypeFont)

    def _opens(self, path: str) -> bool:
        return self._font(path, 12) is not None

    def _font(self, path: str | None, px: int) -> Any:
        key = (path, px)
        if key in self._cache:
            return self._cache[key]
        font = None
        try:
            font = self._mod.truetype(path, px) if path else self._mod.load_default(size=px)
        except (TypeError, OSError, ImportError, AttributeError, ValueError):
            if path is None:  # old Pillow, or no FreeType: the bitmap font
                font = self._mod.load_default()
        self._cache[key] = font
        return font

    def get(self, size: float) -> Any:
        """The primary font at ``size`` px."""
        return self._font(self.chain[0], max(6, round(size)))

    def _has(self, path: str | None, ch: str) -> bool:
        key = (path, ch)
        found = self._covers.get(key)
        if found is None:
            font = self._font(path, 24)
            try:
                glyph, missing = font.getmask(ch), font.getmask(_NOT_A_CHARACTER)
                found = (glyph.size, bytes(glyph)) != (missing.size, bytes(missing))
            except Exception:  # a font that cannot render it at all
                found = False
            self._covers[key] = found
        return found

    def runs(self, text: str, size: float) -> list[tuple[Any, str]]:
        """``text`` cut into runs, each with the first font of the chain that has its
        characters (spaces and marks stay with the run before them)."""
        px = max(6, round(size))
        out: list[tuple[Any, str]] = []
        current: str | bool | None = False  # no run yet
        for ch in text:
            if current is not False and (ch.isspace() or unicodedata.combining(ch)):
                pick = current
            else:
                pick = next((p for p in self.chain if self._has(p, ch)), self.chain[0])
            if out and pick == current:
                out[-1] = (out[-1][0], out[-1][1] + ch)
            else:
                out.append((self._font(pick, px), ch))  # type: ignore[arg-type]
                current = pick
        return out


def to_png(
    G: Any,
    scale: float = 2.0,
    *,
    highlight: Highlight = None,
    highlight_edges: HighlightEdges = None,
    title: bool = True,
    legend: bool = True,
    max_pixels: int = 40_000_000,
    font: str | os.PathLike[str] | None = None,
    direction: str = "TB",
    compact: bool = False,
    wrap: int | None = 24,
) -> bytes:
    """Render ``G`` to PNG bytes with Pillow; the picture matches :func:`to_svg`.

    ``scale`` is pixels per layout unit (2.0 suits high-DPI screens). Very large graphs are
    scaled down so that the image stays under ``max_pixels``. Raises ``ImportError`` naming
    ``pip install "graphflow[draw]"`` when Pillow is missing. Text is set in one typeface, the
    first system font of :data:`PRIMARY_FONTS` found (else Pillow's built-in font) or
    ``font`` (a TrueType/OpenType file); a character it lacks (Chinese, Japanese, Korean,
    symbols) is taken from the first installed font that has it (:data:`FALLBACK_FONTS`, such
    as Noto Sans CJK). ``direction``, ``compact`` and ``wrap`` are :func:`layout` options.
    """
    Image, ImageDraw, ImageFont = _import_pillow()
    scene = build_scene(G, highlight=highlight, highlight_edges=highlight_edges, title=title,
                        legend=legend, direction=direction, compact=compact, wrap=wrap)
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
        length = (math.dist(prev, curve[0]) + math.dist(curve[0], curve[1])
                  + math.dist(curve[1], curve[2])) * k  # at most the curve's length, in pixels
        steps = max(2, min(64, int(length / 3)))
        points.extend(P(p) for p in sample_curve(prev, curve, steps)[1:])
        prev = curve[2]
    if it.fill and it.closed:
        draw.polygon(points, fill=_blend(it.fill, it.opacity))
    width = max(1, round(it.width * k))
    color = _blend(it.color, it.opacity)
    if it.closed:
        points.append(points[1] if len(points) > 1 else points[0])  # a joint at the start, too
    parts = _dashes(points, it.dash[0] * k, it.dash[1] * k) if it.dash else [points]
    for part in parts:
        if len(part) > 1:
            draw.line(part, fill=color, width=width, joint="curve")


def _text(img: Any, draw: Any, it: Text, k: float, fonts: _Fonts, Image: Any) -> None:
    size = it.size * k
    x, y = it.x * k, it.y * k
    color = _rgb(it.color)
    if not fonts.scalable:
        _bitmap_text(img, it, x, y, size, fonts.get(size), color, Image)
        return
    runs = fonts.runs(it.text, size)
    length = sum(font.getlength(part) for font, part in runs)
    if it.max_width and length > it.max_width * k > 0:  # too long: a smaller size that fits
        size *= it.max_width * k / length
        runs = fonts.runs(it.text, size)
        length = sum(font.getlength(part) for font, part in runs)
    ascent, descent = fonts.get(size).getmetrics()
    baseline = y + (ascent - descent) / 2  # every run on the primary font's baseline
    cursor = x - length / 2 if it.anchor == "middle" else x
    stroke = 1 if it.bold else 0
    for font, part in runs:
        draw.text((cursor, baseline), part, fill=color, font=font, anchor="ls",
                  stroke_width=stroke, stroke_fill=color)
        cursor += font.getlength(part)


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
