"""graphflow.testing.postgres: tests and benchmarks get a database of their own, never the
server's default ``postgres`` database."""

from __future__ import annotations

import uuid

import pytest

from graphflow.testing.postgres import DEFAULT_DSN, configured_dsn, ensure_database


def test_the_default_dsn_names_a_database_of_its_own(monkeypatch):
    from psycopg.conninfo import conninfo_to_dict

    monkeypatch.delenv("GRAPHFLOW_PG_DSN", raising=False)
    assert configured_dsn() == DEFAULT_DSN
    assert conninfo_to_dict(DEFAULT_DSN)["dbname"] == "graphflow_test"
    monkeypatch.setenv("GRAPHFLOW_PG_DSN", "postgresql://me@db.example:6543/mine")
    assert configured_dsn() == "postgresql://me@db.example:6543/mine"


def test_ensure_database_creates_a_missing_database_once(pg_dsn):
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = f"graphflow_probe_{uuid.uuid4().hex[:12]}"
    dsn = make_conninfo(pg_dsn, dbname=name)
    try:
        assert ensure_database(dsn) is True
        assert ensure_database(dsn) is False  # there now
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (name,)
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def test_ensure_database_raises_for_a_server_that_is_not_there():
    import psycopg

    with pytest.raises(psycopg.OperationalError):
        ensure_database("postgresql://nobody@127.0.0.1:1/graphflow_test", connect_timeout=2)
