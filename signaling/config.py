"""Settings: each knob is a field of ``Settings`` with its default, variable and flag.

Every setting is validated at start-up so a typo fails fast (exit status 2, naming the
variable) instead of surfacing as a strange runtime behaviour hours later.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting has a bad value; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Knob:
    env: str
    flag: str
    default: Any
    parse: Callable[[str], Any]
    help: str


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw.strip())
        if not lo <= value <= hi:
            raise ValueError(f"must be between {lo} and {hi}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw.strip())
    if not (value > 0 and math.isfinite(value)):
        raise ValueError("must be a positive number")
    return value


def _choice(*options: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _host(raw: str) -> str:
    return raw.strip()


def _text(raw: str) -> str:
    return raw.strip()


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ValueError("must be true or false")


def _urls(*schemes: str) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        urls = tuple(part.strip() for part in raw.split(",") if part.strip())
        for url in urls:
            if not url.startswith(schemes):
                raise ValueError(f"{url!r} does not start with {' or '.join(schemes)}")
        return urls

    return parse


_PERIODS = {"s": 1.0, "sec": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0}


def _rate(raw: str) -> str:
    """``COUNT/PERIOD`` (``20/min``, ``4000/s``, ``20/600s``) or ``0`` (off); kept as text,
    read with ``parse_rate``."""
    value = raw.strip().lower().replace(" ", "")
    parse_rate(value)
    return value


_PERIOD = re.compile(r"(\d+(?:\.\d+)?)?(s|sec|m|min|h)")


def parse_rate(value: str) -> tuple[float, float]:
    """``COUNT/PERIOD`` -> (tokens per second, burst); ``0`` -> (0, 0), meaning off."""
    if value in ("0", "off"):
        return 0.0, 0.0
    count_text, slash, period_text = value.partition("/")
    match = _PERIOD.fullmatch(period_text)
    if not slash or match is None:
        raise ValueError("must be COUNT/PERIOD such as 20/min, 4000/s or 20/600s, or 0 for off")
    count = float(count_text)
    period = float(match.group(1) or 1) * _PERIODS[match.group(2)]
    if not (count >= 1 and math.isfinite(count) and period > 0):
        raise ValueError("count must be at least 1 and the period positive")
    return count / period, count


def _networks(raw: str) -> str:
    value = ",".join(p.strip() for p in raw.split(",") if p.strip())
    for item in value.split(",") if value else ():
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR") from None
    return value


def _redis_url(raw: str) -> str:
    """A URL redis-py accepts; checked here so a typo fails at start-up, not at the first
    room. Never echoed back: it may hold a password."""
    value = raw.strip()
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("must start with redis://, rediss:// or unix://")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a bad port") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs a socket path")
    elif not parts.hostname or port == 0:
        raise ValueError("needs a host (and a port from 1 to 65535 if given)")
    elif parts.path not in ("", "/") and not parts.path[1:].isdigit():
        raise ValueError("the path must be a database number such as /0")
    return value


_PREFIX = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _redis_prefix(raw: str) -> str:
    value = raw.strip()
    if not _PREFIX.fullmatch(value):
        raise ValueError("must be 1-64 characters of letters, digits and _ . : -")
    return value


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#\s]+")


def _origins(raw: str) -> str:
    """Origins as browsers send them (``scheme://host[:port]``): an entry that is not one
    (``*``, a bare host name) would match no browser at all and silently refuse every
    page, so it is a start-up error instead."""
    value = ",".join(p.strip().rstrip("/").lower() for p in raw.split(",") if p.strip())
    for item in value.split(",") if value else ():
        if item != "null" and not _ORIGIN.fullmatch(item):
            hint = " (leave it empty to allow any)" if item == "*" else ""
            raise ValueError(f"{item!r} is not an origin such as https://app.example{hint}")
    return value


def knob(
    env: str,
    flag: str,
    default: Any,
    parse: Callable[[str], Any],
    help: str,
    *,
    secret: bool = False,
) -> Any:
    """A ``Settings`` field: its default plus how to read it (the one place defaults live).
    A ``secret`` never shows in ``repr`` (so never in a log line)."""
    return field(
        default=default,
        repr=not secret,
        metadata={"knob": Knob(env, flag, default, parse, help)},
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, each with its default, variable, flag, parser and help in one place."""

    port: int = knob(
        "PORT",
        "--port",
        8080,
        _int_range(0, 65535),
        "WebSocket and health port",
    )
    host: str = knob(
        "HOST",
        "--host",
        "",
        _host,
        "listen address; empty means all interfaces",
    )
    room_timeout_ms: int = knob(
        "ROOM_TIMEOUT_MS",
        "--room-timeout-ms",
        300_000,
        _int_range(1, 7 * 86_400_000),
        "a room with no activity for this long expires",
    )
    room_id_digits: int = knob(
        "SIGNALING_ROOM_ID_DIGITS",
        "--room-id-digits",
        4,
        _int_range(4, 9),
        "digits in a room id",
    )
    max_members: int = knob(
        "SIGNALING_MAX_PEERS_PER_ROOM",
        "--max-peers-per-room",
        64,
        _int_range(2, 10_000),
        "members a room admits (room_full beyond)",
    )
    max_message_bytes: int = knob(
        "SIGNALING_MAX_MESSAGE_BYTES",
        "--max-message-bytes",
        65_536,
        _int_range(256, 16 << 20),
        "largest client message; bigger closes the connection with 1009",
    )
    send_buffer_bytes: int = knob(
        "SIGNALING_SEND_BUFFER_BYTES",
        "--send-buffer-bytes",
        1 << 20,
        _int_range(4096, 1 << 30),
        "unsent bytes a client may accumulate before it is disconnected as a slow consumer",
    )
    mailbox_size: int = knob(
        "SIGNALING_MAILBOX_SIZE",
        "--mailbox-size",
        4096,
        _int_range(1, 1 << 20),
        "queued client messages per room before 'overloaded'",
    )
    resume_grace_ms: int = knob(
        "SIGNALING_RESUME_GRACE_MS",
        "--resume-grace-ms",
        30_000,
        _int_range(0, 3_600_000),
        "how long a disconnected v2 peer keeps its place",
    )
    journal_max_events: int = knob(
        "SIGNALING_JOURNAL_MAX_EVENTS",
        "--journal-max-events",
        1024,
        _int_range(1, 1 << 24),
        "events kept per room for resume (older ones are folded into a snapshot)",
    )
    journal_max_bytes: int = knob(
        "SIGNALING_JOURNAL_MAX_BYTES",
        "--journal-max-bytes",
        512 << 10,
        _int_range(1024, 1 << 30),
        "bytes of events kept per room for resume; at most half the send buffer",
    )
    journal_total_bytes: int = knob(
        "SIGNALING_JOURNAL_TOTAL_BYTES",
        "--journal-total-bytes",
        256 << 20,
        _int_range(1 << 20, 1 << 40),
        "bytes of events kept for all rooms together (least recently active trimmed first)",
    )
    journal_backend: str = knob(
        "SIGNALING_JOURNAL",
        "--journal",
        "memory",
        _choice("memory", "redis"),
        "where room events are kept: memory (one process) or redis (replicas share rooms)",
    )
    redis_url: str = knob(
        "SIGNALING_REDIS_URL",
        "--redis-url",
        "",
        _redis_url,
        "Redis for SIGNALING_JOURNAL=redis: redis://[user:password@]host[:port][/db], "
        "rediss:// (TLS) or unix:///path",
        secret=True,
    )
    redis_prefix: str = knob(
        "SIGNALING_REDIS_PREFIX",
        "--redis-prefix",
        "signaling",
        _redis_prefix,
        "prefix of every Redis key this deployment writes (deployments sharing a Redis differ)",
    )
    ping_interval: float = knob(
        "SIGNALING_PING_INTERVAL_S",
        "--ping-interval",
        20.0,
        _positive_float,
        "seconds of silence before the server pings a client",
    )
    ping_timeout: float = knob(
        "SIGNALING_PING_TIMEOUT_S",
        "--ping-timeout",
        20.0,
        _positive_float,
        "seconds a pinged client has to answer before it counts as disconnected",
    )
    shutdown_timeout: float = knob(
        "SIGNALING_SHUTDOWN_TIMEOUT_S",
        "--shutdown-timeout",
        10.0,
        _positive_float,
        "seconds SIGTERM waits for clients to close before exiting",
    )
    handshake_timeout: float = knob(
        "SIGNALING_HANDSHAKE_TIMEOUT_S",
        "--handshake-timeout",
        10.0,
        _positive_float,
        "seconds a new connection has to complete its HTTP/WebSocket handshake",
    )
    close_timeout: float = knob(
        "SIGNALING_CLOSE_TIMEOUT_S",
        "--close-timeout",
        5.0,
        _positive_float,
        "seconds a closing connection has to answer the close handshake before it is cut",
    )
    # Not SIGNALING_METRICS_PORT: Kubernetes gives every pod <SERVICE>_PORT=tcp://... for
    # each Service in its namespace, so a Service named signaling-metrics would set it.
    metrics_port: int = knob(
        "SIGNALING_METRICS_PORT_NUMBER",
        "--metrics-port",
        9091,
        _int_range(0, 65535),
        "admin port serving /metrics (0 disables)",
    )
    # ---- abuse limits (README "Security" explains each default)
    message_rate: str = knob(
        "SIGNALING_MESSAGE_RATE",
        "--message-rate",
        "4000/s",
        _rate,
        "messages one connection may send (COUNT/PERIOD; burst COUNT); over it: rate_limited",
    )
    byte_rate: str = knob(
        "SIGNALING_BYTE_RATE",
        "--byte-rate",
        "2097152/s",
        _rate,
        "message bytes one connection may send (COUNT/PERIOD); over it: rate_limited",
    )
    rate_limit_strikes: int = knob(
        "SIGNALING_RATE_LIMIT_STRIKES",
        "--rate-limit-strikes",
        200,
        _int_range(0, 1 << 30),
        "refused messages (refilling at a tenth per second) before a connection is "
        "closed with 1008; 0 never closes",
    )
    create_rate: str = knob(
        "SIGNALING_CREATE_RATE",
        "--create-rate",
        "60/min",
        _rate,
        "room creations per client address (COUNT/PERIOD)",
    )
    failed_join_rate: str = knob(
        "SIGNALING_FAILED_JOIN_RATE",
        "--failed-join-rate",
        "20/10min",
        _rate,
        "joins of unknown rooms per client address (COUNT/PERIOD); then every join waits",
    )
    failed_resume_rate: str = knob(
        "SIGNALING_FAILED_RESUME_RATE",
        "--failed-resume-rate",
        "20/10min",
        _rate,
        "failed resumes per client address (COUNT/PERIOD); then every resume waits",
    )
    handshake_rate: str = knob(
        "SIGNALING_HANDSHAKE_RATE",
        "--handshake-rate",
        "20/s",
        _rate,
        "WebSocket handshakes per client address (COUNT/PERIOD); over it: 429",
    )
    connections_per_address: int = knob(
        "SIGNALING_CONNECTIONS_PER_ADDRESS",
        "--connections-per-address",
        100,
        _int_range(0, 1 << 24),
        "open WebSockets per client address (0 = no limit); over it: 429",
    )
    rooms_per_address: int = knob(
        "SIGNALING_ROOMS_PER_ADDRESS",
        "--rooms-per-address",
        64,
        _int_range(0, 1 << 24),
        "live rooms created from one client address (0 = no limit); over it: rate_limited",
    )
    max_connections: int = knob(
        "SIGNALING_MAX_CONNECTIONS",
        "--max-connections",
        0,
        _int_range(0, 1 << 24),
        "open sockets server-wide (0 = the file limit less a reserve); over it: 503",
    )
    roomless_timeout: float = knob(
        "SIGNALING_ROOMLESS_TIMEOUT_S",
        "--roomless-timeout",
        1800.0,
        _positive_float,
        "seconds a WebSocket may stay open without entering a room (closed with 1008)",
    )
    loop_pacing_us: int = knob(
        "SIGNALING_LOOP_PACING_US",
        "--loop-pacing-us",
        100,
        _int_range(0, 10_000),
        "under steady load, microseconds between writing loop turns, so each reads and"
        " writes more (0: off; transport/pacing.py)",
    )
    room_batch: int = knob(
        "SIGNALING_ROOM_BATCH",
        "--room-batch",
        256,
        _int_range(1, 1 << 20),
        "messages a room handles before yielding to other rooms (fairness)",
    )
    # ---- access control (off by default, like the seed)
    trusted_proxies: str = knob(
        "SIGNALING_TRUSTED_PROXIES",
        "--trusted-proxies",
        "",
        _networks,
        "CIDRs whose X-Forwarded-For/Forwarded name the client address (comma-separated)",
    )
    allowed_origins: str = knob(
        "SIGNALING_ALLOWED_ORIGINS",
        "--allowed-origins",
        "",
        _origins,
        "Origin values allowed to open a WebSocket (comma-separated; empty = any); else 403",
    )
    jwt_secret: str = knob(
        "SIGNALING_JWT_SECRET",
        "--jwt-secret",
        "",
        _text,
        "HS256 secret (at least 32 bytes); setting any JWT key source requires a token",
        secret=True,
    )
    jwt_secret_file: str = knob(
        "SIGNALING_JWT_SECRET_FILE",
        "--jwt-secret-file",
        "",
        _text,
        "file holding the HS256 secret (instead of SIGNALING_JWT_SECRET)",
    )
    jwt_public_key_file: str = knob(
        "SIGNALING_JWT_PUBLIC_KEY_FILE",
        "--jwt-public-key-file",
        "",
        _text,
        "PEM public key: RSA (RS256) or EC P-256 (ES256)",
    )
    jwt_jwks_file: str = knob(
        "SIGNALING_JWT_JWKS_FILE",
        "--jwt-jwks-file",
        "",
        _text,
        "JWKS file (keys chosen by kid; reloaded on SIGHUP)",
    )
    jwt_audience: str = knob(
        "SIGNALING_JWT_AUDIENCE",
        "--jwt-audience",
        "",
        _text,
        "required aud claim (empty = not checked)",
    )
    jwt_issuer: str = knob(
        "SIGNALING_JWT_ISSUER",
        "--jwt-issuer",
        "",
        _text,
        "required iss claim (empty = not checked)",
    )
    tls_cert_file: str = knob(
        "SIGNALING_TLS_CERT_FILE",
        "--tls-cert-file",
        "",
        _text,
        "PEM certificate chain; with the key file, serve wss:// and https (SIGHUP reloads)",
    )
    tls_key_file: str = knob(
        "SIGNALING_TLS_KEY_FILE",
        "--tls-key-file",
        "",
        _text,
        "PEM private key of the certificate",
    )
    port_file: str = knob(
        "SIGNALING_PORT_FILE",
        "--port-file",
        "",
        _text,
        'once listening, write {"port": P, "metrics_port": M} (JSON) there (for PORT=0)',
    )
    log_format: str = knob(
        "SIGNALING_LOG_FORMAT",
        "--log-format",
        "text",
        _choice("text", "json"),
        "log format",
    )
    log_level: str = knob(
        "SIGNALING_LOG_LEVEL",
        "--log-level",
        "info",
        _choice("debug", "info", "warning", "error"),
        "log level",
    )

    demo_page: bool = knob(
        "SIGNALING_DEMO_PAGE",
        "--demo-page",
        True,
        _bool,
        "serve the demo call page at / and the browser client at /client/ (false: neither)",
    )
    turn_urls: tuple[str, ...] = knob(
        "SIGNALING_TURN_URLS",
        "--turn-urls",
        (),
        _urls("turn:", "turns:"),
        "TURN server URLs handed to v2 clients with credentials (comma-separated)",
    )
    turn_secret: str = knob(
        "SIGNALING_TURN_SECRET",
        "--turn-secret",
        "",
        _text,
        "secret shared with the TURN server (coturn static-auth-secret)",
        secret=True,
    )
    turn_secret_file: str = knob(
        "SIGNALING_TURN_SECRET_FILE",
        "--turn-secret-file",
        "",
        _text,
        "file holding the TURN secret (instead of SIGNALING_TURN_SECRET)",
    )
    turn_ttl_s: int = knob(
        "SIGNALING_TURN_TTL_S",
        "--turn-ttl",
        3600,
        _int_range(2, 7 * 86_400),
        "seconds TURN credentials stay valid; fresh ones are sent a quarter early",
    )
    stun_urls: tuple[str, ...] = knob(
        "SIGNALING_STUN_URLS",
        "--stun-urls",
        (),
        _urls("stun:", "stuns:"),
        "STUN server URLs handed to v2 clients (comma-separated)",
    )

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert_file and self.tls_key_file)

    def turn_secret_value(self) -> str:
        """The TURN secret, from the variable or its ``_FILE`` (read when asked)."""
        if self.turn_secret_file:
            with open(self.turn_secret_file, encoding="utf-8") as f:
                return f.read().strip()
        return self.turn_secret

    def jwt_secret_value(self) -> str:
        """The HS256 secret, from the variable or its ``_FILE`` (read when asked)."""
        if self.jwt_secret_file:
            with open(self.jwt_secret_file, encoding="utf-8") as f:
                return f.read().strip()
        return self.jwt_secret

    @property
    def room_timeout(self) -> float:
        return self.room_timeout_ms / 1000

    @property
    def resume_grace(self) -> float:
        return self.resume_grace_ms / 1000


KNOBS: dict[str, Knob] = {f.name: f.metadata["knob"] for f in fields(Settings)}
# Settings whose values never appear in a log line or an error message.
SECRETS = frozenset(f.name for f in fields(Settings) if not f.repr)

# Old variable -> new one. An old name holding a plain value is refused with a message
# naming the new one; one holding a Kubernetes service link ("tcp://10.0.0.7:9091", set
# by a Service that happens to be called like it) is not ours and is ignored.
RENAMED: dict[str, str] = {"SIGNALING_METRICS_PORT": "SIGNALING_METRICS_PORT_NUMBER"}


def _check_renamed(env: Mapping[str, str]) -> None:
    for old, new in RENAMED.items():
        raw = env.get(old)
        if raw is not None and "://" not in raw:
            raise ConfigError(
                f"{old}={raw!r}: this variable was renamed {new} (the old name clashes "
                "with the variables Kubernetes sets for a Service named like it)"
            )


def _table() -> str:
    return "\n".join(f"  {k.env:<32} {k.flag:<24} {k.default!r}" for k in KNOBS.values())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m signaling",
        description="WebRTC signaling server. Every flag has an environment variable; "
        "flags win over the environment.",
        epilog="environment variable, flag, default:\n" + _table(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for name, k in KNOBS.items():
        p.add_argument(k.flag, dest=name, metavar=k.env, help=f"{k.help} [{k.env}]")
    return p


def load(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from flags, then the environment, then defaults; raise ConfigError."""
    env = os.environ if environ is None else environ
    args = vars(parser().parse_args(argv))
    _check_renamed(env)
    values: dict[str, Any] = {}
    for name, k in KNOBS.items():
        raw = args.get(name)
        source = k.flag if raw is not None else k.env
        if raw is None:
            raw = env.get(k.env)
        if raw is None:
            continue
        try:
            values[name] = k.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if name in SECRETS else repr(raw)
            raise ConfigError(f"{source}={shown}: {exc}") from None
    settings = Settings(**values)
    if settings.journal_max_bytes > settings.send_buffer_bytes // 2:
        # A resume writes up to the whole window at once; the other half of the send
        # buffer is for what the room says while that drains over a slow link.
        raise ConfigError(
            f"SIGNALING_JOURNAL_MAX_BYTES ({settings.journal_max_bytes}) must be at most half"
            f" of SIGNALING_SEND_BUFFER_BYTES ({settings.send_buffer_bytes}): a resume replays"
            " up to the whole window into the send buffer, and a client whose buffer"
            " overflows is disconnected as a slow consumer"
        )
    if settings.journal_backend == "redis" and not settings.redis_url:
        raise ConfigError("SIGNALING_JOURNAL=redis needs SIGNALING_REDIS_URL")
    if settings.journal_backend != "redis" and settings.redis_url:
        raise ConfigError(
            "SIGNALING_REDIS_URL is set but SIGNALING_JOURNAL is memory: set"
            " SIGNALING_JOURNAL=redis to share rooms through it, or unset the URL"
        )
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise ConfigError("SIGNALING_TLS_CERT_FILE and SIGNALING_TLS_KEY_FILE go together")
    if settings.jwt_secret and settings.jwt_secret_file:
        raise ConfigError("set SIGNALING_JWT_SECRET or SIGNALING_JWT_SECRET_FILE, not both")
    if settings.turn_secret and settings.turn_secret_file:
        raise ConfigError("set SIGNALING_TURN_SECRET or SIGNALING_TURN_SECRET_FILE, not both")
    if settings.turn_urls and not (settings.turn_secret or settings.turn_secret_file):
        raise ConfigError("SIGNALING_TURN_URLS needs SIGNALING_TURN_SECRET or its _FILE")
    return settings
