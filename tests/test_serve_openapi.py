"""The generated OpenAPI spec, checked against the running server by schemathesis: documented
status codes, response schemas and content types, no server errors, on random requests (the
endpoints of the spec, followed through its links from created threads to their runs).

The SSE endpoints are left out: their documented ``text/event-stream`` bodies last as long as
a run. ``positive_data_acceptance`` is left out too: the server rejects, with a 422 naming the
reason, requests whose meaning depends on stored state that a schema cannot express (a thread
of another graph, a state update on a thread without state, input and command together).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")

sys.path.insert(0, str(Path(__file__).parent / "support"))
from serving import Server

KEY = "st-" + uuid.uuid4().hex


def test_the_openapi_spec_holds_for_random_requests(tmp_path):
    cli = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or \
        shutil.which("schemathesis")
    if cli is None:
        pytest.skip("schemathesis is not installed (it comes with the dev extra)")
    srv = Server(["chain=serve_graphs:chain", "ask=serve_graphs:ask", "--db",
                  str(tmp_path / "runs.db"), "--api-key", KEY],
                 {"GRAPHFLOW_TEST_GATES": str(tmp_path)}).start()
    try:
        out = subprocess.run(
            [cli, "run", srv.url + "/openapi.json", "-n", "5", "--seed", "1",
             "-H", f"X-Api-Key: {KEY}", "--exclude-path-regex", "stream",
             "--exclude-checks", "positive_data_acceptance", "--request-timeout", "60"],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"})
    finally:
        srv.stop()
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-6000:]
    assert "Tested: 17" in report  # every non-stream operation was exercised
    server_log = srv.log.read_text()
    assert "Traceback" not in server_log, server_log[-4000:]
