"""One load run: connect, form rooms, send for a bounded time, drain, judge.

The run owns the shared counters the peers update and the one write callback per
event-loop turn that flushes every peer with queued frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import resource
import signal
import ssl
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator

from signaling.loadtest.cpu import process_cpu_seconds
from signaling.loadtest.peer import IdlePeer, Peer
from signaling.loadtest.plan import Plan
from signaling.loadtest.stats import Report, Verdict, latency_summary

Progress = Callable[["Run", float], None]
_TICK_S = 0.005  # open loop: how often the sender schedule is caught up
FD_RESERVE = 64  # files besides the sockets: the interpreter's, TLS, the JSON report


class SetupError(Exception):
    """The deployment could not be connected to, or refused to form the rooms."""


class Run:
    def __init__(self, plan: Plan, loop: asyncio.AbstractEventLoop) -> None:
        self.plan = plan
        self.loop = loop
        self.t0 = time.perf_counter_ns()
        self.fanout = plan.peers - 1
        self.closed_loop = plan.rate is None
        self.max_per_peer = plan.max_per_peer if plan.max_per_peer is not None else sys.maxsize
        pad = b"x" * max(0, plan.payload_bytes - 60)
        # The payload, ``%``-formatted per signal: sender index, sequence number, send time.
        self.template = (
            b'{"type":"signal","payload":{"s":%d,"n":%d,"t":%d,"candidate":"' + pad + b'"}}'
        )
        self.peers: list[Peer] = []  # the relaying ones
        self.idle: list[Peer] = []
        self.sent = 0
        self.expected = 0
        self.delivered = 0
        self.sending = False
        self.measuring = False
        self.holding = False
        self.stopping = False
        self.latencies: array[int] = array("q")
        self.errors: Counter[str] = Counter()
        self.drained = asyncio.Event()
        self.exhausted = asyncio.Event()
        self._exhausted_peers = 0
        self._dirty: list[Peer] = []

    # ---- writes: one flush per event-loop turn ---------------------------------------------

    def mark_dirty(self, peer: Peer) -> None:
        if not self._dirty:
            self.loop.call_soon(self._flush)
        self._dirty.append(peer)

    def _flush(self) -> None:
        dirty = self._dirty
        self._dirty = []
        for peer in dirty:
            peer.flush()

    def exhausted_one(self) -> None:
        self._exhausted_peers += 1
        if self._exhausted_peers >= len(self.peers):
            self.exhausted.set()

    def now_us(self) -> int:
        return (time.perf_counter_ns() - self.t0) // 1000

    # ---- phases ------------------------------------------------------------------------------

    async def connect(self) -> None:
        plan = self.plan
        ssl_ctx: ssl.SSLContext | None = None
        if plan.tls:
            ssl_ctx = ssl.create_default_context(cafile=plan.cafile)
            if plan.insecure:
                ssl_ctx.check_hostname = False
                ssl_ctx.verify_mode = ssl.CERT_NONE
        ensure_file_limit(plan.connections + FD_RESERVE)
        sources = _sources(plan.source_cidr)
        gate = asyncio.Semaphore(plan.connect_concurrency)
        for room in range(plan.rooms):
            for slot in range(plan.peers):
                self.peers.append(Peer(self, room * plan.peers + slot, room, slot))
        size = plan.idle_room_size or 1
        for i in range(plan.idle):
            self.idle.append(IdlePeer(self, i, i // size, i % size))

        async def open_one(peer: Peer) -> None:
            async with gate:
                local = (next(sources), 0) if sources is not None else None
                await asyncio.wait_for(
                    self.loop.create_connection(
                        lambda: peer,
                        plan.host,
                        plan.port,
                        ssl=ssl_ctx,
                        server_hostname=plan.host if ssl_ctx else None,
                        local_addr=local,
                    ),
                    plan.connect_timeout_s,
                )
                await asyncio.wait_for(peer.opened, plan.connect_timeout_s)

        everyone = self.idle + self.peers
        results = await asyncio.gather(*(open_one(p) for p in everyone), return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            hint = ""
            if plan.source_cidr is None and any(" 429 " in str(f) for f in failures):
                hint = " (a per-address limit: spread the sockets with --source-cidr)"
            raise SetupError(
                f"{len(failures)} of {len(everyone)} connections failed; "
                f"first: {failures[0]!r}{hint}"
            )

    async def form_rooms(self) -> None:
        """Slot 0 creates each room, the others join; wait until every member is in."""
        await _form(self, self.peers, self.plan.peers)
        if self.plan.idle_room_size:
            await _form(self, self.idle, self.plan.idle_room_size)

    async def _ask(self, peer: Peer, message: dict[str, str]) -> None:
        peer.reply = self.loop.create_future()
        peer.send_json(message)
        try:
            await asyncio.wait_for(peer.reply, self.plan.connect_timeout_s)
        except (TimeoutError, RuntimeError, ConnectionError) as exc:
            raise SetupError(f"{message['type']} failed: {exc!r}") from exc
        finally:
            peer.reply = None

    def start_sending(self) -> None:
        self.sending = True
        now = self.now_us()
        if self.closed_loop:
            for peer in self.peers:
                peer.refill(now)
        else:
            self._open_loop(time.perf_counter(), 0, iter(()))

    def _open_loop(self, start: float, sent: int, cursor: Iterator[Peer]) -> None:
        """Open loop: send what the schedule owes, round robin over the peers."""
        if not self.sending:
            return
        rate = self.plan.rate
        assert rate is not None
        due = int(rate * (time.perf_counter() - start)) - sent
        due = min(due, max(1, int(rate * 0.1)))  # behind schedule: no unbounded burst
        now = self.now_us()
        limit = self.max_per_peer
        for _ in range(due):
            peer = next(cursor, None)
            if peer is None:
                cursor = iter([p for p in self.peers if p.sent < limit])
                peer = next(cursor, None)
                if peer is None:
                    self.exhausted.set()
                    return
            peer.queue_signal(now)
            sent += 1
        self.loop.call_later(_TICK_S, self._open_loop, start, sent, cursor)

    def stop_sending(self) -> None:
        self.sending = False
        self.drained.clear()  # peers set it whenever nothing is in flight and not sending
        if self.delivered >= self.expected:
            self.drained.set()

    def open_connections(self) -> int:
        """Sockets still open (upgraded and neither closed by the server nor lost)."""
        return sum(
            1
            for peer in (*self.idle, *self.peers)
            if peer.upgraded and peer.transport is not None and not peer.transport.is_closing()
        )

    async def hold(self) -> None:
        """Keep every connection open for ``hold_s`` or until SIGINT/SIGTERM."""
        ended = asyncio.Event()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self.loop.add_signal_handler(sig, ended.set)
                installed.append(sig)
        self.holding = True
        try:
            await _until(ended, self.plan.hold_s)
        finally:
            self.holding = False
            for sig in installed:
                self.loop.remove_signal_handler(sig)

    def close(self) -> None:
        self.stopping = True
        for peer in (*self.idle, *self.peers):
            peer.close()

    def verdict(self) -> Verdict:
        fanout = self.fanout
        v = Verdict(expected=self.expected, delivered=self.delivered)
        by_room: dict[int, list[Peer]] = {}
        for peer in self.peers:
            by_room.setdefault(peer.room, []).append(peer)
            v.rejected += peer.rejected
            v.duplicated_or_reordered += peer.disorder
        for members in by_room.values():
            for receiver in members:
                for sender in members:
                    if sender is receiver:
                        continue
                    accepted = sender.sent - sender.rejected
                    got = receiver.got[sender.slot]
                    v.missing += max(0, accepted - got)
                    v.duplicated_or_reordered += max(0, got - accepted)
        assert v.expected == sum(p.sent - p.rejected for p in self.peers) * fanout
        return v


async def _form(run: Run, members: list[Peer], size: int) -> None:
    """Rooms of ``size`` consecutive ``members``: slot 0 creates, then the others join."""
    await asyncio.gather(*(run._ask(p, {"type": "create"}) for p in members[::size]))
    joins = [
        run._ask(p, {"type": "join", "roomId": members[p.base].room_id}) for p in members if p.slot
    ]
    await asyncio.gather(*joins)


def ensure_file_limit(needed: int) -> None:
    """Raise the soft open-file limit to ``needed`` (15,000 sockets need more than the
    usual 1,024); ``SetupError`` naming ``ulimit -Hn`` when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SetupError(
            f"{needed} open files needed, the hard limit is {hard}: raise it (ulimit -Hn) "
            "or open fewer connections per process"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _sources(cidr: str | None) -> Iterator[str] | None:
    if cidr is None:
        return None
    network = ipaddress.ip_network(cidr, strict=False)

    def cycle() -> Iterator[str]:
        while True:
            for host in network.hosts():
                yield str(host)

    return cycle()


async def execute(
    plan: Plan, progress: Progress | None = None, on_hold: Callable[[Run], None] | None = None
) -> Report:
    """Run ``plan`` against its deployment and judge it (``SetupError`` if it cannot start).

    With ``plan.hold_s``, ``on_hold`` is called once the signals have drained and every
    connection is about to be held."""
    loop = asyncio.get_running_loop()
    run = Run(plan, loop)
    ticker: asyncio.TimerHandle | None = None
    try:
        await run.connect()
        await run.form_rooms()
        started = time.perf_counter()
        if progress is not None:

            def tick() -> None:
                nonlocal ticker
                progress(run, time.perf_counter() - started)
                ticker = loop.call_later(1.0, tick)

            ticker = loop.call_later(1.0, tick)
        run.start_sending()
        if plan.warmup_s:
            await _until(run.exhausted, plan.warmup_s)
        run.measuring = True
        window_start = time.perf_counter()
        delivered_start = run.delivered
        cpu_start = process_cpu_seconds(plan.server_pid) if plan.server_pid else None
        own_start = time.process_time()
        await _until(run.exhausted, plan.duration_s)
        measured = time.perf_counter() - window_start
        delivered = run.delivered - delivered_start
        cpu_end = process_cpu_seconds(plan.server_pid) if plan.server_pid else None
        own = time.process_time() - own_start
        run.measuring = False
        run.stop_sending()
        await _until(run.drained, plan.drain_s)
        if plan.hold_s:
            if on_hold is not None:
                on_hold(run)
            await run.hold()
        held = run.open_connections()
    finally:
        if ticker is not None:
            ticker.cancel()
        run.close()
    server_cpu = cpu_end - cpu_start if cpu_start is not None and cpu_end is not None else None
    mode = f"closed loop, window {plan.window}" if run.closed_loop else f"{plan.rate:g} signals/s"
    return Report(
        url=plan.url,
        protocol=plan.protocol,
        rooms=plan.rooms,
        peers=plan.peers,
        mode=mode,
        payload_bytes=plan.payload_bytes,
        measured_s=measured,
        sent=run.sent,
        delivered=delivered,
        delivered_per_s=delivered / measured if measured > 0 else 0.0,
        latency_ms=latency_summary(run.latencies),
        latency_samples=len(run.latencies),
        verdict=run.verdict(),
        errors=run.errors,
        server_cpu_s=server_cpu,
        loadgen_cpu_s=own,
        connections=plan.connections,
        idle=plan.idle,
        held=held,
    )


async def _until(event: asyncio.Event, seconds: float) -> None:
    """Wait for ``event`` at most ``seconds`` (a bound, not a synchronisation)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
