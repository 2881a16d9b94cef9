"""W6 -- import time and peak memory, each measured in fresh subprocesses.

* ``W6_import_ms``: ``time.perf_counter`` around ``import graphflow`` inside a fresh
  ``python -c`` child (interpreter start-up excluded); median over 7 children (3 in quick mode),
  after one untimed child that makes sure the bytecode caches exist.
  ``W6_import_public_ms`` also includes ``from graphflow import StateGraph, Send, START, END``
  (catches lazy module ``__getattr__`` imports that ``import graphflow`` alone would hide), and
  ``W6_first_invoke_ms`` everything up to the end of the first ``invoke`` of a one-node graph
  (imports deferred to compile/run time, e.g. networkx, show up here).
* ``W6_peak_rss_mb``: ``ru_maxrss`` of a fresh child that runs W3 with n = 10,000 once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import check, repeats, rnd

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

IMPORT_CHILD = """
import json, time
t0 = time.perf_counter()
import graphflow
t1 = time.perf_counter()
from graphflow import END, START, Send, StateGraph
t2 = time.perf_counter()
from typing import TypedDict
class S(TypedDict):
    x: int
def f(s):
    return {"x": s["x"] + 1}
g = StateGraph(S)
g.add_node("f", f)
g.add_edge(START, "f")
g.add_edge("f", END)
assert g.compile().invoke({"x": 0}) == {"x": 1}
t3 = time.perf_counter()
print(json.dumps({
    "import_ms": (t1 - t0) * 1e3,
    "public_ms": (t2 - t0) * 1e3,
    "first_invoke_ms": (t3 - t0) * 1e3,
}))
"""

RSS_CHILD = """
import json, resource, sys
sys.path.insert(0, {bench!r})
import w3_fanout
n = 10_000
w3_fanout.verify(w3_fanout.run_once(n), n)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
# Linux reports KiB, macOS bytes.
mb = rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024
print(json.dumps({{"peak_rss_mb": mb}}))
"""


def _child(code: str, timeout: float) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        check=False,
    )
    check(
        proc.returncode == 0,
        f"W6 child failed (rc={proc.returncode}):\n{proc.stderr.strip()}",
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict:
    _child(IMPORT_CHILD, timeout=120)  # warm the __pycache__ of graphflow and its dependencies
    runs = [_child(IMPORT_CHILD, timeout=120) for _ in range(repeats(quick))]
    rss = _child(RSS_CHILD.format(bench=str(BENCH_DIR)), timeout=600)
    return {
        "W6_import_ms": rnd(statistics.median(r["import_ms"] for r in runs)),
        "W6_import_public_ms": rnd(statistics.median(r["public_ms"] for r in runs)),
        "W6_first_invoke_ms": rnd(statistics.median(r["first_invoke_ms"] for r in runs)),
        "W6_peak_rss_mb": rnd(rss["peak_rss_mb"]),
    }
