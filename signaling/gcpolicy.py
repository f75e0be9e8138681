"""CPython's cyclic GC in a long-running server: start-up objects frozen, collections spaced.

Everything alive once the server listens (imported modules, settings, the metric
registry, the hub, the supervisor) lives as long as the process, yet every full
collection would examine it again: about 37,000 of the 53,000-90,000 GC-tracked objects of
a fresh server, so about 40% of each full (generation 2) pause, during which nothing is
relayed. ``gc.freeze()`` moves them to the permanent generation, which no collection
scans. Measured with ``scripts/gc-probe.py`` (``gc.callbacks``), compiled, 100 relaying
connections plus 5,000 idle ones in rooms of 2: the full collections while those
connections arrived took 29 and 53 ms (default) against 9 and 34 ms (frozen).

The steady relay (``signaling-loadtest``, P=2, window 1, 8 s) runs no collection of any
generation: a relayed signal allocates nothing that outlives it, so the generation-0
count does not grow. Collections come with connections, which leave long-lived objects
(about 26 per connection in a room of 2), and CPython's thresholds then run a full
collection every few thousand arrivals, each scanning every connection (0.1-0.2 s at
10-15k on a 2-core VM). ``GEN0_THRESHOLD`` spaces them; cycles are still collected, by
the same three generations. Neither is a setting: no operator has a reason to scan the
start-up heap again, and the threshold's cost (young objects wait longer, about 12% more
RSS under churn) is small next to the pauses it removes.
"""

from __future__ import annotations

import gc

# Generation 0 collects after this many net new GC-tracked objects (CPython: 700). A full
# collection needs ten generation-1 collections, each of ten generation-0 ones, so this
# also spaces the full collections that connections arriving set off: 700 meant one per
# ~70k new objects (~2,700 connections in rooms of 2), 10,000 one per ~1M. Measured with
# scripts/gc-probe.py, compiled, 8 rounds of 3,000 idle + 40 relaying connections opened
# and closed: full collections 11 (1.13 s in all, longest 235 ms) -> 1 (11 ms); all
# pauses 1.31 s -> 0.28 s, longest 31 ms; RSS levelled off at 141 vs 158 MiB (young
# objects wait longer for their collection; what cyclic garbage there was, 112-280
# objects, was collected either way).
GEN0_THRESHOLD = 10_000


def freeze_startup_objects() -> None:
    """Collect once (so start-up garbage is not frozen for good), freeze the rest, and
    space the collections that follow (``GEN0_THRESHOLD``)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, gen1, gen2)
