"""What a session asks its connection to do, as plain values (sans-I/O outputs).

The session (``session.py``) decides; ``Connection`` carries the decisions out: it writes
the frames, closes the socket and posts to room mailboxes. As in h11 or websockets'
``protocol.py``, a decision is data, so a unit test reads it without a socket, an event
loop or a room actor. Only rare paths (create, join, refusals, timers) build these
objects; a relayed signal comes back from ``Session.receive`` as its command alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from signaling.core import commands as c
from signaling.core.errors import ErrorCode
from signaling.rooms.peer import RoomHandle


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the HTTP handshake: ``status`` with ``body``; ``reason`` labels the metric."""

    status: int
    reason: str
    body: str
    retry_after: int | None = None  # seconds, for a Retry-After header


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer one client request with ``{"type":"error"}`` (``retryAfterMs`` when set);
    ``close`` asks for a 1008 close after it."""

    code: ErrorCode
    message: str
    retry_after_ms: int | None = None
    close: bool = False


@dataclass(frozen=True, slots=True)
class Post:
    """Put ``command`` in ``room``'s mailbox.

    ``attach``: with this connection as its ``Peer`` (the room answers it and calls its
    ``entered``/``refused``/``evicted``); otherwise the room hears it from nobody.
    ``force``: a system message the mailbox never refuses. A post that is not forced can
    be refused (the mailbox is full): the connection then reports it with
    ``Session.undelivered``, and the session answers ``overloaded`` and routes the
    client back to ``previous`` (where its commands went before this entry)."""

    room: RoomHandle
    command: c.Command
    attach: bool = False
    force: bool = True
    previous: RoomHandle | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection: the session's timers found a reason."""

    code: int
    reason: str
    error: Refuse | None = None


@dataclass(frozen=True, slots=True)
class Abort:
    """Drop the socket without a closing handshake: it stopped answering."""

    reason: str


@dataclass(frozen=True, slots=True)
class Ping:
    """Send a WebSocket ping: the client has been silent for a ping interval."""


PING: Final = Ping()
# What the session's clocks can ask for (``Session.due``).
Due = Close | Abort | Ping
# What a client message or a room's verdict can ask for, in order.
Effect = Post | Refuse
Effects = tuple[Effect, ...]
NOTHING: Final[Effects] = ()
OVERLOADED: Final = Refuse("overloaded", "Room is busy; retry later")
