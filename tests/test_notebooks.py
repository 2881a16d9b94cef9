"""The notebooks run top to bottom in a fresh kernel, and are committed without outputs.

The kernel is this interpreter: a kernelspec named ``python3`` whose argv starts with
``sys.executable`` is written to a temporary directory put first on ``JUPYTER_PATH``, so a
``python3`` kernelspec installed elsewhere (user-wide, system-wide, another environment) is never
picked up. ``IPYTHONDIR`` points to a temporary directory too: no user profile or startup file
runs in the kernel.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import graphflow

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "python3"
# notebooks with a cell whose last expression is a compiled graph, and what they must display
SHOWS: dict[str, set[str]] = {
    "01_quickstart": {"image/svg+xml"},
    "03_durability": {"image/svg+xml"},
    "04_diagrams": {"image/svg+xml", "image/png"},
    "05_orchestrators": {"image/svg+xml"},
    "06_memory": {"image/svg+xml"},
}
PROBE = "import sys, graphflow\nprint(sys.prefix)\nprint(graphflow.__file__)"


def _require(module: str) -> Any:
    """Import a notebook-running dependency; skip (locally) or fail (on CI) without it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        reason = f"{module} is missing ({exc}): pip install -e '.[dev]'"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The name of a kernelspec that runs this interpreter, first on the Jupyter path."""
    _require("ipykernel")
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python 3 ({sys.prefix})",
        "language": "python",
    }))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("IPYTHONDIR", str(tmp_path_factory.mktemp("ipython")))
        # offline means offline: the agents notebook calls a real provider only if a key is set
        mp.delenv("OPENAI_API_KEY", raising=False)
        mp.delenv("ANTHROPIC_API_KEY", raising=False)
        yield KERNEL


def _execute(path: Path, workdir: Path, kernel: str) -> Any:
    """Run the notebook plus a probe cell; return the executed notebook."""
    nbformat = _require("nbformat")
    nbclient = _require("nbclient")
    errors = _require("nbclient.exceptions")
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name=kernel,
                                     resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute()
    except errors.CellExecutionError as exc:
        pytest.fail(f"{path.name} failed:\n{exc}", pytrace=False)
    return nb


def test_there_are_notebooks():
    assert set(SHOWS) <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path):
    nbformat = _require("nbformat")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: clear the outputs of cells {dirty} before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, kernel: str, tmp_path: Path):
    nb = _execute(path, tmp_path, kernel)
    *cells, probe = [cell for cell in nb.cells if cell.cell_type == "code"]

    # the kernel ran this interpreter's environment and the graphflow these tests import
    printed = "".join(out.get("text", "") for out in probe.outputs)
    prefix, module = printed.split()
    assert Path(prefix).resolve() == Path(sys.prefix).resolve()
    assert Path(module).resolve() == Path(graphflow.__file__).resolve()

    outputs = [(i, out) for i, cell in enumerate(cells) for out in cell.outputs]
    errors = [(i, out) for i, out in outputs if out.output_type == "error"
              or (out.output_type == "stream" and out.name == "stderr")]
    assert not errors, f"{path.name}: errors or warnings in cells: {errors}"

    # a cell ending with a compiled graph displays it inline as SVG
    graphs = [out.data for _, out in outputs if out.output_type == "execute_result"
              and out.data.get("text/plain", "").startswith("<CompiledGraph")]
    if path.stem in SHOWS:
        assert graphs, f"{path.name}: no cell displayed a compiled graph"
    for data in graphs:
        assert "<svg" in data.get("image/svg+xml", ""), f"{path.name}: {sorted(data)}"
    shown = {mime for _, out in outputs for mime in out.get("data", {})}
    assert SHOWS.get(path.stem, set()) <= shown
