"""The journal: where room events are appended before their effects go out.

``Journal`` is the interface the actors depend on; ``MemoryJournal`` is the embedded
default. The interface is shaped for a networked backend too (Redis Streams): appends
may return an awaitable, which the actor awaits once per mailbox batch (group commit),
and reads are coroutines.

Each room's journal is bounded by event count and bytes. Events pushed out of the
window are folded (with ``room.evolve``) into a snapshot, so ``load`` still rebuilds the
exact state while ``read_after`` reports ``None`` for a resume that reaches too far back.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from signaling.events import Event, event_size
from signaling.room import RoomState, evolve


class UnknownRoom(KeyError):
    """The journal holds nothing for this room."""


class Journal(Protocol):
    backend: str

    def create(self, room_id: str, initial: RoomState) -> Awaitable[None] | None:
        """Start a room's stream from ``initial`` (seq 0)."""

    def append(self, room_id: str, events: Sequence[Event]) -> Awaitable[None] | None:
        """Append in order; ``None`` means already durable, else await the result."""

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        """A snapshot and the events after it: ``replay`` of both is the current state."""

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        """Events with a sequence number above ``seq``, or ``None`` if some were trimmed."""

    def delete(self, room_id: str) -> Awaitable[None] | None:
        """Forget a room (it expired)."""


@dataclass(slots=True)
class _Stream:
    snapshot: RoomState
    events: deque[Event] = field(default_factory=deque)
    size: int = 0


class MemoryJournal:
    """In-process journal, bounded per room; survives actor crashes, not process restarts."""

    backend = "memory"

    def __init__(self, max_events: int = 1024, max_bytes: int = 1 << 20) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._streams: dict[str, _Stream] = {}

    def create(self, room_id: str, initial: RoomState) -> None:
        self._streams[room_id] = _Stream(initial)

    def append(self, room_id: str, events: Sequence[Event]) -> None:
        stream = self._streams.get(room_id)
        if stream is None:
            raise UnknownRoom(room_id)
        kept = stream.events
        size = stream.size
        for event in events:
            kept.append(event)
            size += event_size(event)
        if len(kept) > self.max_events or size > self.max_bytes:
            snapshot = stream.snapshot
            while kept and (len(kept) > self.max_events or size > self.max_bytes):
                old = kept.popleft()
                size -= event_size(old)
                snapshot = evolve(snapshot, old)
            stream.snapshot = snapshot
        stream.size = size

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        stream = self._streams.get(room_id)
        if stream is None:
            raise UnknownRoom(room_id)
        return stream.snapshot, list(stream.events)

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        stream = self._streams.get(room_id)
        if stream is None or seq < stream.snapshot.seq:
            return None
        return [event for event in stream.events if event.seq > seq]

    def delete(self, room_id: str) -> None:
        self._streams.pop(room_id, None)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._streams
