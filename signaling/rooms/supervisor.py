"""The supervisor: claims room ids, runs one supervising task per room, restarts a crashed
room authority from the journal with backoff, and retires rooms that expired or whose
journal cannot be read any more.

A restart rebuilds the state with ``replay`` over the journal's snapshot and events and
starts a new actor on the *same* ``RoomHandle`` (mailbox and delivery), so members stay
attached and queued messages are handled in their original order. A room whose journal
cannot be loaded after ``restart_attempts`` tries is *lost*: its members get
``unavailable`` and close code 4002, its queued commands are answered, and its id is freed
once the journal's delete returned (``Journal`` contract: an id is never reused before its
stream is gone). A room whose creation failed is not restarted but retired the same way:
its creator was refused, so it would only hold an id and its creator's room slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial

from signaling.core import commands as c
from signaling.core.events import Event
from signaling.core.room import RESUME_FAILED, ROOM_NOT_FOUND, RoomPolicy, RoomState, replay
from signaling.journal import Journal, UnknownRoom
from signaling.rooms.actor import ENTRY, UNAVAILABLE, ActorCrashed, Health, JournalFailed, RoomActor
from signaling.rooms.fanout import Fanout
from signaling.rooms.mailbox import Mailbox
from signaling.rooms.peer import Envelope, Followed, RoomHandle
from signaling.rooms.roomids import RoomIds, numeric
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import Tracing

log = logging.getLogger("signaling.rooms.supervisor")

# Journal failures in a row after which the instance reports not ready.
UNHEALTHY_AFTER = 3
# Ids a new room tries when other replicas hold the ones it drew (shared journals).
CLAIM_ATTEMPTS = 8


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
        restart_attempts: int = 5,
        backoff: tuple[float, float] = (0.05, 2.0),
        wall: Callable[[], float] = time.time,
        room_batch: int = 256,
        on_retired: Callable[[str], None] | None = None,
        on_renamed: Callable[[str, str], None] | None = None,
    ) -> None:
        self.journal = journal
        self.room_batch = room_batch
        # Told when a room stops being live (the admission layer frees its creator's slot).
        self.on_retired = on_retired
        # Told when a new room's id was taken elsewhere and it got another (old, new).
        self.on_renamed = on_renamed
        self.metrics = metrics
        self.tracing = tracing
        self.policy = policy
        self.mailbox_size = mailbox_size
        self.resume_grace = resume_grace
        self.restart_attempts = restart_attempts
        self.backoff = backoff
        self.wall = wall
        self.ids = RoomIds(room_id_digits)
        self.rooms: dict[str, RoomHandle] = {}
        self.health = Health(self._journal_failed)
        journal.on_failure = self.health.failed  # the follower's failures count too
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._actors: dict[str, RoomActor] = {}
        self._probe: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def journal_healthy(self) -> bool:
        return self.health.failures < UNHEALTHY_AFTER

    def get(self, room_id: str) -> RoomHandle | None:
        """The room's local handle. With a shared journal, a room another replica holds
        gets one here too: its actor loads the room first, and a room the journal does
        not have answers the queued entry ``room_not_found`` (``resume_failed``)."""
        handle = self.rooms.get(room_id)
        if handle is not None or not self.journal.shared or not self.ids.plausible(room_id):
            return handle
        self.ids.reserve(room_id)  # this instance must not allocate it for a new room
        return self._start(room_id, None)

    def actor(self, room_id: str) -> RoomActor | None:
        """The live actor of a room (for tests and diagnostics)."""
        return self._actors.get(room_id)

    def create(self, unguessable: bool = False) -> RoomHandle | None:
        """A new room whose actor first claims the id in the journal, or None when the id
        space is exhausted. The caller posts its ``Create`` at once; it is answered after
        the claim (``unavailable`` if the claim fails). ``unguessable``: a 144-bit id
        instead of a short one (see ``RoomIds``)."""
        room_id = self.ids.allocate(unguessable)
        if room_id is None:
            return None
        return self._start(room_id, RoomState(room_id, self.policy, last_activity=self.wall()))

    def _start(self, room_id: str, state: RoomState | None) -> RoomHandle:
        """A room's handle and supervising task: a new room (``state``: claim it) or one
        to load from a shared journal (``None``)."""
        fanout = Fanout(room_id, self.metrics, self.wall)
        handle = RoomHandle(room_id, Mailbox[Envelope](self.mailbox_size), fanout)
        fanout.handle = handle
        self.rooms[room_id] = handle
        self.metrics.rooms_live += 1
        task = asyncio.get_running_loop().create_task(
            self._supervise(handle, state), name=f"room-{room_id}"
        )
        self._tasks[room_id] = task
        return handle

    def _delay(self, failures: int) -> float:
        low, high = self.backoff
        return float(min(low * 2 ** max(failures - 1, 0), high))

    async def _supervise(self, handle: RoomHandle, initial: RoomState | None) -> None:
        """The life of one room: claim (or load), serve, restart after crashes, retire."""
        room_id = handle.room_id
        claimed = False
        # Whether the stream goes when the room retires here. With a shared journal only a
        # never created room's: other replicas may serve the room, and an expired room's
        # stream stays until its TTL so that every replica (one that slept through the
        # expiry too) reads `RoomExpired` there instead of finding nothing.
        delete = not self.journal.shared
        try:
            if initial is None:
                loaded = await self._adopt(handle)
                if loaded is None:
                    return
                state = loaded
            else:
                state = initial
                for _ in range(CLAIM_ATTEMPTS):
                    try:
                        claimed = await self.journal.create(room_id, state)
                    except Exception as exc:
                        log.error("journal create failed: %r", exc, extra={"room": room_id})
                        self.health.failed()
                        self._retire(handle, lost=True)
                        return
                    if claimed or not self.journal.shared:
                        break
                    # Another replica holds this id: draw another (nobody has seen it yet).
                    renamed = self._rename(handle)
                    if renamed is None:
                        break
                    room_id = renamed
                    state = RoomState(room_id, state.policy, last_activity=state.last_activity)
                if not claimed:
                    log.warning("room id already claimed in the journal", extra={"room": room_id})
                    self._retire(handle, lost=True)
                    return
            self.journal.follow(room_id, state.seq, partial(_followed, handle))
            restarted = False
            failures = 0
            while True:
                actor = RoomActor(
                    handle,
                    state,
                    self.journal,
                    self.metrics,
                    self.tracing,
                    self.resume_grace,
                    health=self.health,
                    wall=self.wall,
                    batch_limit=self.room_batch,
                )
                self._actors[room_id] = actor
                try:
                    await actor.run(restarted)
                    if actor.released:
                        self._retire(handle, lost=False, why="no member on this instance")
                    else:
                        self._retire(handle, lost=False)  # the room expired
                    return
                except JournalFailed:
                    failures = failures + 1 if actor.state.seq == state.seq else 1
                except ActorCrashed:
                    failures = 0
                except Exception:
                    log.exception("room actor failed", extra={"room": room_id})
                    failures = 0
                if actor.state.seq == 0:
                    # The room was never created: its Create (always the first command)
                    # was answered `unavailable` or `internal`, so nobody holds its id.
                    # Retire it now instead of keeping an empty room charged to its
                    # creator's address until it expires; a creation that did commit
                    # behind a lost acknowledgement is deleted with the stream.
                    delete = True
                    self._retire(handle, lost=False, why="room creation failed")
                    return
                log.error("restarting room actor from its journal", extra={"room": room_id})
                self.metrics.actor_restarts += 1
                if failures:
                    await asyncio.sleep(self._delay(failures))
                try:
                    loaded = await self._load(room_id)
                except UnknownRoom:
                    loaded = None
                if loaded is None:
                    self._retire(handle, lost=True)
                    return
                state = loaded
                restarted = True
                self.journal.follow(room_id, state.seq, partial(_followed, handle))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("room supervision failed", extra={"room": room_id})
            self._retire(handle, lost=True)
        finally:
            self._actors.pop(room_id, None)
            self._tasks.pop(room_id, None)
            if not self._closing:
                await self._forget(room_id, delete and (claimed or initial is None))
            if room_id not in self.rooms:  # else a newer handle of the id follows it now
                self.journal.unfollow(room_id)

    def _rename(self, handle: RoomHandle) -> str | None:
        """Give a room whose claim failed a fresh id of the same kind, before anything of
        it was committed or sent (its creator is told the id in ``room_created``)."""
        old = handle.room_id
        new = self.ids.allocate(unguessable=not numeric(old))
        if new is None:
            return None
        self.ids.release(old)
        del self.rooms[old]
        self.rooms[new] = handle
        task = self._tasks.pop(old, None)
        if task is not None:
            self._tasks[new] = task
        handle.room_id = handle.fanout.room_id = new
        if self.on_renamed is not None:
            self.on_renamed(old, new)
        # Other clients' entries queued meanwhile asked for the *old* id, which another
        # replica holds: they must not follow this room to its new id (a stranger's
        # room). Nothing has run yet; their senders are told to retry, and the retry
        # finds the room they asked for. The creator's Create is always the first.
        queued = handle.mailbox.drain()
        creator = queued[0][1] if queued else None
        kept: list[Envelope] = []
        for envelope in queued:
            command, origin = envelope
            if origin is not None and origin is not creator and isinstance(command, ENTRY):
                origin.refused(handle)
                origin.error("unavailable", UNAVAILABLE)
            else:
                kept.append(envelope)
        handle.mailbox.push_front(kept)
        return new

    async def _adopt(self, handle: RoomHandle) -> RoomState | None:
        """Load a room another replica created (a join or resume arrived here); None when
        it is retired instead: not in the journal (or expired), or the journal failing."""
        try:
            state = await self._load(handle.room_id)
        except UnknownRoom:
            state = None
        else:
            if state is None:  # the journal kept failing
                self._retire(handle, lost=True)
                return None
        if state is None or state.seq == 0 or state.expired:
            self._retire(handle, lost=False, why="room not found in the journal")
            return None
        return state

    async def _load(self, room_id: str) -> RoomState | None:
        """The room's state from the journal, retried with backoff; None: give up.
        ``UnknownRoom`` (no stream of that id) is an answer, not a failure: raised at once."""
        for attempt in range(1, self.restart_attempts + 1):
            try:
                snapshot, events = await self.journal.load(room_id)
                return replay(snapshot, events)
            except UnknownRoom:
                raise
            except Exception as exc:
                log.error(
                    "journal load failed (attempt %d): %r", attempt, exc, extra={"room": room_id}
                )
                self.health.failed()
                if attempt < self.restart_attempts:
                    await asyncio.sleep(self._delay(attempt))
        return None

    def _retire(self, handle: RoomHandle, *, lost: bool, why: str = "room expired") -> None:
        """Stop routing to the room and answer everything still queued for it."""
        room_id = handle.room_id
        if self.rooms.pop(room_id, None) is None:
            return
        self.metrics.rooms_live -= 1
        if self.on_retired is not None:
            self.on_retired(room_id)
        left = handle.mailbox.close()
        if lost:
            handle.fanout.lose_all()
            log.error("room lost: its journal is unavailable", extra={"room": room_id})
        else:
            log.info(why, extra={"room": room_id})
        for command, origin in left:
            if origin is None:
                continue
            entry = isinstance(command, c.Create | c.Join | c.Resume)
            if entry:
                origin.refused(handle)
            if lost:
                origin.error("unavailable", UNAVAILABLE)
            elif type(command) is c.Resume:
                origin.error(RESUME_FAILED.code, RESUME_FAILED.message)
            elif entry:
                origin.error(ROOM_NOT_FOUND.code, ROOM_NOT_FOUND.message)

    async def _forget(self, room_id: str, claimed: bool) -> None:
        """Delete the room's stream, then free its id (in that order)."""
        if claimed:
            try:
                await self.journal.delete(room_id)
            except Exception as exc:
                # The stream lingers; the journal's claim keeps the id from being reused
                # while it does, so freeing it locally is still safe.
                log.error("journal delete failed: %r", exc, extra={"room": room_id})
                self.health.failed()
        self.ids.release(room_id)

    async def check_journal(self) -> None:
        """At start-up: probe the journal once, so an unreachable store is not ready
        before the first room fails (and the probe brings readiness back)."""
        try:
            await self.journal.check()
        except Exception as exc:
            log.error("journal unreachable at start-up: %r", exc)
            self.health.failures = UNHEALTHY_AFTER - 1
            self.health.failed()

    def _journal_failed(self) -> None:
        """Keep probing a failing journal so readiness recovers without traffic."""
        self.metrics.journal_failures += 1
        if self._probe is None and not self._closing and not self.journal_healthy:
            self._probe = asyncio.get_running_loop().create_task(self._probe_journal())

    async def _probe_journal(self) -> None:
        attempt = 0
        try:
            while not self.journal_healthy:
                attempt += 1
                await asyncio.sleep(self._delay(attempt))
                try:
                    await self.journal.check()
                except Exception as exc:
                    log.warning("journal still failing: %r", exc)
                    continue
                self.health.failures = 0
                log.info("journal reachable again")
        finally:
            self._probe = None

    async def close(self) -> None:
        self._closing = True
        for actor in self._actors.values():
            actor.stop_timers()
        tasks = list(self._tasks.values())
        if self._probe is not None:
            tasks.append(self._probe)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


def _followed(handle: RoomHandle, events: list[Event]) -> None:
    """Events another replica committed, for the room's actor, in order with the rest."""
    handle.mailbox.post((Followed(events), None), force=True)
