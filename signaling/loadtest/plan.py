"""What a load run does: the target, the shape of the load and its bounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Plan:
    url: str = "ws://127.0.0.1:8080/"
    rooms: int = 50
    peers: int = 2
    #: protocol 1 (the seed protocol) or 2 (``signaling.v2`` subprotocol)
    protocol: int = 1
    #: closed loop: signals in flight per peer (a peer sends again once a signal of its
    #: reached every other peer of its room); ignored when ``rate`` is set
    window: int = 16
    #: open loop: signals sent per second by all peers together
    rate: float | None = None
    payload_bytes: int = 300
    warmup_s: float = 1.0
    duration_s: float = 10.0
    #: stop sending after this many signals per peer (with the time bound, whichever first)
    max_per_peer: int | None = None
    #: how long to wait for signals in flight after sending stops
    drain_s: float = 5.0
    connect_concurrency: int = 200
    connect_timeout_s: float = 10.0
    #: spread connections over source addresses (e.g. "127.2.0.0/16" on loopback), the
    #: way distinct users arrive, so per-address limits apply as they would in production
    source_cidr: str | None = None
    #: TLS: a CA bundle to trust, or no verification at all (self-signed test servers)
    cafile: str | None = None
    insecure: bool = False
    #: write a socket's queued frames with one system call per event-loop turn; off, each
    #: frame is its own write (its own TCP segment on loopback), as real clients send them
    coalesce: bool = False
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    #: a local server's pid: its CPU time is sampled over the measured window
    server_pid: int | None = None
    #: connections that only hold (they answer pings and send nothing), opened beside
    #: the relaying rooms: the many quiet users a deployment carries while some relay
    idle: int = 0
    #: idle connections in rooms of this many members (created and joined, silent);
    #: 0 leaves them outside rooms, like lobby clients that connect at start-up
    idle_room_size: int = 0
    #: after the verdict, keep every connection open up to this long (SIGINT or SIGTERM
    #: ends it sooner) and report any the server closed meanwhile
    hold_s: float = 0.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise ValueError(f"not a ws:// or wss:// URL: {self.url!r}")
        if self.rooms < 1 or self.peers < 2:
            raise ValueError("need at least 1 room of at least 2 peers")
        if self.protocol not in (1, 2):
            raise ValueError("protocol must be 1 or 2")
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError("rate must be positive")
        if self.duration_s <= 0 or self.warmup_s < 0 or self.drain_s < 0:
            raise ValueError("duration must be positive, warmup and drain not negative")
        if self.payload_bytes < 64:
            raise ValueError("payload must be at least 64 bytes (it carries ids and a clock)")
        if self.max_per_peer is not None and self.max_per_peer < 1:
            raise ValueError("max-per-peer must be at least 1")
        if self.idle < 0 or self.hold_s < 0:
            raise ValueError("idle and hold must not be negative")
        if self.idle_room_size == 1 or self.idle_room_size < 0:
            raise ValueError("idle-room-size must be 0 (outside rooms) or at least 2")
        if self.idle_room_size and self.idle % self.idle_room_size:
            raise ValueError("idle must be a multiple of idle-room-size (whole rooms)")

    @property
    def connections(self) -> int:
        """Sockets the run opens: the relaying peers and the idle ones."""
        return self.rooms * self.peers + self.idle

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None  # checked in __post_init__
        return host

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (443 if parts.scheme == "wss" else 80)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "wss"

    @property
    def path(self) -> str:
        parts = urlsplit(self.url)
        return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    @property
    def host_header(self) -> str:
        return urlsplit(self.url).netloc.rpartition("@")[2]
