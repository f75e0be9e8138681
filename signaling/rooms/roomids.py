"""Room id allocation: random among the free ids, never sequential.

Ids have a fixed number of digits and no leading zero (the seed's clients may treat
them as numbers), so 4 digits give 9000 ids. Random probing finds a free id at once
while the space is sparse; when it is dense, one uniform pick among the free ids.

Short ids are guessable by design (the seed contract). A v2 client may ask for an
unguessable id instead: 144 random bits, URL-safe (``secrets.token_urlsafe(18)``, 24
characters). Any client, v1 included, joins it by id like any other.
"""

from __future__ import annotations

import random
import re
import secrets

UNGUESSABLE_BYTES = 18  # 144 bits: beyond any scan, and URL-safe without padding
UNGUESSABLE_LENGTH = 24  # its base64url text
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


def numeric(room_id: str) -> bool:
    """A short numeric id (the seed's kind), not an unguessable one."""
    return room_id.isascii() and room_id.isdigit()


class RoomIds:
    def __init__(self, digits: int = 4, rng: random.Random | None = None) -> None:
        self.low = 10 ** (digits - 1)
        self.high = 10**digits
        self.capacity = self.high - self.low
        self._rng = rng or random.Random()
        self._used: set[int] = set()
        self._unguessable: set[str] = set()

    def __len__(self) -> int:
        """Short ids in use (the space that can run out)."""
        return len(self._used)

    def allocate(self, unguessable: bool = False) -> str | None:
        """A fresh id, or None when every short id is taken (unguessable ids never run
        out)."""
        if unguessable:
            while True:
                room_id = secrets.token_urlsafe(UNGUESSABLE_BYTES)
                if room_id not in self._unguessable:
                    self._unguessable.add(room_id)
                    return room_id
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

    def plausible(self, room_id: str) -> bool:
        """Whether ``room_id`` has the shape of an id this server hands out (so a lookup in
        a shared journal is worth a round trip)."""
        if numeric(room_id):
            return self.low <= int(room_id) < self.high and room_id[0] != "0"
        return len(room_id) == UNGUESSABLE_LENGTH and _URLSAFE.fullmatch(room_id) is not None

    def reserve(self, room_id: str) -> None:
        """Mark an id in use that another instance allocated (a room joined through a
        shared journal); ``release`` frees it again."""
        if numeric(room_id):
            self._used.add(int(room_id))
        else:
            self._unguessable.add(room_id)

    def release(self, room_id: str) -> None:
        if room_id in self._unguessable:
            self._unguessable.discard(room_id)
        else:
            self._used.discard(int(room_id))
