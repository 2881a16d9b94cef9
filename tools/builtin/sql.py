"""``sql_query(db_path)``: read-only SQL over an SQLite database.

Read-only is enforced by the connection, not by inspecting the SQL text:

* the file is opened with a ``mode=ro`` URI (SQLite itself refuses to write, and a missing file
  is an error — it is never created);
* ``PRAGMA query_only=ON``;
* an authorizer allows only reading (``SELECT``, column reads, functions, recursive CTEs and a
  few introspection pragmas such as ``table_info``) and denies everything else — ``INSERT``,
  ``UPDATE``, ``DELETE``, ``DROP``, ``CREATE``, ``ATTACH``, ``PRAGMA writable_schema``, ...;
* no database can be attached (``SQLITE_LIMIT_ATTACHED`` = 0), one statement per call, values
  and SQL text have size limits, a query is interrupted after ``timeout`` seconds.

The result is bounded while it is read, not after: rows are fetched one at a time, each cell is
shortened as it arrives (a blob becomes ``"<blob of N bytes>"``, long text is cut), and reading
stops at ``max_rows`` rows or ``max_bytes`` bytes of cells, whichever comes first. So memory stays
at about one row plus the result, however many or large the rows the query would produce.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from ..base import Tool

__all__ = ["sql_query"]

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                    sqlite3.SQLITE_RECURSIVE}
_SAFE_PRAGMAS = {"table_info", "table_xinfo", "table_list", "index_list", "index_info",
                 "index_xinfo", "foreign_key_list", "collation_list"}
_DENIED_FUNCTIONS = {"load_extension", "fts3_tokenizer", "readfile", "writefile", "edit"}


def _authorizer(action: int, arg1: str | None, arg2: str | None, db: str | None,
                trigger: str | None) -> int:
    if action in _ALLOWED_ACTIONS:
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in _SAFE_PRAGMAS:
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _cell(value: Any, max_chars: int) -> Any:
    if isinstance(value, bytes):
        return f"<blob of {len(value)} bytes>"
    if isinstance(value, str) and len(value) > max_chars:
        return value[:max_chars] + f"...[{len(value) - max_chars} more characters]"
    return value


def _size(value: Any) -> int:
    """Bytes a cell takes in the result: UTF-8 text, or a number or null as written."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "replace"))
    return len(repr(value))


def sql_query(db_path: str | os.PathLike[str], *, max_rows: int = 100, timeout: float = 10.0,
              max_cell_chars: int = 2_000, max_bytes: int = 1_000_000) -> Tool:
    """A tool that runs one read-only SQL query on an SQLite database file.

    Args:
        db_path: the database file; it must exist (it is never created).
        max_rows: the most rows returned.
        timeout: seconds a query may run before it is interrupted.
        max_cell_chars: longer text values are cut.
        max_bytes: the most bytes of cells returned (UTF-8 text, numbers as written); reading
            stops before the row that would pass it.

    Returns:
        A :class:`~graphflow.tools.Tool` named ``"sql_query"`` taking ``query`` and returning
        ``{"columns": [...], "rows": [[...], ...], "truncated": bool}`` (JSON-able; blobs are
        shown as ``"<blob of N bytes>"``); when ``truncated`` is true, ``"truncated_reason"``
        says which limit stopped the reading (``max_rows`` or ``max_bytes``). A statement that
        would write raises :class:`PermissionError`; an SQL error :class:`ValueError`; a query
        over time :class:`TimeoutError`.
    """
    for name, value in (("max_rows", max_rows), ("max_bytes", max_bytes),
                        ("max_cell_chars", max_cell_chars)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"sql_query: {name} must be a positive int, not {value!r}")
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"sql_query: the database file {str(db_path)!r} does not "
                                f"exist (it is opened read-only and never created)")
    uri = path.as_uri() + "?mode=ro"

    def connect() -> sqlite3.Connection:
        if not path.is_file():
            raise FileNotFoundError(f"the database file {path.name!r} does not exist")
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise FileNotFoundError(f"cannot open the database {path.name!r}: {exc}") from None
        try:
            conn.execute("PRAGMA query_only=ON")
            conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
            conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 10_000_000)
            conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 100_000)
            conn.set_authorizer(_authorizer)
        except BaseException:
            conn.close()
            raise
        return conn

    def run_query(query: str) -> dict[str, Any]:
        """Run one read-only SQL query (SQLite dialect) and return the columns and rows.

        Only SELECT queries (and WITH ... SELECT) are allowed. Explore the database with
        "SELECT name, sql FROM sqlite_master" or "PRAGMA table_info(table_name)".

        Args:
            query: a single SQL SELECT statement.
        """
        conn = connect()
        deadline = time.monotonic() + timeout
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        rows: list[list[Any]] = []
        size = 0
        reason = None
        try:
            cursor = conn.execute(query)
            columns = [d[0] for d in cursor.description or ()]
            while (row := cursor.fetchone()) is not None:  # one row in memory at a time
                if len(rows) == max_rows:
                    reason = f"max_rows: the query returned more than {max_rows} rows"
                    break
                cells = [_cell(v, max_cell_chars) for v in row]
                del row  # the full-size values (blobs, long text) go now
                size += sum(map(_size, cells))
                if size > max_bytes:
                    reason = (f"max_bytes: the rows after the first {len(rows)} would pass "
                              f"{max_bytes} bytes")
                    break
                rows.append(cells)
        except sqlite3.DatabaseError as exc:
            raise _explain(exc, timeout) from None
        except sqlite3.Warning as exc:  # older Pythons: "one statement at a time"
            raise ValueError(f"SQL error: {exc}") from None
        finally:
            conn.close()
        out: dict[str, Any] = {"columns": columns, "rows": rows, "truncated": reason is not None}
        if reason is not None:
            out["truncated_reason"] = reason
        return out

    return Tool(run_query, name="sql_query", description=(
        "Run one read-only SQL query (SQLite dialect) on the database and return the columns "
        "and rows. Only SELECT queries (and WITH ... SELECT) are allowed. Explore the database "
        "with \"SELECT name, sql FROM sqlite_master\" or \"PRAGMA table_info(table_name)\"."))


def _explain(exc: sqlite3.Error, timeout: float) -> Exception:
    text = str(exc)
    lowered = text.lower()
    if any(word in lowered for word in ("not authorized", "authorization denied", "readonly",
                                        "read-only", "query_only", "too many attached")):
        return PermissionError(f"refused: this tool is read-only, only SELECT queries are "
                               f"allowed ({text})")
    if "interrupted" in lowered:
        return TimeoutError(f"the query ran longer than {timeout:g}s and was interrupted")
    if "one statement at a time" in lowered:
        return ValueError("SQL error: only one statement per call is allowed")
    return ValueError(f"SQL error: {text}")
