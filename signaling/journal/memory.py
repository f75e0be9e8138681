"""The embedded in-memory journal (the default backend of ``journal.base.Journal``).

Each room's stream keeps a window of events (count and bytes) for resume. Events leave the
window only once the actor's latest snapshot covers them; the journal never folds events
itself (the actor owns its state and hands over a snapshot with every append, which for an
in-process store is a reference to an immutable object: free). ``read_after`` reports
``None`` for a resume that reaches behind the window.

All rooms together are bounded too (``max_total_bytes``): otherwise one client creating
room after room could pin rooms x per-room bytes of memory. Over the budget, the rooms
appended to least recently are trimmed first, so abandoned rooms give way to live ones.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from signaling.core.events import Event, events_size
from signaling.core.room import RoomState
from signaling.journal.base import Deliver, StaleWriter, UnknownRoom
from signaling.journal.window import drop_covered


@dataclass(slots=True)
class _Stream:
    snapshot: RoomState
    seq: int  # the last committed sequence number
    base: int  # events up to this seq are gone (resume behind it fails)
    events: deque[Event] = field(default_factory=deque)
    size: int = 0


class MemoryJournal:
    """In-process journal, bounded per room and in total; survives actor crashes, not
    process restarts."""

    backend = "memory"
    shared = False  # one process: its actors are the only writers
    on_failure: Callable[[], None] | None = None  # nothing runs in the background here
    snapshot_every = 1  # a snapshot is a reference here: take one with every append

    def __init__(
        self, max_events: int = 1024, max_bytes: int = 512 << 10, max_total_bytes: int = 256 << 20
    ) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.max_total_bytes = max_total_bytes
        self.total_bytes = 0
        # Least recently appended first: the order in which the total budget trims.
        self._streams: OrderedDict[str, _Stream] = OrderedDict()

    def __contains__(self, room_id: str) -> bool:
        return room_id in self._streams

    async def create(self, room_id: str, initial: RoomState) -> bool:
        if room_id in self._streams:
            return False
        self._streams[room_id] = _Stream(initial, initial.seq, initial.seq)
        return True

    def append(
        self,
        room_id: str,
        events: Sequence[Event],
        expected_seq: int,
        snapshot: RoomState | None = None,
    ) -> None:
        stream = self._streams.get(room_id)
        if stream is None:
            raise UnknownRoom(room_id)
        if stream.seq != expected_seq:
            raise StaleWriter(room_id, expected_seq, stream.seq)
        if not events:
            return
        last = events[-1].seq
        if events[0].seq != expected_seq + 1 or last != expected_seq + len(events):
            raise ValueError(f"room {room_id}: events must continue at seq {expected_seq + 1}")
        if snapshot is not None:
            if snapshot.seq != last:
                raise ValueError(f"room {room_id}: snapshot at {snapshot.seq}, events end {last}")
            stream.snapshot = snapshot
        self._streams.move_to_end(room_id)
        kept = stream.events
        kept.extend(events)
        added = events_size(events)  # one call per batch, not one per event
        stream.seq = last
        stream.size += added
        self.total_bytes += added
        if len(kept) > self.max_events or stream.size > self.max_bytes:
            self._trim(stream, self.max_events, self.max_bytes)
        if self.total_bytes > self.max_total_bytes:
            for other in self._streams.values():
                self._trim(other, 0, other.size - (self.total_bytes - self.max_total_bytes))
                if self.total_bytes <= self.max_total_bytes:
                    break

    def _trim(self, stream: _Stream, max_events: int, max_bytes: int) -> None:
        """Drop the oldest events the snapshot covers until the stream fits both bounds."""
        size, base = drop_covered(
            stream.events, stream.snapshot.seq, max_events, max_bytes, stream.size, stream.base
        )
        self.total_bytes -= stream.size - size
        stream.size = size
        stream.base = base

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        stream = self._streams.get(room_id)
        if stream is None:
            raise UnknownRoom(room_id)
        after = stream.snapshot.seq
        return stream.snapshot, [event for event in stream.events if event.seq > after]

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        stream = self._streams.get(room_id)
        if stream is None or seq < stream.base:
            return None
        return [event for event in stream.events if event.seq > seq]

    async def delete(self, room_id: str) -> None:
        stream = self._streams.pop(room_id, None)
        if stream is not None:
            self.total_bytes -= stream.size

    async def check(self) -> None:
        return None

    def follow(self, room_id: str, after_seq: int, deliver: Deliver) -> None:
        return None

    def unfollow(self, room_id: str) -> None:
        return None

    async def close(self) -> None:
        return None
