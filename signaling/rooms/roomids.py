"""Room id allocation: random among the free ids, never sequential.

Ids have a fixed number of digits and no leading zero (the seed's clients may treat
them as numbers), so 4 digits give 9000 ids. Random probing finds a free id at once
while the space is sparse; when it is dense, one uniform pick among the free ids.
"""

from __future__ import annotations

import random


class RoomIds:
    def __init__(self, digits: int = 4, rng: random.Random | None = None) -> None:
        self.low = 10 ** (digits - 1)
        self.high = 10**digits
        self.capacity = self.high - self.low
        self._rng = rng or random.Random()
        self._used: set[int] = set()

    def __len__(self) -> int:
        return len(self._used)

    def allocate(self) -> str | None:
        """A fresh id, or None when every id is taken."""
        used = self._used
        free = self.capacity - len(used)
        if free <= 0:
            return None
        rng = self._rng
        for _ in range(16):
            n = rng.randrange(self.low, self.high)
            if n not in used:
                used.add(n)
                return str(n)
        k = rng.randrange(free)
        for n in range(self.low, self.high):
            if n not in used:
                if k == 0:
                    used.add(n)
                    return str(n)
                k -= 1
        return None  # pragma: no cover - free > 0 guarantees a pick

    def release(self, room_id: str) -> None:
        self._used.discard(int(room_id))
