"""Every graphflow import the documentation shows really imports.

Scans README.md, every Markdown file under docs/ and notebooks/, and the code cells of every
notebook, for ``from graphflow... import ...`` (parenthesised lists over several lines included)
and ``import graphflow...`` statements — in code blocks and in prose alike (a placeholder such
as ``from graphflow import ...`` is not one) — and runs each in a fresh namespace. A name the
docs promise but the package does not export fails here, naming the file and line. New
documents are picked up without touching this test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

IMPORT = re.compile(
    r"(?<![\w.])(?:from\s+graphflow(?:\.\w+)*\s+import\s+(?:\([^)]*\)|[\w ,]+(?:\s+as\s+\w+)?)"
    r"|import\s+graphflow(?:\.\w+)*(?:\s+as\s+\w+)?)")


def documents() -> list[Path]:
    found = [ROOT / "README.md"]
    for folder in ("docs", "notebooks"):
        found += sorted((ROOT / folder).rglob("*.md")) + sorted((ROOT / folder).rglob("*.ipynb"))
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def texts(path: Path) -> list[tuple[str, str]]:
    """``(where, text)`` pieces of a document: the whole file, or each notebook code cell."""
    rel = path.relative_to(ROOT).as_posix()
    if path.suffix != ".ipynb":
        return [(rel, path.read_text(encoding="utf-8"))]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return [(f"{rel} cell {i}", "".join(c["source"]) if isinstance(c["source"], list)
             else c["source"]) for i, c in enumerate(cells) if c["cell_type"] == "code"]


def statements() -> list[tuple[str, str]]:
    out = []
    for path in documents():
        for where, text in texts(path):
            for match in IMPORT.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                code = " ".join(match.group(0).split()).replace("( ", "(").replace(" )", ")")
                out.append((f"{where}:{line}", code.rstrip(" ,")))
    return out


STATEMENTS = statements()


def test_the_scan_finds_the_imports_the_docs_are_known_to_show():
    codes = {code for _, code in STATEMENTS}
    assert "from graphflow.checkpoint import SqliteCheckpointer" in codes
    assert any(where.startswith("notebooks/") for where, _ in STATEMENTS)
    assert any(where.startswith("docs/") for where, _ in STATEMENTS)


def test_the_pattern_reads_multi_line_imports_and_skips_placeholders():
    text = ("x\nfrom graphflow.models import (\n    RetryConfig,\n    chat_model,\n)\n"
            "`import graphflow`")
    found = [" ".join(m.group(0).split()) for m in IMPORT.finditer(text)]
    assert found == ["from graphflow.models import ( RetryConfig, chat_model, )",
                     "import graphflow"]
    assert not IMPORT.search("`from graphflow import ...` lists the public names")


@pytest.mark.parametrize(("where", "code"), STATEMENTS, ids=[w for w, _ in STATEMENTS])
def test_documented_import_works(where, code):
    namespace: dict = {}
    try:
        exec(compile(code, where, "exec"), namespace)
    except SyntaxError:
        pytest.fail(f"{where}: {code!r} is not a valid import statement", pytrace=False)
    except ImportError as exc:
        pytest.fail(f"{where}: {code!r} fails: {exc}", pytrace=False)
