"""The journal on Redis Streams: the ``journal.base.Journal`` contract shared by replicas.

Each room has two keys (hash-tagged by room id, so a Redis Cluster keeps them in one slot):

- ``<prefix>:{<room>}:events``, a stream whose entry ids are ``0-<seq>``: a stream id *is*
  the room's sequence number, so ``XRANGE`` answers ``read_after`` directly. Each entry
  holds ``e`` (the event in ``journal.codec``'s versioned encoding) and ``n`` (its size as
  ``core.events.event_size`` counts it, the unit of the resume window).
- ``<prefix>:{<room>}:meta``, a hash: ``seq`` (last committed), ``epoch``, ``snap`` and
  ``snapseq`` (the actor's latest snapshot), ``base`` (events up to it were trimmed) and
  ``size`` (bytes of the events kept).

Every write is one Lua script, so it is atomic on the server (Centrifuge's
``broker_history_add_stream.lua`` appends, trims and refreshes the TTL the same way):

- the **claim** creates the hash only if it does not exist (and drops a stray stream whose
  hash expired first), with a fresh random **epoch**;
- the **append** checks the epoch and ``seq == expected_seq`` (else ``StaleWriter``: the
  eventsourcing recorders' uniqueness constraint on (originator, version)), ``XADD``s the
  batch with explicit ids, stores the snapshot when given, trims the window from the front
  by the memory journal's rules (count and bytes, never above the snapshot) and refreshes
  the TTL of both keys, so a room every replica abandoned vanishes on its own. Each entry
  also carries ``p``, the stream's epoch (taken from the hash by the script), for the
  follower, which reads entries and never the hash.

The **epoch** tells streams of the same id apart (Centrifuge's ``StreamPosition.Epoch``).
This journal remembers the epoch of every stream it created or loaded; an append, read or
delete against a stream re-created under the same id (after the old one expired, or Redis
restarted without persistence) is refused as ``UnknownRoom`` instead of being taken for
the old room, and a delete never removes another room's stream. The follower checks it
too: entries of a re-created stream (another epoch) are never handed to the old room's
actor, which stops being followed and finds out at its next append or timer.

There is no total byte budget as in the memory journal: Redis's ``maxmemory`` is the
operator's, and the per-room window plus the TTL bound what each room keeps.

**Following.** Replicas share rooms, so each one follows the streams of the rooms it
serves: one reader task per process, one blocking ``XREAD`` over all of them on a
connection of its own, handing each room's new events to its actor (``follow``). When the
set of rooms changes, an entry on this process's own wake stream (part of every ``XREAD``)
ends the blocked call so the next one includes the new room: no polling, no Pub/Sub.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from signaling.core.events import Event, event_size
from signaling.core.room import RoomState
from signaling.journal.base import Deliver, StaleWriter, UnknownRoom
from signaling.journal.codec import (
    CodecError,
    decode_event,
    decode_snapshot,
    encode_event,
    encode_snapshot,
)

log = logging.getLogger("signaling.journal.redis")

# How long one XREAD blocks (ms): a quiet process re-issues it this often, and a Redis that
# stopped answering is noticed after this plus the socket timeout.
BLOCK_MS = 10_000
# Entries per stream per XREAD: a busy room hands its actor batches of at most this many.
READ_COUNT = 512
MIN_VERSION = (6, 2)

# KEYS: meta, events. ARGV: seq, encoded initial state, epoch, ttl ms.
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'base', ARGV[1], 'snapseq', ARGV[1],
           'snap', ARGV[2], 'epoch', ARGV[3], 'size', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""

# KEYS: meta, events. ARGV: expected seq, epoch ('' = any), ttl ms, max events, max bytes,
# snapshot ('' = none), n, then n pairs (encoded event, size).
APPEND = """
local meta = redis.call('HMGET', KEYS[1], 'seq', 'epoch', 'size', 'snapseq')
if not meta[1] then return {'unknown'} end
if ARGV[2] ~= '' and meta[2] ~= ARGV[2] then return {'epoch'} end
local expected = tonumber(ARGV[1])
if tonumber(meta[1]) ~= expected then return {'stale', tonumber(meta[1])} end
local size = tonumber(meta[3])
local n = tonumber(ARGV[7])
for i = 1, n do
  local bytes = ARGV[7 + 2 * i]
  redis.call('XADD', KEYS[2], '0-' .. (expected + i), 'e', ARGV[6 + 2 * i], 'n', bytes,
             'p', meta[2])
  size = size + tonumber(bytes)
end
local seq = expected + n
local covered = tonumber(meta[4])
if ARGV[6] ~= '' then
  covered = seq
  redis.call('HSET', KEYS[1], 'snap', ARGV[6], 'snapseq', seq)
end
local max_events, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local count = redis.call('XLEN', KEYS[2])
local dropped = nil
local from = '-'
while count > max_events or size > max_bytes do
  local head = redis.call('XRANGE', KEYS[2], from, '+', 'COUNT', 64)
  local progressed = false
  for _, entry in ipairs(head) do
    if not (count > max_events or size > max_bytes) then break end
    local s = tonumber(string.sub(entry[1], 3))
    if s > covered then break end
    size = size - tonumber(entry[2][4])
    count = count - 1
    dropped = s
    progressed = true
  end
  if not progressed then break end
  from = '(0-' .. dropped
end
if dropped then
  redis.call('XTRIM', KEYS[2], 'MINID', '0-' .. (dropped + 1))
  redis.call('HSET', KEYS[1], 'base', dropped)
end
redis.call('HSET', KEYS[1], 'seq', seq, 'size', size)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {'ok'}
"""

# KEYS: meta, events. ARGV: epoch ('' = any). The snapshot, the epoch, events after it.
LOAD = """
local meta = redis.call('HMGET', KEYS[1], 'snap', 'snapseq', 'epoch')
if not meta[1] then return false end
if ARGV[1] ~= '' and meta[3] ~= ARGV[1] then return false end
return {meta[1], meta[3], redis.call('XRANGE', KEYS[2], '(0-' .. meta[2], '+')}
"""

# KEYS: meta, events. ARGV: seq, epoch ('' = any). Events after seq, or nil if trimmed.
READ = """
local meta = redis.call('HMGET', KEYS[1], 'base', 'epoch')
if not meta[1] then return false end
if ARGV[2] ~= '' and meta[2] ~= ARGV[2] then return false end
if tonumber(ARGV[1]) < tonumber(meta[1]) then return false end
return redis.call('XRANGE', KEYS[2], '(0-' .. ARGV[1], '+')
"""

# KEYS: meta, events. ARGV: epoch ('' = any). Never deletes another epoch's stream.
DELETE = """
if ARGV[1] ~= '' then
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if epoch and epoch ~= ARGV[1] then return 0 end
end
return redis.call('DEL', KEYS[1], KEYS[2])
"""


class RedisJournal:
    """Rooms' streams in Redis: shared by every replica pointed at the same Redis."""

    backend = "redis"
    shared = True
    # A snapshot costs an encoding and a few hundred bytes on the wire: not per signal.
    snapshot_every = 32

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "signaling",
        max_events: int = 1024,
        max_bytes: int = 512 << 10,
        ttl: float = 3600.0,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.ttl_ms = max(int(ttl * 1000), 1)
        # The epoch of each stream this journal created or loaded (see the module doc).
        self.epochs: dict[str, bytes] = {}
        self._create = client.register_script(CREATE)
        self._append = client.register_script(APPEND)
        self._load = client.register_script(LOAD)
        self._read = client.register_script(READ)
        self._delete = client.register_script(DELETE)
        # Following: room -> (last seq handed over, deliver); the reader and its wake-up.
        self.following: dict[str, tuple[int, Deliver]] = {}
        self.reader: Redis | None = None
        self.wake_key = f"{prefix}:wake:{secrets.token_hex(8)}"
        self._wake_id = b"0-0"
        self._reader_task: asyncio.Task[None] | None = None
        self._waking: asyncio.Task[None] | None = None
        self._rewake = False
        self.on_failure: Callable[[], None] | None = None
        self._closing = False
        self._version_checked = False

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisJournal:
        """A journal on its own connection pool. One retry, at once, and only for a
        connection that broke (a pooled socket Redis closed): a command that timed out
        may have run, and running an append twice would turn its success into a
        ``StaleWriter``; the actor's failure path handles that case instead."""
        client = Redis.from_url(
            url,
            socket_timeout=5.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
        )
        journal = cls(client, **kwargs)
        # The blocking reader has a connection of its own, so appends never queue behind it.
        journal.reader = Redis.from_url(
            url,
            socket_timeout=BLOCK_MS / 1000 + 5.0,
            socket_connect_timeout=2.0,
            retry=Retry(NoBackoff(), 1, (RedisConnectionError,)),
            single_connection_client=True,
        )
        return journal

    def keys(self, room_id: str) -> list[str]:
        base = f"{self.prefix}:{{{room_id}}}"
        return [f"{base}:meta", f"{base}:events"]

    async def create(self, room_id: str, initial: RoomState) -> bool:
        epoch = secrets.token_hex(8).encode()
        args: list[bytes | int] = [initial.seq, encode_snapshot(initial), epoch, self.ttl_ms]
        claimed = bool(await self._create(keys=self.keys(room_id), args=args))
        if claimed:
            self.epochs[room_id] = epoch
        return claimed

    def append(
        self,
        room_id: str,
        events: Sequence[Event],
        expected_seq: int,
        snapshot: RoomState | None = None,
    ) -> Awaitable[None]:
        if events:
            last = events[-1].seq
            if events[0].seq != expected_seq + 1 or last != expected_seq + len(events):
                raise ValueError(f"room {room_id}: events must continue at seq {expected_seq + 1}")
            if snapshot is not None and snapshot.seq != last:
                raise ValueError(f"room {room_id}: snapshot at {snapshot.seq}, events end {last}")
        args: list[bytes | int] = [
            expected_seq,
            self.epochs.get(room_id, b""),
            self.ttl_ms,
            self.max_events,
            self.max_bytes,
            encode_snapshot(snapshot) if snapshot is not None and events else b"",
            len(events),
        ]
        for event in events:
            args.append(encode_event(event))
            args.append(event_size(event))
        return self._commit(room_id, expected_seq, args)

    async def _commit(self, room_id: str, expected_seq: int, args: list[bytes | int]) -> None:
        answer = await self._append(keys=self.keys(room_id), args=args)
        verdict = answer[0]
        if verdict == b"ok":
            return
        if verdict == b"stale":
            raise StaleWriter(room_id, expected_seq, int(answer[1]))
        # b"unknown", or b"epoch": the stream under this id is not the one we knew.
        raise UnknownRoom(room_id)

    async def load(self, room_id: str) -> tuple[RoomState, list[Event]]:
        answer = await self._load(keys=self.keys(room_id), args=[self.epochs.get(room_id, b"")])
        if not answer:
            raise UnknownRoom(room_id)
        snap, epoch, entries = answer
        self.epochs[room_id] = epoch
        return decode_snapshot(snap), [decode_event(fields[1]) for _, fields in entries]

    async def read_after(self, room_id: str, seq: int) -> list[Event] | None:
        args: list[bytes | int] = [seq, self.epochs.get(room_id, b"")]
        entries = await self._read(keys=self.keys(room_id), args=args)
        if entries is None:
            return None
        return [decode_event(fields[1]) for _, fields in entries]

    async def delete(self, room_id: str) -> None:
        await self._delete(keys=self.keys(room_id), args=[self.epochs.get(room_id, b"")])
        self.epochs.pop(room_id, None)

    async def check(self) -> None:
        """Reachable, and (once) new enough: the scripts use ``XTRIM MINID`` and exclusive
        ``XRANGE`` bounds, Redis 6.2's. An older one fails readiness with a clear reason
        instead of every room failing its first append."""
        if self._version_checked:
            await self.redis.ping()
            return
        info = await self.redis.info("server")
        version = str(info.get("redis_version", "0"))
        if _version(version) < MIN_VERSION:
            raise RuntimeError(f"Redis {version} is too old: the journal needs 6.2 or later")
        self._version_checked = True

    # ---- following -----------------------------------------------------------------------

    def follow(self, room_id: str, after_seq: int, deliver: Deliver) -> None:
        self.following[room_id] = (after_seq, deliver)
        if self._reader_task is None:
            self._reader_task = asyncio.get_running_loop().create_task(
                self._follow_loop(), name="journal-follow"
            )
        self._wake()

    def unfollow(self, room_id: str) -> None:
        # The next XREAD leaves it out; nothing read for it meanwhile is handed over. Its
        # epoch is forgotten too: a later load takes whatever stream has the id then.
        self.following.pop(room_id, None)
        self.epochs.pop(room_id, None)

    def _wake(self) -> None:
        """End the reader's blocked XREAD (once for any number of rooms added meanwhile)."""
        if self._waking is None:
            self._waking = asyncio.get_running_loop().create_task(self._add_wake())
        else:
            self._rewake = True

    async def _add_wake(self) -> None:
        try:
            while True:
                self._rewake = False
                await self._poke()
                if not self._rewake:
                    return
        finally:
            self._waking = None

    async def _poke(self) -> None:
        """An entry on the wake stream: the reader's blocked XREAD returns."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(self.wake_key, {"w": b"1"}, maxlen=1, approximate=False)
                pipe.pexpire(self.wake_key, max(self.ttl_ms, BLOCK_MS * 3))
                await pipe.execute()
        except (RedisError, OSError) as exc:
            # The reader is failing too; it re-reads the whole set once it recovers.
            log.debug("journal follower wake-up failed: %r", exc)

    async def _follow_loop(self) -> None:
        """The follower: one blocking XREAD over every followed room and the wake stream."""
        assert self.reader is not None
        reader = self.reader
        failures = 0
        while not self._closing:
            following = self.following
            streams: dict[Any, Any] = {self.wake_key: self._wake_id}
            keys: dict[bytes, str] = {}
            for room, (seq, _) in following.items():
                key = self.keys(room)[1]
                streams[key] = f"0-{seq}"
                keys[key.encode()] = room
            try:
                answer: Any = await reader.xread(streams, count=READ_COUNT, block=BLOCK_MS)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                failures += 1
                if failures == 1:
                    log.error("journal follower failing: %r", exc)
                if self.on_failure is not None:
                    self.on_failure()  # readiness: see ``Journal.on_failure``
                await asyncio.sleep(min(0.05 * 2 ** min(failures, 6), 2.0))
                continue
            if failures:
                log.info("journal follower reading again")
                failures = 0
            for key, entries in answer or ():
                if not entries:
                    continue
                followed = keys.get(key)
                if followed is None:
                    self._wake_id = entries[-1][0]
                    continue
                room_id = followed
                current = following.get(room_id)
                if current is None:
                    continue  # unfollowed while the XREAD was out
                epoch = self.epochs.get(room_id)
                written = entries[0][1].get(b"p")  # one stream, one epoch per reply
                if epoch is not None and written is not None and written != epoch:
                    log.warning("followed stream was re-created, room not followed: %s", room_id)
                    following.pop(room_id, None)
                    continue
                try:
                    events = [decode_event(fields[b"e"]) for _, fields in entries]
                except (CodecError, KeyError) as exc:
                    log.error("undecodable event, room not followed: %r", exc)
                    following.pop(room_id, None)
                    continue
                following[room_id] = (events[-1].seq, current[1])
                try:
                    current[1](events)
                except Exception:
                    log.exception("delivering followed events failed", extra={"room": room_id})

    async def close(self) -> None:
        """Stop the follower, then the connections. The reader is asked to stop (a wake
        entry ends its XREAD) rather than cancelled: a command cancelled inside redis-py
        can leave its connection half-closed and the task stuck. Every wait is bounded:
        shutdown must not hang on a Redis that stopped answering."""
        self._closing = True
        self.following.clear()
        reader_task = self._reader_task
        if reader_task is not None and not reader_task.done():
            await _within(self._poke(), 2.0)
            await _stop(reader_task, 2.0)
        if self._waking is not None:
            await _stop(self._waking, 0.0)
        await _within(self.redis.delete(self.wake_key), 2.0)
        if self.reader is not None and (reader_task is None or reader_task.done()):
            await _within(self.reader.aclose(), 2.0)
        await _within(self.redis.aclose(), 2.0)


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(ch for ch in part if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


async def _within(work: Awaitable[Any], seconds: float) -> None:
    """Run ``work`` for at most ``seconds``; its failure or lateness is only logged."""
    task = asyncio.ensure_future(work)
    await _stop(task, seconds)
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.debug("journal close step failed: %r", task.exception())


async def _stop(task: asyncio.Task[Any], grace: float) -> None:
    """Wait up to ``grace`` for ``task`` to end by itself, then cancel it (once more bounded)."""
    if grace > 0:
        await asyncio.wait({task}, timeout=grace)
    if not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if task.done() and not task.cancelled():
        task.exception()  # retrieved: no "exception never retrieved" at exit
