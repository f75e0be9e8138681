"""The in-memory journal's own properties: its snapshot is the actor's object itself, and
the total byte budget across rooms. The contract every backend keeps (claim, optimistic
concurrency, snapshots, load, the resume window) is ``tests/integration/
test_journal_contract.py``, run against ``MemoryJournal`` and a real Redis."""

from __future__ import annotations

from signaling.core import events as e
from signaling.core.events import event_size
from signaling.core.room import RoomState, replay
from signaling.journal import MemoryJournal


def signals(first: int, last: int, payload: str = "1") -> list[e.Event]:
    return [e.SignalRelayed(s, "a", payload, None, s) for s in range(first, last + 1)]


async def test_trimming_keeps_the_window_and_the_actors_snapshot_rebuilds_the_room() -> None:
    journal = MemoryJournal(max_events=3, max_bytes=1 << 20)
    initial = RoomState("1000")
    await journal.create("1000", initial)
    history: list[e.Event] = [e.RoomCreated(1, "1000", 0), e.PeerJoined(2, "a", 2, "d", 0)]
    history += signals(3, 8)
    state = replay(initial, history)
    journal.append("1000", history, 0, state)
    snapshot, after = await journal.load("1000")
    assert snapshot is state and after == [], "the journal stores the actor's snapshot as is"
    assert await journal.read_after("1000", 5) == history[5:]
    assert await journal.read_after("1000", 4) is None
    assert await journal.read_after("1000", 8) == []


async def test_total_budget_trims_the_least_recently_active_rooms_first() -> None:
    event_bytes = event_size(e.SignalRelayed(1, "a", "x" * 400, None, 0))
    journal = MemoryJournal(max_events=1000, max_bytes=1 << 20, max_total_bytes=10 * event_bytes)
    states = {}
    for room in ("old", "mid", "live"):
        states[room] = RoomState(room)
        await journal.create(room, states[room])
    history: dict[str, list[e.Event]] = {room: [] for room in states}
    for room in ("old", "mid", "live"):  # 4 events each: 12 > 10, "old" gives way
        for seq in range(1, 5):
            event = e.SignalRelayed(seq, "a", "x" * 400, None, 0)
            history[room].append(event)
            journal.append(room, [event], seq - 1, replay(states[room], history[room]))
    assert journal.total_bytes <= journal.max_total_bytes
    assert await journal.read_after("live", 0) == history["live"], "the live room is intact"
    assert await journal.read_after("mid", 0) == history["mid"]
    assert await journal.read_after("old", 0) is None, "the oldest room lost resume depth"
    for room, events in history.items():  # but every room still rebuilds exactly
        snapshot, kept = await journal.load(room)
        assert replay(snapshot, kept) == replay(states[room], events)
    for room in ("old", "mid", "live"):
        await journal.delete(room)
    assert journal.total_bytes == 0


async def test_the_byte_window_counts_payloads_in_utf8_bytes() -> None:
    """A resume replays the window as UTF-8 frames: a window counted in characters would
    let four times as many bytes of emoji through as of ASCII."""
    ascii_, emoji = '"' + "x" * 1000 + '"', '"' + "\U0001f600" * 1000 + '"'
    assert event_size(e.SignalRelayed(1, "a", emoji, None, 0)) == 96 + len(emoji.encode())
    assert event_size(e.SignalRelayed(1, "a", ascii_, None, 0)) == 96 + len(ascii_)
    window = 10 * event_size(e.SignalRelayed(1, "a", ascii_, None, 0))
    journal = MemoryJournal(max_events=1000, max_bytes=window)
    state = RoomState("r")
    await journal.create("r", state)
    history: list[e.Event] = []
    for seq in range(1, 11):  # each emoji signal is 4,098 bytes: two fit in the window
        history.append(e.SignalRelayed(seq, "a", emoji, None, 0))
        journal.append("r", [history[-1]], seq - 1, replay(state, history))
    assert await journal.read_after("r", 0) is None, "ten emoji signals overflow the window"
    # The longest replay still possible is within the window, in bytes.
    replays = [await journal.read_after("r", seq) for seq in range(10)]
    longest = next(r for r in replays if r is not None)
    assert sum(len(x.payload.encode()) for x in longest if type(x) is e.SignalRelayed) <= window
    assert journal.total_bytes == sum(event_size(x) for x in longest), "appends and trims agree"
