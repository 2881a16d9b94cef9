"""Draw the README's diagrams, each with the path of a real run highlighted.

Run: python examples/readme_diagram.py
Writes docs/images/quickstart.svg (the quickstart graph: its Send fan-out, the write loop) and
docs/images/agent.svg (the prebuilt tool-calling agent, run offline with the scripted model of
examples/agent.py), and a PNG of each when Pillow is installed (the optional extra:
pip install "graphflow[draw]"; without it the PNGs are skipped with a note). All are drawn
offline by graphflow's own layout.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

from graphflow.tools.builtin import calculator

from graphflow.agents import create_function_calling_agent
from graphflow.checkpoint import MemoryCheckpointer

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"


def main() -> list[Path]:
    # the graph exactly as examples/quickstart.py builds it (its __main__ block does not run)
    app = runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="quickstart")["app"]
    app.invoke({"topic": "graphs", "drafts": 0}, thread="readme")  # a real run to overlay

    # the calculator agent of examples/agent.py, with its offline model, on a checkpointer
    example = runpy.run_path(str(ROOT / "examples" / "agent.py"), run_name="agent_example")
    agent = create_function_calling_agent(example["offline_model"](False), [calculator],
                                          system=example["SYSTEM"],
                                          checkpointer=MemoryCheckpointer(), name="agent")
    agent.invoke({"messages": [("user", example["QUESTION"])]}, thread="readme")

    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for graph, name, options in ((app, "quickstart", {}), (agent, "agent", {"direction": "LR"})):
        written.append(graph.draw(OUT / f"{name}.svg", run="readme", **options))
        try:
            written.append(graph.draw(OUT / f"{name}.png", run="readme", **options))
        except ImportError as exc:  # Pillow is an extra: the SVG is the diagram, the PNG a copy
            print(f"skipped {(OUT / f'{name}.png').relative_to(ROOT)}: {exc}", file=sys.stderr)
    return written


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
