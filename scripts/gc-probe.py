"""Run ``python -m signaling`` with a ``gc.callbacks`` probe: `python scripts/gc-probe.py`
(same environment as the server). At exit (SIGTERM drains as usual) it prints, per
generation, how many collections ran, their total and longest pause, and the objects they
examined, plus the tracked objects left: the evidence behind the GC policy in
``signaling/gcpolicy.py``. ``GC_PROBE_OUT=FILE`` writes the report to FILE as JSON too.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any

from signaling.__main__ import main

stats: dict[int, dict[str, float]] = {
    g: {"count": 0, "total_ms": 0.0, "max_ms": 0.0, "collected": 0} for g in range(3)
}
started: list[float] = [0.0]
events: list[tuple[float, int, float]] = []


def probe(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        started[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - started[0]) * 1e3
    events.append((time.time(), info["generation"], ms))
    s = stats[info["generation"]]
    s["count"] += 1
    s["total_ms"] += ms
    s["max_ms"] = max(s["max_ms"], ms)
    s["collected"] += info["collected"]


def report() -> None:
    out = {
        "generations": stats,
        "tracked": len(gc.get_objects()),
        "frozen": gc.get_freeze_count(),
        "threshold": gc.get_threshold(),
        "events": events,
    }
    for g, s in stats.items():
        print(
            f"gc gen{g}: {s['count']:.0f} collections, {s['total_ms']:.1f} ms total, "
            f"max {s['max_ms']:.2f} ms, {s['collected']:.0f} collected",
            file=sys.stderr,
        )
    print(f"gc tracked {out['tracked']}, frozen {out['frozen']}", file=sys.stderr)
    if path := os.environ.get("GC_PROBE_OUT"):
        with open(path, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    gc.callbacks.append(probe)
    try:
        code = main()
    finally:
        report()
    sys.exit(code)
