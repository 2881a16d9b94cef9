"""Smoke test for the benchmark harness (bench/run.py).

It only checks that the harness runs and prints valid JSON with positive numbers; it never
judges the numbers themselves (that is the benchmark's job, not the test suite's).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "bench" / "run.py"
KEYS = ("W0_us_per_step", "W1_sync_us_per_step", "W1_async_us_per_step")


def test_bench_quick_prints_json(tmp_path: Path) -> None:
    out_file = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--only", "W0,W1", "--out", str(out_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=100,
        check=False,
    )
    assert proc.returncode == 0, f"bench/run.py exited {proc.returncode}:\n{proc.stderr}"
    data = json.loads(proc.stdout)
    assert isinstance(data, dict)
    for key in KEYS:
        value = data.get(key)
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)
    assert "python" in data and "machine" in data
    assert "W2_us_per_step" not in data and "W3_1k_ms" not in data  # --only was honoured
    assert "errors" not in data
    assert json.loads(out_file.read_text(encoding="utf-8")) == data
