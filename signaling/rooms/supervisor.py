"""The supervisor: allocates room ids, spawns room actors, retires expired rooms, and
restarts crashed actors from the journal.

A restart rebuilds the state with ``replay`` over the journal's snapshot and events and
starts a new actor on the *same* mailbox and connection map, so members stay in the room
and queued messages are handled in their original order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from signaling.core.room import RoomPolicy, RoomState, replay
from signaling.journal import Journal
from signaling.rooms.actor import Envelope, Peer, RoomActor, RoomHandle
from signaling.rooms.mailbox import Mailbox
from signaling.rooms.roomids import RoomIds
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import Tracing

log = logging.getLogger("signaling.rooms.supervisor")


class Supervisor:
    def __init__(
        self,
        journal: Journal,
        metrics: Metrics,
        tracing: Tracing,
        *,
        policy: RoomPolicy,
        room_id_digits: int = 4,
        mailbox_size: int = 4096,
        resume_grace: float = 30.0,
        room_batch: int = 256,
        on_retired: Callable[[str], None] | None = None,
    ) -> None:
        self.journal = journal
        self.room_batch = room_batch
        # Told when a room is gone for good (the admission layer frees its creator's slot).
        self.on_retired = on_retired
        self.metrics = metrics
        self.tracing = tracing
        self.policy = policy
        self.mailbox_size = mailbox_size
        self.resume_grace = resume_grace
        self.ids = RoomIds(room_id_digits)
        self.rooms: dict[str, RoomHandle] = {}
        self._conns: dict[str, dict[str, Peer]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._actors: dict[str, RoomActor] = {}
        self._closing = False

    def get(self, room_id: str) -> RoomHandle | None:
        return self.rooms.get(room_id)

    def create(self) -> RoomHandle | None:
        """A new room with a running actor, or None when the id space is exhausted."""
        room_id = self.ids.allocate()
        if room_id is None:
            return None
        loop = asyncio.get_running_loop()
        handle = RoomHandle(room_id, Mailbox[Envelope](self.mailbox_size))
        state = RoomState(room_id, self.policy, last_activity=loop.time())
        self.journal.create(room_id, state)
        self.rooms[room_id] = handle
        self._conns[room_id] = {}
        self.metrics.rooms_live += 1
        self._spawn(handle, state)
        return handle

    def _spawn(self, handle: RoomHandle, state: RoomState) -> None:
        actor = RoomActor(
            handle,
            state,
            self.journal,
            self._conns[handle.room_id],
            self.metrics,
            self.tracing,
            self.resume_grace,
            self._retire,
            batch_limit=self.room_batch,
        )
        task = asyncio.get_running_loop().create_task(actor.run(), name=f"room-{handle.room_id}")
        self._actors[handle.room_id] = actor
        self._tasks[handle.room_id] = task
        task.add_done_callback(self._actor_done)

    def _actor_done(self, task: asyncio.Task[None]) -> None:
        room_id = task.get_name().removeprefix("room-")
        if task.cancelled() or self._closing or room_id not in self.rooms:
            return
        exc = task.exception()
        if exc is None:
            return
        handle = self.rooms[room_id]
        log.error("restarting room actor from its journal: %s", exc, extra={"room": room_id})
        self.metrics.actor_restarts += 1
        asyncio.get_running_loop().create_task(self._restart(handle))

    async def _restart(self, handle: RoomHandle) -> None:
        snapshot, events = await self.journal.load(handle.room_id)
        state = replay(snapshot, events)
        self._spawn(handle, state)

    def actor(self, room_id: str) -> RoomActor | None:
        """The live actor of a room (for tests and diagnostics)."""
        return self._actors.get(room_id)

    def _retire(self, room_id: str) -> None:
        """The room expired: free its id and its journal."""
        if self.rooms.pop(room_id, None) is None:
            return
        self._conns.pop(room_id, None)
        self._tasks.pop(room_id, None)
        self._actors.pop(room_id, None)
        self.ids.release(room_id)
        self.journal.delete(room_id)
        self.metrics.rooms_live -= 1
        log.info("room expired", extra={"room": room_id})
        if self.on_retired is not None:
            self.on_retired(room_id)

    async def close(self) -> None:
        self._closing = True
        for actor in self._actors.values():
            actor.stop_timers()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
