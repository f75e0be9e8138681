"""The sans-I/O session's requests and routing, driven by hand: no socket, no event loop.

Every client message goes in as text with an injected clock (``now``, ``WALL``); what
comes out is the relay's ``Signal`` command or effects as values (``Post``, ``Refuse``).
The rooms' verdicts (``entered``, ``refused``, ``evicted``) and the socket going away
(``disconnect``) go in the same way. Rooms are found through a directory that logs every
lookup.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from signaling.core import commands as c
from signaling.transport.auth import Authenticator
from signaling.transport.effects import NOTHING, OVERLOADED, Effects, Post, Refuse
from signaling.transport.requests import digest
from signaling.transport.session import TRANSITIONS, Phase, Session, SessionError
from tests.support.keys import SECRET, hs_token
from tests.support.sessions import WALL, Directory, admission, opened

NOW = 5.0


def send(s: Session, msg: dict[str, Any] | str, now: float = NOW) -> c.Signal | Effects:
    return s.receive(msg if isinstance(msg, str) else json.dumps(msg), now, WALL)


def effects(s: Session, msg: dict[str, Any] | str, now: float = NOW) -> Effects:
    out = send(s, msg, now)
    assert isinstance(out, tuple), out
    return out


def refused(s: Session, msg: dict[str, Any] | str, now: float = NOW) -> Refuse:
    (out,) = effects(s, msg, now)
    assert isinstance(out, Refuse), out
    return out


def posted(s: Session, msg: dict[str, Any] | str, now: float = NOW) -> Post:
    (out,) = effects(s, msg, now)
    assert isinstance(out, Post), out
    return out


def in_room(protocol: c.Protocol = 1, **changes: Any) -> tuple[Session, Directory]:
    """A session whose create committed: member of room 1000."""
    rooms = Directory()
    s = opened(admission(**changes), protocol=protocol, rooms=rooms)
    post = posted(s, {"type": "create"})
    assert s.entered(post.room, s.peer_id, NOW, WALL) == NOTHING
    return s, rooms


# ---- the state table -------------------------------------------------------------------


def _drive(path: list[Phase]) -> Session:
    """A session walked through ``path`` by its public inputs only."""
    s = Session(admission(), "127.0.0.2", 0.0, Directory())
    room = Directory().add("1234")
    for phase in path[1:]:
        if phase is Phase.OPEN and s.phase is Phase.HANDSHAKE:
            assert s.handshake("127.0.0.2", "/", [], [], 0.0, WALL) is None
            s.opened(0.0)
        elif phase is Phase.OPEN:
            s.evicted(room, 1.0)
        elif phase is Phase.IN_ROOM:
            s.entered(room, s.peer_id, 1.0, WALL)
        elif phase is Phase.CLOSING:
            s.closing(2.0)
        elif phase is Phase.CLOSED:
            s.closed(3.0)
        assert s.phase is phase, (path, s.phase)
    return s


@pytest.mark.parametrize(
    "path",
    [
        [Phase.HANDSHAKE, Phase.OPEN],
        [Phase.HANDSHAKE, Phase.CLOSING, Phase.CLOSED],
        [Phase.HANDSHAKE, Phase.CLOSED],
        [Phase.HANDSHAKE, Phase.OPEN, Phase.IN_ROOM, Phase.IN_ROOM, Phase.OPEN],
        [Phase.HANDSHAKE, Phase.OPEN, Phase.CLOSING, Phase.CLOSED],
        [Phase.HANDSHAKE, Phase.OPEN, Phase.CLOSED],
        [Phase.HANDSHAKE, Phase.OPEN, Phase.IN_ROOM, Phase.CLOSING, Phase.CLOSED],
        [Phase.HANDSHAKE, Phase.OPEN, Phase.IN_ROOM, Phase.CLOSED],
    ],
    ids=lambda path: "-".join(p.value for p in path),
)
def test_every_allowed_transition_is_reachable_by_an_input(path: list[Phase]) -> None:
    _drive(path)


def test_the_paths_above_cover_the_whole_table() -> None:
    covered = {
        (Phase.HANDSHAKE, Phase.OPEN),
        (Phase.HANDSHAKE, Phase.CLOSING),
        (Phase.HANDSHAKE, Phase.CLOSED),
        (Phase.OPEN, Phase.IN_ROOM),
        (Phase.OPEN, Phase.CLOSING),
        (Phase.OPEN, Phase.CLOSED),
        (Phase.IN_ROOM, Phase.IN_ROOM),
        (Phase.IN_ROOM, Phase.OPEN),
        (Phase.IN_ROOM, Phase.CLOSING),
        (Phase.IN_ROOM, Phase.CLOSED),
        (Phase.CLOSING, Phase.CLOSED),
    }
    assert covered == {(a, b) for a, targets in TRANSITIONS.items() for b in targets}


def test_inputs_outside_the_table_are_refused_or_ignored() -> None:
    room = Directory().add("1234")
    with pytest.raises(SessionError):  # a second 101
        _drive([Phase.HANDSHAKE, Phase.OPEN]).opened(1.0)
    closing = _drive([Phase.HANDSHAKE, Phase.OPEN, Phase.CLOSING])
    with pytest.raises(SessionError):
        closing.opened(3.0)
    # A verdict that arrives while closing routes, but the phase stays (no timeout reset).
    closing.entered(room, closing.peer_id, 3.0, WALL)
    assert closing.phase is Phase.CLOSING and closing.home is room
    closing.evicted(room, 3.0)
    assert closing.phase is Phase.CLOSING
    closed = _drive([Phase.HANDSHAKE, Phase.OPEN, Phase.CLOSED])
    with pytest.raises(SessionError):
        closed.handshake("127.0.0.2", "/", [], [], 4.0, WALL)
    closed.closing(4.0)  # the socket is gone: nothing to close
    assert closed.phase is Phase.CLOSED


# ---- dispatch ----------------------------------------------------------------------------


def test_signal_outside_a_room_is_not_in_room() -> None:
    s = opened(admission())
    assert refused(s, {"type": "signal", "payload": 1}) == Refuse(
        "not_in_room", "Not in a room: create or join first"
    )
    assert s.admission.metrics.received["signal"] == 1


def test_signal_in_a_room_is_its_command_alone() -> None:
    s, _ = in_room()
    out = send(s, '{"type":"signal","payload": {"sdp" : "x"},"to":"b","traceparent":"t"}')
    # v1: the payload's text as sent; ``to`` and ``traceparent`` are v2 fields.
    assert out == c.Signal(s.peer_id, '{"sdp" : "x"}', None, WALL, None)
    assert refused(s, {"type": "signal"}) == Refuse("bad_message", "Field 'payload' is required")


def test_v2_signal_fields() -> None:
    s, _ = in_room(protocol=2)
    tp = "00-" + "a" * 32 + "-" + "b" * 16 + "-01"
    out = send(s, {"type": "signal", "payload": "p", "to": "b", "traceparent": tp})
    assert out == c.Signal(s.peer_id, '"p"', "b", WALL, tp)
    bad = refused(s, {"type": "signal", "payload": "p", "traceparent": "nope"})
    assert (bad.code, bad.message) == (
        "bad_message",
        "Field 'traceparent' is not a W3C traceparent",
    )
    assert refused(s, {"type": "signal", "payload": "p", "to": 7}).code == "bad_message"


def test_bad_json_and_unknown_types_are_counted_invalid() -> None:
    s = opened(admission())
    assert refused(s, "{").code == "bad_json"
    assert refused(s, "[]").code == "bad_message"
    assert refused(s, {"type": "dance"}) == Refuse("unknown_type", "Unknown message type 'dance'")
    assert s.admission.metrics.received["invalid"] == 3


@pytest.mark.parametrize("kind", ["leave", "resume"])
def test_v2_only_types_are_unknown_on_v1(kind: str) -> None:
    v1 = opened(admission())
    assert refused(v1, {"type": kind}).code == "unknown_type"
    v2 = opened(admission(), protocol=2)
    assert refused(v2, {"type": kind}).code != "unknown_type"  # known, then checked


def test_create_posts_an_attached_forced_entry_and_routes_at_once() -> None:
    rooms = Directory()
    s = opened(admission(), rooms=rooms)
    post = posted(s, {"type": "create", "unguessable": True})  # v1: the field is ignored
    assert rooms.lookups == ["create"]
    assert post == Post(rooms.rooms["1000"], c.Create(s.peer_id, 1, "", WALL), True, True)
    assert s.room is post.room and s.home is None  # commands go there; not a member yet
    assert s.admission.room_owners == {"1000": "127.0.0.2"}


def test_v2_create_gets_a_resume_token_and_may_ask_for_an_unguessable_id() -> None:
    rooms = Directory()
    s = opened(admission(), protocol=2, rooms=rooms)
    post = posted(s, {"type": "create", "unguessable": True})
    assert rooms.lookups == ["create unguessable"]
    command = post.command
    assert isinstance(command, c.Create) and command.token is not None
    assert command.token_digest == digest(command.token) and len(command.token) == 32
    assert refused(s, {"type": "create", "unguessable": 1}).code == "bad_message"


def test_create_refused_by_the_token_before_any_lookup() -> None:
    rooms = Directory()
    adm = admission(Authenticator(secret=SECRET))
    s = Session(adm, "127.0.0.2", 0.0, rooms)
    token = hs_token({"exp": WALL + 60, "create": False})
    assert s.handshake("127.0.0.2", f"/?token={token}", [], [], 0.0, WALL) is None
    s.opened(0.0)
    assert refused(s, {"type": "create"}) == Refuse(
        "unauthorized", "This token does not allow creating rooms"
    )
    assert rooms.lookups == [] and s.room is None


def test_rooms_exhausted_gives_the_room_slot_back() -> None:
    rooms = Directory(free=0)
    s = opened(admission(rooms_per_address=1), rooms=rooms)
    assert refused(s, {"type": "create"}).code == "rooms_exhausted"
    rooms.free = 1
    assert posted(s, {"type": "create"}).room.room_id == "1000"  # the slot was released


def test_join_refused_by_the_brute_force_guard_before_any_lookup() -> None:
    rooms = Directory()
    s = opened(admission(failed_join_rate="2/min"), rooms=rooms)
    for _ in range(2):
        assert refused(s, {"type": "join", "roomId": "4321"}).code == "room_not_found"
    assert rooms.lookups == ["get 4321", "get 4321"]
    guard = refused(s, {"type": "join", "roomId": "4321"})
    assert (guard.code, guard.retry_after_ms) == ("rate_limited", 30_000)
    assert rooms.lookups == ["get 4321", "get 4321"]  # no third lookup
    rooms.add("4321")  # even a live room is not looked up while the guard is spent
    assert refused(s, {"type": "join", "roomId": "4321"}).code == "rate_limited"
    assert posted(s, {"type": "join", "roomId": "4321"}, now=NOW + 30).room.room_id == "4321"


def test_join_posts_an_attached_entry_that_the_mailbox_may_refuse() -> None:
    s, rooms = in_room()
    home = s.home
    other = rooms.add("4321")
    post = posted(s, {"type": "join", "roomId": "4321"})
    assert post == Post(other, c.Join(s.peer_id, 1, "", WALL), True, False, home)
    assert (s.room, s.home) == (other, home)  # routed at once; the old room not left yet
    # The mailbox was full: nothing happened, the client is where it was.
    assert s.undelivered(post) == (OVERLOADED,)
    assert (s.room, s.home) == (home, home)


def test_a_relay_the_mailbox_refuses_is_overloaded_and_changes_nothing() -> None:
    s, _ = in_room()
    out = send(s, {"type": "signal", "payload": 1})
    assert isinstance(out, c.Signal)
    room = s.room
    assert s.undelivered(out) == (OVERLOADED,) and s.room is room


def test_join_of_a_room_the_token_does_not_name() -> None:
    rooms = Directory()
    adm = admission(Authenticator(secret=SECRET))
    s = Session(adm, "127.0.0.2", 0.0, rooms)
    token = hs_token({"exp": WALL + 60, "room": "1111"})
    assert (
        s.handshake("127.0.0.2", "/", [("Authorization", f"Bearer {token}")], [], 0, WALL) is None
    )
    s.opened(0.0)
    assert refused(s, {"type": "join", "roomId": "2222"}).code == "unauthorized"
    assert rooms.lookups == []


def test_resume_is_charged_when_tried_and_refunded_when_it_succeeds() -> None:
    rooms = Directory()
    s = opened(admission(failed_resume_rate="2/min"), protocol=2, rooms=rooms)
    target = rooms.add("4321")
    resume = {"type": "resume", "roomId": "4321", "peerId": "old", "resumeToken": "t", "lastSeq": 3}
    for _ in range(2):  # two attempts the room will accept: each charged up front
        post = posted(s, resume)
        assert post == Post(target, c.Resume("old", digest("t"), 3, WALL), True, False, None)
        s.refused(target)  # (the first is refused by the room, say)
    assert refused(s, resume).code == "rate_limited"  # both charges count
    fresh = opened(admission(failed_resume_rate="2/min"), protocol=2, rooms=rooms)
    for _ in range(4):  # succeeding resumes are refunded: never limited
        post = posted(fresh, resume)
        fresh.entered(target, "old", NOW, WALL)
        assert fresh.peer_id == "old" and fresh.home is target
        fresh.peer_id = "new"  # as if a fresh connection again
    metrics = s.admission.metrics
    assert metrics.rate_limited["failed_resumes"] == 1


def test_resume_failures_are_answered_before_leaving_the_room() -> None:
    s, rooms = in_room(protocol=2)
    home = s.home
    rooms.add("4321")
    base = {"type": "resume", "roomId": "4321", "peerId": "p", "lastSeq": 0}
    assert refused(s, {**base, "roomId": "9999", "resumeToken": "t"}).code == "resume_failed"
    assert refused(s, {**base, "resumeToken": "\u00e9t\u00e9"}).code == "resume_failed"
    assert refused(s, {**base, "resumeToken": 5}).code == "bad_message"
    assert refused(s, {**base, "resumeToken": "t", "lastSeq": -1}).code == "bad_message"
    assert (s.room, s.home) == (home, home)
    assert s.admission.metrics.resumes["failed"] == 2


def test_leave() -> None:
    s = opened(admission(), protocol=2)
    assert refused(s, {"type": "leave"}) == Refuse("not_in_room", "Not in a room")
    s, rooms = in_room(protocol=2)
    home = s.home
    assert home is not None
    leave = c.Leave(s.peer_id, "left", WALL)
    assert effects(s, {"type": "leave"}) == (Post(home, leave, attach=True),)
    assert s.room is home  # until the room commits the departure
    # Leaving while a join is pending: the old room (unattached) and the new one.
    other = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    assert effects(s, {"type": "leave"}) == (Post(home, leave), Post(other, leave, attach=True))


# ---- the rooms' verdicts: routing --------------------------------------------------------


def test_the_old_room_hears_leave_only_once_the_new_room_commits() -> None:
    s, rooms = in_room()
    old = s.home
    assert old is not None and s.phase is Phase.IN_ROOM
    new = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    # Commands go to the new room at once, in order behind the entry.
    out = send(s, {"type": "signal", "payload": 1})
    assert isinstance(out, c.Signal) and s.room is new and s.home is old
    me = s.peer_id
    assert s.entered(new, me, NOW, WALL) == (Post(old, c.Leave(me, "left", WALL)),)
    assert (s.room, s.home, s.phase) == (new, new, Phase.IN_ROOM)
    s.evicted(old, NOW)  # the old room commits the leave: nothing changes here
    assert (s.room, s.home, s.phase) == (new, new, Phase.IN_ROOM)


def test_a_refused_entry_leaves_the_client_where_it_was() -> None:
    s, rooms = in_room()
    old = s.home
    new = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    s.refused(new)  # room_full, unavailable, ...
    assert (s.room, s.home, s.phase) == (old, old, Phase.IN_ROOM)
    s.refused(new)  # a late duplicate changes nothing
    assert s.room is old


def test_a_refused_first_entry_leaves_the_client_roomless() -> None:
    rooms = Directory()
    s = opened(admission(), rooms=rooms)
    post = posted(s, {"type": "create"})
    s.refused(post.room)
    assert (s.room, s.home, s.phase) == (None, None, Phase.OPEN)
    assert refused(s, {"type": "signal", "payload": 1}).code == "not_in_room"


def test_a_resume_takes_over_the_old_peer_id_and_leaves_under_the_current_one() -> None:
    s, rooms = in_room(protocol=2)
    old, me = s.home, s.peer_id
    assert old is not None
    target = rooms.add("4321")
    resume = {"type": "resume", "roomId": "4321", "peerId": "p0", "resumeToken": "t", "lastSeq": 0}
    posted(s, resume)
    assert s.entered(target, "p0", NOW, WALL) == (Post(old, c.Leave(me, "left", WALL)),)
    assert s.peer_id == "p0"
    out = send(s, {"type": "signal", "payload": 1})
    assert isinstance(out, c.Signal) and out.peer_id == "p0"


def test_eviction_routes_nowhere_and_starts_the_roomless_clock() -> None:
    s, _ = in_room(roomless_timeout=60.0)
    home = s.home
    assert home is not None
    s.evicted(home, 100.0)  # left, expired, resumed elsewhere or lost
    assert (s.room, s.home, s.phase) == (None, None, Phase.OPEN)
    assert s.due(159.0, 159.0) is None
    assert s.due(160.0, 160.0) is not None  # closed for want of a room


def test_eviction_from_the_old_room_while_an_entry_is_pending() -> None:
    s, rooms = in_room()
    old = s.home
    assert old is not None
    new = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    s.evicted(old, NOW)  # the old room expired meanwhile
    assert (s.room, s.home, s.phase) == (new, None, Phase.OPEN)
    assert s.entered(new, s.peer_id, NOW, WALL) == NOTHING  # no old room to leave
    assert s.phase is Phase.IN_ROOM


# ---- the socket goes away ----------------------------------------------------------------


@pytest.mark.parametrize(("protocol", "kind"), [(1, c.Leave), (2, c.Detach)])
def test_disconnect_leaves_v1_and_detaches_v2_from_home_and_pending_room(
    protocol: c.Protocol, kind: type
) -> None:
    s, rooms = in_room(protocol=protocol)
    home = s.home
    assert home is not None
    new = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    me = s.peer_id
    gone = kind(me, WALL) if kind is c.Detach else kind(me, "disconnected", WALL)
    # Unattached and forced; the pending room's is queued behind the entry.
    assert s.disconnect(WALL) == (Post(home, gone), Post(new, gone))
    assert s.room is None and s.disconnect(WALL) == (Post(home, gone),)
    s.closed(NOW)
    assert s.phase is Phase.CLOSED and s.admission.websockets == 0


def test_an_entry_committed_after_the_socket_went_away_is_left_at_once() -> None:
    s, rooms = in_room()
    old, me = s.home, s.peer_id
    assert old is not None
    new = rooms.add("4321")
    posted(s, {"type": "join", "roomId": "4321"})
    s.disconnect(WALL)
    s.closed(NOW)
    assert s.entered(new, me, NOW, WALL, gone=True) == (
        Post(old, c.Leave(me, "left", WALL)),
        Post(new, c.Leave(me, "disconnected", WALL)),
    )
    assert s.phase is Phase.CLOSED


def test_nothing_is_posted_for_a_client_that_never_entered() -> None:
    s = opened(admission())
    assert s.disconnect(WALL) == NOTHING
