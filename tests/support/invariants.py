"""The room invariants, checked from outside against the journal's complete record.

1. Every frame a client received for an event corresponds to a committed event (and no
   client got the same event twice).
2. The members the journal replays to are exactly the connections that receive signals:
   each room's socket registry holds the journal's attached members and nobody else, and
   every client that stayed connected received exactly the committed signals the journal
   says reached its peer id (``core.delivery.visible_to`` over the replayed membership).
3. A peer is a member of at most one room, and a client's routing agrees with the
   journal (it sends to the room that lists it, or to none).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from signaling.core import events as e
from signaling.core.delivery import visible_to
from signaling.core.room import RoomState, replay
from signaling.transport.server import Hub
from tests.support.inproc import MemoryClient
from tests.support.journals import FaultyJournal


def _find(journal: FaultyJournal, kind: type[e.Event], **fields: Any) -> list[tuple[str, Any]]:
    found = []
    for room_id, events in journal.history.items():
        for event in events:
            if type(event) is kind and all(getattr(event, k) == v for k, v in fields.items()):
                found.append((room_id, event))
    return found


def frames_are_journaled(journal: FaultyJournal, client: MemoryClient) -> None:
    seen: set[tuple[str, int]] = set()
    for msg in client.messages():
        kind = msg["type"]
        if kind == "signal":
            hits = _find(
                journal,
                e.SignalRelayed,
                payload=json.dumps(msg["payload"]),
                sender_id=msg["senderId"],
            )
            if "seq" in msg:
                hits = [(r, ev) for r, ev in hits if ev.seq == msg["seq"]]
        elif kind in ("room_created", "room_joined"):
            hits = [
                (r, ev)
                for r, ev in _find(journal, e.PeerJoined, peer_id=msg["myId"])
                if r == msg["roomId"] and ev.seq == msg.get("seq", ev.seq)
            ]
        elif kind == "resumed":
            hits = [
                (r, ev)
                for r, ev in _find(journal, e.PeerResumed, peer_id=msg["myId"])
                if r == msg["roomId"] and ev.seq == msg["seq"]
            ]
        elif kind in ("peer_joined", "peer_left"):
            event_type = e.PeerJoined if kind == "peer_joined" else e.PeerLeft
            hits = _find(journal, event_type, peer_id=msg["peerId"], seq=msg["seq"])
        elif kind == "room_expired":
            hits = [(r, ev) for r, ev in _find(journal, e.RoomExpired) if r == msg["roomId"]]
        else:
            continue  # replies that are no event: error, left
        assert hits, f"client got {msg} but the journal has no such event"
        # v1 frames carry no seq: the same text may stand for several events (a peer
        # joining the same room twice); each frame must have an event of its own.
        keys = [(room_id, event.seq) for room_id, event in hits]
        fresh = [key for key in keys if key not in seen]
        if kind != "room_expired":
            assert fresh, f"client got event {keys[0]} twice: {msg}"
        seen.add((fresh or keys)[0])


def attached_by_journal(journal: FaultyJournal, room_id: str) -> set[str]:
    state = replay(RoomState(room_id), journal.history[room_id])
    return {p for p, m in state.members.items() if m.attached}


def expected_signals(journal: FaultyJournal, peer_id: str) -> set[str]:
    """Payloads of the committed signals the journal says reached ``peer_id``."""
    expected: set[str] = set()
    for room_id, events in journal.history.items():
        state = RoomState(room_id)
        for event in events:
            if type(event) is e.SignalRelayed and (room_id, event.seq) not in journal.ambiguous:
                member = state.members.get(peer_id)
                if member is not None and member.attached and visible_to(peer_id, 2, event):
                    expected.add(event.payload)
            state = replay(state, [event])
    return expected


def registry_follows_journal(
    hub: Hub, journal: FaultyJournal, clients: Iterable[MemoryClient]
) -> None:
    open_by_peer = {c.conn.peer_id: c for c in clients if not c.closed}
    homes: dict[str, list[str]] = {}
    for room_id, handle in hub.supervisor.rooms.items():
        attached = attached_by_journal(journal, room_id)
        registry = handle.fanout.attached
        assert set(registry) == attached, (room_id, set(registry), attached)
        for peer_id, conn in registry.items():
            assert conn.peer_id == peer_id
            client = open_by_peer.get(peer_id)
            if client is not None:
                assert client.conn is conn, f"{peer_id}'s signals go to another socket"
        state = replay(RoomState(room_id), journal.history[room_id])
        for peer_id in state.members:
            homes.setdefault(peer_id, []).append(room_id)
    for peer_id, rooms in homes.items():
        assert len(rooms) <= 1, f"{peer_id} is a member of rooms {rooms}"
    for peer_id, client in open_by_peer.items():
        session = client.conn.session
        assert session.room is session.home, "an entry is still pending after the rooms settled"
        where = homes.get(peer_id, [])
        if session.home is None:
            assert not [r for r in where if peer_id in attached_by_journal(journal, r)]
        else:
            assert where == [session.home.room_id], (peer_id, where, session.home.room_id)


def signals_reach_exactly_the_members(
    journal: FaultyJournal, clients: Iterable[MemoryClient], skip: set[int]
) -> None:
    for client in clients:
        if client.closed or id(client) in skip:
            continue
        got = [m for m in client.messages() if m["type"] == "signal"]
        received = {json.dumps(m["payload"]) for m in got}
        assert len(received) == len(got), "a signal arrived twice"
        assert received == expected_signals(journal, client.conn.peer_id), client.conn.peer_id
