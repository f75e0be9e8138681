"""Admission: the process-wide policy every session asks (limits, origins, tokens).

One ``Admission`` per server, shared by all sessions: the per-address table, the
server-wide connection count, the origin allow-list and the token verifier. It decides
and counts (``signaling_rate_limited_total``, ``signaling_connections_rejected_total``);
it never touches a socket or reads a clock. See ``session.py`` for where it is asked.
"""

from __future__ import annotations

import json
import logging
import resource
import ssl
from dataclasses import dataclass

from signaling.config import ConfigError, Settings, parse_rate
from signaling.telemetry.metrics import Metrics
from signaling.transport.addresses import Network, parse_networks
from signaling.transport.auth import Authenticator
from signaling.transport.limits import AddressPolicy, AddressTable, Rate
from signaling.transport.tls import server_context

log = logging.getLogger("signaling.transport.admission")

# File descriptors kept free for listeners, the admin port, journals and logs when the
# connection cap is derived from the file limit.
FD_RESERVE = 64


def preflight(settings: Settings) -> None:
    """Load the key and certificate files once at start-up, so a missing file or a bad
    key exits with status 2 and a message naming the setting, not a traceback later."""
    try:
        Authenticator.from_files(
            secret=settings.jwt_secret_value(),
            public_key_file=settings.jwt_public_key_file,
            jwks_file=settings.jwt_jwks_file,
        )
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise ConfigError(f"SIGNALING_JWT_*: {exc}") from None
    if settings.tls:
        try:
            server_context(settings.tls_cert_file, settings.tls_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"SIGNALING_TLS_CERT_FILE/SIGNALING_TLS_KEY_FILE: {exc}") from None


def _rate(text: str) -> Rate:
    per_second, burst = parse_rate(text)
    return Rate(per_second, burst)


def raise_file_limit() -> int:
    """Raise the soft open-file limit to the hard one (as servers do); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_cap(configured: int, file_limit: int) -> int:
    """The server-wide cap: as configured, or the file limit less a reserve."""
    if configured:
        return configured
    return max(file_limit - FD_RESERVE, 16)


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """Per-connection limits, copied into each session."""

    messages: Rate
    bytes: Rate
    strikes: Rate  # refused messages before 1008; refills at a tenth per second
    roomless_timeout: float
    handshake_timeout: float = 10.0
    close_timeout: float = 5.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0


class Admission:
    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        *,
        authenticator: Authenticator | None = None,
        file_limit: int | None = None,
    ) -> None:
        s = settings
        self.metrics = metrics
        self.addresses = AddressTable(
            AddressPolicy(
                creates=_rate(s.create_rate),
                failed_joins=_rate(s.failed_join_rate),
                failed_resumes=_rate(s.failed_resume_rate),
                handshakes=_rate(s.handshake_rate),
                max_connections=s.connections_per_address,
                max_rooms=s.rooms_per_address,
            )
        )
        strikes = s.rate_limit_strikes
        self.connection = ConnectionPolicy(
            messages=_rate(s.message_rate),
            bytes=_rate(s.byte_rate),
            strikes=Rate(strikes / 10, strikes) if strikes else Rate(0, 0),
            roomless_timeout=s.roomless_timeout,
            handshake_timeout=s.handshake_timeout,
            close_timeout=s.close_timeout,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
        )
        self.trusted: tuple[Network, ...] = parse_networks(s.trusted_proxies)
        self.origins: frozenset[str] | None = (
            frozenset(s.allowed_origins.split(",")) if s.allowed_origins else None
        )
        self.authenticator = authenticator
        limit = file_limit if file_limit is not None else raise_file_limit()
        self.max_connections = connection_cap(s.max_connections, limit)
        metrics.connections_limit = self.max_connections
        self.sockets = 0  # sockets the server holds now (health probes included)
        self.websockets = 0  # of which fully opened WebSockets
        # Rooms are charged to the address that created them until they expire.
        self.room_owners: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, metrics: Metrics) -> Admission:
        authenticator = Authenticator.from_files(
            secret=settings.jwt_secret_value(),
            public_key_file=settings.jwt_public_key_file,
            jwks_file=settings.jwt_jwks_file,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
        return cls(settings, metrics, authenticator=authenticator)

    def reload_keys(self, settings: Settings) -> bool:
        """Read the JWT key files again (key rotation); keep the current keys on failure."""
        if self.authenticator is None:
            return False
        try:
            fresh = Authenticator.from_files(
                secret=settings.jwt_secret_value(),
                public_key_file=settings.jwt_public_key_file,
                jwks_file=settings.jwt_jwks_file,
                audience=settings.jwt_audience,
                issuer=settings.jwt_issuer,
            )
        except (OSError, ValueError) as exc:
            log.error("JWT key reload failed, keeping the current keys: %s", exc)
            return False
        self.authenticator = fresh
        log.info("JWT keys reloaded")
        return True

    # ---- sockets ---------------------------------------------------------------------

    def socket_opened(self) -> bool:
        """False when the server holds so many sockets it must refuse even a probe:
        WebSockets get a 503 at the cap, other requests a little above it."""
        if self.sockets >= self.max_connections + FD_RESERVE // 2:
            self.metrics.rejected["server_full"] += 1
            return False
        self.sockets += 1
        return True

    def socket_closed(self) -> None:
        self.sockets -= 1

    def origin_allowed(self, origin: str | None) -> bool:
        """Browsers always send Origin; clients that send none are not browsers and are
        not what an allow-list protects against (cross-site WebSocket hijacking)."""
        if self.origins is None or origin is None:
            return True
        return origin.strip().rstrip("/").lower() in self.origins

    # ---- rooms -----------------------------------------------------------------------

    def room_created(self, room_id: str, address: str, now: float) -> None:
        self.room_owners[room_id] = address

    def room_renamed(self, old: str, new: str) -> None:
        """A new room took another id before anyone saw it (its first one was held by
        another replica): its creator's slot follows it."""
        address = self.room_owners.pop(old, None)
        if address is not None:
            self.room_owners[new] = address

    def room_retired(self, room_id: str, now: float) -> None:
        address = self.room_owners.pop(room_id, None)
        if address is not None:
            self.addresses.release_room(address, now)

    def limited(self, kind: str) -> None:
        self.metrics.rate_limited[kind] += 1

    def rejected(self, reason: str) -> None:
        self.metrics.rejected[reason] += 1
