"""A PostgreSQL database of its own for tests and benchmarks.

Tests and benchmarks that need PostgreSQL use the DSN in ``GRAPHFLOW_PG_DSN``, else
:data:`DEFAULT_DSN` — a database named ``graphflow_test`` on a local server, never the server's
default ``postgres`` database (other people's data may live there). :func:`ensure_database`
creates the DSN's database when the server is reachable but the database does not exist yet
(``CREATE DATABASE``, run from the server's maintenance database; nothing is written there).
``.ci/postgres.sh`` brings up a local server and prints the DSN to use.
"""

from __future__ import annotations

import os
import re

__all__ = ["DEFAULT_DSN", "configured_dsn", "ensure_database"]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/graphflow_test"


def configured_dsn() -> str:
    """``$GRAPHFLOW_PG_DSN``, else :data:`DEFAULT_DSN`."""
    return os.environ.get("GRAPHFLOW_PG_DSN") or DEFAULT_DSN


def ensure_database(dsn: str, *, connect_timeout: float = 3) -> bool:
    """Make sure the database ``dsn`` names exists; True if this call created it.

    Raises what ``psycopg.connect`` raises for any other problem (no server, bad credentials):
    the caller decides whether that skips or fails.
    """
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        psycopg.connect(dsn, connect_timeout=connect_timeout).close()
        return False
    except psycopg.OperationalError as exc:
        name = conninfo_to_dict(dsn).get("dbname")
        if not name or not re.search(rf'database "{re.escape(str(name))}" does not exist',
                                     str(exc)):
            raise
    last: Exception | None = None
    for maintenance in ("postgres", "template1"):
        try:
            with psycopg.connect(make_conninfo(dsn, dbname=maintenance), autocommit=True,
                                 connect_timeout=connect_timeout) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
            return True
        except psycopg.errors.DuplicateDatabase:
            return False  # another process made it meanwhile
        except psycopg.OperationalError as exc:
            last = exc
    assert last is not None
    raise last
