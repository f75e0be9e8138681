"""Delivery: committed events -> frames on the local sockets of attached members.

This is the half of a room that follows the journal. It never decides anything and never
sees a command: it is handed events only after the journal accepted them, and it keeps the
only socket registry there is (attached peer id -> local connection), changed by committed
``PeerJoined``/``PeerResumed``/``PeerLeft``/``PeerDetached``/``RoomExpired`` events and by
nothing else. Recipients are chosen by ``core.delivery`` (the same rule resume replays
with); each event is rendered at most once per protocol version for all its recipients.

Today the room's authority (``actor.RoomActor``) calls ``publish`` synchronously right
after its append, in the same process: no task, no future, no second copy of the events.
With a networked journal the same class serves every instance holding members of the room
(the broker/node split of Centrifuge): an instance that did not write the events has no
``Local`` context and simply delivers to its own sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from signaling.core import events as e
from signaling.core import wire
from signaling.core.delivery import encode, signal_recipients, visible_to
from signaling.core.events import SignalRelayed
from signaling.rooms.peer import Peer, RoomHandle
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import traceparent_of

log = logging.getLogger("signaling.rooms.fanout")

ROOM_LOST = "Room lost: its journal is unavailable"


class Local:
    """What the writing instance knows about a batch beyond its events: which local
    connection caused a membership event, the relay span of a sampled signal, replies to
    senders (positioned after the events they follow) and actions to run after delivery.
    Built only for batches that need it: a batch of plain relays has none."""

    __slots__ = ("after", "notes", "origins", "spans")

    def __init__(self) -> None:
        self.origins: dict[int, Peer] = {}
        self.spans: dict[int, Any] = {}
        # (events delivered before it, reply): frames and errors for the senders.
        self.notes: list[tuple[int, Callable[[], None]]] = []
        self.after: list[tuple[int, Callable[[], None]]] = []

    def rollback(self, events: int, seq: int) -> None:
        """Forget what was staged for events past position ``events`` (seq above ``seq``)."""
        self.notes = [note for note in self.notes if note[0] <= events]
        self.after = [item for item in self.after if item[0] <= events]
        for key in [k for k in self.origins if k > seq]:
            del self.origins[key]
        for key in [k for k in self.spans if k > seq]:
            del self.spans[key]


class Fanout:
    __slots__ = ("attached", "handle", "metrics", "room_id", "wall")

    def __init__(self, room_id: str, metrics: Metrics, wall: Callable[[], float]) -> None:
        self.room_id = room_id
        self.metrics = metrics
        self.wall = wall
        # The socket registry: attached members of this room that live on this instance.
        self.attached: dict[str, Peer] = {}
        self.handle: RoomHandle  # set by the supervisor right after construction

    def publish(self, events: Sequence[e.Event], local: Local | None) -> None:
        """Deliver committed ``events`` in order (and, for the writer, its replies)."""
        if local is None:  # the hot path: plain relays and membership events from timers
            now = self.wall()
            for event in events:
                # (by name, not ``e.SignalRelayed``: compiled, no lookup per event)
                if type(event) is SignalRelayed:
                    self._relay(event, None, now)
                else:
                    self._member_event(event, None)
            return
        notes = local.notes
        n = 0
        now = self.wall()
        for i, event in enumerate(events):
            while n < len(notes) and notes[n][0] <= i:
                notes[n][1]()
                n += 1
            try:
                if type(event) is SignalRelayed:
                    self._relay(event, local.spans.get(event.seq), now)
                else:
                    self._member_event(event, local.origins.get(event.seq))
            except Exception:  # committed already: never let one event stop the others
                log.exception("delivery failed", extra={"room": self.room_id})
        for _, reply in notes[n:]:
            reply()

    def _relay(self, event: SignalRelayed, span: Any, now: float) -> None:
        recipients = signal_recipients(event, self.attached)
        v1 = v2 = None
        for peer in recipients:
            if peer.protocol == 1:
                if v1 is None:
                    v1 = wire.text_frame(wire.signal(event.sender_id, event.payload))
                peer.write(v1)
            else:
                if v2 is None:
                    tp = traceparent_of(span) if span is not None else None
                    v2 = wire.text_frame(
                        wire.signal_v2(event.sender_id, event.payload, event.seq, tp)
                    )
                peer.write(v2)
        metrics = self.metrics
        fanout = len(recipients)
        metrics.signals_delivered += fanout
        metrics.relay_fanout.observe(fanout)
        metrics.relay_duration.observe(now - event.at if now > event.at else 0.0)
        if span is not None:
            span.set_attribute("signaling.fanout", fanout)
            span.end()

    def _member_event(self, event: e.Event, origin: Peer | None) -> None:
        attached = self.attached
        handle = self.handle
        if type(event) is e.PeerJoined:
            self._tell_others(event)
            if origin is not None:
                attached[event.peer_id] = origin
                origin.entered(handle, event.peer_id)
        elif type(event) is e.PeerLeft or type(event) is e.PeerDetached:
            peer = attached.pop(event.peer_id, None)
            if type(event) is e.PeerLeft:
                self._tell_others(event)
            if peer is not None:
                peer.evicted(handle)
        elif type(event) is e.PeerResumed:
            previous = attached.get(event.peer_id)
            if previous is not None and previous is not origin:
                previous.evicted(handle)  # its close must not detach the resumed peer
                previous.close(4001, "resumed elsewhere")
            if origin is not None:
                attached[event.peer_id] = origin
                origin.entered(handle, event.peer_id)
            elif previous is not None:
                del attached[event.peer_id]  # resumed on another instance
        elif type(event) is e.RoomExpired:
            self._tell_others(event)
            self.evict_all(4000, "room expired")

    def _tell_others(self, event: e.Event) -> None:
        """Membership and room events, to the attached members ``visible_to`` selects."""
        frames: dict[int, bytes] = {}
        for peer_id, peer in self.attached.items():
            protocol = peer.protocol
            if not visible_to(peer_id, protocol, event):
                continue
            frame = frames.get(protocol)
            if frame is None:
                frame = frames[protocol] = wire.text_frame(encode(event, protocol, self.room_id))
            peer.write(frame)

    def evict_all(self, code: int, reason: str) -> None:
        peers = list(self.attached.values())
        self.attached.clear()
        for peer in peers:
            peer.evicted(self.handle)
            peer.close(code, reason)

    def lose_all(self) -> None:
        """The room is gone without an event (its journal failed): tell and close."""
        for peer in self.attached.values():
            peer.error("unavailable", ROOM_LOST)
        self.evict_all(4002, "room lost")

    def reconcile(self, attached_ids: set[str]) -> list[str]:
        """After a restart: drop sockets the journal no longer counts as attached (an
        append whose failure was ambiguous), and return the journal's attached members
        that have no socket here, which the authority must detach."""
        for peer_id in [p for p in self.attached if p not in attached_ids]:
            peer = self.attached.pop(peer_id)
            peer.error("unavailable", ROOM_LOST)
            peer.evicted(self.handle)
            peer.close(4002, "room lost")
        return [p for p in attached_ids if p not in self.attached]
