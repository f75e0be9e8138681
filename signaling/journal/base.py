"""The journal contract: where room events are appended before their effects go out.

``Journal`` is the interface the room actors depend on; ``memory.MemoryJournal`` is the
embedded default. The interface is shaped for a networked backend too (Redis Streams):
appends may return an awaitable, which the actor awaits once per mailbox batch (group
commit), and reads are coroutines.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from signaling.core.events import Event
from signaling.core.room import RoomState


class UnknownRoom(KeyError):
    """The journal holds nothing for this room."""


class Journal(Protocol):
    backend: str

    def create(self, room_id: str, initial: RoomState) -> None:
        """Start a room's stream from ``initial`` (seq 0). Synchronous: room creation is
        on the client's request path; a networked backend creates its stream lazily."""

    def append(self, room_id: str, events: Sequence[Event]) -> Awaitable[None] | None:
        """Append in order; ``None`` means already durable, else await the result."""

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        """A snapshot and the events after it: ``replay`` of both is the current state."""

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        """Events with a sequence number above ``seq``, or ``None`` if some were trimmed."""

    def delete(self, room_id: str) -> None:
        """Forget a room (it expired). Synchronous: nobody waits for it; a networked
        backend deletes in the background."""
