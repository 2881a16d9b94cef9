"""Draw the README's diagrams, each with the path of a real run highlighted.

Run: python examples/readme_diagram.py
Writes docs/images/quickstart.svg and .png (the quickstart graph: its Send fan-out, the
write loop) and docs/images/agent.svg and .png (the prebuilt tool-calling agent, run offline
with the scripted model of examples/agent.py). PNG needs Pillow:
pip install "graphflow[draw]". All are drawn offline by graphflow's own layout.
"""

from __future__ import annotations

import runpy
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
    OUT.mkdir(parents=True, exist_ok=True)
    paths = [app.draw(OUT / "quickstart.svg", run="readme"),
             app.draw(OUT / "quickstart.png", run="readme")]

    # the calculator agent of examples/agent.py, with its offline model, on a checkpointer
    example = runpy.run_path(str(ROOT / "examples" / "agent.py"), run_name="agent_example")
    agent = create_function_calling_agent(example["offline_model"](False), [calculator],
                                          system=example["SYSTEM"],
                                          checkpointer=MemoryCheckpointer(), name="agent")
    agent.invoke({"messages": [("user", example["QUESTION"])]}, thread="readme")
    paths += [agent.draw(OUT / "agent.svg", run="readme", direction="LR"),
              agent.draw(OUT / "agent.png", run="readme", direction="LR")]
    return paths


if __name__ == "__main__":
    for path in main():
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size:,} bytes)")
