"""The journal contract (claim, optimistic concurrency, snapshots handed over by the
actor, load and read_after) for every backend in ``BACKENDS``, then the in-memory
journal's own bounds (the resume window and the total byte budget)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from signaling.core import events as e
from signaling.core.events import event_size
from signaling.core.room import RoomState, replay
from signaling.journal import Journal, MemoryJournal, StaleWriter, UnknownRoom


def signals(first: int, last: int, payload: str = "1") -> list[e.Event]:
    return [e.SignalRelayed(s, "a", payload, None, s) for s in range(first, last + 1)]


# A networked backend joins this list (with its container fixture) and must pass the
# contract tests unchanged.
BACKENDS: list[Callable[[], Journal]] = [MemoryJournal]


@pytest.fixture(params=BACKENDS, ids=lambda factory: factory.__name__)
def journal(request: pytest.FixtureRequest) -> Journal:
    factory: Callable[[], Journal] = request.param
    return factory()


async def test_create_claims_an_id_until_its_stream_is_deleted(journal: Journal) -> None:
    assert await journal.create("1000", RoomState("1000"))
    assert not await journal.create("1000", RoomState("1000")), "a live id cannot be claimed"
    await journal.delete("1000")
    assert await journal.create("1000", RoomState("1000")), "a deleted id can"


async def append(journal: Journal, room: str, events: list[e.Event], expected: int) -> None:
    done = journal.append(room, events, expected)
    if done is not None:
        await done


async def test_a_stale_writer_is_refused_and_nothing_is_appended(journal: Journal) -> None:
    await journal.create("1", RoomState("1"))
    await append(journal, "1", signals(1, 2), 0)
    with pytest.raises(StaleWriter):
        await append(journal, "1", signals(1, 1), 0)  # a writer that missed seq 1-2
    with pytest.raises(StaleWriter):
        await append(journal, "1", signals(4, 4), 3)
    with pytest.raises(ValueError):
        await append(journal, "1", signals(4, 4), 2)  # a gap in the numbering
    assert [ev.seq for ev in await journal.read_after("1", 0) or []] == [1, 2]


async def test_load_is_the_actors_snapshot_and_the_events_after_it(journal: Journal) -> None:
    initial = RoomState("7")
    await journal.create("7", initial)
    history: list[e.Event] = [e.RoomCreated(1, "7", 0.0), e.PeerJoined(2, "a", 2, "d", 0.0)]
    await append(journal, "7", history, 0)
    snapshot, after = await journal.load("7")
    assert replay(snapshot, after) == replay(initial, history)
    state = replay(initial, history)
    done = journal.append("7", signals(3, 4), 2, replay(state, signals(3, 4)))
    if done is not None:
        await done
    snapshot, after = await journal.load("7")
    assert snapshot == replay(state, signals(3, 4)) and after == []
    assert await journal.read_after("7", 2) == signals(3, 4)
    await journal.check()


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


async def test_without_a_snapshot_nothing_uncovered_is_trimmed() -> None:
    journal = MemoryJournal(max_events=2, max_bytes=1 << 20)
    initial = RoomState("1")
    await journal.create("1", initial)
    history = signals(1, 5)
    journal.append("1", history, 0)
    snapshot, after = await journal.load("1")
    assert snapshot is initial and after == history, "events the snapshot lacks are kept"
    journal.append("1", signals(6, 6), 5, replay(initial, [*history, *signals(6, 6)]))
    assert len(await journal.read_after("1", 4) or []) == 2


async def test_byte_budget_applies_too() -> None:
    journal = MemoryJournal(max_events=1000, max_bytes=1024)
    await journal.create("1", RoomState("1"))
    events = signals(1, 5, "x" * 400)
    journal.append("1", events, 0, replay(RoomState("1"), events))
    assert len(await journal.read_after("1", 3) or []) == 2
    assert await journal.read_after("1", 2) is None


async def test_unknown_rooms(journal: Journal) -> None:
    with pytest.raises(UnknownRoom):
        await append(journal, "9", [], 0)
    with pytest.raises(UnknownRoom):
        await journal.load("9")
    assert await journal.read_after("9", 0) is None
    await journal.delete("9")
    await journal.check()


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
