"""The WebSocket opening handshake (RFC 6455 4.2), sans-I/O: a request head in, the 101
or a refusal out.

Why not websockets' ``ServerProtocol`` handshake: its parser generator keeps the parsed
``Request`` (with its ``Headers``: about 2 KiB) alive for the whole life of the
connection, and each accept paid for a generator-based parse, two header objects, a
``Date`` and log records. ``http`` already splits the request head; this module checks
the upgrade the way websockets' ``process_request`` does, with the same status for every
bad request (426 for a missing upgrade, 505 for HTTP/1.0, 400 for a bad key, 414 and 431
for over-long lines) and the checks in its order, and answers from one template. Three
answers differ from websockets', each a defined answer where the RFCs ask for one: a
request without ``Host`` or with more than one is refused (400, RFC 6455 4.2.1 and RFC
9112 3.2), an unsupported ``Sec-WebSocket-Version`` gets 426 with
``Sec-WebSocket-Version: 13`` (RFC 6455 4.2.2; websockets: 400 without it), and a header
line websockets could not parse gets 400 (websockets closed the connection without an
answer). ``tests/adversarial/test_handshake_differential.py`` compares both on random
requests and lists every other intended difference. Frames after the upgrade are
websockets' again (``websockets.protocol.Protocol``, created in the OPEN state).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from websockets.exceptions import InvalidHeaderFormat
from websockets.headers import parse_connection, parse_subprotocol, parse_upgrade

from signaling.core import wire
from signaling.transport.http import TOKEN, Head

T = TypeVar("T", bound=str)
GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
V2: Final = wire.V2_SUBPROTOCOL
# websockets' limits for a handshake request (``http11.MAX_LINE_LENGTH``/``MAX_NUM_HEADERS``).
MAX_LINE: Final = 8192
MAX_HEADERS: Final = 128
# RFC 9110 field-value characters, as websockets checks them (names: ``http.TOKEN``).
_VALUE = re.compile(r"[\x09\x20-\x7e\x80-\xff]*")

_ACCEPT: Final = (
    b"HTTP/1.1 101 Switching Protocols\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "
)
_V2_LINE: Final = f"\r\nSec-WebSocket-Protocol: {V2}".encode()
_NOT_A_CLIENT: Final = (
    "\n\nYou cannot access a WebSocket server directly with a browser. "
    "You need a WebSocket client.\n"
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Answer ``status`` with a plain-text ``body`` and ``headers``, then close (the
    bytes come from ``http.response``, like every plain answer on the port)."""

    status: int
    body: str
    headers: tuple[tuple[str, str], ...] = ()


def _failed(message: str) -> str:
    return f"Failed to open a WebSocket connection: {message}.\n"


def check_head(head: Head) -> Refusal | None:
    """``check_syntax`` for a request head, its lines measured as they were received."""
    line = len(head.method) + len(head.target) + len(head.version) + 2
    return check_syntax(head.headers, line, head.longest + 2)


def check_syntax(
    headers: Sequence[tuple[str, str]], request_line: int = 0, longest: int | None = None
) -> Refusal | None:
    """Lines websockets would not have parsed: a request line over ``MAX_LINE`` bytes
    (414), header lines too long or too many (431), a header name that is no token or a
    value with control characters (400). ``request_line``: its length in bytes;
    ``longest``: the longest header line with its CRLF as received (else estimated as
    ``name: value``)."""
    if request_line + 2 > MAX_LINE:
        return Refusal(414, _failed("request line too long"))
    if len(headers) > MAX_HEADERS:
        return Refusal(431, _failed(f"expected no more than {MAX_HEADERS} headers"))
    if longest is not None and longest > MAX_LINE:
        return Refusal(431, _failed("line too long"))
    for name, value in headers:
        if longest is None and len(name) + len(value) + 4 > MAX_LINE:
            return Refusal(431, _failed("line too long"))
        if not TOKEN.fullmatch(name) or not _VALUE.fullmatch(value):
            return Refusal(400, _failed(f"invalid HTTP header {name!r}"))
    return None


def offered_subprotocols(headers: Sequence[tuple[str, str]]) -> list[str]:
    """What admission reads a token from: every comma-separated value, stripped."""
    return [
        p.strip()
        for name, value in headers
        if name.lower() == "sec-websocket-protocol"
        for p in value.split(",")
    ]


def _tokens(values: list[str], common: str, parse: Callable[[str], list[T]]) -> list[str | T]:
    """Every value of a list header, parsed as websockets parses it (``common``, the
    value every browser sends, without the parser). Raises ``InvalidHeaderFormat``."""
    out: list[str | T] = []
    for value in values:
        out += [value] if value.lower() == common else parse(value)
    return out


def accept(version: str, headers: Sequence[tuple[str, str]]) -> tuple[bytes, bool] | Refusal:
    """Validate an upgrade request (RFC 6455 4.2.1); the 101 response and whether v2 was
    selected, or the refusal. Extensions are ignored (none is offered back). The checks
    run in websockets' order (a request with several faults gets the status of the
    first), list headers parsed only when their check comes."""
    if version != "HTTP/1.1":
        return Refusal(505, _failed(f"unsupported protocol; expected HTTP/1.1: {version}"))
    host = key = ws_version = None
    hosts = keys = versions = origins = 0
    connections: list[str] = []
    upgrades: list[str] = []
    protocols: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "connection":
            connections.append(value)
        elif lower == "upgrade":
            upgrades.append(value)
        elif lower == "host":
            host, hosts = value, hosts + 1
        elif lower == "sec-websocket-key":
            key, keys = value, keys + 1
        elif lower == "sec-websocket-version":
            ws_version, versions = value, versions + 1
        elif lower == "origin":
            origins += 1
        elif lower == "sec-websocket-protocol":
            protocols.append(value)
    try:
        connection = _tokens(connections, "upgrade", parse_connection)
    except InvalidHeaderFormat as exc:
        return Refusal(400, _failed(str(exc)))
    if not any(token.lower() == "upgrade" for token in connection):
        shown = ", ".join(connection) if connection else "missing"
        return Refusal(
            426,
            _failed(f"invalid Connection header: {shown}") + _NOT_A_CLIENT,
            (("Upgrade", "websocket"),),
        )
    try:
        upgrade = _tokens(upgrades, "websocket", parse_upgrade)
    except InvalidHeaderFormat as exc:
        return Refusal(400, _failed(str(exc)))
    if not (len(upgrade) == 1 and upgrade[0].lower() == "websocket"):
        shown = ", ".join(upgrade) if upgrade else "missing"
        return Refusal(
            426,
            _failed(f"invalid Upgrade header: {shown}") + _NOT_A_CLIENT,
            (("Upgrade", "websocket"),),
        )
    if host is None or hosts > 1:  # RFC 9112 3.2: exactly one
        return Refusal(400, _failed("missing or repeated Host header"))
    if key is None or keys > 1:
        return Refusal(400, _failed("missing or repeated Sec-WebSocket-Key header"))
    try:
        raw_key = base64.b64decode(key.encode(), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raw_key = b""
    if len(raw_key) != 16:
        return Refusal(400, _failed("invalid Sec-WebSocket-Key header"))
    if ws_version is None or versions > 1:
        return Refusal(400, _failed("missing or repeated Sec-WebSocket-Version header"))
    if ws_version != "13":
        return Refusal(
            426,
            _failed(f"unsupported Sec-WebSocket-Version: {ws_version}"),
            (("Sec-WebSocket-Version", "13"),),
        )
    if origins > 1:
        return Refusal(400, _failed("more than one Origin header"))
    try:
        v2 = V2 in _tokens(protocols, V2, parse_subprotocol)
    except InvalidHeaderFormat as exc:
        return Refusal(400, _failed(str(exc)))
    digest = base64.b64encode(hashlib.sha1(key.encode() + GUID).digest())
    return _ACCEPT + digest + (_V2_LINE if v2 else b"") + b"\r\n\r\n", v2
