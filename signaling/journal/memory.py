"""The embedded in-memory journal (the default backend of ``journal.base.Journal``).

Each room's journal is bounded by event count and bytes. Events pushed out of the
window are folded (with ``room.evolve``) into a snapshot, so ``load`` still rebuilds the
exact state while ``read_after`` reports ``None`` for a resume that reaches too far back.

All rooms together are bounded too (``max_total_bytes``): otherwise one client creating
room after room could pin rooms x per-room bytes of memory. Over the budget, the rooms
appended to least recently are trimmed first, so abandoned rooms give way to live ones.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from signaling.core.events import Event, event_size
from signaling.core.room import RoomState, evolve
from signaling.journal.base import UnknownRoom


@dataclass(slots=True)
class _Stream:
    snapshot: RoomState
    events: deque[Event] = field(default_factory=deque)
    size: int = 0


class MemoryJournal:
    """In-process journal, bounded per room and in total; survives actor crashes, not
    process restarts."""

    backend = "memory"

    def __init__(
        self, max_events: int = 1024, max_bytes: int = 1 << 20, max_total_bytes: int = 256 << 20
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self.total_bytes = 0
        # Least recently appended first: the order in which the total budget trims.
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    def create(self, room_id: str, initial: RoomState) -> None:
        self._streams[room_id] = _Stream(initial)

    def append(self, room_id: str, events: Sequence[Event]) -> None:
        stream = self._streams.get(room_id)
        if stream is None:
            raise UnknownRoom(room_id)
        self._streams.move_to_end(room_id)
        added = 0
        for event in events:
            stream.events.append(event)
            added += event_size(event)
        stream.size += added
        self.total_bytes += added
        if len(stream.events) > self.max_events or stream.size > self.max_bytes:
            self._trim(stream, self.max_events, self.max_bytes)
        if self.total_bytes > self.max_total_bytes:
            for other in self._streams.values():
                self._trim(other, 0, other.size - (self.total_bytes - self.max_total_bytes))
                if self.total_bytes <= self.max_total_bytes:
                    break

    def _trim(self, stream: _Stream, max_events: int, max_bytes: int) -> None:
        """Fold the oldest events into the snapshot until the stream fits both bounds."""
        kept = stream.events
        snapshot = stream.snapshot
        size = stream.size
        while kept and (len(kept) > max_events or size > max_bytes):
            old = kept.popleft()
            size -= event_size(old)
            snapshot = evolve(snapshot, old)
        self.total_bytes -= stream.size - size
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
        stream = self._streams.pop(room_id, None)
        if stream is not None:
            self.total_bytes -= stream.size
