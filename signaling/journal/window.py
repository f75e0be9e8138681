"""Trimming a room's event window from the front: the memory journal's per-signal loop.

Once a room's window is full, every relayed signal pushes one old event out, so this loop
runs once per signal. It lives in a module of its own because the memory journal stays
interpreted (tests and other backends subclass it, which compiled classes refuse) while
this function is compiled with the hot path (``setup.py``).
"""

from __future__ import annotations

from collections import deque

from signaling.core.events import Event, event_size


def drop_covered(
    kept: deque[Event], covered: int, max_events: int, max_bytes: int, size: int, base: int
) -> tuple[int, int]:
    """Pop the oldest events up to ``covered`` (the snapshot's seq) until ``kept`` holds at
    most ``max_events`` events of at most ``max_bytes`` in all; ``size`` is their byte
    count now, ``base`` the seq of the last event dropped so far. Returns the new pair."""
    while kept and (len(kept) > max_events or size > max_bytes) and kept[0].seq <= covered:
        old = kept.popleft()
        size -= event_size(old)
        base = old.seq
    return size, base
