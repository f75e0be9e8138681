"""HTTP/1.1 before a WebSocket exists, sans-I/O: request heads in, responses out.

The listening port serves the health probes (``/healthz``, ``/readyz``) as well as
WebSocket upgrades. So the connection reads request heads itself, with this module: the
probes are answered here, pipelined requests one after another, other methods with 405,
anything unparseable with 400; an upgrade's head goes to ``upgrade`` with its header
lines already split, so a head is scanned once.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Final

MAX_HEAD: Final = 16 * 1024
"""A request head larger than this is answered 431 (a browser's is one or two KiB)."""

# An RFC 9110 token: a method (anything else is no request line) or a header name.
TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")


@dataclass(frozen=True, slots=True)
class Head:
    """What the server needs from a request head."""

    method: str
    path: str  # without the query
    upgrade: bool  # asks for a WebSocket (``Upgrade: websocket``)
    keep_alive: bool  # the client may send another request on this connection
    body: bool = False  # announces a body (never read: the connection closes after)
    target: str = ""  # the request target as received, query included
    version: str = "HTTP/1.1"
    headers: tuple[tuple[str, str], ...] = ()  # (name as received, value stripped)
    longest: int = 0  # the longest header line as received, CRLF excluded


class BadRequest(ValueError):
    """Bytes that are no HTTP/1.x request head: answered 400, then the connection closes."""


class HeadTooLarge(BadRequest):
    """A request head over ``MAX_HEAD`` bytes: answered 431, then the connection closes."""


def take_head(buf: bytearray) -> Head | None:
    """Remove the next request head from ``buf``; ``None`` while it is incomplete.

    Empty lines before a request are skipped (RFC 9112 2.2), so a stray CRLF after a
    request is no error. Raises ``BadRequest`` or ``HeadTooLarge``.
    """
    start = 0
    while buf[start : start + 2] == b"\r\n":
        start += 2
    if start:
        del buf[:start]
    end = buf.find(b"\r\n\r\n")
    if end < 0 and (b"\n\n" in buf or b"\n\r\n" in buf):
        # A blank line after a bare LF: the head ended, in no form parsed here (RFC 9112
        # 2.2 lets a server refuse it); waiting for a CRLF CRLF would hold the socket.
        raise BadRequest(bytes(buf[:80]))
    if end < 0 and len(buf) <= MAX_HEAD:
        return None
    if end < 0 or end + 4 > MAX_HEAD:
        raise HeadTooLarge
    raw = bytes(buf[: end + 4])
    del buf[: end + 4]
    head = parse_head(raw)
    if head is None:
        raise BadRequest(raw[:80])
    return head


def parse_head(raw: bytes) -> Head | None:
    """The request line and the headers that matter here; ``None`` if malformed.

    Header values may hold obs-text (bytes 0x80-0xff: a cookie, a user agent), opaque
    data per RFC 9110 5.5, kept as latin-1 the way websockets kept them; the request
    line is ASCII."""
    crlf = raw.count(b"\r\n")
    if raw.count(b"\n") != crlf or raw.count(b"\r") != crlf:
        # A bare CR or LF: a peer that ends lines there would read other headers than
        # this parser (RFC 9112 2.2; the ground of request smuggling).
        return None
    text = raw.decode("latin-1")
    lines = text[:-4].split("\r\n")
    parts = lines[0].split(" ")
    if (
        len(parts) != 3
        or parts[2] not in ("HTTP/1.1", "HTTP/1.0")
        or not TOKEN.fullmatch(parts[0])
        or not parts[1].isascii()
    ):
        return None
    method, target, version = parts
    connection: list[str] = []
    headers: list[tuple[str, str]] = []
    upgrade = body = False
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return None
        value = value.strip(" \t")
        headers.append((name, value))
        name = name.lower()
        value = value.strip().lower()
        if name == "connection":
            connection += [token.strip() for token in value.split(",")]
        elif name == "upgrade":
            upgrade = "websocket" in value
        elif name == "transfer-encoding" or (name == "content-length" and value != "0"):
            body = True  # never read here: the connection closes after its answer
    keep_alive = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    path = target.partition("?")[0]
    keep_alive = keep_alive and not body
    longest = max(map(len, lines[1:]), default=0)
    return Head(method, path, upgrade, keep_alive, body, target, version, tuple(headers), longest)


def response(
    status: int,
    body: bytes,
    *,
    head_only: bool = False,
    keep_alive: bool = False,
    headers: Sequence[tuple[str, str]] = (),
    retry_after: int | None = None,
) -> bytes:
    """A complete plain-text HTTP/1.1 response: every answer on the public port that is
    not the 101 (probes, 400/405/431 to plain HTTP, refused upgrades) comes from here,
    so they all carry the same header set, in this order, each for a reason:

    - ``Date``: RFC 9110 6.6.1 asks an origin server with a clock to send it on 2xx,
      3xx and 4xx (5xx: may); websockets sent it on every refusal, so a 503 has it too.
    - ``Content-Type`` (``text/plain; charset=utf-8``) and ``Content-Length``, always:
      the connection may stay open (keep-alive probes), so the body is delimited.
    - ``Cache-Control: no-store``: a probe's answer or a refusal (429, 503) describes
      this moment; no proxy or browser may serve it again later.
    - ``Connection``: ``close`` when the server closes after this answer (errors,
      refusals: the caller closes), else ``keep-alive`` (said explicitly for HTTP/1.0
      clients that asked for it).
    - then ``headers`` as given (``Allow`` of a 405, the ``Upgrade``/
      ``Sec-WebSocket-Version`` hints of a refused upgrade) and ``Retry-After`` (seconds)
      for a 429/503 refusal that knows when to come back.

    ``head_only`` (HEAD requests) leaves the body out, its length still announced.
    Not the 101 Switching Protocols: that is a template in ``upgrade``, kept byte for
    byte the Node reference server's (no ``Date``: 1xx may omit it), on the accept path.
    """
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        f"Date: {email.utils.formatdate(usegmt=True)}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Cache-Control: no-store",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
    ]
    lines += [f"{name}: {value}" for name, value in headers]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    return head if head_only else head + body
