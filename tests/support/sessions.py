"""Driving a sans-I/O ``Session`` by hand: no socket, no event loop, no room actor.

Time is injected (``now`` a number the test advances, ``WALL`` a Unix time); rooms are
real ``RoomHandle``s (mailbox and fanout objects, never run) found through a directory
that records every lookup, so a test can tell a refusal came *before* any lookup.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from signaling.config import Settings
from signaling.core import commands as c
from signaling.rooms.fanout import Fanout
from signaling.rooms.mailbox import Mailbox
from signaling.rooms.peer import Envelope, RoomHandle
from signaling.telemetry.metrics import Metrics
from signaling.transport.admission import Admission
from signaling.transport.auth import Authenticator
from signaling.transport.session import Session

WALL = 1_800_000_000.0


def admission(auth: Authenticator | None = None, **changes: Any) -> Admission:
    settings = dataclasses.replace(Settings(), **changes)
    return Admission(settings, Metrics(), authenticator=auth, file_limit=1024)


def room(room_id: str, capacity: int = 16) -> RoomHandle:
    fanout = Fanout(room_id, Metrics(), lambda: WALL)
    handle = RoomHandle(room_id, Mailbox[Envelope](capacity), fanout)
    fanout.handle = handle
    return handle


class Directory:
    """A ``RoomDirectory`` over plain handles: ``create`` hands out 1000, 1001, ...
    (None once ``free`` ids are used up), ``get`` finds what exists; both are logged."""

    def __init__(self, free: int = 100) -> None:
        self.rooms: dict[str, RoomHandle] = {}
        self.free = free
        self.lookups: list[str] = []

    def create(self, unguessable: bool) -> RoomHandle | None:
        self.lookups.append("create unguessable" if unguessable else "create")
        if self.free <= 0:
            return None
        self.free -= 1
        handle = room(str(1000 + len(self.rooms)))
        self.rooms[handle.room_id] = handle
        return handle

    def get(self, room_id: str) -> RoomHandle | None:
        self.lookups.append(f"get {room_id}")
        return self.rooms.get(room_id)

    def add(self, room_id: str) -> RoomHandle:
        handle = self.rooms[room_id] = room(room_id)
        return handle


def opened(
    adm: Admission,
    peer: str = "127.0.0.2",
    now: float = 0.0,
    *,
    protocol: c.Protocol = 1,
    rooms: Directory | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Session:
    """A session past a successful handshake."""
    s = Session(adm, peer, now, rooms if rooms is not None else Directory())
    assert s.handshake(peer, "/", headers or [], [], now, WALL) is None
    s.opened(now, protocol)
    return s
