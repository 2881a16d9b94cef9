#!/usr/bin/env python
"""graphflow benchmark harness.

    python bench/run.py [--quick] [--only W1,W3] [--out FILE]

Prints ONE JSON object (medians + python/machine info) to stdout; progress goes to stderr.
A workload that raises is reported under ``"errors"`` (the exact exception, with its cause
chain) and the exit status is 1; the other workloads still run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# bench/ is sys.path[0] when run as a script; the repo root makes this checkout's graphflow
# importable even without the editable install.
for _p in (str(BENCH_DIR), str(REPO)):
    if _p not in sys.path:
        sys.path.append(_p)

WORKLOADS = {
    "W0": "w0_floor",
    "W1": "w1_chain",
    "W2": "w2_loop",
    "W3": "w3_fanout",
    "W4": "w4_durable",
    "W5": "w5_concurrent",
    "W6": "w6_import",
    "W7": "w7_react",
    "W8": "w8_ray",
    "W9": "w9_pipeline",
    "W10": "w10_timer",
    "W11": "w11_memory",
    "W12": "w12_orchestrators",
    "S1": "s1_serve",
}


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def describe(exc: BaseException) -> str:
    """``Type: message`` for the exception and every ``__cause__``/``__context__`` below it."""
    parts = []
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        parts.append(f"{type(cur).__module__}.{type(cur).__qualname__}: {cur}")
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    return "  <- caused by ".join(parts)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
    }


def python_info() -> str:
    return f"{platform.python_implementation()} {platform.python_version()}"


def graphflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("graphflow")
    except Exception:
        return "unknown"


def parse_only(value: str) -> list[str]:
    names = [v.strip().upper() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload(s) {unknown or value!r}; choose from {','.join(WORKLOADS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 repeats instead of 7 (CI smoke)")
    ap.add_argument(
        "--only",
        type=parse_only,
        default=None,
        metavar="W1,W3",
        help=f"comma-separated subset of {','.join(WORKLOADS)}",
    )
    ap.add_argument("--out", type=Path, default=None, help="also write the JSON to this file")
    args = ap.parse_args(argv)

    selected = args.only or list(WORKLOADS)
    selected = [w for w in WORKLOADS if w in selected]  # canonical order
    result: dict = {}
    errors: dict[str, str] = {}
    t_all = time.perf_counter()
    for name in selected:
        log(f"{name} ({WORKLOADS[name]}) ...")
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(WORKLOADS[name])
            values = module.run(args.quick)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            errors[name] = describe(exc)
            log(f"{name} FAILED: {errors[name]}")
            continue
        result.update(values)
        log(f"{name} done in {time.perf_counter() - t0:.2f}s: {json.dumps(values)}")

    result["python"] = python_info()
    result["machine"] = machine_info()
    result["graphflow"] = graphflow_version()
    result["mode"] = "quick" if args.quick else "full"
    if errors:
        result["errors"] = errors
    log(f"total {time.perf_counter() - t_all:.2f}s")

    text = json.dumps(result, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
