"""CPython's cyclic GC in a long-running server: start-up objects are frozen once serving.

Everything alive once the server listens (imported modules, settings, the metric
registry, the hub, the supervisor) lives as long as the process, yet every full
collection would examine it again: about 37,000 of the 53,000-90,000 GC-tracked objects of
a fresh server, so about 40% of each full (generation 2) pause, during which nothing is
relayed. ``gc.freeze()`` moves them to the permanent generation, which no collection
scans. Nothing else changes: generations 0-2 keep CPython's thresholds, so reference
cycles made later (exceptions with tracebacks, closed connections) are still collected as
before, and memory stays bounded exactly as without the freeze.

Measured with ``scripts/gc-probe.py`` (``gc.callbacks``), compiled build, 100 relaying
connections plus 5,000 idle ones in rooms of 2: the full collections while those
connections arrive took 29 and 53 ms (default) against 9 and 34 ms (frozen). The steady
relay itself (``signaling-loadtest``, P=2, window 1, 8 s) ran no collection of any
generation in either case: a relayed signal allocates nothing that outlives it, so the
generation-0 count does not grow and the thresholds need no tuning. Not a setting: no
operator has a reason to scan the start-up heap again.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect once (so start-up garbage is not frozen for good), then freeze the rest."""
    gc.collect()
    gc.freeze()
