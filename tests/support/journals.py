"""Journals for fault injection: the real ``MemoryJournal`` plus switches that make the
next operations fail, and a complete, never-trimmed record of what was committed (the
ground truth tests compare client frames and socket registries against)."""

from __future__ import annotations

from collections.abc import Sequence

from signaling.core.events import Event
from signaling.core.room import RoomState
from signaling.journal import MemoryJournal
from signaling.transport.server import Hub
from tests.support.inproc import MemoryClient
from tests.support.waiting import eventually


class JournalDown(ConnectionError):
    """The injected failure."""


class FaultyJournal(MemoryJournal):
    backend = "memory"

    def __init__(self, max_events: int = 1024) -> None:
        super().__init__(max_events=max_events)
        self.history: dict[str, list[Event]] = {}  # everything committed, per room
        self.ambiguous: set[tuple[str, int]] = set()  # committed, but reported failed
        self.fail_appends = 0  # the next N appends raise
        self.ambiguous_appends = False  # ... after committing (a lost acknowledgement)
        self.fail_loads = 0
        self.fail_reads = 0
        self.fail_creates = 0
        self.down = False  # check() raises: the store is unreachable
        self.appends = 0

    async def create(self, room_id: str, initial: RoomState) -> bool:
        if self.fail_creates:
            self.fail_creates -= 1
            raise JournalDown("create")
        claimed = await super().create(room_id, initial)
        if claimed:
            self.history[room_id] = []
        return claimed

    def append(
        self,
        room_id: str,
        events: Sequence[Event],
        expected_seq: int,
        snapshot: RoomState | None = None,
    ) -> None:
        self.appends += 1
        if self.fail_appends:
            self.fail_appends -= 1
            if not self.ambiguous_appends:
                raise JournalDown("append")
            super().append(room_id, events, expected_seq, snapshot)
            self.history[room_id].extend(events)
            self.ambiguous.update((room_id, event.seq) for event in events)
            raise JournalDown("append (committed, acknowledgement lost)")
        super().append(room_id, events, expected_seq, snapshot)
        self.history[room_id].extend(events)

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        if self.fail_loads:
            self.fail_loads -= 1
            raise JournalDown("load")
        return await super().load(room_id)

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        if self.fail_reads:
            self.fail_reads -= 1
            raise JournalDown("read")
        return await super().read_after(room_id, seq)

    async def check(self) -> None:
        if self.down:
            raise JournalDown("check")


async def refuse_creates(hub: Hub, journal: FaultyJournal, n: int) -> list[MemoryClient]:
    """Take the store down and have ``n`` clients each try to create a room: every one is
    answered ``unavailable`` (``n`` journal failures: readiness counts them). The clients
    are returned for the caller to close."""
    journal.down = True
    journal.fail_creates = n
    clients: list[MemoryClient] = []
    for _ in range(n):
        client = MemoryClient(hub, True)
        clients.append(client)
        client.send({"type": "create"})
        await eventually(lambda cl=client: cl.messages(), what="an answer")  # type: ignore[misc]
        assert client.messages()[-1]["code"] == "unavailable"
    return clients
