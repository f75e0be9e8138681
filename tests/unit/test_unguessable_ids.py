"""Unguessable room ids: 144 random bits, URL-safe, never exhausted, released cleanly."""

from __future__ import annotations

import re

from signaling.rooms.roomids import RoomIds


def test_unguessable_ids_are_long_url_safe_and_distinct() -> None:
    ids = RoomIds(4)
    got = {ids.allocate(unguessable=True) for _ in range(2000)}
    assert len(got) == 2000
    for room_id in got:
        assert room_id is not None and re.fullmatch(r"[A-Za-z0-9_-]{24}", room_id)
    assert len(ids) == 0  # the short id space is untouched


def test_they_do_not_run_out_when_short_ids_do() -> None:
    ids = RoomIds(4)
    short = [ids.allocate() for _ in range(9000)]
    assert ids.allocate() is None
    long_id = ids.allocate(unguessable=True)
    assert long_id is not None
    ids.release(long_id)
    ids.release(str(short[0]))
    assert ids.allocate() == short[0]
