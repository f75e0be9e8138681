"""The start-up heap is frozen out of every later collection and generation 0 waits for
more objects; cycles made afterwards are still collected (the GC stays on)."""

from __future__ import annotations

import gc
import weakref

from signaling import gcpolicy


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_startup_objects_are_frozen_and_later_cycles_still_collected() -> None:
    long_lived = [_Node() for _ in range(100)]
    threshold = gc.get_threshold()
    try:
        gcpolicy.freeze_startup_objects()
        assert gc.get_freeze_count() >= len(long_lived)
        assert gc.isenabled()
        assert gc.get_threshold() == (gcpolicy.GEN0_THRESHOLD, *threshold[1:])
        a, b = _Node(), _Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # only a collection frees a cycle
        gc.collect()
        assert gone() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
