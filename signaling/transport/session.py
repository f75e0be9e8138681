"""A client's session, sans-I/O: explicit state, injected clock, one admission hook.

``Connection`` moves bytes; this decides. The session knows where a client is in its
life, where its commands go and what it may do next:

    HANDSHAKE --accept--> OPEN --enter--> IN_ROOM --leave--> OPEN
        |                  |                 |
        +---------+--------+--------+--------+
                  v                 v
               CLOSING ---------> CLOSED

Every transition is one row of ``TRANSITIONS`` (as in h11's ``_state.py``); any other is
a ``SessionError``, a bug in the caller rather than a client's fault.

Inputs, like websockets' ``protocol.py``: the upgrade request (``handshake``), each
decoded text message (``receive``), the rooms' verdicts on an entry (``entered``,
``refused``, ``evicted``), the socket going away (``disconnect``, ``closed``) and the
clocks (``due``). Outputs are values (``effects``): a relayed signal comes back as its
``Signal`` command, for the connection to post to ``room``'s mailbox; everything else
as ``Post`` (this command to that room's mailbox, with or without this connection
attached, forced or not) and ``Refuse`` (an error reply, possibly a 1008 close).

Every decision that limits or authenticates a client goes through ``Admission``
(process-wide state); rooms are found through a ``RoomDirectory`` (the supervisor, in
the server), never by reaching into the room runtime. Time comes in as arguments
(``now`` on the event loop's monotonic clock, ``wall`` in Unix seconds for tokens and
commands), so the tests drive it by hand and nothing here sleeps, reads a socket or a
clock. Requests other than ``signal`` are handled in ``requests``.
"""

from __future__ import annotations

import enum
import math
import uuid
from collections.abc import Sequence
from typing import Final, Protocol

from signaling.core import commands as c
from signaling.core import wire
from signaling.core.errors import ErrorCode
from signaling.rooms.peer import RoomHandle
from signaling.transport import requests
from signaling.transport.addresses import client_address
from signaling.transport.admission import Admission
from signaling.transport.auth import AuthError, Grant, token_from
from signaling.transport.effects import (
    NOTHING,
    OVERLOADED,
    PING,
    Abort,
    Close,
    Due,
    Effects,
    Post,
    Refuse,
    Reject,
)
from signaling.transport.limits import ConnectionLimits, retry_after_ms


class RoomDirectory(Protocol):
    """Where sessions find rooms (``rooms.supervisor.Supervisor`` in the server)."""

    def create(self, unguessable: bool) -> RoomHandle | None:
        """A new room (its id short or ``unguessable``), or None when no id is free."""

    def get(self, room_id: str) -> RoomHandle | None:
        """The live room ``room_id``, or None."""


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    IN_ROOM = "in_room"
    CLOSING = "closing"
    CLOSED = "closed"


TRANSITIONS: Final[dict[Phase, frozenset[Phase]]] = {
    Phase.HANDSHAKE: frozenset({Phase.OPEN, Phase.CLOSING, Phase.CLOSED}),
    Phase.OPEN: frozenset({Phase.IN_ROOM, Phase.CLOSING, Phase.CLOSED}),
    Phase.IN_ROOM: frozenset({Phase.IN_ROOM, Phase.OPEN, Phase.CLOSING, Phase.CLOSED}),
    Phase.CLOSING: frozenset({Phase.CLOSED}),
    Phase.CLOSED: frozenset(),
}

POLICY_VIOLATION: Final = 1008
NOT_IN_ROOM: Final[Effects] = (Refuse("not_in_room", "Not in a room: create or join first"),)


class SessionError(Exception):
    """A transition the table does not allow: the caller's bug, never the client's."""


def _header(headers: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _all(headers: Sequence[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


class Session:
    __slots__ = (
        "_counted",
        "_open",
        "_room_reserved",
        "address",
        "admission",
        "closing_since",
        "expires_at",
        "grant",
        "home",
        "limits",
        "peer_id",
        "phase",
        "pinged_at",
        "protocol",
        "room",
        "roomless_since",
        "rooms",
        "started",
    )

    def __init__(
        self, admission: Admission, peer: str | None, now: float, rooms: RoomDirectory
    ) -> None:
        self.admission = admission
        self.rooms = rooms
        self.peer_id = str(uuid.uuid4())  # until a resume takes over an older one
        self.protocol: c.Protocol = 1  # the seed's, unless the handshake chose v2
        # Where this client's commands go (the room it asked for last) and the room whose
        # journal lists it as a member; they differ while a create/join/resume is pending.
        self.room: RoomHandle | None = None
        self.home: RoomHandle | None = None
        self.phase = Phase.HANDSHAKE
        self.address = client_address(peer, ())  # until the handshake's headers are read
        self.grant: Grant | None = None
        self.expires_at: float | None = None  # loop time at which the token expires
        policy = admission.connection
        self.limits = ConnectionLimits(policy.messages, policy.bytes, policy.strikes, now)
        self.started = self.roomless_since = now
        self.closing_since = 0.0
        self.pinged_at = -math.inf  # when the last keepalive ping went out
        self._counted = False  # holds one of its address's connection slots
        self._room_reserved = False
        self._open = False  # counted in the server's open WebSockets

    def _to(self, phase: Phase) -> None:
        if phase not in TRANSITIONS[self.phase]:
            raise SessionError(f"{self.phase.value} -> {phase.value}")
        self.phase = phase

    # ---- handshake -------------------------------------------------------------------

    def handshake(
        self,
        peer: str | None,
        path: str,
        headers: Sequence[tuple[str, str]],
        subprotocols: Sequence[str],
        now: float,
        wall: float,
    ) -> Reject | None:
        """Decide a WebSocket upgrade request; None = accept (then call ``opened``)."""
        if self.phase is not Phase.HANDSHAKE:
            raise SessionError(f"handshake in {self.phase.value}")
        adm = self.admission
        self.address = address = client_address(
            peer,
            adm.trusted,
            forwarded=_all(headers, "forwarded"),
            x_forwarded=_all(headers, "x-forwarded-for"),
        )
        if not adm.origin_allowed(_header(headers, "origin")):
            return self._reject(403, "origin", "Origin not allowed.\n")
        table = adm.addresses
        wait = table.allow(address, "handshakes", now)
        if wait:
            return self._reject(429, "handshake_rate", "Too many handshakes.\n", wait)
        if adm.websockets >= adm.max_connections:
            return self._reject(503, "server_full", "Server is full.\n", 1.0)
        if adm.authenticator is not None:
            token = token_from(headers, path, subprotocols)
            if token is None:
                return self._reject(401, "unauthorized", "A token is required.\n")
            try:
                grant = adm.authenticator.verify(token, wall)
            except AuthError as err:
                return self._reject(401, "unauthorized", f"Unauthorized: {err.reason}.\n")
            self.grant = grant
            self.expires_at = now + (grant.expires - wall)
        if not table.open_connection(address, now):
            return self._reject(429, "address_connections", "Too many connections.\n", 1.0)
        self._counted = True
        return None

    def _reject(self, status: int, reason: str, body: str, wait: float = 0.0) -> Reject:
        self.admission.rejected(reason)
        retry = max(1, int(wait + 0.999)) if wait else None
        return Reject(status, reason, body, retry)

    def opened(self, now: float, protocol: c.Protocol = 1) -> None:
        """The 101 went out, for the seed's protocol (1) or ``signaling.v2`` (2)."""
        self._to(Phase.OPEN)
        self.protocol = protocol
        self._open = True
        self.admission.websockets += 1
        self.roomless_since = now

    # ---- messages (the hot path) -------------------------------------------------------

    def message(self, size: int, now: float) -> Refuse | None:
        """Admit one client message (text, binary, or a ping/pong counted one byte over
        its payload) before it is parsed: the only admission decision, one bucket charge
        or one refusal per message (the connection asks nothing else); None = go on."""
        limits = self.limits
        wait = limits.admit(now, size)
        if not wait:
            return None
        self.admission.limited(limits.refused)
        if not limits.strike(now):
            self.admission.rejected("abuse")
            return Refuse("rate_limited", "Rate limit exceeded", retry_after_ms(wait), True)
        return Refuse("rate_limited", "Rate limit exceeded", retry_after_ms(wait))

    def receive(self, text: str, now: float, wall: float) -> c.Signal | Effects:
        """One client text message, admitted (``message``) and decoded: a ``Signal`` to
        post to ``room`` with this connection attached, or what to do instead.

        The relay's hot path: one call per message, no allocation beyond the command
        (the connection adds the mailbox tuple). Other requests go to ``requests``."""
        try:
            msg = wire.parse(text)
        except wire.WireError as err:
            self.admission.metrics.received["invalid"] += 1
            return (Refuse(err.code, err.message),)
        if msg.type != "signal":
            return requests.dispatch(self, msg, now, wall)
        self.admission.metrics.received["signal"] += 1
        if self.room is None:
            return NOT_IN_ROOM
        payload = msg.payload
        if payload is None:
            return (Refuse("bad_message", "Field 'payload' is required"),)
        if self.protocol == 2:
            try:
                to = wire.optional_str(msg, "to")
                return c.Signal(self.peer_id, payload, to, wall, requests.traceparent(msg))
            except wire.WireError as err:
                return (Refuse(err.code, err.message),)
        return c.Signal(self.peer_id, payload, None, wall, None)

    def undelivered(self, what: Post | c.Signal) -> Effects:
        """The mailbox refused a post that was not forced (full): nothing happened, so
        an entry routes the client back where it was; the client hears ``overloaded``."""
        if isinstance(what, Post) and self.room is what.room:
            self.room = what.previous
        return (OVERLOADED,)

    # ---- room entry ------------------------------------------------------------------

    def may_create(self, now: float) -> Refuse | None:
        """Before allocating a room: token, rooms held, then the creation rate. A room
        slot is reserved; report the outcome with ``created`` or ``create_failed``."""
        grant = self.grant
        if grant is not None and not grant.may_create:
            return Refuse("unauthorized", "This token does not allow creating rooms")
        adm = self.admission
        table = adm.addresses
        if not table.hold_room(self.address, now):
            adm.limited("rooms")
            return Refuse("rate_limited", "Too many live rooms from this address", 60_000)
        wait = table.allow(self.address, "creates", now)
        if wait:
            table.release_room(self.address, now)
            adm.limited("creates")
            return Refuse("rate_limited", "Too many rooms created", retry_after_ms(wait))
        self._room_reserved = True
        return None

    def created(self, room_id: str, now: float) -> None:
        if self._room_reserved:
            self._room_reserved = False
            self.admission.room_created(room_id, self.address, now)

    def create_failed(self, now: float) -> None:
        if self._room_reserved:
            self._room_reserved = False
            self.admission.addresses.release_room(self.address, now)

    def may_join(self, room_id: str, now: float) -> Refuse | None:
        """Before looking a room up: the token's room, then the failed-join guard. The
        guard refuses *before* the lookup, so a refused scanner learns nothing."""
        return self._may_enter(room_id, "failed_joins", now)

    def may_resume(self, room_id: str, now: float) -> Refuse | None:
        """Resumes are decided by the room's actor, later: pipelined attempts would all
        pass a check made now. So every attempt is charged up front and a successful one
        is refunded (``resumed``).

        A token's ``room`` claim is not checked: the resume token proves membership, and
        only that room's members were given one. A room-bound token that may create gets
        a room with a fresh id, and its holder must get that room back after a blip."""
        return self._may_enter(room_id, "failed_resumes", now, charge=True, claim=False)

    def _may_enter(
        self, room_id: str, kind: str, now: float, *, charge: bool = False, claim: bool = True
    ) -> Refuse | None:
        grant = self.grant
        if claim and grant is not None and not grant.may_enter(room_id):
            return Refuse("unauthorized", "This token does not allow this room")
        adm = self.admission
        table = adm.addresses
        wait = (
            table.allow(self.address, kind, now) if charge else table.may(self.address, kind, now)
        )
        if wait:
            adm.limited(kind)
            return Refuse("rate_limited", "Too many failed attempts", retry_after_ms(wait))
        return None

    def failed(self, code: ErrorCode, now: float) -> None:
        """A room refused a request with ``code``: a join refused as ``room_not_found``
        (the room expired after the lookup) is charged like a failed lookup (resumes are
        charged when attempted, see ``may_resume``); other codes cost nothing."""
        if code == "room_not_found":
            self.admission.addresses.charge(self.address, "failed_joins", now)

    def resumed(self, now: float) -> None:
        """A resume succeeded: give its up-front charge back."""
        self.admission.addresses.refund(self.address, "failed_resumes", now)

    # ---- the rooms' verdicts (``rooms.peer.Peer``) --------------------------------------
    #
    # Entering a room leaves the current one, but only once the new one is certain: the
    # client's commands go to the new room at once (``room``, so they follow the entry in
    # order), and the room it was in (``home``) hears ``Leave`` only when the new room's
    # journal has the entry (``entered``). A refused or failed create, join or resume
    # leaves the client exactly where it was, as the seed does (``refused``).

    def entered(
        self, room: RoomHandle, peer_id: str, now: float, wall: float, *, gone: bool = False
    ) -> Effects:
        """``room`` committed this client's entry as member ``peer_id`` (a resume takes
        over an older id). ``gone``: the socket went away while the entry was pending."""
        home = self.home
        effects = NOTHING
        if home is not None and home is not room:
            effects = (Post(home, c.Leave(self.peer_id, "left", wall)),)
        resumed = peer_id != self.peer_id
        self.home = room
        self.peer_id = peer_id
        if self.phase is Phase.OPEN or self.phase is Phase.IN_ROOM:
            self._to(Phase.IN_ROOM)
        if resumed:
            self.resumed(now)
        if gone:  # leave the new room too
            effects += (Post(room, self._disconnect_command(peer_id, wall)),)
        return effects

    def refused(self, room: RoomHandle) -> None:
        """``room`` refused this client's create/join/resume: it stays where it was."""
        if self.room is room:
            self.room = self.home

    def evicted(self, room: RoomHandle, now: float) -> None:
        """This client is no longer a member of ``room`` (left, expired, resumed
        elsewhere, lost)."""
        if self.home is room:
            self.home = None
        if self.room is room:
            self.room = None
        if self.home is None and self.phase is Phase.IN_ROOM:
            self._to(Phase.OPEN)
            self.roomless_since = now

    def disconnect(self, wall: float) -> Effects:
        """The socket is gone: v2 members are detached (resumable), v1 members leave;
        a pending entry's room hears it too, queued behind the entry."""
        room, home = self.room, self.home
        # ``home`` stays: should the pending entry still commit, ``entered`` makes the old
        # room hear ``Leave`` (and, with ``gone``, the new one too).
        self.room = None
        effects = NOTHING
        if home is not None:
            effects = (Post(home, self._disconnect_command(self.peer_id, wall)),)
        if room is not None and room is not home:
            effects += (Post(room, self._disconnect_command(self.peer_id, wall)),)
        return effects

    def _disconnect_command(self, peer_id: str, wall: float) -> c.Command:
        if self.protocol == 2:
            return c.Detach(peer_id, wall)
        return c.Leave(peer_id, "disconnected", wall)

    # ---- timers and the end ---------------------------------------------------------

    def due(self, now: float, last_seen: float) -> Due | None:
        """What the session's clocks say at ``now`` (``last_seen``: when the client last
        sent anything): a handshake or closing handshake that takes too long is
        aborted; an expired token or a connection that never entered a room is closed
        with 1008; a silent client is pinged, and aborted when the ping goes unanswered."""
        phase = self.phase
        policy = self.admission.connection
        if phase is Phase.HANDSHAKE:
            if now - self.started > policy.handshake_timeout:
                return Abort("handshake timeout")
            return None
        if phase is Phase.CLOSING:
            if now - self.closing_since > policy.close_timeout:
                return Abort("close timeout")
            return None
        if phase is Phase.CLOSED:
            return None
        expires = self.expires_at
        if expires is not None and now >= expires:
            self.admission.rejected("token_expired")
            return Close(
                POLICY_VIOLATION,
                "token expired",
                Refuse("unauthorized", "Token expired", close=True),
            )
        if phase is Phase.OPEN and now - self.roomless_since >= policy.roomless_timeout:
            self.admission.rejected("roomless_timeout")
            return Close(POLICY_VIOLATION, "no room entered")
        idle = now - last_seen
        if idle > policy.ping_interval + policy.ping_timeout:
            return Abort("no pong")
        if idle > policy.ping_interval and self.pinged_at <= last_seen:
            self.pinged_at = now  # one ping per silence
            return PING
        return None

    def closing(self, now: float) -> None:
        if self.phase is not Phase.CLOSING and self.phase is not Phase.CLOSED:
            self._to(Phase.CLOSING)
            self.closing_since = now

    def closed(self, now: float) -> None:
        """The socket is gone: give back what the session held. Idempotent."""
        if self.phase is Phase.CLOSED:
            return
        adm = self.admission
        if self._open:
            self._open = False
            adm.websockets -= 1
        self.phase = Phase.CLOSED
        if self._counted:
            self._counted = False
            adm.addresses.close_connection(self.address, now)
        self.create_failed(now)
