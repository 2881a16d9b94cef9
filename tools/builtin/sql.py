"""``sql_query(db_path)``: read-only SQL over an SQLite database.

Read-only is enforced by the connection, not by inspecting the SQL text:

* the file is opened with a ``mode=ro`` URI (SQLite itself refuses to write, and a missing file
  is an error — it is never created);
* ``PRAGMA query_only=ON``;
* an authorizer allows only reading (``SELECT``, column reads, functions, recursive CTEs and a
  few introspection pragmas such as ``table_info``) and denies everything else — ``INSERT``,
  ``UPDATE``, ``DELETE``, ``DROP``, ``CREATE``, ``ATTACH``, ``PRAGMA writable_schema``, ...;
* no database can be attached (``SQLITE_LIMIT_ATTACHED`` = 0), one statement per call, values
  and SQL text have size limits, a query is interrupted after ``timeout`` seconds, and at most
  ``max_rows`` rows are returned.
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


def sql_query(db_path: str | os.PathLike[str], *, max_rows: int = 100, timeout: float = 10.0,
              max_cell_chars: int = 2_000) -> Tool:
    """A tool that runs one read-only SQL query on an SQLite database file.

    Args:
        db_path: the database file; it must exist (it is never created).
        max_rows: the most rows returned (``truncated`` says when there were more).
        timeout: seconds a query may run before it is interrupted.
        max_cell_chars: longer text values are cut.

    Returns:
        A :class:`~graphflow.tools.Tool` named ``"sql_query"`` taking ``query`` and returning
        ``{"columns": [...], "rows": [[...], ...], "truncated": bool}`` (JSON-able; blobs are
        shown as ``"<blob of N bytes>"``). A statement that would write raises
        :class:`PermissionError`; an SQL error :class:`ValueError`; a query over time
        :class:`TimeoutError`.
    """
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
        try:
            cursor = conn.execute(query)
            rows = cursor.fetchmany(max_rows + 1)
            columns = [d[0] for d in cursor.description or ()]
        except sqlite3.DatabaseError as exc:
            raise _explain(exc, timeout) from None
        except sqlite3.Warning as exc:  # older Pythons: "one statement at a time"
            raise ValueError(f"SQL error: {exc}") from None
        finally:
            conn.close()
        truncated = len(rows) > max_rows
        return {
            "columns": columns,
            "rows": [[_cell(v, max_cell_chars) for v in row] for row in rows[:max_rows]],
            "truncated": truncated,
        }

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
