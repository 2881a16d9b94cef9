"""Programs written against LangGraph's public API (tests/compat/programs/), run with graphflow
after the import changes of docs/from-langgraph.md only, must print exactly what they print with
LangGraph (tests/compat/expected/, recorded once from langgraph 1.2.22; LangGraph is not a test
dependency)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROGRAMS = sorted((HERE / "programs").glob("*.py"))

#: The import changes a porting user makes (the table in docs/from-langgraph.md), in order.
IMPORTS = [
    (r"^from langgraph\.graph import ", "from graphflow import "),
    (r"^from langgraph\.types import ", "from graphflow import "),
    (r"^from langgraph\.errors import ", "from graphflow import "),
    (r"^from langgraph\.runtime import ", "from graphflow import "),
    (r"^from langgraph\.managed import ", "from graphflow import "),
    (r"^from langgraph\.cache\.memory import ", "from graphflow.cache import "),
    (r"^from langgraph\.checkpoint\.memory import InMemorySaver",
     "from graphflow.checkpoint import MemoryCheckpointer as InMemorySaver"),
    (r"^from langgraph\.graph\.message import ", "from graphflow import "),
    (r"^from langgraph\.config import ", "from graphflow import "),
    (r"^from langgraph\.cache\.sqlite import ", "from graphflow.cache import "),
    (r"^from langgraph\.checkpoint\.sqlite import SqliteSaver",
     "from graphflow.checkpoint import SqliteCheckpointer as SqliteSaver"),
    (r"^from langgraph\.prebuilt import ", "from graphflow.agents import "),
    (r"^from langgraph\.store\.base import ", "from graphflow.memory import "),
    (r"^from langgraph\.store\.memory import InMemoryStore",
     "from graphflow.memory import SqliteStore as InMemoryStore"),
    (r"^from langchain_core\.messages import ", "from graphflow.messages import "),
    (r"^from langchain_core\.runnables import ", "from graphflow import "),
    (r"^from langchain_core\.tools import ", "from graphflow.tools import "),
]


def port(source: str) -> str:
    """``source`` with LangGraph's imports changed to graphflow's (nothing else changes)."""
    for pattern, replacement in IMPORTS:
        source = re.sub(pattern, replacement, source, flags=re.MULTILINE)
    assert "langgraph" not in re.sub(r"#.*", "", source), "an import the table does not cover"
    return source


@pytest.mark.parametrize("program", PROGRAMS, ids=[p.stem for p in PROGRAMS])
def test_a_langgraph_program_runs_unchanged_but_for_imports(program, tmp_path):
    ported = tmp_path / program.name
    ported.write_text(port(program.read_text()))
    run = subprocess.run([sys.executable, str(ported)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = (HERE / "expected" / f"{program.stem}.txt").read_text()
    assert run.stdout == expected
