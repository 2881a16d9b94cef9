"""Draw the README's diagram: the quickstart graph, with the path of a real run highlighted.

Run: python examples/readme_diagram.py
Writes docs/images/quickstart.svg, and docs/images/quickstart.png when Pillow is installed (the
optional extra: pip install "graphflow[draw]"; without it the PNG is skipped with a note). Both
are drawn offline by graphflow's own layout.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"


def main() -> list[Path]:
    # the graph exactly as examples/quickstart.py builds it (its __main__ block does not run)
    app = runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="quickstart")["app"]
    app.invoke({"topic": "graphs", "drafts": 0}, thread="readme")  # a real run to overlay
    OUT.mkdir(parents=True, exist_ok=True)
    written = [app.draw(OUT / "quickstart.svg", run="readme")]
    try:
        written.append(app.draw(OUT / "quickstart.png", run="readme"))
    except ImportError as exc:  # Pillow is an extra: the SVG is the diagram, the PNG a copy
        print(f"skipped {(OUT / 'quickstart.png').relative_to(ROOT)}: {exc}", file=sys.stderr)
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
