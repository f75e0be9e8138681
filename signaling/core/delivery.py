"""Who receives which frame for an event: one rule, used live and for resume replay.

Keeping this pure and shared is what makes resume exactly-once: a resuming peer is sent
``visible_to(...)`` events from the journal, the same predicate that chose live recipients.
``signal_recipients`` is that predicate for signals, written as a lookup over the attached
members so the hot path pays a dict lookup (direct signal) or one pass (broadcast) instead
of a call per member; ``tests/unit/test_delivery.py`` checks the two agree.
"""

from __future__ import annotations

from typing import TypeVar

from signaling.core import events as e
from signaling.core import wire
from signaling.core.commands import Protocol

T = TypeVar("T")


def visible_to(peer_id: str, protocol: Protocol, event: e.Event) -> bool:
    """Would member ``peer_id`` speaking ``protocol`` receive a message for ``event``?"""
    if type(event) is e.SignalRelayed:
        return event.sender_id != peer_id and (event.to is None or event.to == peer_id)
    if protocol == 1:
        return False  # v1 clients see signals only
    if type(event) is e.PeerJoined or type(event) is e.PeerLeft:
        return event.peer_id != peer_id
    return type(event) is e.RoomExpired


def signal_recipients(event: e.SignalRelayed, attached: dict[str, T]) -> list[T]:
    """The attached members (peer id -> whatever the caller keeps) that ``event`` reaches:
    exactly those for which ``visible_to`` holds, in the mapping's order. (A ``dict``, not
    any ``Mapping``: compiled, its lookup and iteration are native, not method calls.)"""
    sender = event.sender_id
    to = event.to
    if to is not None:
        target = attached.get(to)
        return [target] if target is not None and to != sender else []
    found = []  # a loop, not a comprehension: interpreted (3.11), that is a call less
    for peer_id, peer in attached.items():
        if peer_id != sender:
            found.append(peer)
    return found


def encode(event: e.Event, protocol: Protocol, room_id: str, traceparent: str | None = None) -> str:
    """The text a ``protocol`` client receives for ``event`` (``visible_to`` must hold)."""
    match event:
        case e.SignalRelayed(seq, sender_id, payload, _, _):
            if protocol == 1:
                return wire.signal(sender_id, payload)
            return wire.signal_v2(sender_id, payload, seq, traceparent)
        case e.PeerJoined(seq, peer_id, _, _, _):
            return wire.peer_joined(peer_id, seq)
        case e.PeerLeft(seq, peer_id, reason, _):
            return wire.peer_left(peer_id, reason, seq)
        case e.RoomExpired():
            return wire.room_expired(room_id)
    raise ValueError(f"{type(event).__name__} is never delivered")
