"""A room's authority: the imperative shell around one room's pure ``decide``/``evolve``.

One asyncio task per room drains its mailbox in batches. For each command it decides,
evolves and stages what only the writer knows (replies to the sender, relay spans, timers)
in a ``fanout.Local``; once per batch it appends the batch's events to the journal with
the sequence number it expects the stream to be at (group commit, optimistic concurrency),
and only then hands the committed events to the room's delivery (``fanout.Fanout``), which
writes frames to the attached members' sockets. Nothing else writes to a socket on behalf
of an event, so every frame a client gets is a journaled event, and the socket registry
follows the journal.

Failures lose nothing and invent nothing:
- ``decide``, ``evolve`` or staging raising for a command: that command leaves no event and
  no frame, its sender gets ``internal``; earlier commands of the batch are committed and
  delivered; the rest of the batch goes back to the mailbox and the actor crashes on
  purpose, so the supervisor rebuilds it from the journal.
- the append failing: no event of the batch is delivered, every command of the batch is
  answered ``unavailable``, and the actor crashes; the supervisor reloads with backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from functools import partial
from itertools import islice
from typing import Any

from signaling.core import commands as c
from signaling.core import events as e
from signaling.core import turn, wire
from signaling.core.commands import Resume, Signal
from signaling.core.delivery import encode, visible_to
from signaling.core.room import RESUME_FAILED, Rejection, RoomState, decide, evolve
from signaling.journal import Journal, StaleWriter
from signaling.rooms.fanout import Local
from signaling.rooms.mailbox import MailboxClosed
from signaling.rooms.peer import Envelope, Followed, Peer, RoomHandle
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import Tracing

__all__ = ["ActorCrashed", "Envelope", "JournalFailed", "Peer", "RoomActor", "RoomHandle"]

log = logging.getLogger("signaling.rooms.actor")

ENTRY = (c.Create, c.Join, c.Resume)
UNAVAILABLE = "Journal unavailable: not done; retry"


class ActorCrashed(Exception):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"room actor {room_id} crashed")
        self.room_id = room_id


class JournalFailed(ActorCrashed):
    """The journal refused or failed an append or read; the room must be reloaded."""


class Overtaken(Exception):
    """A shared journal refused an append (``StaleWriter``): another replica wrote first."""


class Health:
    """Consecutive journal failures, shared by a supervisor's actors (readiness)."""

    __slots__ = ("failures", "on_failure")

    def __init__(self, on_failure: Callable[[], None] | None = None) -> None:
        self.failures = 0
        self.on_failure = on_failure

    def failed(self) -> None:
        self.failures += 1
        if self.on_failure is not None:
            self.on_failure()


class RoomActor:
    def __init__(
        self,
        handle: RoomHandle,
        state: RoomState,
        journal: Journal,
        metrics: Metrics,
        tracing: Tracing,
        resume_grace: float,
        *,
        health: Health | None = None,
        wall: Callable[[], float] = time.time,
        batch_limit: int = 256,
    ) -> None:
        self.handle = handle
        self.room_id = handle.room_id
        self.state = state
        self.journal = journal
        self.fanout = handle.fanout
        self.metrics = metrics
        self.tracing = tracing
        self.resume_grace = resume_grace
        self.health = health or Health()
        self.wall = wall
        # Fairness: at most this many messages per turn, then other rooms and the
        # sockets get the loop (a flooding room delays the others by one bounded batch).
        self.batch_limit = batch_limit
        self.loop = asyncio.get_running_loop()
        self.expired = False
        # A shared journal: other replicas write this room too (see ``_follow``).
        self.shared = journal.shared
        self.released = False
        self._snapshot_seq = state.seq
        self._snapshot_every = journal.snapshot_every
        # Grace timers of detached members, by (peer id, seq of the detachment).
        self._grace: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._expiry: asyncio.TimerHandle | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self, restarted: bool = False) -> None:
        """Serve the mailbox until the room expires (return) or a failure (raise)."""
        self._arm_expiry()
        # After a restart: detached members still have the rest of their grace period.
        now = self.wall()
        for member in self.state.members.values():
            if not member.attached:
                remaining = member.detached_at + self.resume_grace - now
                self._grace_timer((member.peer_id, member.detached_seq), max(remaining, 0.0))
        if restarted:
            self._reconcile()
        mailbox = self.handle.mailbox
        depth = self.metrics.mailbox_depth
        try:
            while not mailbox.closed:
                try:
                    batch = await mailbox.take(self.batch_limit)
                except MailboxClosed:
                    return
                depth.observe(len(batch))
                while batch:
                    head = type(batch[0][0])
                    if head is Resume:
                        await self._resume(batch)
                    elif head is Followed:
                        await self._follow(batch)
                    else:
                        await self._segment(batch)
                    if self.expired:
                        # What the expiry left unhandled goes back for the supervisor to
                        # answer (room_not_found, resume_failed) when it retires the room.
                        if batch:
                            mailbox.push_front(batch)
                        return
                del batch  # an emptied deque (~760 bytes) is not kept while the room idles
                if self.shared and not self.fanout.attached and not len(mailbox):
                    # Nobody here is in the room: other replicas serve it (or its TTL
                    # ends it); this one stops following until a member comes back.
                    self.released = True
                    return
                if len(mailbox):  # a backlog beyond one batch: yield before the next
                    await asyncio.sleep(0)
        finally:
            self.stop_timers()

    def stop_timers(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        for timer in self._grace.values():
            timer.cancel()
        self._grace.clear()

    def _reconcile(self) -> None:
        """Make the sockets and the journal agree again after a failure (see Fanout).
        With a shared journal, members attached without a socket here may be attached
        to another replica: only those whose entry failed here are made to leave."""
        attached = {p for p, m in self.state.members.items() if m.attached}
        orphans = self.fanout.reconcile(attached)
        if self.shared:
            suspects = self.handle.suspects or ()
            orphans = [p for p in orphans if p in suspects]
        self.handle.suspects = None
        for peer_id in orphans:
            # The peer was told its command failed and never got a resume token: it leaves.
            command = c.Leave(peer_id, "disconnected", self.wall())
            self.handle.mailbox.post((command, None), force=True)

    def _arm_expiry(self) -> None:
        if self.state.expired:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        delay = self.state.last_activity + self.state.policy.timeout - self.wall()
        self._expiry = self.loop.call_later(max(delay, 0.0), self._post_expire)

    def _post_expire(self) -> None:
        self.handle.mailbox.post((c.Expire(self.wall()), None), force=True)

    # ---- the batch -------------------------------------------------------------------

    async def _segment(self, batch: deque[Envelope]) -> None:
        """Decide and stage commands up to the next ``Resume``, then commit them."""
        before = state = self.state
        events: list[e.Event] = []
        local: Local | None = None
        tracing = self.tracing
        traced = tracing.tracer is not None  # (read once per batch: an interpreted object)
        n = 0
        crashed = False
        retry: Envelope | None = None
        for envelope in batch:
            command, origin = envelope
            # Classes imported by name, not through their module (``c.Signal``): compiled,
            # that is a constant instead of a module attribute lookup per message.
            if type(command) is Resume or type(command) is Followed:
                break
            n += 1
            try:
                decision = decide(state, command)
                if isinstance(decision, Rejection):
                    if local is None:
                        local = Local()
                    self._rejected(command, origin, decision, local, len(events))
                    continue
                if not decision:
                    if local is None:
                        local = Local()
                    self._nothing(command, origin, local, len(events))
                    continue
                new = state
                for event in decision:
                    new = evolve(new, event)
                if type(command) is Signal:
                    if traced and tracing.wants(command.traceparent):
                        span = self._relay_span(decision[0], command.traceparent)
                        if span is not None:
                            if local is None:
                                local = Local()
                            local.spans[new.seq] = span
                else:
                    if (
                        self.shared
                        and type(command) is c.Detach
                        and command.peer_id not in self.fanout.attached
                    ):
                        # Its socket here was replaced: the peer resumed through another
                        # replica since. Detaching now would detach the new socket.
                        continue
                    if local is None:
                        local = Local()
                    self._stage(state, new, decision, command, origin, local, len(events))
                events.extend(decision)
                state = new
            except Exception:
                log.exception(
                    "room actor crashed handling %s",
                    type(command).__name__,
                    extra={"room": self.room_id},
                )
                if local is None:
                    local = Local()
                local.rollback(len(events), state.seq)
                if origin is not None:
                    local.notes.append(
                        (len(events), partial(origin.error, "internal", INTERNAL_MESSAGE))
                    )
                    if isinstance(command, ENTRY):
                        origin.refused(self.handle)
                elif self.handle.failed is envelope:
                    log.error("dropping a timer or disconnect that crashed the room twice")
                else:
                    # Nobody would resend a timer or a disconnect: the next actor retries it.
                    self.handle.failed = retry = envelope
                crashed = True
                break
        try:
            await self._commit(before, state, events, local)
        except Overtaken:
            # Another replica wrote first: fold in what it wrote, then the run loop decides
            # the same commands again from there (nothing of this attempt left the actor).
            await self._overtaken(batch)
            return
        except JournalFailed:
            self._unavailable(batch, n)
            raise
        if n == len(batch):  # the common case: the whole batch, one call
            batch.clear()
        else:
            for _ in range(n):
                batch.popleft()
        if crashed:
            if retry is not None:
                batch.appendleft(retry)
            self.handle.mailbox.push_front(batch)
            batch.clear()
            raise ActorCrashed(self.room_id)

    async def _commit(
        self, before: RoomState, state: RoomState, events: list[e.Event], local: Local | None
    ) -> None:
        """Journal the events, then deliver them and release the writer's effects."""
        if events:
            snapshot = state if state.seq - self._snapshot_seq >= self._snapshot_every else None
            loop = self.loop
            started = loop.time()
            try:
                done = self.journal.append(self.room_id, events, before.seq, snapshot)
                if done is not None:
                    await done
            except Exception as exc:
                if self.shared and isinstance(exc, StaleWriter):
                    raise Overtaken(self.room_id) from exc  # another replica wrote first
                log.error("journal append failed: %r", exc, extra={"room": self.room_id})
                self.health.failed()
                raise JournalFailed(self.room_id) from exc
            self.health.failures = 0
            if snapshot is not None:
                self._snapshot_seq = state.seq
            self.metrics.journal_append.observe(loop.time() - started)
        self.state = state
        try:
            self.fanout.publish(events, local)
        except Exception:  # committed already: a delivery bug must not stop the room
            log.exception("delivery failed", extra={"room": self.room_id})
        if local is not None and local.after:
            for _, action in local.after:
                try:
                    action()
                except Exception:
                    log.exception("after-commit action failed", extra={"room": self.room_id})

    def _unavailable(self, batch: deque[Envelope], n: int) -> None:
        """Nothing of the first ``n`` commands happened: tell each sender so (it may
        retry). Timers and disconnects have nobody to retry them: they go back to the
        mailbox with the rest of the batch, for the reloaded actor (deciding them again
        is harmless if the failed append did commit: they find nothing left to do)."""
        keep: list[Envelope] = []
        for envelope in islice(batch, n):
            command, origin = envelope
            if origin is None:
                keep.append(envelope)
                continue
            if isinstance(command, ENTRY):
                handle = self.handle
                if handle.suspects is None:
                    handle.suspects = set()
                handle.suspects.add(command.peer_id)
                origin.refused(self.handle)
            origin.error("unavailable", UNAVAILABLE)
        for _ in range(n):
            batch.popleft()
        batch.extendleft(reversed(keep))
        self.handle.mailbox.push_front(batch)
        batch.clear()

    # ---- staging: what the writer does once the events are committed --------------------

    def _stage(
        self,
        before: RoomState,
        after: RoomState,
        decision: tuple[e.Event, ...],
        command: c.Command,
        origin: Peer | None,
        local: Local,
        position: int,
    ) -> None:
        room_id = self.room_id
        end = position + len(decision)
        for event in decision:
            if type(event) is e.PeerJoined:
                assert origin is not None and isinstance(command, c.Create | c.Join)
                local.origins[event.seq] = origin
                kind = "room_created" if type(command) is c.Create else "room_joined"
                if origin.protocol == 1:
                    reply = wire.room_entered(kind, room_id, event.peer_id)
                else:
                    peers = after.peers_of(event.peer_id)
                    reply = wire.room_entered_v2(
                        kind, room_id, event.peer_id, peers, event.seq, command.token
                    )
                    ice = origin.ice_servers(event.peer_id)
                    if ice is not None:
                        reply = turn.with_ice_servers(reply, ice)
                local.notes.append((end, partial(origin.write, wire.text_frame(reply))))
                members = len(after.members)
                span = self._span(kind.replace("room_", "room."), event, origin)
                local.after.append((end, partial(self._joined, members, span)))
            elif type(event) is e.RoomCreated:
                local.after.append((end, self._created))
            elif type(event) is e.PeerLeft:
                if origin is not None and origin.protocol == 2:
                    frame = wire.text_frame(wire.left(room_id))
                    local.notes.append((end, partial(origin.write, frame)))
                span = self._span("room.leave", event, origin)
                local.after.append((end, partial(_end, span)))
            elif type(event) is e.PeerDetached:
                args = (event.peer_id, event.seq)
                local.after.append((end, partial(self._grace_timer, args, self.resume_grace)))
            elif type(event) is e.RoomExpired:
                span = self._span("room.expire", event, None)
                local.after.append((end, partial(self._expired, span)))

    def _joined(self, members: int, span: Any) -> None:
        self.metrics.room_members.observe(members)
        _end(span)

    def _created(self) -> None:
        self.metrics.rooms_created += 1

    def _expired(self, span: Any) -> None:
        _end(span)
        self.metrics.rooms_expired += 1
        self.expired = True
        self.stop_timers()

    def _relay_span(self, event: e.Event, traceparent: str | None) -> Any:
        assert type(event) is e.SignalRelayed
        return self.tracing.start(
            "signal.relay",
            event.at,
            traceparent,
            {
                "signaling.room_id": self.room_id,
                "signaling.sender_id": event.sender_id,
                "signaling.payload_size": len(event.payload.encode()),
            },
        )

    def _span(self, name: str, event: e.Event, origin: Peer | None) -> Any:
        """A span for a membership event, ended once the event is committed."""
        if not self.tracing.wants(None):
            return None
        attrs: dict[str, Any] = {"signaling.room_id": self.room_id, "signaling.seq": event.seq}
        if origin is not None:
            attrs["signaling.peer_id"] = getattr(event, "peer_id", origin.peer_id)
        return self.tracing.start(name, event.at, None, attrs)

    def _rejected(
        self,
        command: c.Command,
        origin: Peer | None,
        rejection: Rejection,
        local: Local,
        position: int,
    ) -> None:
        if origin is None:
            return
        if isinstance(command, ENTRY):
            origin.refused(self.handle)
        local.notes.append((position, partial(origin.error, rejection.code, rejection.message)))

    def _nothing(
        self, command: c.Command, origin: Peer | None, local: Local, position: int
    ) -> None:
        """A command that changed nothing may still owe a reply or a timer."""
        if type(command) is c.Expire:
            self._arm_expiry()
        elif type(command) is c.Leave and origin is not None and origin.protocol == 2:
            frame = wire.text_frame(wire.left(self.room_id))
            local.notes.append((position, partial(origin.write, frame)))

    def _grace_timer(self, args: tuple[str, int], delay: float) -> None:
        self._grace[args] = self.loop.call_later(delay, self._grace_over, args)

    def _grace_over(self, args: tuple[str, int]) -> None:
        del self._grace[args]
        command = c.GraceOver(args[0], args[1], self.wall())
        self.handle.mailbox.post((command, None), force=True)

    # ---- resume ----------------------------------------------------------------------------

    async def _resume(self, batch: deque[Envelope]) -> None:
        command, origin = batch[0]
        assert type(command) is c.Resume and origin is not None
        before = self.state
        # Decided before the journal is read: a forged token or a ``lastSeq`` beyond the
        # room's (one no stream id can even hold) is a failed resume, not a journal read
        # that fails and restarts the room. Nothing changes the state during the read.
        crash: Exception | None = None
        try:
            decision = decide(before, command)
        except Exception as exc:
            crash, decision = exc, RESUME_FAILED  # handled below, as this command's crash
        missed: list[e.Event] | None = None
        if type(decision) is not Rejection:
            try:
                missed = await self.journal.read_after(self.room_id, command.last_seq)
            except Exception as exc:
                log.error("journal read failed: %r", exc, extra={"room": self.room_id})
                self.health.failed()
                self._unavailable(batch, 1)
                raise JournalFailed(self.room_id) from exc
            if missed is None:
                # Events trimmed from the journal cannot be replayed: a failed resume too.
                decision = RESUME_FAILED
        local = Local()
        events: list[e.Event] = []
        state = before
        try:
            if crash is not None:
                raise crash
            if type(decision) is Rejection or missed is None:
                self.metrics.resumes["failed"] += 1
                self._rejected(command, origin, RESUME_FAILED, local, 0)
            else:
                assert not isinstance(decision, Rejection)
                events = list(decision)
                for event in events:
                    state = evolve(state, event)
                peer_id = command.peer_id
                local.origins[state.seq] = origin
                reply = wire.room_entered_v2(
                    "resumed", self.room_id, peer_id, state.peers_of(peer_id), state.seq, None
                )
                ice = origin.ice_servers(peer_id)
                if ice is not None:
                    reply = turn.with_ice_servers(reply, ice)
                frames = [wire.text_frame(reply)]
                for event in missed:
                    if visible_to(peer_id, 2, event):
                        frames.append(wire.text_frame(encode(event, 2, self.room_id)))
                local.notes.append((len(events), partial(_write_all, origin, frames)))
                span = self._span("room.resume", events[0], origin)
                local.after.append((len(events), partial(self._resumed, span)))
        except Exception:
            log.exception("room actor crashed handling Resume", extra={"room": self.room_id})
            origin.refused(self.handle)
            origin.error("internal", INTERNAL_MESSAGE)
            batch.popleft()
            self.handle.mailbox.push_front(batch)
            batch.clear()
            raise ActorCrashed(self.room_id) from None
        try:
            await self._commit(before, state, events, local)
        except Overtaken:
            await self._overtaken(batch)
            return  # the run loop takes the resume again, from the new state
        except JournalFailed:
            self._unavailable(batch, 1)
            raise
        batch.popleft()

    def _resumed(self, span: Any) -> None:
        self.metrics.resumes["ok"] += 1
        _end(span)

    # ---- other replicas' events (shared journals) -----------------------------------------

    async def _follow(self, batch: deque[Envelope]) -> None:
        """Fold in and deliver the events the journal's follower read for this room."""
        events: list[e.Event] = []
        while batch and type(batch[0][0]) is Followed:
            followed = batch.popleft()[0]
            assert type(followed) is Followed
            events.extend(followed.events)
        try:
            await self._apply(events)
        except Exception:
            self._hand_back(batch)
            raise

    def _hand_back(self, batch: deque[Envelope]) -> None:
        """What is left of a batch the actor cannot finish, back to the mailbox."""
        if batch:
            self.handle.mailbox.push_front(batch)
            batch.clear()

    async def _overtaken(self, batch: deque[Envelope]) -> None:
        """Another replica appended first: catch up, and the run loop decides ``batch``
        again from the new state. If catching up fails, nothing still in ``batch`` was
        committed: it goes back to the mailbox for the reloaded actor, not lost with this
        one."""
        self.metrics.journal_overtaken += 1
        try:
            await self._catch_up()
        except Exception:
            self._hand_back(batch)
            raise

    async def _catch_up(self) -> None:
        """After ``StaleWriter``: read what the other writers committed and apply it."""
        try:
            missed = await self.journal.read_after(self.room_id, self.state.seq)
        except Exception as exc:
            log.error("journal read failed: %r", exc, extra={"room": self.room_id})
            self.health.failed()
            raise JournalFailed(self.room_id) from exc
        if missed is None:
            # Trimmed past this actor's state (it fell a whole window behind): reload.
            raise ActorCrashed(self.room_id)
        if not missed or missed[-1].seq <= self.state.seq:
            # Overtaken, yet nothing lies beyond this state: the store went back (restored
            # from an older save, lost its last writes). Retrying would spin; reload.
            log.error("journal is behind the room actor", extra={"room": self.room_id})
            self.health.failed()
            raise JournalFailed(self.room_id)
        await self._apply(missed)

    async def _apply(self, events: list[e.Event]) -> None:
        """Committed events of this room, possibly seen before: those after the state are
        folded in and delivered in order, exactly as the writer's own are (no ``Local``:
        their writer's replies and spans stay with it)."""
        seq = self.state.seq
        fresh = [event for event in events if event.seq > seq]
        if not fresh:
            return
        if fresh[0].seq != seq + 1:  # a gap: the stream moved past what was handed over
            await self._catch_up()
            return
        state = self.state
        for event in fresh:
            state = evolve(state, event)
        self.state = state
        self.metrics.journal_followed += len(fresh)
        try:
            self.fanout.publish(fresh, None)
        except Exception:  # committed already: a delivery bug must not stop the room
            log.exception("delivery failed", extra={"room": self.room_id})
        for event in fresh:
            if type(event) is e.PeerDetached:
                # Whichever replica's timer fires first removes a peer that did not
                # come back; the others' GraceOver then finds nothing to do.
                self._grace_timer((event.peer_id, event.seq), self.resume_grace)
            elif type(event) is e.RoomExpired:
                self.expired = True
                self.stop_timers()


INTERNAL_MESSAGE = "Internal error; the room was restarted"


def _end(span: Any) -> None:
    if span is not None:
        span.end()


def _write_all(peer: Peer, frames: list[bytes]) -> None:
    for frame in frames:
        peer.write(frame)
