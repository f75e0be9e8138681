from __future__ import annotations

import pytest

from signaling.core import events as e
from signaling.core.events import event_size
from signaling.core.room import RoomState, replay
from signaling.journal import MemoryJournal, UnknownRoom


async def test_trimming_folds_into_the_snapshot_and_bounds_resume() -> None:
    journal = MemoryJournal(max_events=3, max_bytes=1 << 20)
    initial = RoomState("1000")
    journal.create("1000", initial)
    history: list[e.Event] = [e.RoomCreated(1, "1000", 0), e.PeerJoined(2, "a", 2, "d", 0)]
    history += [e.SignalRelayed(s, "a", "1", None, s) for s in range(3, 9)]
    journal.append("1000", history)
    snapshot, kept = await journal.load("1000")
    assert [ev.seq for ev in kept] == [6, 7, 8]
    assert replay(snapshot, kept) == replay(initial, history)
    assert await journal.read_after("1000", 5) == history[5:]
    assert await journal.read_after("1000", 4) is None
    assert await journal.read_after("1000", 8) == []


async def test_byte_budget_applies_too() -> None:
    journal = MemoryJournal(max_events=1000, max_bytes=1024)
    journal.create("1", RoomState("1"))
    journal.append("1", [e.SignalRelayed(s, "a", "x" * 400, None, 0) for s in range(1, 6)])
    _, kept = await journal.load("1")
    assert len(kept) == 2


async def test_unknown_rooms() -> None:
    journal = MemoryJournal()
    with pytest.raises(UnknownRoom):
        journal.append("9", [])
    assert await journal.read_after("9", 0) is None
    journal.delete("9")


async def test_total_budget_trims_the_least_recently_active_rooms_first() -> None:
    event_bytes = event_size(e.SignalRelayed(1, "a", "x" * 400, None, 0))
    journal = MemoryJournal(max_events=1000, max_bytes=1 << 20, max_total_bytes=10 * event_bytes)
    states = {}
    for room in ("old", "mid", "live"):
        states[room] = RoomState(room)
        journal.create(room, states[room])
    history: dict[str, list[e.Event]] = {room: [] for room in states}
    for room in ("old", "mid", "live"):  # 4 events each: 12 > 10, "old" gives way
        for seq in range(1, 5):
            event = e.SignalRelayed(seq, "a", "x" * 400, None, 0)
            journal.append(room, [event])
            history[room].append(event)
    assert journal.total_bytes <= journal.max_total_bytes
    assert await journal.read_after("live", 0) == history["live"], "the live room is intact"
    assert await journal.read_after("mid", 0) == history["mid"]
    assert await journal.read_after("old", 0) is None, "the oldest room lost resume depth"
    for room, events in history.items():  # but every room still rebuilds exactly
        snapshot, kept = await journal.load(room)
        assert replay(snapshot, kept) == replay(states[room], events)
    journal.delete("old")
    journal.delete("mid")
    journal.delete("live")
    assert journal.total_bytes == 0
