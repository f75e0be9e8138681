"""A session's requests other than ``signal``: create, join, leave and resume, sans-I/O.

``Session.receive`` keeps the relay's hot path to itself and hands every other decoded
message here. Each request is checked (fields, protocol version, admission: the token's
claims and the per-address limits), the room is found through the session's
``RoomDirectory``, and the answer is a tuple of effects for the connection to carry
out: ``Post`` a command to a room's mailbox, or ``Refuse`` with an error reply. The
session's routing state (``room``, ``home``) changes here, before the connection posts,
and ``Session.undelivered`` puts it back if the mailbox refuses.

Why an entry routes at once: the client's next commands must reach the room it just
asked for, in order behind the entry; its old room hears ``Leave`` only once the new
room commits (``Session.entered``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import TYPE_CHECKING, Final

from signaling.core import commands as c
from signaling.core import wire
from signaling.core.room import RESUME_FAILED, ROOM_NOT_FOUND
from signaling.rooms.peer import RoomHandle
from signaling.transport.effects import Effects, Post, Refuse

if TYPE_CHECKING:
    from signaling.transport.session import Session

TRACEPARENT: Final = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
NOTHING_TO_LEAVE: Final[Effects] = (Refuse("not_in_room", "Not in a room"),)
NO_ROOM: Final[Effects] = (Refuse(ROOM_NOT_FOUND.code, ROOM_NOT_FOUND.message),)
NO_RESUME: Final[Effects] = (Refuse(RESUME_FAILED.code, RESUME_FAILED.message),)
NO_ROOM_ID: Final[Effects] = (Refuse("rooms_exhausted", "No free room id; try again later"),)


def new_token() -> tuple[str, str]:
    """A v2 resume token (192 random bits, URL-safe) and its digest."""
    token = secrets.token_urlsafe(24)
    return token, digest(token)


def digest(token: str) -> str:
    """Only a digest of a resume token is kept in events and journals."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def traceparent(msg: wire.Inbound) -> str | None:
    """A v2 signal's W3C trace context, if it sent one."""
    tp = wire.optional_str(msg, "traceparent")
    if tp is not None and not TRACEPARENT.fullmatch(tp):
        raise wire.WireError("bad_message", "Field 'traceparent' is not a W3C traceparent")
    return tp


def dispatch(session: Session, msg: wire.Inbound, now: float, wall: float) -> Effects:
    """Any decoded message but ``signal``: counted by type, checked, decided."""
    kind = msg.type
    received = session.admission.metrics.received
    if kind not in wire.MESSAGE_TYPES or (session.protocol == 1 and kind in wire.V2_ONLY_TYPES):
        received["invalid"] += 1
        return (Refuse("unknown_type", f"Unknown message type {kind!r}"),)
    received[kind] += 1
    try:
        if kind == "create":
            return _create(session, msg, now, wall)
        if kind == "join":
            return _join(session, wire.require_str(msg, "roomId"), now, wall)
        if kind == "leave":
            return _leave(session, wall)
        return _resume(session, msg, now, wall)
    except wire.WireError as err:
        return (Refuse(err.code, err.message),)


def _create(session: Session, msg: wire.Inbound, now: float, wall: float) -> Effects:
    # v2 may ask for an unguessable id (v1 clients send no such field: the seed's).
    unguessable = msg.fields.get("unguessable", False) if session.protocol == 2 else False
    if type(unguessable) is not bool:
        raise wire.WireError("bad_message", "Field 'unguessable' must be true or false")
    refused = session.may_create(now)
    if refused is not None:
        return (refused,)
    handle = session.rooms.create(unguessable)
    if handle is None:
        session.create_failed(now)
        return NO_ROOM_ID
    session.created(handle.room_id, now)
    token, token_digest = new_token() if session.protocol == 2 else (None, "")
    command = c.Create(session.peer_id, session.protocol, token_digest, wall, token)
    # A fresh room's mailbox is empty and open: the entry is forced, never refused.
    session.room = handle
    return (Post(handle, command, attach=True, force=True),)


def _join(session: Session, room_id: str, now: float, wall: float) -> Effects:
    # Admission first: a scanner whose failed-join budget is spent learns nothing.
    refused = session.may_join(room_id, now)
    if refused is not None:
        return (refused,)
    handle = session.rooms.get(room_id)
    if handle is None:
        session.failed("room_not_found", now)  # charged to the client's address
        return NO_ROOM
    token, token_digest = new_token() if session.protocol == 2 else (None, "")
    return _enter(
        session, handle, c.Join(session.peer_id, session.protocol, token_digest, wall, token)
    )


def _leave(session: Session, wall: float) -> Effects:
    room, home = session.room, session.home
    if room is None:
        return NOTHING_TO_LEAVE
    # Routing (and the phase) change when the room commits the departure
    # (``Session.evicted``): a leave that fails leaves the client where it was, and
    # later signals still follow in order. A pending entry's old room is left too.
    leave = c.Leave(session.peer_id, "left", wall)
    if home is not None and home is not room:
        return (Post(home, leave), Post(room, leave, attach=True))
    return (Post(room, leave, attach=True),)


def _resume(session: Session, msg: wire.Inbound, now: float, wall: float) -> Effects:
    room_id = wire.require_str(msg, "roomId")
    peer_id = wire.require_str(msg, "peerId")
    token = msg.fields.get("resumeToken")
    if not isinstance(token, str):
        raise wire.WireError("bad_message", "Field 'resumeToken' must be a string")
    last_seq = wire.require_seq(msg, "lastSeq")
    refused = session.may_resume(room_id, now)  # charged now, refunded when it succeeds
    if refused is not None:
        return (refused,)
    handle = session.rooms.get(room_id)
    # Tokens are URL-safe base64 (ASCII): any other text, a lone surrogate included,
    # cannot match one, and is refused before the client leaves its current room.
    if handle is None or not token.isascii():
        session.admission.metrics.resumes["failed"] += 1
        return NO_RESUME
    return _enter(session, handle, c.Resume(peer_id, digest(token), last_seq, wall))


def _enter(session: Session, handle: RoomHandle, command: c.Command) -> Effects:
    """Route to ``handle`` now; the mailbox may refuse (``Session.undelivered``)."""
    previous = session.room
    session.room = handle
    return (Post(handle, command, attach=True, force=False, previous=previous),)
