"""Built-in tools, safe by construction.

* :data:`calculator` — arithmetic evaluated on the AST (no names, attributes, calls other than a
  few math functions; bounded sizes).
* :func:`file_tools` ``(root)`` — ``read_file``/``write_file``/``list_dir`` confined to ``root``.
* :func:`http_get` ``(allowed_hosts, timeout=10, max_bytes=1_000_000)`` — GET from allowed hosts
  only, redirects checked too; only public addresses (checked after DNS, on every hop, and
  pinned) unless ``allow_private``; ``timeout`` bounds the whole call.
* :func:`sql_query` ``(db_path)`` — read-only SQLite queries (``mode=ro``, ``query_only``, an
  authorizer), capped by rows and bytes while reading.
"""

from .calculator import CalculatorError, calculator
from .files import PathNotAllowedError, file_tools
from .http import HostNotAllowedError, http_get
from .sql import sql_query

__all__ = [
    "CalculatorError",
    "HostNotAllowedError",
    "PathNotAllowedError",
    "calculator",
    "file_tools",
    "http_get",
    "sql_query",
]
