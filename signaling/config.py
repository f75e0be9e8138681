"""Settings: each knob is a field of ``Settings`` with its default, variable and flag.

Every setting is validated at start-up so a typo fails fast (exit status 2, naming the
variable) instead of surfacing as a strange runtime behaviour hours later.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any


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


def _secret(raw: str) -> str:
    return raw.strip()


def knob(env: str, flag: str, default: Any, parse: Callable[[str], Any], help: str) -> Any:
    """A ``Settings`` field: its default plus how to read it (the one place defaults live)."""
    return field(default=default, metadata={"knob": Knob(env, flag, default, parse, help)})


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
        1 << 20,
        _int_range(1024, 1 << 30),
        "bytes of events kept per room for resume",
    )
    journal_total_bytes: int = knob(
        "SIGNALING_JOURNAL_TOTAL_BYTES",
        "--journal-total-bytes",
        256 << 20,
        _int_range(1 << 20, 1 << 40),
        "bytes of events kept for all rooms together (least recently active trimmed first)",
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
    metrics_port: int = knob(
        "SIGNALING_METRICS_PORT",
        "--metrics-port",
        9091,
        _int_range(0, 65535),
        "admin port serving /metrics (0 disables)",
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
        _secret,
        "secret shared with the TURN server (coturn static-auth-secret); or a _FILE",
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
    def room_timeout(self) -> float:
        return self.room_timeout_ms / 1000

    @property
    def resume_grace(self) -> float:
        return self.resume_grace_ms / 1000


KNOBS: dict[str, Knob] = {f.name: f.metadata["knob"] for f in fields(Settings)}
# Secrets may come from a file named by ``<VARIABLE>_FILE`` (Kubernetes/Docker secrets).
SECRET_FILE_KNOBS = ("turn_secret",)


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
    values: dict[str, Any] = {}
    for name, k in KNOBS.items():
        raw = args.get(name)
        source = k.flag if raw is not None else k.env
        if raw is None:
            raw = env.get(k.env)
        if raw is None and name in SECRET_FILE_KNOBS and env.get(f"{k.env}_FILE"):
            source = f"{k.env}_FILE"
            raw = _read_secret_file(env[source], source)
        if raw is None:
            continue
        try:
            values[name] = k.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}={raw!r}: {exc}") from None
    settings = Settings(**values)
    if settings.turn_urls and not settings.turn_secret:
        raise ConfigError("SIGNALING_TURN_URLS needs SIGNALING_TURN_SECRET (or its _FILE)")
    return settings


def _read_secret_file(path: str, source: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(f"{source}={path!r}: {exc.strerror}") from None
