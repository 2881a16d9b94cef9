"""The run inspector at ``/ui``: plain HTML, JavaScript and CSS shipped in the package (no
build step); it talks to the same JSON API and streams as any client."""

from __future__ import annotations

from importlib import resources
from typing import Any

from fastapi.responses import RedirectResponse, Response

__all__ = ["mount_ui"]

_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8"}


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def mount_ui(app: Any) -> None:
    """Add ``/ui`` (the page) and ``/ui/{asset}`` (its script and style) to ``app``."""
    assets = {name: _asset(name) for name in ("index.html", "app.js", "style.css")}

    @app.get("/ui", include_in_schema=False)
    def ui_page() -> Response:
        return Response(assets["index.html"], media_type=_TYPES[".html"],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/ui/", include_in_schema=False)
    def ui_slash() -> RedirectResponse:
        return RedirectResponse("/ui")

    @app.get("/ui/{name}", include_in_schema=False)
    def ui_asset(name: str) -> Response:
        body = assets.get(name)
        if body is None or name == "index.html":
            return Response(status_code=404)
        suffix = name[name.rfind("."):]
        return Response(body, media_type=_TYPES[suffix], headers={"Cache-Control": "no-cache"})
