"""Abuse limits as plain data: token buckets and a bounded per-client-address table.

Sans-I/O: nothing here reads a clock or a socket. Every call takes ``now`` (seconds on
any monotonic clock), so tests drive time by hand and the session layer passes the event
loop's time. The state is per process; see docs/architecture.md for how it becomes
shared when the server scales out.

Why token buckets: a burst that fits honest use (trickle ICE sends tens of candidates at
once; a user retries a mistyped room id a few times) is free, while a sustained rate
above the refill is refused at once, and the refusal says when to retry.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    """``per_second`` tokens refill continuously up to ``burst``; 0 per second = unlimited."""

    per_second: float
    burst: float

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0


UNLIMITED = Rate(0.0, 0.0)


class TokenBucket:
    """A token bucket that starts full. ``take`` either takes ``cost`` tokens or nothing."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: Rate, now: float) -> None:
        self.rate = rate.per_second
        self.burst = rate.burst
        self.tokens = rate.burst
        self.stamp = now

    def _refill(self, now: float) -> float:
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        return self.tokens

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are that many (a cost above the burst is charged
        against a full bucket, so one oversized message is not refused forever)."""
        if self.rate <= 0:
            return True
        tokens = self._refill(now)
        need = min(cost, self.burst)
        if tokens < need:
            return False
        self.tokens = tokens - cost
        return True

    def available(self, now: float, cost: float = 1.0) -> bool:
        """Whether ``take(now, cost)`` would succeed, without taking."""
        return self.rate <= 0 or self._refill(now) >= min(cost, self.burst)

    def retry_after(self, now: float, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are there (0 when they already are)."""
        if self.rate <= 0:
            return 0.0
        missing = min(cost, self.burst) - self._refill(now)
        return max(missing / self.rate, 0.0)

    def full(self, now: float) -> bool:
        """A full bucket carries no information and can be forgotten."""
        return self.rate <= 0 or self._refill(now) >= self.burst


def retry_after_ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Per-client-address limits (see README "Security" for the defaults and why)."""

    creates: Rate = UNLIMITED
    failed_joins: Rate = UNLIMITED
    failed_resumes: Rate = UNLIMITED
    handshakes: Rate = UNLIMITED
    max_connections: int = 0  # 0 = unlimited
    max_rooms: int = 0  # live rooms created from one address; 0 = unlimited


class AddressState:
    """What one client address has used: four buckets (made when first needed) and two
    counts of things it holds now."""

    __slots__ = ("connections", "creates", "failed_joins", "failed_resumes", "handshakes", "rooms")

    def __init__(self) -> None:
        self.creates: TokenBucket | None = None
        self.failed_joins: TokenBucket | None = None
        self.failed_resumes: TokenBucket | None = None
        self.handshakes: TokenBucket | None = None
        self.connections = 0
        self.rooms = 0

    def idle(self, now: float) -> bool:
        """Nothing held and every bucket full: forgetting it changes no decision."""
        if self.connections or self.rooms:
            return False
        return all(
            b is None or b.full(now)
            for b in (self.creates, self.failed_joins, self.failed_resumes, self.handshakes)
        )


BUCKETS = ("creates", "failed_joins", "failed_resumes", "handshakes")


class AddressTable:
    """Per-address state, bounded in memory.

    Entries are kept in least-recently-used order. When the table is full, idle entries
    (full buckets, nothing held) are dropped first; if none of the oldest are idle, the
    least recently used entry with nothing held is dropped even though its buckets are
    not full: an attacker that rotates through more addresses than the table holds gains
    at most a fresh burst per address, which the per-address limits already allow for a
    new address. Entries that hold connections or rooms are never dropped (their number
    is bounded by the server-wide connection cap and the rooms they hold).
    """

    def __init__(self, policy: AddressPolicy, max_entries: int = 65_536) -> None:
        self.policy = policy
        self.max_entries = max_entries
        self._entries: OrderedDict[str, AddressState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, address: object) -> bool:
        return address in self._entries

    def state(self, address: str, now: float) -> AddressState:
        entries = self._entries
        st = entries.get(address)
        if st is None:
            if len(entries) >= self.max_entries:
                self._evict(now)
            st = entries[address] = AddressState()
        else:
            entries.move_to_end(address)
        return st

    def _evict(self, now: float) -> None:
        entries = self._entries
        victim: str | None = None
        for n, (address, st) in enumerate(entries.items()):
            if st.idle(now):
                victim = address
                break
            if victim is None and not (st.connections or st.rooms):
                victim = address
            if n >= 64 and victim is not None:
                break
        if victim is not None:
            del entries[victim]

    def _bucket(self, address: str, kind: str, now: float) -> TokenBucket:
        st = self.state(address, now)
        bucket: TokenBucket | None = getattr(st, kind)
        if bucket is None:
            bucket = TokenBucket(getattr(self.policy, kind), now)
            setattr(st, kind, bucket)
        return bucket

    # ---- rate limits: ``allow`` takes a token; ``may`` only checks (for a charge that
    # depends on the outcome, like a failed join) and ``charge`` takes it afterwards.

    def allow(self, address: str, kind: str, now: float) -> float:
        """0.0 if allowed (a token is taken), else seconds until retry."""
        rate: Rate = getattr(self.policy, kind)
        if rate.unlimited:
            return 0.0
        bucket = self._bucket(address, kind, now)
        if bucket.take(now):
            return 0.0
        return max(bucket.retry_after(now), 1e-3)

    def may(self, address: str, kind: str, now: float) -> float:
        """0.0 if one more attempt is allowed (nothing taken), else seconds until retry."""
        rate: Rate = getattr(self.policy, kind)
        if rate.unlimited:
            return 0.0
        bucket = self._bucket(address, kind, now)
        if bucket.available(now):
            return 0.0
        return max(bucket.retry_after(now), 1e-3)

    def charge(self, address: str, kind: str, now: float) -> None:
        rate: Rate = getattr(self.policy, kind)
        if not rate.unlimited:
            bucket = self._bucket(address, kind, now)
            bucket.tokens = max(bucket._refill(now) - 1.0, -bucket.burst)

    def refund(self, address: str, kind: str, now: float) -> None:
        """Give back one token taken by ``allow`` (the attempt turned out fine)."""
        rate: Rate = getattr(self.policy, kind)
        st = self._entries.get(address)
        bucket: TokenBucket | None = getattr(st, kind) if st is not None else None
        if not rate.unlimited and bucket is not None:
            bucket.tokens = min(bucket._refill(now) + 1.0, bucket.burst)

    # ---- counts of what an address holds now

    def open_connection(self, address: str, now: float) -> bool:
        st = self.state(address, now)
        cap = self.policy.max_connections
        if cap and st.connections >= cap:
            return False
        st.connections += 1
        return True

    def close_connection(self, address: str, now: float) -> None:
        st = self._entries.get(address)
        if st is not None and st.connections > 0:
            st.connections -= 1

    def hold_room(self, address: str, now: float) -> bool:
        st = self.state(address, now)
        cap = self.policy.max_rooms
        if cap and st.rooms >= cap:
            return False
        st.rooms += 1
        return True

    def release_room(self, address: str, now: float) -> None:
        st = self._entries.get(address)
        if st is not None and st.rooms > 0:
            st.rooms -= 1

    def rooms_held(self, address: str) -> int:
        st = self._entries.get(address)
        return st.rooms if st is not None else 0

    def connections_held(self, address: str) -> int:
        st = self._entries.get(address)
        return st.connections if st is not None else 0


class ConnectionLimits:
    """Per-connection message and byte buckets plus a strike count for sustained abuse.

    ``admit`` runs for every client message, so both buckets are refilled and charged
    inline (one call, a few float operations, no allocation) rather than through two
    ``TokenBucket`` objects. A refused message charges nothing and costs a strike;
    strikes refill slowly, so an honest client that overshoots a burst now and then is
    never closed, while one that keeps sending into a full limit runs out of strikes and
    is closed with 1008.
    """

    __slots__ = (
        "byte_burst",
        "byte_rate",
        "byte_tokens",
        "msg_burst",
        "msg_rate",
        "msg_tokens",
        "refused",
        "stamp",
        "strike_rate",
        "strikes",
    )

    def __init__(self, messages: Rate, bytes_: Rate, strikes: Rate, now: float) -> None:
        # An unlimited rate becomes an infinite bucket: the same arithmetic, never short.
        self.msg_rate = messages.per_second if not messages.unlimited else math.inf
        self.msg_burst = self.msg_tokens = messages.burst if not messages.unlimited else math.inf
        self.byte_rate = bytes_.per_second if not bytes_.unlimited else math.inf
        self.byte_burst = self.byte_tokens = bytes_.burst if not bytes_.unlimited else math.inf
        self.stamp = now
        # Made at the first refusal: most connections never need one.
        self.strike_rate = strikes
        self.strikes: TokenBucket | None = None
        self.refused = ""  # which limit refused the last refused message

    def admit(self, now: float, size: int) -> float:
        """0.0 if the message may go on (both buckets charged), else seconds until it
        could (nothing charged; ``refused`` names the limit)."""
        msgs = self.msg_tokens
        nbytes = self.byte_tokens
        elapsed = now - self.stamp
        if elapsed > 0:
            self.stamp = now
            msgs += elapsed * self.msg_rate
            msgs = min(msgs, self.msg_burst)
            nbytes += elapsed * self.byte_rate
            nbytes = min(nbytes, self.byte_burst)
            self.msg_tokens = msgs
            self.byte_tokens = nbytes
        if msgs < 1.0:
            self.refused = "messages"
            return max((1.0 - msgs) / self.msg_rate, 1e-3)
        # A message bigger than the byte burst is charged against a full bucket.
        need = size if size < self.byte_burst else self.byte_burst
        if nbytes < need:
            self.refused = "bytes"
            return max((need - nbytes) / self.byte_rate, 1e-3)
        self.msg_tokens = msgs - 1.0
        self.byte_tokens = nbytes - size
        return 0.0

    def strike(self, now: float) -> bool:
        """Count one refused message; False when the client has run out of strikes."""
        if self.strike_rate.unlimited:
            return True
        strikes = self.strikes
        if strikes is None:
            strikes = self.strikes = TokenBucket(self.strike_rate, now)
        return strikes.take(now)
