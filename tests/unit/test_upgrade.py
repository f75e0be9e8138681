"""The opening handshake without websockets' handshake code: every bad upgrade gets the
status websockets gave it (RFC 6455 4.2.1), plus the two answers RFC 6455 4.2.2 asks for."""

from __future__ import annotations

import base64
import hashlib

import pytest

from signaling.transport import http, upgrade

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 1.3's example
GOOD = (
    ("Host", "example.com"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
)


def without(name: str, *extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(h for h in GOOD if h[0] != name) + extra


def test_the_101_carries_the_rfc_accept_key() -> None:
    got = upgrade.accept("HTTP/1.1", GOOD)
    assert got == (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
        False,
    )


def test_accept_key_for_any_key() -> None:
    key = base64.b64encode(bytes(range(16))).decode()
    got = upgrade.accept("HTTP/1.1", without("Sec-WebSocket-Key", ("sec-websocket-key", key)))
    assert not isinstance(got, upgrade.Refusal)
    response, _ = got
    expected = base64.b64encode(hashlib.sha1((key + upgrade.GUID.decode()).encode()).digest())
    assert b"Sec-WebSocket-Accept: " + expected + b"\r\n" in response


@pytest.mark.parametrize(
    ("offered", "v2"),
    [
        ((), False),
        ((("Sec-WebSocket-Protocol", "signaling.v2"),), True),
        ((("Sec-WebSocket-Protocol", "chat, signaling.v2"),), True),
        (
            (("Sec-WebSocket-Protocol", "bearer.abc"), ("Sec-WebSocket-Protocol", "signaling.v2")),
            True,
        ),
        ((("Sec-WebSocket-Protocol", "chat"),), False),  # v1 (the seed protocol), no header
    ],
)
def test_subprotocol_v2_if_offered_else_none(
    offered: tuple[tuple[str, str], ...], v2: bool
) -> None:
    got = upgrade.accept("HTTP/1.1", GOOD + offered)
    assert not isinstance(got, upgrade.Refusal)
    response, selected = got
    assert selected is v2
    assert (b"Sec-WebSocket-Protocol: signaling.v2\r\n" in response) is v2


@pytest.mark.parametrize(
    ("version", "headers", "status", "header"),
    [
        ("HTTP/1.0", GOOD, 505, None),
        ("HTTP/1.1", without("Connection"), 426, ("Upgrade", "websocket")),
        ("HTTP/1.1", without("Connection", ("Connection", "keep-alive")), 426, None),
        ("HTTP/1.1", without("Connection", ("Connection", "a b")), 400, None),
        ("HTTP/1.1", without("Upgrade"), 426, ("Upgrade", "websocket")),
        ("HTTP/1.1", without("Upgrade", ("Upgrade", "h2c")), 426, None),
        ("HTTP/1.1", without("Upgrade", ("Upgrade", "websocket, h2c")), 426, None),
        ("HTTP/1.1", without("Host"), 400, None),
        ("HTTP/1.1", without("Sec-WebSocket-Key"), 400, None),
        ("HTTP/1.1", (*GOOD, ("Sec-WebSocket-Key", KEY)), 400, None),
        ("HTTP/1.1", without("Sec-WebSocket-Key", ("Sec-WebSocket-Key", "not base64!")), 400, None),
        ("HTTP/1.1", without("Sec-WebSocket-Key", ("Sec-WebSocket-Key", "AAAA")), 400, None),
        ("HTTP/1.1", without("Sec-WebSocket-Version"), 400, None),
        ("HTTP/1.1", (*GOOD, ("Sec-WebSocket-Version", "13")), 400, None),
        (
            "HTTP/1.1",
            without("Sec-WebSocket-Version", ("Sec-WebSocket-Version", "8")),
            426,
            ("Sec-WebSocket-Version", "13"),
        ),
        ("HTTP/1.1", (*GOOD, ("Origin", "https://a"), ("Origin", "https://b")), 400, None),
        ("HTTP/1.1", (*GOOD, ("Sec-WebSocket-Protocol", "a b")), 400, None),
    ],
)
def test_bad_upgrades_are_refused_with_websockets_status(
    version: str,
    headers: tuple[tuple[str, str], ...],
    status: int,
    header: tuple[str, str] | None,
) -> None:
    got = upgrade.accept(version, headers)
    assert isinstance(got, upgrade.Refusal)
    assert got.status == status
    if header is not None:
        assert header in got.headers
    response = http.response(got.status, got.body.encode(), headers=got.headers)
    assert response.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"\r\nConnection: close\r\n" in response


def test_header_names_are_case_insensitive_and_connection_is_a_list() -> None:
    headers = (
        ("host", "h"),
        ("UPGRADE", "WebSocket"),
        ("connection", "keep-alive, Upgrade"),
        ("SEC-WEBSOCKET-KEY", KEY),
        ("sec-websocket-version", "13"),
    )
    assert not isinstance(upgrade.accept("HTTP/1.1", headers), upgrade.Refusal)


def test_header_syntax_websockets_would_not_parse() -> None:
    assert upgrade.check_syntax(GOOD) is None
    many = GOOD + tuple((f"X-{i}", "v") for i in range(upgrade.MAX_HEADERS))
    assert getattr(upgrade.check_syntax(many), "status", None) == 431
    long = (*GOOD, ("X", "v" * upgrade.MAX_LINE))
    assert getattr(upgrade.check_syntax(long), "status", None) == 431
    assert getattr(upgrade.check_syntax((*GOOD, ("X@Y", "v"))), "status", None) == 400
    assert getattr(upgrade.check_syntax((*GOOD, ("X", "a\x01b"))), "status", None) == 400
    assert upgrade.check_syntax(GOOD, upgrade.MAX_LINE - 2) is None
    assert getattr(upgrade.check_syntax(GOOD, upgrade.MAX_LINE - 1), "status", None) == 414


def test_refusal_response_with_retry_after() -> None:
    refusal = upgrade.Refusal(429, "Too many handshakes.\n")
    response = http.response(refusal.status, refusal.body.encode(), retry_after=3)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"\r\nRetry-After: 3" in head
    assert b"\r\nContent-Length: 21" in head
    assert body == b"Too many handshakes.\n"


def test_http_head_keeps_the_header_lines_for_the_upgrade() -> None:
    buf = bytearray(b"GET /?token=x HTTP/1.1\r\nHost: a\r\nUpgrade:  websocket \r\n\r\n")
    head = http.take_head(buf)
    assert head is not None
    assert (head.target, head.path, head.version) == ("/?token=x", "/", "HTTP/1.1")
    assert head.headers == (("Host", "a"), ("Upgrade", "websocket"))


def _head(data: bytes) -> http.Head:
    head = http.take_head(bytearray(data))
    assert head is not None
    return head


def test_a_request_line_over_8_kib_is_414_and_lines_are_measured_as_received() -> None:
    """websockets' limits apply to lines as sent (8192 bytes with the CRLF), whatever
    whitespace the value was stripped of."""
    line = "GET /" + "t" * (upgrade.MAX_LINE - len("GET / HTTP/1.1\r\n")) + " HTTP/1.1"
    assert upgrade.check_head(_head(line.encode() + b"\r\nHost: a\r\n\r\n")) is None
    longer = line.replace("GET /", "GET /t").encode()
    assert getattr(upgrade.check_head(_head(longer + b"\r\n\r\n")), "status", None) == 414
    fits = b"X:" + b"v" * (upgrade.MAX_LINE - 4)  # 8190 bytes + CRLF: websockets' limit
    assert upgrade.check_head(_head(b"GET / HTTP/1.1\r\n" + fits + b"\r\n\r\n")) is None
    padded = b"X:  " + fits[2:]  # the same value with whitespace: 8194 bytes as sent
    refusal = upgrade.check_head(_head(b"GET / HTTP/1.1\r\n" + padded + b"\r\n\r\n"))
    assert getattr(refusal, "status", None) == 431


def test_checks_run_in_websockets_order() -> None:
    """A request with several faults gets the status of the first websockets checks:
    no Connection: upgrade (426) before a malformed subprotocol list (400)."""
    headers = (*without("Connection"), ("Sec-WebSocket-Protocol", "a b"))
    assert getattr(upgrade.accept("HTTP/1.1", headers), "status", None) == 426
    headers = (*without("Upgrade", ("Upgrade", "h2c")), ("Connection", "a b"))
    assert getattr(upgrade.accept("HTTP/1.1", headers), "status", None) == 400


def test_a_repeated_host_is_refused() -> None:
    got = upgrade.accept("HTTP/1.1", (*GOOD, ("Host", "evil.example")))
    assert getattr(got, "status", None) == 400
