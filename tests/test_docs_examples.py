"""The README's code and the examples run as documented."""

import re
import runpy
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_blocks_print_what_their_comments_say(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the durability example writes runs.db
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 2, "README lost its examples"
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md block {i}", "exec"), {"__name__": "readme"})
        printed = capsys.readouterr().out.strip().splitlines()
        expected = re.findall(r"print\(.*\)\s+# (.*)", code)
        assert expected, f"README block {i} says nothing about what it prints"
        assert printed == expected


def test_quickstart_example_runs_and_loops_twice():
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert "final report: draft 2:" in out
    assert out.count("custom: researching:") == 3


def test_quickstart_graph_structure():
    ns = runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="not_main")
    graph = ns["app"].get_graph()
    kinds = {(u, v, d["kind"]) for u, v, d in graph.edges(data=True)}
    assert ("plan", "research", "send") in kinds  # fan_out is hinted to return list[Send]
    assert ("write", "write", "conditional") in kinds
    assert ("write", "__end__", "conditional") in kinds
