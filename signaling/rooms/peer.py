"""What the room runtime knows of a client connection, and how connections reach a room.

The rooms package never imports the transport: a connection is a ``Peer`` (implemented by
``transport.connection.Connection``), and a connection reaches a room through its
``RoomHandle``, which outlives actor restarts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, final

from signaling.core import commands as c
from signaling.core.errors import ErrorCode
from signaling.core.events import Event
from signaling.rooms.mailbox import Mailbox

if TYPE_CHECKING:
    from signaling.rooms.fanout import Fanout


class Peer(Protocol):
    """A local client connection, as rooms see it."""

    protocol: c.Protocol

    @property
    def peer_id(self) -> str:
        """Its member id (a resume takes over an older one); read, never set, by rooms."""

    def write(self, frame: bytes) -> None: ...

    def error(self, code: ErrorCode, message: str) -> None: ...

    def close(self, code: int, reason: str) -> None: ...

    def ice_servers(self, peer_id: str) -> str | None:
        """ICE servers (JSON, TURN credentials for ``peer_id`` included) for its v2
        ``room_created``/``room_joined``/``resumed`` reply, or None when there are none."""

    def entered(self, room: RoomHandle, peer_id: str) -> None:
        """Its create/join/resume is committed: it is member ``peer_id`` of ``room`` now
        (and leaves the room it was in before)."""

    def refused(self, room: RoomHandle) -> None:
        """Its create/join/resume was refused: it stays where it was."""

    def evicted(self, room: RoomHandle) -> None:
        """It is no longer a member of ``room`` (left, expired, resumed elsewhere, lost)."""


@final
class Followed:
    """Events of this room that another process committed, read from a shared journal
    (``Journal.follow``). Not a command: nothing is decided, the actor folds them in order
    and hands them to delivery like its own."""

    __slots__ = ("events",)

    def __init__(self, events: list[Event]) -> None:
        self.events = events


# A command (or followed events) and the connection that sent it (None for timers,
# implicit leaves and followed events).
Envelope = tuple[c.Command | Followed, Peer | None]


class RoomHandle:
    """How connections reach a room: its id, mailbox and local delivery. Survives actor
    restarts, so members stay attached while the authority is rebuilt from the journal."""

    __slots__ = ("failed", "fanout", "mailbox", "room_id", "suspects")

    def __init__(self, room_id: str, mailbox: Mailbox[Envelope], fanout: Fanout) -> None:
        self.room_id = room_id
        self.mailbox = mailbox
        self.fanout = fanout
        # The timer or disconnect that crashed the last actor: retried once, not twice.
        self.failed: Envelope | None = None
        # Peers whose entry failed ambiguously (told `unavailable`; the append may have
        # committed): the next actor makes those the journal counts as members leave.
        # None until one exists: an empty set is 216 bytes, and every room has a handle.
        self.suspects: set[str] | None = None
