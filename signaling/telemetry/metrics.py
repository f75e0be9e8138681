"""Prometheus metrics whose hot-path updates are plain integer additions.

``prometheus_client`` metric objects take a lock on every update. On the relay path
that is measurable, so the server counts into plain attributes and lists of this
``Metrics`` object (single-threaded event loop: no lock needed) and a custom collector
turns them into metric families only when Prometheus scrapes. Labels are closed sets
(protocol, message type, error code, resume result): never a room or peer id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from signaling.core.errors import ERROR_CODES, ErrorCode
from signaling.core.wire import MESSAGE_TYPES

PROTOCOLS = ("v1", "v2")
RECEIVED_TYPES = (*MESSAGE_TYPES, "invalid")
RESUME_RESULTS = ("ok", "failed")
# Which limit refused a client request (closed set: the labels of rate_limited_total).
RATE_LIMIT_KINDS = (
    "messages",
    "bytes",
    "creates",
    "rooms",
    "failed_joins",
    "failed_resumes",
)
# Why the server refused or closed a connection (labels of connections_rejected_total).
REJECT_REASONS = (
    "origin",
    "unauthorized",
    "handshake_rate",
    "address_connections",
    "server_full",
    "token_expired",
    "roomless_timeout",
    "abuse",
)

LATENCY_BUCKETS = (
    10e-6,
    25e-6,
    50e-6,
    100e-6,
    250e-6,
    500e-6,
    1e-3,
    2.5e-3,
    5e-3,
    10e-3,
    25e-3,
    50e-3,
    100e-3,
    250e-3,
    500e-3,
    1.0,
)
FANOUT_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 16, 32, 64)
MEMBER_BUCKETS = (1, 2, 3, 4, 5, 6, 8, 10, 16, 32, 64)
DEPTH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class PacingStats(Protocol):
    """What loop pacing reports (``transport.pacing.Pacer``)."""

    naps: int
    napped: float


class Histogram:
    """Fixed buckets, no lock: ``observe`` finds the bucket and adds twice.

    ``counts[i]`` counts the values in ``(bounds[i-1], bounds[i]]`` (the last one those
    above every bound), which is ``bisect_left``'s index. The bucket is found by a plain
    scan from the lowest bound: compiled, that is a few native float comparisons for the
    values a relay sees (tens of microseconds, one to four recipients), where a call to
    ``bisect_left`` was a module-global lookup and a generic call (about 1,300
    instructions per observation, two per relayed signal)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds: tuple[float, ...] = tuple(float(b) for b in bounds)
        self.counts: list[int] = [0] * (len(self.bounds) + 1)
        self.sum: float = 0.0

    def observe(self, value: float) -> None:
        bounds = self.bounds
        n = len(bounds)
        i = 0
        while i < n and bounds[i] < value:
            i += 1
        counts = self.counts
        counts[i] = counts[i] + 1  # (compiled, ``counts[i] += 1`` is a generic in-place add)
        self.sum += value

    def family(self, name: str, doc: str, labels: dict[str, str] | None = None) -> Metric:
        fam = HistogramMetricFamily(name, doc, labels=list(labels or {}))
        cumulative, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(bound), running))
        fam.add_metric(list((labels or {}).values()), cumulative, self.sum)
        return fam


class Metrics:
    """All server metrics. Attribute updates are the hot-path API."""

    def __init__(self) -> None:
        self.connections_open = {p: 0 for p in PROTOCOLS}
        self.connections_opened = {p: 0 for p in PROTOCOLS}
        self.rooms_live = 0
        self.rooms_created = 0
        self.rooms_expired = 0
        self.room_members = Histogram(MEMBER_BUCKETS)
        self.received = dict.fromkeys(RECEIVED_TYPES, 0)
        self.signals_delivered = 0
        self.relay_duration = Histogram(LATENCY_BUCKETS)
        self.relay_fanout = Histogram(FANOUT_BUCKETS)
        self.mailbox_depth = Histogram(DEPTH_BUCKETS)
        self.errors: dict[ErrorCode, int] = dict.fromkeys(ERROR_CODES, 0)
        self.resumes = dict.fromkeys(RESUME_RESULTS, 0)
        self.slow_consumers = 0
        self.journal_append = Histogram(LATENCY_BUCKETS)
        self.journal_backend = "memory"
        self.actor_restarts = 0
        # Shared journals (replicas): appends another replica overtook, and the events
        # other replicas committed that this one folded in and delivered.
        self.journal_overtaken = 0
        self.journal_followed = 0
        self.rate_limited = dict.fromkeys(RATE_LIMIT_KINDS, 0)
        self.rejected = dict.fromkeys(REJECT_REASONS, 0)
        self.pacing: PacingStats | None = None
        # For alerting (prometheus/alerts.yaml): what /readyz answers, journal failures
        # (each one; readiness drops after a few in a row) and the server-wide socket cap.
        self.readiness: Callable[[], bool] | None = None
        self.journal_failures = 0
        self.connections_limit = 0

    def registry(self) -> CollectorRegistry:
        """A registry with these metrics plus the process, platform and GC collectors."""
        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Collector(self))
        ProcessCollector(registry=reg)
        PlatformCollector(registry=reg)
        GCCollector(registry=reg)
        return reg


def _labelled(
    family: type[CounterMetricFamily] | type[GaugeMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: Mapping[Any, int],
) -> Metric:
    fam = family(name, doc, labels=[label])
    for key, value in values.items():
        fam.add_metric([key], value)
    return fam


class _Collector(Collector):
    def __init__(self, m: Metrics) -> None:
        self.m = m

    def collect(self) -> Iterator[Metric]:
        m = self.m
        p = "signaling_"
        yield _labelled(
            GaugeMetricFamily,
            p + "connections_open",
            "Open WebSocket connections.",
            "protocol",
            m.connections_open,
        )
        yield _labelled(
            CounterMetricFamily,
            p + "connections_opened",
            "WebSocket connections opened.",
            "protocol",
            m.connections_opened,
        )
        yield GaugeMetricFamily(p + "rooms_live", "Rooms alive now.", value=m.rooms_live)
        yield CounterMetricFamily(p + "rooms_created", "Rooms created.", value=m.rooms_created)
        yield CounterMetricFamily(
            p + "rooms_expired", "Rooms expired after inactivity.", value=m.rooms_expired
        )
        yield m.room_members.family(
            p + "room_members", "Members in a room, observed at each create and join."
        )
        yield _labelled(
            CounterMetricFamily,
            p + "messages_received",
            "Client messages received by type.",
            "type",
            m.received,
        )
        yield CounterMetricFamily(
            p + "signals_delivered",
            "Signals handed to recipients' sockets.",
            value=m.signals_delivered,
        )
        yield m.relay_duration.family(
            p + "relay_duration_seconds",
            "Time from receiving a signal to handing it to the recipients' sockets.",
        )
        yield m.relay_fanout.family(p + "relay_fanout", "Recipients per relayed signal.")
        yield m.mailbox_depth.family(
            p + "mailbox_depth", "Messages a room actor drained per wake-up."
        )
        yield _labelled(
            CounterMetricFamily,
            p + "protocol_errors",
            "Error replies sent, by code.",
            "code",
            dict(m.errors),
        )
        yield _labelled(
            CounterMetricFamily, p + "resumes", "Resume attempts by result.", "result", m.resumes
        )
        yield CounterMetricFamily(
            p + "slow_consumer_disconnects",
            "Clients disconnected because their send buffer overflowed.",
            value=m.slow_consumers,
        )
        yield m.journal_append.family(
            p + "journal_append_duration_seconds",
            "Time to append one batch of room events.",
            {"backend": m.journal_backend},
        )
        yield _labelled(
            CounterMetricFamily,
            p + "rate_limited",
            "Client requests refused by an abuse limit, by limit.",
            "kind",
            m.rate_limited,
        )
        yield _labelled(
            CounterMetricFamily,
            p + "connections_rejected",
            "Connections refused at the handshake or closed by policy, by reason.",
            "reason",
            m.rejected,
        )
        pacing = m.pacing
        yield CounterMetricFamily(
            p + "loop_pacing_waits",
            "Loop turns that waited before polling again (SIGNALING_LOOP_PACING_US).",
            value=pacing.naps if pacing is not None else 0,
        )
        yield CounterMetricFamily(
            p + "loop_pacing_wait_seconds",
            "Time the event loop waited for traffic to gather (spare capacity under load).",
            value=pacing.napped if pacing is not None else 0.0,
        )
        yield GaugeMetricFamily(
            p + "ready",
            "1 while /readyz answers 200 (serving, journal not failing), else 0.",
            value=1 if m.readiness is not None and m.readiness() else 0,
        )
        yield CounterMetricFamily(
            p + "journal_failures",
            "Journal operations that failed (append, load, delete, health probe at start).",
            value=m.journal_failures,
        )
        yield GaugeMetricFamily(
            p + "connections_limit",
            "Sockets the server accepts before refusing with 503 (SIGNALING_MAX_CONNECTIONS"
            " or the file limit less a reserve).",
            value=m.connections_limit,
        )
        yield CounterMetricFamily(
            p + "actor_restarts",
            "Room actors restarted from the journal after a crash.",
            value=m.actor_restarts,
        )
        yield CounterMetricFamily(
            p + "journal_overtaken",
            "Appends refused because another replica wrote the room first (caught up, retried).",
            value=m.journal_overtaken,
        )
        yield CounterMetricFamily(
            p + "journal_followed_events",
            "Room events other replicas committed, delivered to this one's members.",
            value=m.journal_followed,
        )
