"""The journal contract, one suite for every backend: ``MemoryJournal`` and ``RedisJournal``
against a real ``redis-server`` (``tests/support/redis.py``).

Claim races, optimistic concurrency (``StaleWriter``, never a fork), snapshots handed over
by the actor and ``load`` rebuilding the fold, the resume window (``read_after`` and its
``None``), delete then re-claim, and the codec round trip through the store. Then what
only a shared store has: several journal objects on one Redis (the replicas), epochs, TTL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from signaling.core import events as e
from signaling.core.events import event_size
from signaling.core.room import RoomPolicy, RoomState, evolve, replay
from signaling.journal import Journal, MemoryJournal, StaleWriter, UnknownRoom
from signaling.journal.redis import RedisJournal
from tests.support.redis import RedisServer

MakeJournal = Callable[..., Journal]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[MakeJournal]:
    """Journals of one backend that share one store: for Redis, several clients on one
    server and key prefix (replicas); for memory, one object (there is one process)."""
    made: list[Journal] = []
    if request.param == "memory":
        shared: dict[tuple[int, int], MemoryJournal] = {}

        def memory(max_events: int = 1024, max_bytes: int = 512 << 10, **_: Any) -> Journal:
            journal = shared.setdefault(
                (max_events, max_bytes), MemoryJournal(max_events, max_bytes)
            )
            return journal

        yield memory
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    def redis(max_events: int = 1024, max_bytes: int = 512 << 10, **kw: Any) -> Journal:
        journal = RedisJournal.from_url(
            server.url, prefix=prefix, max_events=max_events, max_bytes=max_bytes, **kw
        )
        made.append(journal)
        return journal

    yield redis
    for journal in made:
        await journal.close()


@pytest.fixture
def journal(make: MakeJournal) -> Journal:
    return make()


def signals(first: int, last: int, payload: str = "1") -> list[e.Event]:
    return [e.SignalRelayed(s, "a", payload, None, float(s)) for s in range(first, last + 1)]


async def append(
    journal: Journal,
    room: str,
    events: list[e.Event],
    expected: int,
    snapshot: RoomState | None = None,
) -> None:
    done = journal.append(room, events, expected, snapshot)
    if done is not None:
        await done


# ---- the claim -----------------------------------------------------------------------


async def test_create_claims_an_id_until_its_stream_is_deleted(journal: Journal) -> None:
    assert await journal.create("1000", RoomState("1000"))
    assert not await journal.create("1000", RoomState("1000")), "a live id cannot be claimed"
    await journal.delete("1000")
    assert await journal.create("1000", RoomState("1000")), "a deleted id can"


async def test_concurrent_claims_of_one_id_have_exactly_one_winner(make: MakeJournal) -> None:
    replicas = [make() for _ in range(8)]
    claims = await asyncio.gather(*(j.create("4242", RoomState("4242")) for j in replicas))
    assert sorted(claims) == [False] * 7 + [True]


async def test_a_re_claimed_id_starts_from_nothing(journal: Journal) -> None:
    await journal.create("5", RoomState("5"))
    await append(journal, "5", [e.RoomCreated(1, "5", 1.0), *signals(2, 4)], 0)
    await journal.delete("5")
    fresh = RoomState("5", RoomPolicy(9.0, 3), last_activity=7.0)
    assert await journal.create("5", fresh)
    assert await journal.load("5") == (fresh, [])
    assert await journal.read_after("5", 0) == []
    await append(journal, "5", signals(1, 1), 0)  # numbering restarts at 1


# ---- optimistic concurrency ----------------------------------------------------------


async def test_a_stale_writer_is_refused_and_nothing_is_appended(journal: Journal) -> None:
    await journal.create("1", RoomState("1"))
    await append(journal, "1", signals(1, 2), 0)
    with pytest.raises(StaleWriter) as stale:
        await append(journal, "1", signals(1, 1), 0)  # a writer that missed seq 1-2
    assert (stale.value.expected, stale.value.actual) == (0, 2)
    with pytest.raises(StaleWriter):
        await append(journal, "1", signals(4, 4), 3)
    with pytest.raises(ValueError):
        await append(journal, "1", signals(4, 4), 2)  # a gap in the numbering
    assert [ev.seq for ev in await journal.read_after("1", 0) or []] == [1, 2]


async def test_racing_writers_never_fork_the_stream(make: MakeJournal) -> None:
    """Replicas appending at the same expected seq: one batch wins whole, the others get
    ``StaleWriter`` and leave nothing behind."""
    replicas = [make() for _ in range(4)]
    await replicas[0].create("9", RoomState("9"))
    batches: list[list[e.Event]] = [
        [e.SignalRelayed(s, f"w{i}", f'"{i}"', None, float(s)) for s in (1, 2, 3)]
        for i in range(len(replicas))
    ]

    async def write(journal: Journal, batch: list[e.Event]) -> str:
        try:
            await append(journal, "9", batch, 0)
        except StaleWriter:
            return "stale"
        return "ok"

    results = await asyncio.gather(*(write(j, b) for j, b in zip(replicas, batches, strict=True)))
    assert sorted(results) == ["ok"] + ["stale"] * 3
    winner = batches[results.index("ok")]
    for journal in replicas:
        assert await journal.read_after("9", 0) == winner


# ---- snapshots, load, the window -----------------------------------------------------


def history_of(room: str, n: int) -> list[e.Event]:
    """A room's life: created, three members, signals, a detach and resume, a leave."""
    events: list[e.Event] = [
        e.RoomCreated(1, room, 100.0),
        e.PeerJoined(2, "a", 2, "da", 100.5),
        e.PeerJoined(3, "b", 1, "", 101.0),
        e.PeerJoined(4, "c", 2, "dc", 101.5),
    ]
    seq = 4
    while seq < n:
        seq += 1
        if seq % 11 == 0:
            events.append(e.PeerDetached(seq, "c", 100.0 + seq))
            seq += 1
            events.append(e.PeerResumed(seq, "c", 100.0 + seq))
        else:
            events.append(e.SignalRelayed(seq, "ab"[seq % 2], f'{{"n":{seq}}}', None, 100.0 + seq))
    events.append(e.PeerLeft(seq + 1, "b", "left", 200.0))
    return events


async def test_load_is_the_actors_snapshot_and_the_events_after_it(journal: Journal) -> None:
    initial = RoomState("7")
    await journal.create("7", initial)
    history: list[e.Event] = [e.RoomCreated(1, "7", 0.0), e.PeerJoined(2, "a", 2, "d", 0.0)]
    await append(journal, "7", history, 0)
    snapshot, after = await journal.load("7")
    assert snapshot == initial and after == history, "no snapshot handed over: all events"
    state = replay(initial, history)
    await append(journal, "7", signals(3, 4), 2, replay(state, signals(3, 4)))
    snapshot, after = await journal.load("7")
    assert snapshot == replay(state, signals(3, 4)) and after == []
    assert await journal.read_after("7", 2) == signals(3, 4)
    await journal.check()


@pytest.mark.parametrize("every", [1, 5, 32])
async def test_snapshot_and_load_replay_equals_the_fold(make: MakeJournal, every: int) -> None:
    """An actor's life in batches of 1 to 4 events with a snapshot every ``every`` events
    and a small window: at every point ``replay(load)`` is the fold of everything, and
    ``read_after`` is either exactly the tail or ``None``, never a tail with a hole."""
    journal = make(max_events=6, max_bytes=1 << 20)
    room = f"fold{every}"
    initial = RoomState(room, RoomPolicy(60.0, 8))
    await journal.create(room, initial)
    history = history_of(room, 60)
    state, snapped, i = initial, 0, 0
    while i < len(history):
        batch = history[i : i + 1 + i % 4]
        for event in batch:
            state = evolve(state, event)
        snapshot = state if state.seq - snapped >= every else None
        await append(journal, room, batch, batch[0].seq - 1, snapshot)
        snapped = state.seq if snapshot is not None else snapped
        i += len(batch)
        loaded, after = await journal.load(room)
        assert replay(loaded, after) == state == replay(initial, history[:i])
        for since in range(state.seq + 1):
            tail = await journal.read_after(room, since)
            assert tail is None or tail == history[since:i], since
        assert await journal.read_after(room, snapped) is not None, "the snapshot's tail"


async def test_trimming_keeps_the_window_and_the_snapshot_rebuilds_the_room(
    make: MakeJournal,
) -> None:
    journal = make(max_events=3, max_bytes=1 << 20)
    initial = RoomState("1000")
    await journal.create("1000", initial)
    history: list[e.Event] = [e.RoomCreated(1, "1000", 0), e.PeerJoined(2, "a", 2, "d", 0)]
    history += signals(3, 8)
    state = replay(initial, history)
    await append(journal, "1000", history, 0, state)
    snapshot, after = await journal.load("1000")
    assert snapshot == state and after == [], "the journal stores the actor's snapshot as is"
    assert await journal.read_after("1000", 5) == history[5:]
    assert await journal.read_after("1000", 4) is None
    assert await journal.read_after("1000", 8) == []


async def test_without_a_snapshot_nothing_uncovered_is_trimmed(make: MakeJournal) -> None:
    journal = make(max_events=2, max_bytes=1 << 20)
    initial = RoomState("1")
    await journal.create("1", initial)
    history = signals(1, 5)
    await append(journal, "1", history, 0)
    snapshot, after = await journal.load("1")
    assert snapshot == initial and after == history, "events the snapshot lacks are kept"
    await append(journal, "1", signals(6, 6), 5, replay(initial, [*history, *signals(6, 6)]))
    assert len(await journal.read_after("1", 4) or []) == 2
    assert await journal.read_after("1", 3) is None


async def test_the_byte_window_applies_too(make: MakeJournal) -> None:
    journal = make(max_events=1000, max_bytes=1024)
    await journal.create("1", RoomState("1"))
    events = signals(1, 5, "x" * 400)
    await append(journal, "1", events, 0, replay(RoomState("1"), events))
    assert len(await journal.read_after("1", 3) or []) == 2
    assert await journal.read_after("1", 2) is None


async def test_the_byte_window_counts_utf8_bytes(make: MakeJournal) -> None:
    emoji = '"' + "\U0001f600" * 300 + '"'  # 1,202 bytes, 302 characters
    size = event_size(e.SignalRelayed(1, "a", emoji, None, 0))
    journal = make(max_events=1000, max_bytes=3 * size)
    state = RoomState("u")
    await journal.create("u", state)
    history: list[e.Event] = [e.SignalRelayed(s, "a", emoji, None, 0.0) for s in range(1, 6)]
    await append(journal, "u", history, 0, replay(state, history))
    assert await journal.read_after("u", 2) == history[2:]
    assert await journal.read_after("u", 1) is None


async def test_unknown_rooms(journal: Journal) -> None:
    with pytest.raises(UnknownRoom):
        await append(journal, "9", [], 0)
    with pytest.raises(UnknownRoom):
        await append(journal, "9", signals(1, 1), 0)
    with pytest.raises(UnknownRoom):
        await journal.load("9")
    assert await journal.read_after("9", 0) is None
    await journal.delete("9")
    await journal.check()


# ---- the codec through the store -----------------------------------------------------


async def test_every_event_type_round_trips_through_the_store(make: MakeJournal) -> None:
    """What a replica reads is what the writer appended, to the last bit of ``at`` and the
    raw payload text (escapes, non-ASCII, lone surrogate escapes kept as written)."""
    writer, reader = make(), make()
    initial = RoomState("rt", RoomPolicy(12.5, 5), last_activity=1700000000.123456)
    await writer.create("rt", initial)
    events: list[e.Event] = [
        e.RoomCreated(1, "rt", 1700000000.123456),
        e.PeerJoined(2, "peer-1", 2, "f" * 64, 1700000000.5),
        e.PeerJoined(3, "peer-2", 1, "", 1700000001.25),
        e.SignalRelayed(4, "peer-1", '{"sdp":"v=0\\r\\n","é":"\\ud83d"}', "peer-2", 0.1 + 0.2),
        e.SignalRelayed(5, "peer-2", '"\U0001f600 \\" \\\\"', None, 1e-7),
        e.PeerDetached(6, "peer-1", 1700000002.0),
        e.PeerResumed(7, "peer-1", 1700000003.0),
        e.PeerLeft(8, "peer-2", "disconnected", 1700000004.0),
        e.PeerLeft(9, "peer-1", "expired", 1700000005.0),
        e.RoomExpired(10, 1700000006.0),
    ]
    await append(writer, "rt", events[:5], 0)
    mid = replay(initial, events[:7])
    await append(writer, "rt", events[5:7], 5, mid)
    await append(writer, "rt", events[7:], 7)
    assert await reader.read_after("rt", 0) == events
    snapshot, after = await reader.load("rt")
    assert snapshot == mid and after == events[7:]
    assert replay(snapshot, after) == replay(initial, events)


# ---- only a shared store -------------------------------------------------------------


@pytest.fixture
async def redis_journals(
    redis_server: RedisServer,
) -> AsyncIterator[Callable[..., RedisJournal]]:
    made: list[RedisJournal] = []
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    def new(**kw: Any) -> RedisJournal:
        journal = RedisJournal.from_url(redis_server.url, prefix=prefix, **kw)
        made.append(journal)
        return journal

    yield new
    for journal in made:
        await journal.close()


async def test_a_re_created_stream_is_not_the_old_room(
    redis_journals: Callable[..., RedisJournal],
) -> None:
    """Epochs: a replica that knew room 77 must not append to, resume from or delete a new
    room 77 that another replica created after the old stream went away."""
    old, other = redis_journals(), redis_journals()
    await old.create("77", RoomState("77"))
    await append(old, "77", signals(1, 3), 0)
    await other.load("77")
    await other.delete("77")
    assert await other.create("77", RoomState("77"))
    await append(other, "77", signals(1, 3, '"new"'), 0)
    with pytest.raises(UnknownRoom):
        await append(old, "77", signals(4, 4), 3)
    assert await old.read_after("77", 0) is None
    with pytest.raises(UnknownRoom):
        await old.load("77")
    await old.delete("77")
    assert await other.read_after("77", 0) == signals(1, 3, '"new"'), "the new room survives"
    assert await redis_journals().read_after("77", 1) == signals(2, 3, '"new"')


async def test_keys_carry_a_ttl_refreshed_by_appends_and_abandoned_rooms_vanish(
    redis_journals: Callable[..., RedisJournal],
) -> None:
    journal = redis_journals(ttl=600.0)
    await journal.create("60", RoomState("60"))
    meta, stream = journal.keys("60")
    assert 0 < await journal.redis.pttl(meta) <= 600_000
    await journal.redis.pexpire(meta, 1000)
    await append(journal, "60", signals(1, 1), 0)
    assert await journal.redis.pttl(meta) > 1000, "the append refreshed the claim's TTL"
    assert 0 < await journal.redis.pttl(stream) <= 600_000
    short = redis_journals(ttl=0.2)
    await short.create("61", RoomState("61"))
    await append(short, "61", signals(1, 2), 0)

    async def gone() -> bool:
        return not await short.redis.exists(*short.keys("61"))

    for _ in range(400):  # the guard; the wait ends when Redis expired both keys
        if await gone():
            break
        await asyncio.sleep(0.025)
    assert await gone()
    assert await short.create("61", RoomState("61")), "the id is free again"


async def test_a_redis_too_old_for_the_scripts_fails_the_check(
    redis_journals: Callable[..., RedisJournal], monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = redis_journals()
    real = journal.redis.info

    async def old_info(section: str) -> dict[str, Any]:
        return {**await real(section), "redis_version": "6.0.16"}

    monkeypatch.setattr(journal.redis, "info", old_info)
    with pytest.raises(RuntimeError, match=r"6\.0\.16 is too old"):
        await journal.check()
    monkeypatch.setattr(journal.redis, "info", real)
    await journal.check()  # the real one (Debian's 7.0) is fine
    await journal.check()


async def test_the_follower_never_hands_a_re_created_streams_events_to_the_old_room(
    redis_journals: Callable[..., RedisJournal],
) -> None:
    """Redis lost room 90 while a replica followed it (restarted empty, or the keys went)
    and another replica claimed the id for a new room: the follower's XREAD still waits on
    the key, past the old room's seq. The new room's events must not reach the old room's
    actor (its members would get a stranger's signals)."""
    old, other = redis_journals(), redis_journals()
    got: dict[str, list[int]] = {"90": [], "91": []}
    arrived = asyncio.Event()

    def deliver(room: str) -> Callable[[list[e.Event]], None]:
        def handed(events: list[e.Event]) -> None:
            got[room].extend(event.seq for event in events)
            arrived.set()

        return handed

    async def seen_91(seqs: list[int]) -> None:
        while got["91"] != seqs:
            arrived.clear()
            await arrived.wait()

    for room in ("90", "91"):
        assert await old.create(room, RoomState(room))
    await append(old, "90", signals(1, 2), 0)
    old.follow("90", 2, deliver("90"))
    old.follow("91", 0, deliver("91"))
    await append(old, "91", signals(1, 1), 0)
    await seen_91([1])  # the follower's XREAD covers both rooms now
    await old.redis.delete(*old.keys("90"))
    assert await other.create("90", RoomState("90"))
    await append(other, "90", signals(1, 5, '"stranger"'), 0)
    # A barrier: 91's next event comes in the same XREAD reply as 90's, or after it.
    await append(old, "91", signals(2, 2), 1)
    await seen_91([1, 2])
    assert got["90"] == []
    assert "90" not in old.following
