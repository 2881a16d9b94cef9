"""What a wheel of graphflow holds: every package directory, and nothing bare like ``tools``."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_pyproject_lists_every_package_directory_under_graphflow_names():
    setup = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(setup["packages"])
    found = set()
    for package, folder in setup["package-dir"].items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((package, *parts)))
    assert all(name.split(".")[0] == "graphflow" for name in listed | found)
    assert found - listed == set(), "package directories a wheel would leave out"
    assert listed - found == set(), "listed packages with no directory"
