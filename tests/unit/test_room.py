"""Example-based rules of ``decide``/``evolve``: each error code and lifecycle edge."""

from __future__ import annotations

from signaling.core import commands as c
from signaling.core import events as e
from signaling.core.room import Rejection, RoomPolicy, RoomState, decide, evolve, replay


def room(*commands: c.Command, policy: RoomPolicy | None = None) -> RoomState:
    state = RoomState("1234", policy or RoomPolicy(timeout=5.0, max_members=3))
    for command in commands:
        decision = decide(state, command)
        assert not isinstance(decision, Rejection), decision
        state = replay(state, decision)
    return state


def test_create_emits_room_created_then_the_creator_joining() -> None:
    state = RoomState("1234")
    decision = decide(state, c.Create("a", 2, "d", 1.0))
    assert decision == (e.RoomCreated(1, "1234", 1.0), e.PeerJoined(2, "a", 2, "d", 1.0))


def test_signal_needs_membership_and_a_known_target() -> None:
    state = room(c.Create("a", 2, "d", 0), c.Join("b", 1, "", 0))
    assert decide(state, c.Signal("x", "1", None, 1)) == Rejection("not_in_room", "Not in a room")
    rejected = decide(state, c.Signal("a", "1", "zz", 1))
    assert isinstance(rejected, Rejection) and rejected.code == "peer_not_found"
    rejected = decide(state, c.Signal("a", "1", "a", 1))
    assert isinstance(rejected, Rejection) and rejected.code == "peer_not_found"
    assert decide(state, c.Signal("a", "1", "b", 1)) == (e.SignalRelayed(4, "a", "1", "b", 1),)


def test_room_full_and_double_join_are_refused() -> None:
    state = room(c.Create("a", 1, "", 0), c.Join("b", 1, "", 0), c.Join("c", 1, "", 0))
    full = decide(state, c.Join("d", 1, "", 0))
    assert isinstance(full, Rejection) and full.code == "room_full"
    again = decide(state, c.Join("b", 1, "", 0))
    assert again == Rejection("already_in_room", "Already in this room")


def test_expire_only_after_a_full_timeout_of_inactivity() -> None:
    state = room(c.Create("a", 1, "", 0.0), c.Signal("a", "1", None, 3.0))
    assert decide(state, c.Expire(7.9)) == ()
    assert decide(state, c.Expire(8.0)) == (e.RoomExpired(4, 8.0),)
    expired = evolve(state, e.RoomExpired(4, 8.0))
    assert expired.expired and not expired.members
    assert decide(expired, c.Join("b", 1, "", 9.0)) == Rejection("room_not_found", "Room not found")
    assert decide(expired, c.Expire(20.0)) == ()


def test_detach_keeps_the_place_until_the_matching_grace_timer() -> None:
    state = room(c.Create("a", 2, "d", 0), c.Join("b", 2, "k", 0), c.Detach("b", 1))
    member = state.members["b"]
    assert not member.attached and member.detached_seq == state.seq
    stale = c.GraceOver("b", member.detached_seq - 1, 2)
    assert decide(state, stale) == ()
    assert decide(state, c.GraceOver("b", member.detached_seq, 2)) == (
        e.PeerLeft(state.seq + 1, "b", "disconnected", 2),
    )


def test_resume_checks_token_and_sequence() -> None:
    state = room(c.Create("a", 2, "d", 0), c.Join("b", 2, "k", 0), c.Detach("b", 1))
    for bad in (
        c.Resume("b", "wrong", 0, 2),
        c.Resume("zz", "k", 0, 2),
        c.Resume("b", "k", state.seq + 1, 2),
        c.Resume("b", "k", -1, 2),
    ):
        rejected = decide(state, bad)
        assert isinstance(rejected, Rejection) and rejected.code == "resume_failed", bad
    resumed = replay(state, decide(state, c.Resume("b", "k", 3, 2)))  # type: ignore[arg-type]
    assert resumed.members["b"].attached and resumed.last_activity == 2


def test_leave_of_a_stranger_changes_nothing() -> None:
    state = room(c.Create("a", 1, "", 0))
    assert decide(state, c.Leave("zz", "left", 1)) == ()
    assert decide(state, c.Detach("zz", 1)) == ()


def test_empty_room_lingers_until_it_expires() -> None:
    state = room(c.Create("a", 1, "", 0), c.Leave("a", "left", 1))
    assert not state.members and not state.expired
    assert decide(state, c.Join("b", 1, "", 2)) == (e.PeerJoined(4, "b", 1, "", 2),)
