from __future__ import annotations

import itertools
import random

from signaling.rooms.roomids import RoomIds


def test_ids_have_the_configured_digits_and_are_not_sequential() -> None:
    ids = RoomIds(4, random.Random(7))
    got = [ids.allocate() for _ in range(50)]
    assert all(i is not None and len(i) == 4 and i[0] != "0" for i in got)
    numbers = [int(i) for i in got if i]
    assert len(set(numbers)) == 50
    assert sum(1 for a, b in itertools.pairwise(numbers) if b == a + 1) < 3


def test_exhaustion_and_release() -> None:
    ids = RoomIds(4, random.Random(1))
    taken = {ids.allocate() for _ in range(ids.capacity)}
    assert len(taken) == 9000 and None not in taken
    assert ids.allocate() is None
    ids.release("4321")
    assert ids.allocate() == "4321"
