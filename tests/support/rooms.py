"""Observing an in-process server's rooms: waits on the state the actors committed."""

from __future__ import annotations

from signaling.transport.server import Server
from tests.support.waiting import eventually


async def detached(server: Server, room_id: str, peer_id: str | None) -> None:
    """Until the room has committed ``peer_id``'s detachment (the server noticed a drop)."""

    def done() -> bool:
        actor = server.hub.supervisor.actor(room_id)
        member = actor.state.members.get(peer_id or "") if actor is not None else None
        return member is not None and not member.attached

    await eventually(done, what=f"detachment of {peer_id} from room {room_id}")


async def members(server: Server, room_id: str, expected: set[str | None]) -> None:
    """Until the room's committed members are exactly ``expected``."""

    def done() -> bool:
        actor = server.hub.supervisor.actor(room_id)
        return actor is not None and set(actor.state.members) == expected

    await eventually(done, what=f"members {expected} in room {room_id}")
