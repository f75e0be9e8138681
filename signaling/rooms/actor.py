"""A room actor: the imperative shell around one room's pure ``decide``/``evolve``.

One asyncio task per room drains its mailbox in batches. For each message it decides,
evolves, and queues effects; once per batch it appends the batch's events to the
journal (one round trip for a networked journal: group commit) and only then lets the
effects out: frames to sockets, closes, timers. A relayed signal therefore costs no task
and no future of its own, and its frame is encoded once per protocol version for all
recipients.

An exception while handling a message crashes the actor on purpose: it first commits
what earlier messages of the batch produced, answers the failing message with an
``internal`` error, and returns the rest of the batch to the mailbox; the supervisor then
rebuilds the state from the journal and starts a new actor on the same mailbox.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from signaling.core import commands as c
from signaling.core import events as e
from signaling.core import wire
from signaling.core.delivery import encode, visible_to
from signaling.core.errors import ErrorCode
from signaling.core.room import RESUME_FAILED, Rejection, RoomState, decide, evolve
from signaling.journal import Journal
from signaling.rooms.mailbox import Mailbox, MailboxClosed
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import Tracing, traceparent_of

log = logging.getLogger("signaling.rooms.actor")


class Peer(Protocol):
    """What an actor needs of a client connection (implemented by ``Connection``)."""

    peer_id: str
    protocol: c.Protocol
    room: RoomHandle | None

    def write(self, frame: bytes) -> None: ...

    def error(self, code: ErrorCode, message: str) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


# (command, the connection that sent it or None for timers, per-command extra):
# Create/Join: the raw resume token (v2) or None; Signal: the client's traceparent or None;
# Leave: True when the client asked (it gets a ``left`` reply).
Envelope = tuple[c.Command, Peer | None, Any]


class RoomHandle:
    """How connections reach a room: its id and mailbox. Survives actor restarts."""

    __slots__ = ("mailbox", "room_id")

    def __init__(self, room_id: str, mailbox: Mailbox[Envelope]) -> None:
        self.room_id = room_id
        self.mailbox = mailbox


class ActorCrashed(Exception):
    def __init__(self, room_id: str) -> None:
        super().__init__(f"room actor {room_id} crashed")
        self.room_id = room_id


class RoomActor:
    def __init__(
        self,
        handle: RoomHandle,
        state: RoomState,
        journal: Journal,
        conns: dict[str, Peer],
        metrics: Metrics,
        tracing: Tracing,
        resume_grace: float,
        on_expired: Callable[[str], None],
        batch_limit: int = 256,
    ) -> None:
        self.handle = handle
        self.room_id = handle.room_id
        self.state = state
        self.journal = journal
        # Attached members' live connections: the shell's half of membership.
        self.conns = conns
        self.metrics = metrics
        self.tracing = tracing
        self.resume_grace = resume_grace
        self.on_expired = on_expired
        # Fairness: at most this many messages per turn, then other rooms and the
        # sockets get the loop (a flooding room delays the others by one bounded batch).
        self.batch_limit = batch_limit
        self.loop = asyncio.get_running_loop()
        # Grace timers of detached members, by (peer id, seq of the detachment).
        self._grace: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self._expiry: asyncio.TimerHandle | None = None
        # Per-batch effect queues, flushed after the journal append.
        self._writes: list[tuple[Peer, bytes]] = []
        self._after: list[Callable[[], None]] = []
        self._relayed: list[tuple[e.SignalRelayed, int, Any]] = []

    # ---- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        self._arm_expiry()
        # After a restart: detached members still have the rest of their grace period.
        now = self.loop.time()
        for member in self.state.members.values():
            if not member.attached:
                remaining = member.detached_at + self.resume_grace - now
                self._grace_timer((member.peer_id, member.detached_seq), max(remaining, 0.0))
        mailbox = self.handle.mailbox
        depth = self.metrics.mailbox_depth
        try:
            while not mailbox.closed:
                try:
                    batch = await mailbox.take(self.batch_limit)
                except MailboxClosed:
                    return
                depth.observe(len(batch))
                await self._process(batch)
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

    def _arm_expiry(self) -> None:
        if self.state.expired:
            return
        deadline = self.state.last_activity + self.state.policy.timeout
        self._expiry = self.loop.call_at(deadline, self._post_system, c.Expire, ())

    def _post_system(self, factory: Callable[..., c.Command], args: tuple[Any, ...]) -> None:
        self.handle.mailbox.post((factory(*args, self.loop.time()), None, None), force=True)

    # ---- the batch -------------------------------------------------------------------

    async def _process(self, batch: deque[Envelope]) -> None:
        pending: list[e.Event] = []
        state = self.state
        while batch:
            envelope = batch.popleft()
            command, origin, extra = envelope
            try:
                if type(command) is c.Resume:
                    self.state = state
                    await self._commit(pending)
                    pending = []
                    await self._resume(command, origin)
                    state = self.state
                    continue
                decision = decide(state, command)
                if isinstance(decision, Rejection):
                    self._rejected(command, origin, decision)
                    continue
                new = state
                for event in decision:
                    new = evolve(new, event)
                for event in decision:
                    self._effects(state, new, event, command, origin, extra)
                if not decision:
                    self._nothing(command, origin, extra)
                state = new
                pending.extend(decision)
            except Exception:
                log.exception(
                    "room actor crashed handling %s",
                    type(command).__name__,
                    extra={"room": self.room_id},
                )
                if origin is not None:
                    origin.error("internal", "Internal error; the room was restarted")
                self.state = state
                self.handle.mailbox.push_front(batch)
                await self._commit(pending)
                raise ActorCrashed(self.room_id) from None
        self.state = state
        await self._commit(pending)

    async def _commit(self, pending: list[e.Event]) -> None:
        """Journal the batch's events, then release their effects, in that order."""
        if pending:
            loop = self.loop
            started = loop.time()
            done = self.journal.append(self.room_id, pending)
            if done is not None:
                await done
            self.metrics.journal_append.observe(loop.time() - started)
        writes = self._writes
        if writes:
            self._writes = []
            for peer, frame in writes:
                peer.write(frame)
        relayed = self._relayed
        if relayed:
            self._relayed = []
            now = self.loop.time()
            observe = self.metrics.relay_duration.observe
            for event, fanout, span in relayed:
                observe(now - event.at)
                if span is not None:
                    span.set_attribute("signaling.fanout", fanout)
                    span.end(end_time=None)
        after = self._after
        if after:
            self._after = []
            for action in after:
                action()

    # ---- effects of accepted events ------------------------------------------------------

    def _effects(
        self,
        before: RoomState,
        after: RoomState,
        event: e.Event,
        command: c.Command,
        origin: Peer | None,
        extra: Any,
    ) -> None:
        if type(event) is e.SignalRelayed:
            self._relay(event, extra)
            return
        room_id = self.room_id
        if type(event) is e.PeerJoined:
            assert origin is not None
            self.conns[event.peer_id] = origin
            self.metrics.room_members.observe(len(after.members))
            kind = "room_created" if type(command) is c.Create else "room_joined"
            if origin.protocol == 1:
                reply = wire.room_entered(kind, room_id, event.peer_id)
            else:
                peers = after.peers_of(event.peer_id)
                reply = wire.room_entered_v2(kind, room_id, event.peer_id, peers, event.seq, extra)
            self._writes.append((origin, wire.text_frame(reply)))
            self._trace(kind.replace("room_", "room."), event, origin)
        elif type(event) is e.RoomCreated:
            self.metrics.rooms_created += 1
            return
        elif type(event) is e.PeerLeft:
            self.conns.pop(event.peer_id, None)
            if origin is not None and extra is True and origin.protocol == 2:
                self._writes.append((origin, wire.text_frame(wire.left(room_id))))
            self._trace("room.leave", event, origin)
        elif type(event) is e.PeerDetached:
            self.conns.pop(event.peer_id, None)
            args = (event.peer_id, event.seq)
            self._after.append(lambda: self._grace_timer(args, self.resume_grace))
        elif type(event) is e.RoomExpired:
            self._after.append(self._expire_sockets)
            self._trace("room.expire", event, None)
        self._fan_out(before, event)

    def _relay(self, event: e.SignalRelayed, traceparent: str | None) -> None:
        span = None
        if self.tracing.tracer is not None and self.tracing.wants(traceparent):
            span = self.tracing.start(
                "signal.relay",
                event.at,
                traceparent,
                {
                    "signaling.room_id": self.room_id,
                    "signaling.sender_id": event.sender_id,
                    "signaling.payload_size": len(event.payload.encode()),
                },
            )
        v1 = v2 = None
        sender = event.sender_id
        to = event.to
        writes = self._writes
        fanout = 0
        for peer_id, peer in self.conns.items():
            if peer_id == sender or (to is not None and peer_id != to):
                continue
            if peer.protocol == 1:
                if v1 is None:
                    v1 = wire.text_frame(wire.signal(sender, event.payload))
                writes.append((peer, v1))
            else:
                if v2 is None:
                    tp = traceparent_of(span) if span is not None else None
                    v2 = wire.text_frame(wire.signal_v2(sender, event.payload, event.seq, tp))
                writes.append((peer, v2))
            fanout += 1
        metrics = self.metrics
        metrics.signals_delivered += fanout
        metrics.relay_fanout.observe(fanout)
        self._relayed.append((event, fanout, span))

    def _fan_out(self, before: RoomState, event: e.Event) -> None:
        """Tell the other attached members about a membership or room event."""
        frames: dict[int, bytes] = {}
        for peer_id, peer in self.conns.items():
            member = before.members.get(peer_id)
            if member is None or not visible_to(peer_id, member.protocol, event):
                continue
            frame = frames.get(member.protocol)
            if frame is None:
                frame = frames[member.protocol] = wire.text_frame(
                    encode(event, member.protocol, self.room_id)
                )
            self._writes.append((peer, frame))

    def _trace(self, name: str, event: e.Event, origin: Peer | None) -> None:
        if not self.tracing.wants(None):
            return
        attrs: dict[str, Any] = {"signaling.room_id": self.room_id, "signaling.seq": event.seq}
        if origin is not None:
            attrs["signaling.peer_id"] = origin.peer_id
        span = self.tracing.start(name, event.at, None, attrs)
        if span is not None:
            span.end()

    def _rejected(self, command: c.Command, origin: Peer | None, rejection: Rejection) -> None:
        if origin is None:
            return
        if type(command) in (c.Create, c.Join, c.Resume) and origin.room is self.handle:
            origin.room = None
        origin.error(rejection.code, rejection.message)

    def _nothing(self, command: c.Command, origin: Peer | None, extra: Any) -> None:
        """A command that changed nothing may still owe a reply or a timer."""
        if type(command) is c.Expire:
            self._arm_expiry()
        elif type(command) is c.Leave and extra is True and origin is not None:
            origin.write(wire.text_frame(wire.left(self.room_id)))

    def _grace_timer(self, args: tuple[str, int], delay: float) -> None:
        self._grace[args] = self.loop.call_later(delay, self._grace_over, args)

    def _grace_over(self, args: tuple[str, int]) -> None:
        del self._grace[args]
        self._post_system(c.GraceOver, args)

    def _expire_sockets(self) -> None:
        self.metrics.rooms_expired += 1
        for peer in list(self.conns.values()):
            peer.room = None
            peer.close(4000, "room expired")
        self.conns.clear()
        self.handle.mailbox.close()
        self.on_expired(self.room_id)

    # ---- resume ----------------------------------------------------------------------------

    async def _resume(self, command: c.Resume, origin: Peer | None) -> None:
        assert origin is not None
        missed = await self.journal.read_after(self.room_id, command.last_seq)
        # Events trimmed from the journal cannot be replayed: that is a failed resume too.
        decision = RESUME_FAILED if missed is None else decide(self.state, command)
        if isinstance(decision, Rejection) or missed is None:
            self.metrics.resumes["failed"] += 1
            self._rejected(command, origin, RESUME_FAILED)
            return
        state = self.state
        for event in decision:
            state = evolve(state, event)
        await self._commit(list(decision))
        self.state = state
        peer_id = command.peer_id
        previous = self.conns.get(peer_id)
        if previous is not None and previous is not origin:
            previous.room = None  # its close must not detach the resumed peer
            previous.close(4001, "resumed elsewhere")
        origin.peer_id = peer_id
        origin.room = self.handle
        self.conns[peer_id] = origin
        self.metrics.resumes["ok"] += 1
        reply = wire.room_entered_v2(
            "resumed", self.room_id, peer_id, state.peers_of(peer_id), state.seq, None
        )
        origin.write(wire.text_frame(reply))
        for event in missed:
            if visible_to(peer_id, 2, event):
                origin.write(wire.text_frame(encode(event, 2, self.room_id)))
        self._trace("room.resume", decision[0], origin)
