"""A client's session, sans-I/O: explicit state, injected clock, one admission hook.

``Connection`` moves bytes; this decides. The session knows where a client is in its
life and what it may do next:

    HANDSHAKE --accept--> OPEN --enter--> IN_ROOM --leave--> OPEN
        |                  |                 |
        +---------+--------+--------+--------+
                  v                 v
               CLOSING ---------> CLOSED

Every transition is one row of ``TRANSITIONS`` (as in h11's ``_state.py``); any other is
a ``SessionError``, a bug in the caller rather than a client's fault. Every decision that
limits or authenticates a client goes through ``Admission`` (process-wide state) and
comes back as a value: ``Reject`` for the HTTP handshake, ``Refuse`` for an error reply
(and possibly a 1008 close), ``None`` to go ahead. Time comes in as arguments (``now``
on the event loop's monotonic clock, ``wall`` in Unix seconds for token expiry), so the
tests drive it by hand and nothing here sleeps, reads a socket or a clock.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from signaling.core.errors import ErrorCode
from signaling.transport.addresses import client_address
from signaling.transport.admission import Admission
from signaling.transport.auth import AuthError, Grant, token_from
from signaling.transport.limits import ConnectionLimits, retry_after_ms


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


class SessionError(Exception):
    """A transition the table does not allow: the caller's bug, never the client's."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the HTTP handshake: ``status`` with ``body``; ``reason`` labels the metric."""

    status: int
    reason: str
    body: str
    retry_after: int | None = None  # seconds, for a Retry-After header


@dataclass(frozen=True, slots=True)
class Refuse:
    """Refuse one client request with an error reply; ``close`` asks for a 1008 close."""

    code: ErrorCode
    message: str
    retry_after_ms: int | None = None
    close: bool = False


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
Due = Close | Abort | Ping


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
        "limits",
        "phase",
        "pinged_at",
        "roomless_since",
        "started",
    )

    def __init__(self, admission: Admission, peer: str | None, now: float) -> None:
        self.admission = admission
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

    def opened(self, now: float) -> None:
        """The 101 went out."""
        self._to(Phase.OPEN)
        self._open = True
        self.admission.websockets += 1
        self.roomless_since = now

    # ---- messages (the hot path) -------------------------------------------------------

    def message(self, size: int, now: float) -> Refuse | None:
        """Every client text/binary message, before it is parsed."""
        limits = self.limits
        wait = limits.admit(now, size)
        if not wait:
            return None
        self.admission.limited(limits.refused)
        if not limits.strike(now):
            self.admission.rejected("abuse")
            return Refuse("rate_limited", "Rate limit exceeded", retry_after_ms(wait), True)
        return Refuse("rate_limited", "Rate limit exceeded", retry_after_ms(wait))

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
        """A join was refused as ``room_not_found``: charge it (resumes are charged when
        attempted, see ``may_resume``)."""
        if code == "room_not_found":
            self.admission.addresses.charge(self.address, "failed_joins", now)

    def resumed(self, now: float) -> None:
        """A resume succeeded: give its up-front charge back."""
        self.admission.addresses.refund(self.address, "failed_resumes", now)

    def entered(self, now: float) -> None:
        if self.phase is Phase.OPEN or self.phase is Phase.IN_ROOM:
            self._to(Phase.IN_ROOM)

    def left(self, now: float) -> None:
        if self.phase is Phase.IN_ROOM:
            self._to(Phase.OPEN)
            self.roomless_since = now

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
