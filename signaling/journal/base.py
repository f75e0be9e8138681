"""The journal contract: where a room's events are committed before any effect leaves.

``Journal`` is what the room runtime depends on; ``memory.MemoryJournal`` is the embedded
default, and the contract is written so that a networked store (Redis Streams) can keep it
without touching the core or the actors:

- **Claim, create, delete are coroutines and ordered.** ``create`` is the room-id claim: it
  makes the stream only if no stream of that id exists (a networked store does it with one
  conditional write) and answers whether it did. The supervisor releases an id only after
  ``delete`` returned, so an id is never reused while its old stream is still there.
- **Optimistic concurrency.** ``append(room, events, expected_seq)`` commits only if the
  stream's last sequence number is ``expected_seq``, else raises ``StaleWriter``: an actor
  that lost its room (a restart elsewhere, a retired room) cannot fork its history. It may
  return an awaitable; the actor awaits it once per mailbox batch (group commit), and the
  in-memory journal returns ``None`` (already durable) so the hot path pays no coroutine.
- **Snapshots belong to the actor.** The actor passes its current state with an append
  every ``snapshot_every`` events; the journal stores it as given and never folds events
  itself. It may forget events the latest snapshot covers (keeping a window for resume).
- **Events cross process boundaries**: ``signaling.journal.codec`` defines their versioned
  encoding, and their ``at`` is wall-clock time.
- **Shared journals are followed.** When replicas share the store (``shared``), each one
  follows the rooms it serves and feeds what others committed through the same actor
  and delivery path as its own events.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from signaling.core.events import Event
from signaling.core.room import RoomState


class UnknownRoom(KeyError):
    """The journal holds nothing for this room."""


class StaleWriter(Exception):
    """An append whose ``expected_seq`` is not the stream's last sequence number."""

    def __init__(self, room_id: str, expected: int, actual: int) -> None:
        super().__init__(f"room {room_id}: expected seq {expected}, stream is at {actual}")
        self.room_id = room_id
        self.expected = expected
        self.actual = actual


# Handed the events of one room another writer committed, in order (see ``follow``).
Deliver = Callable[[list[Event]], None]


class Journal(Protocol):
    backend: str
    # How often (in events) the actor hands the journal a snapshot of its state.
    snapshot_every: int
    # Whether other processes write the same streams (replicas): then a room has a writer
    # per process holding members, appends can be overtaken, and rooms are followed.
    shared: bool
    # Called when the journal's own background work (a shared journal's follower) finds
    # the store failing, outside any call the rooms make: set by the supervisor, which
    # counts it for readiness like a failed append (a replica whose members are idle must
    # not stay ready while its store is gone).
    on_failure: Callable[[], None] | None

    async def create(self, room_id: str, initial: RoomState) -> bool:
        """Claim ``room_id``: start its stream from ``initial`` (seq 0) unless a stream of
        that id exists. False: the id is taken (by another instance, or not yet deleted)."""

    def append(
        self,
        room_id: str,
        events: Sequence[Event],
        expected_seq: int,
        snapshot: RoomState | None = None,
    ) -> Awaitable[None] | None:
        """Commit ``events`` (consecutive, starting at ``expected_seq + 1``) or raise
        ``StaleWriter``/``UnknownRoom``; ``snapshot``, if given, is the state after them.
        ``None`` means committed already; otherwise await the result."""

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        """The latest snapshot and the events after it: ``replay`` of both is the room."""

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        """Events with a sequence number above ``seq``, or ``None`` if some were trimmed."""

    async def delete(self, room_id: str) -> None:
        """Forget a room's stream; when it returns, ``create`` may claim the id again."""

    async def check(self) -> None:
        """Raise if the store cannot be reached (readiness probes a failing journal)."""

    def follow(self, room_id: str, after_seq: int, deliver: Deliver) -> None:
        """Hand ``deliver`` every event of ``room_id`` above ``after_seq`` as it is
        committed, by whichever process (its own appends too: the caller skips what it
        has). A journal no other process writes has nothing to follow and ignores it."""

    def unfollow(self, room_id: str) -> None:
        """Stop following ``room_id`` and forget what was known of its stream (this
        process no longer serves the room)."""

    async def close(self) -> None:
        """Release connections (at shutdown, after the rooms stopped)."""
