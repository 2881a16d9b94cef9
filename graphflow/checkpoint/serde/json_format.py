"""What encoding and decoding share about the stored text: the tag key and the JSON library.

A tagged value is a JSON object holding the key :data:`TAG`. The text is written and parsed by
pydantic_core (a dependency of pydantic) when it is there, with the stdlib json module as the
fallback; :func:`_pydantic_core` says which.
"""

from __future__ import annotations

from typing import Any

TAG = "__gf__"

_UNSET: Any = object()

# The JSON library in use: the pydantic_core module, None (the stdlib json module only), or
# _UNSET until the first use. Tests switch it to run both ways.
_PC: Any = _UNSET


def _pydantic_core() -> Any:
    """pydantic_core (a dependency of pydantic) for its fast JSON, imported on first use."""
    global _PC
    pc = _PC
    if pc is _UNSET:
        try:
            import pydantic_core
        except ImportError:  # pragma: no cover - pydantic is a dependency of graphflow
            pydantic_core = None
        pc = _PC = pydantic_core if hasattr(pydantic_core, "from_json") else None
    return pc
