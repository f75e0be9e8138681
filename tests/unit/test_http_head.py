"""Request heads before the upgrade: what the connection answers itself."""

from __future__ import annotations

import email.utils
from http import HTTPStatus

import pytest

from signaling.transport import http


def heads(data: bytes) -> list[http.Head]:
    buf = bytearray(data)
    out = []
    while (head := http.take_head(buf)) is not None:
        out.append(head)
    return out


def test_pipelined_requests_and_stray_empty_lines() -> None:
    got = heads(
        b"\r\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n\r\n"
        b"HEAD /readyz?x=1 HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        b"GET / HTTP/1.1\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\nGET /par"
    )
    assert [(h.method, h.path, h.upgrade, h.keep_alive) for h in got] == [
        ("GET", "/healthz", False, True),
        ("HEAD", "/readyz", False, True),
        ("GET", "/", True, True),
        ("GET", "/healthz", False, False),
    ]


@pytest.mark.parametrize(
    ("head", "keep_alive", "body"),
    [
        (b"GET / HTTP/1.0\r\n\r\n", False, False),
        (b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", True, False),
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n", False, True),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", False, True),
    ],
)
def test_keep_alive_only_without_a_body(head: bytes, keep_alive: bool, body: bool) -> None:
    (got,) = heads(head)
    assert (got.keep_alive, got.body) == (keep_alive, body)


@pytest.mark.parametrize(
    "data",
    [
        b"GET /\r\n\r\n",
        b"GET / HTTP/2\r\n\r\n",
        b"G=T / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n Folded: x\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n",
    ],
)
def test_malformed_heads_are_bad_requests(data: bytes) -> None:
    with pytest.raises(http.BadRequest):
        heads(data)


def test_a_head_over_the_limit_is_too_large_complete_or_not() -> None:
    big = b"GET / HTTP/1.1\r\nX: " + b"a" * http.MAX_HEAD
    with pytest.raises(http.HeadTooLarge):
        heads(big)
    with pytest.raises(http.HeadTooLarge):
        heads(big + b"\r\n\r\n")
    assert heads(b"GET / HTTP/1.1\r\nX: " + b"a" * 100) == []  # incomplete, small: wait


def test_responses() -> None:
    full = http.response(200, b"ok\n", keep_alive=True)
    assert full.startswith(b"HTTP/1.1 200 OK\r\n") and full.endswith(b"\r\n\r\nok\n")
    assert b"Connection: keep-alive" in full and b"Content-Length: 3" in full
    head_only = http.response(405, b"no\n", head_only=True, headers=[("Allow", "GET, HEAD")])
    assert head_only.endswith(b"Allow: GET, HEAD\r\n\r\n") and b"Connection: close" in head_only


def test_one_header_set_in_one_order() -> None:
    """Probes, errors and refused upgrades share it (see ``http.response``); only the
    date differs from one second to the next."""
    got = http.response(
        503, b"full\n", headers=[("Upgrade", "websocket")], retry_after=2, keep_alive=True
    )
    head, _, body = got.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    date = lines.pop(1)
    assert date.startswith("Date: ") and date.endswith(" GMT")
    assert email.utils.parsedate_to_datetime(date[6:]).tzname() == "UTC"
    assert lines == [
        "HTTP/1.1 503 Service Unavailable",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 5",
        "Cache-Control: no-store",
        "Connection: keep-alive",
        "Upgrade: websocket",
        "Retry-After: 2",
    ]
    assert body == b"full\n"
    for status in (414, 505):  # any status, with the reason phrase websockets sent
        line = http.response(status, b"").split(b"\r\n")[0].decode()
        assert line == f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"


@pytest.mark.parametrize(
    "data",
    [
        b"GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n",  # websockets never saw this request line
        b"GET /healthz HTTP/1.1\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\rY: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",  # LF-only: refused at once, not waited on
        b"GET / HTTP/1.1\r\nHost: a\n\r\n",
    ],
)
def test_a_bare_cr_or_lf_is_a_bad_request(data: bytes) -> None:
    """A peer that ends lines at a bare LF would read other headers (a body) than this
    parser: request smuggling. And a head ended by bare LFs must not hold the socket
    until the handshake timeout."""
    with pytest.raises(http.BadRequest):
        heads(data)


def test_obs_text_in_values_is_kept_and_any_token_method_parses() -> None:
    """A cookie or user agent with a byte over 0x7f is opaque data (RFC 9110 5.5), not
    a bad request; an extension method is a 405 for the connection, not a 400."""
    (got,) = heads(b"M-SEARCH * HTTP/1.1\r\nUser-Agent: caf\xe9\r\nCookie: a=\xff\r\n\r\n")
    assert got.method == "M-SEARCH"
    assert got.headers == (("User-Agent", "caf\u00e9"), ("Cookie", "a=\u00ff"))
    assert got.longest == len("User-Agent: caf\xe9")
