"""Differential property: the server's own opening handshake agrees with websockets'.

``transport/upgrade.py`` (fed by ``transport/http.py``) replaced websockets'
``ServerProtocol`` handshake. Random request heads, built from valid upgrades and then
mutated the way a hostile or sloppy client would (header name case, repeated headers,
token lists in Connection/Upgrade, whitespace, tabs, obs-fold, keys of every wrong
shape, versions, subprotocol lists with the token and v2, extensions, methods, HTTP
versions, absolute-form targets, latin-1 bytes, lines without a colon, long lines and
heads near the limits), cut into random TCP segments, go through a real ``Connection``
on a real ``Hub`` (admission included, abuse limits off) and through websockets'
``ServerProtocol`` with the server's old subprotocol choice (``signaling.v2`` if
offered, else none). A ping frame may follow the head in the same segment: after a 101
both must answer it with a pong (bytes after the head are frames).

Both must agree on: accepted or refused, the status, the selected subprotocol, the
``Sec-WebSocket-Accept`` value, the ``Upgrade``/``Sec-WebSocket-Version`` hints of a
refusal, what follows a 101 (pong, close frame) and whether the connection ends.
``intended`` (and ``expected``, rule 0) lists every place where the server answers
differently on purpose, with the reason; anything else is a bug.

``make test`` runs a few thousand examples; ``make fuzz`` runs more
(``SIGNALING_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import InvalidHeaderValue
from websockets.frames import Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from signaling.config import Settings
from signaling.core import wire
from signaling.transport import http
from signaling.transport.connection import HEALTH_PATHS, Connection
from signaling.transport.server import Hub
from tests.adversarial.test_frame_differential import FakeTransport
from tests.adversarial.wsframes import encode

EXAMPLES = int(os.environ.get("SIGNALING_FUZZ_EXAMPLES", "2000"))
V2 = Subprotocol(wire.V2_SUBPROTOCOL)
PING = encode(Opcode.PING, b"hi", mask=b"\x01\x02\x03\x04")
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
# The server's pages without an upgrade (SIGNALING_DEMO_PAGE, on by default).
PAGES = ("/", "/client/", "/client/signaling-client.js")


@dataclass(frozen=True)
class Outcome:
    """What a client sees: ``status`` None is "closed without an answer", "pending" is
    "waits for more bytes"."""

    status: int | str | None
    protocol: str | None = None  # Sec-WebSocket-Protocol of a 101
    accept: str | None = None  # Sec-WebSocket-Accept of a 101
    upgrade_hint: str | None = None  # Upgrade header of a refusal
    version_hint: str | None = None  # Sec-WebSocket-Version header of a refusal
    closed: bool = False
    after: bytes = b""  # what a 101 is followed by (a pong, a close frame)
    # Header names, lower case, in order: checked on their own (``test_refusals_carry_...``)
    names: tuple[str, ...] = field(default=(), compare=False)


def read_response(data: bytes, closed: bool) -> Outcome:
    if not data:
        return Outcome(None if closed else "pending", closed=closed)
    head, sep, after = data.partition(b"\r\n\r\n")
    assert sep, data
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(": ")
        assert name.lower() not in fields, f"{name} twice in {data!r}"
        fields[name.lower()] = value
    if status == 101:
        return Outcome(
            101,
            fields.get("sec-websocket-protocol"),
            fields.get("sec-websocket-accept"),
            closed=closed,
            after=after,
            names=tuple(fields),
        )
    return Outcome(
        status,
        upgrade_hint=fields.get("upgrade"),
        version_hint=fields.get("sec-websocket-version"),
        closed=closed,
        names=tuple(fields),
    )


# ---- the two paths --------------------------------------------------------------------------


def through_server(hub: Hub, segments: Sequence[bytes]) -> Outcome:
    conn = Connection(hub)
    transport = FakeTransport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    for segment in segments:
        if transport.closed:
            break
        conn.data_received(segment)
    conn._pump()
    outcome = read_response(b"".join(transport.written), transport.closed)
    conn.connection_lost(None)
    return outcome


def _select(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The server's choice before upgrade.py (``git show 4ecdc3c``)."""
    return V2 if V2 in offered else None


def through_websockets(
    head: bytes, rest: bytes
) -> tuple[Outcome, Request | None, Exception | None]:
    ws = ServerProtocol(subprotocols=[V2], select_subprotocol=_select, max_size=1024)
    ws.receive_data(head)
    request = None
    for event in ws.events_received():
        assert isinstance(event, Request)
        request = event
        ws.send_response(ws.accept(request))
    out = ws.data_to_send()
    if request is not None and ws.handshake_exc is None and rest:
        ws.receive_data(rest)
        out += ws.data_to_send()
    closed = b"" in out  # websockets' "send EOF"
    return read_response(b"".join(out), closed), request, ws.handshake_exc


# ---- what differs on purpose ----------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the generator knows about the request it built."""

    method: str
    path: str
    version: str
    probe: bool  # GET/HEAD of a health path or a page, Upgrade not asking for websocket
    leading_blank: bool
    head_size: int
    malformed: bool = False  # a line that is no HTTP (the server's parser returns 400)
    asks: bool = True  # the last Upgrade header names websocket (how the server routes)


def intended(
    facts: Facts, ws: Outcome, request: Request | None, exc: Exception | None
) -> set[Outcome]:
    """The answers the server may give where websockets gives ``ws``: ``{ws}`` except
    where a rule below says otherwise, each with its reason. Anything else is a bug."""
    refused = {Outcome(status, closed=True) for status in (400, 405, 431)}
    if facts.head_size > http.MAX_HEAD:
        # 1. The whole head is bounded (16 KiB: what one connection may make the server
        # hold before it is a WebSocket); websockets bounds only lines (8 KiB) and their
        # number (128). A line that is no HTTP may be seen first (400).
        return {Outcome(431, closed=True)} | (
            {Outcome(400, closed=True)} if facts.malformed else set()
        )
    if facts.probe:
        # 2. Health probes and the demo page share the port: a GET/HEAD there without
        # Upgrade: websocket is answered as HTTP (200/503, kept open for keep-alive), not
        # refused with 426/405; a head that is no HTTP is 400. A path without a page
        # falls through to the handshake.
        answers = {Outcome(s, closed=c) for s in (200, 503) for c in (False, True)}
        rest = intended(replace(facts, probe=False), ws, request, exc)
        return answers | {Outcome(400, closed=True)} | rest
    if not facts.asks and facts.method != "GET" and not facts.malformed:
        # 3. Neither a WebSocket request (no Upgrade: websocket) nor a GET: plain HTTP,
        # answered 405 before its lines are judged as a handshake's.
        return {Outcome(405, closed=True)} | intended(replace(facts, asks=True), ws, request, exc)
    if facts.malformed:
        # 4. A line that is no HTTP (no colon, obs-fold, a bare LF, whitespace before
        # the colon, a bad request line or HTTP version) makes the head a 400 whatever
        # else is wrong with it; websockets reports the first fault in line order (a
        # long line before it: 431/414) or closes without a word.
        return {Outcome(400, closed=True)} | ({ws} if ws.status is not None else set())
    if ws.status is None:
        # 5. websockets closes without a word on what it cannot parse as a request
        # (header syntax, a body, Transfer-Encoding); the GUIDE wants a defined answer:
        # 400 (405 for a method other than GET, checked before the body; 431 when the
        # lines are also too many or too long).
        return refused
    hosts = len(request.headers.get_all("Host")) if request is not None else 1
    if ws.status == 101 and hosts != 1:
        # 6. RFC 6455 4.2.1 requires Host; RFC 9112 3.2: no Host, or more than one, is a
        # 400. websockets leaves Host to the HTTP stack in front of it.
        return {Outcome(400, closed=True)}
    if isinstance(exc, InvalidHeaderValue) and exc.name == "Sec-WebSocket-Version":
        # 7. RFC 6455 4.2.2: an unsupported version gets 426 with the version spoken
        # (websockets: 400 without it). Host is checked before the version (rule 6).
        if hosts != 1:
            return {Outcome(400, closed=True)}
        return {Outcome(426, version_hint="13", closed=True)}
    return {ws}


# ---- request heads --------------------------------------------------------------------------

tokens = st.sampled_from(
    [
        "signaling.v2",
        "signaling.v1",
        "chat",
        "bearer.eyJhbGciOiJIUzI1NiJ9.e30.c2ln",
        "signaling.V2",
        "Signaling.v2",
        "bearer.",
    ]
)
separators = st.sampled_from([", ", ",", " , ", ",\t", ",, ", " ,"])
bad_tokens = st.sampled_from(["", ",", "a b", "signaling.v2;q=1", '"signaling.v2"'])


token_items = st.lists(tokens, min_size=1, max_size=4)


@st.composite
def token_lists(draw: st.DrawFn) -> str:
    items = draw(token_items)
    out = items[0]
    for item in items[1:]:
        out += draw(separators) + item
    if draw(rare(10)):
        out = draw(bad_tokens) + (draw(separators) + out if draw(st.booleans()) else "")
    return out


def _b64(n: int) -> str:
    return base64.b64encode(bytes(range(7, 7 + n))).decode()


valid_keys = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode())
keys = st.one_of(
    valid_keys,
    st.sampled_from(
        [
            RFC_KEY,
            _b64(15),
            _b64(17),
            _b64(16).rstrip("="),  # no padding
            _b64(16).rstrip("=") + "=",
            _b64(16) + "=",
            _b64(16) + "==",
            "AAAAAAAAAAAAAAAAAAAAAB==",  # non-zero trailing bits
            "AAAAAAAAAA AAAAAAAAAAAA==",
            "AAAAAAAAAAAAAAAAAAAAA-==",  # urlsafe alphabet
            "!AAAAAAAAAAAAAAAAAAAAA==",
            "",
            "AAAA",
            "dGhlIHNhbXBsZSBub25jZQ==\t",
            "dGhlIHNhbXBsZSBub25jZQ==, dGhlIHNhbXBsZSBub25jZQ==",
            "dGhlIHNhbXBsZSBub25jZQ\xe9=",
        ]
    ),
)
GOOD_CONNECTIONS = ["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade, keep-alive"]
connections = st.sampled_from(
    [
        "Upgrade",
        "upgrade",
        "UPGRADE",
        "keep-alive, Upgrade",
        "Upgrade, keep-alive",
        "keep-alive,Upgrade",
        "HTTP2-Settings, Upgrade",
        ", Upgrade,",
        "keep-alive",
        "close",
        "",
        "Up grade",
        "Upgrade;x",
        "Upgrade\t",
        "Upgrade, close",
        "Upgrade-Insecure-Requests",
        "keep-alive, xupgrade",
        "Upgraded",
    ]
)
upgrades = st.sampled_from(
    [
        "websocket",
        "WebSocket",
        "WEBSOCKET",
        "websocket, h2c",
        "h2c, websocket",
        "h2c",
        "websocket/13",
        "",
        "websockets",
        "web socket",
        "websocket,",
        "\twebsocket",
        "websocket2",
        "x-websocket",
    ]
)
versions = st.sampled_from(["13", "8", "13, 8", "8, 13", "", "013", "7", "14", "13 ", "thirteen"])
extensions = st.sampled_from(
    [
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate",
        'x-webkit-deflate-frame; a="b"',
        "bad ext ;;",
    ]
)
names = {
    "host": "Host",
    "upgrade": "Upgrade",
    "connection": "Connection",
    "key": "Sec-WebSocket-Key",
    "version": "Sec-WebSocket-Version",
    "protocol": "Sec-WebSocket-Protocol",
    "extensions": "Sec-WebSocket-Extensions",
    "origin": "Origin",
}
targets = st.sampled_from(
    [
        "/",
        "/call",
        "/room/1234",
        "/?token=abc.def.ghi",
        "/call?token=&x=1",
        "http://127.0.0.1:8080/?token=abc",
        "ws://example.com/call",
        "*",
        "/healthz",
        "/readyz",
        "/healthz?probe=1",
        "/client/",
        "/%7Etoken",
    ]
)
methods = st.sampled_from(["HEAD", "POST", "get", "OPTIONS", "M-SEARCH", "PUT", "GET"])
http_versions = st.sampled_from(["HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.10", "HTTP/1.1"])


@functools.cache
def rare(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` (a middle value: Hypothesis favours the bounds)."""
    return st.integers(0, n - 1).map(lambda i: i == n // 2)


case_styles = st.sampled_from(["as is"] * 4 + ["lower", "upper", "random"])
case_bits = st.integers(0, 2**24 - 1)
hosts = st.sampled_from(["127.0.0.1:8080", "example.com", "", "a b"])
good_upgrades = st.sampled_from(["websocket", "WebSocket"])
good_connections = st.sampled_from(
    ["Upgrade", "upgrade", "keep-alive, Upgrade", "Upgrade, keep-alive"]
)
protocol_headers = st.lists(token_lists(), min_size=1, max_size=3)
origins = st.sampled_from([[], [], ["https://app.example"], ["null"], ["https://a", "https://b"]])
usual_headers = st.lists(
    st.sampled_from(
        [
            ("User-Agent", "Mozilla/5.0"),
            ("User-Agent", "caf\xe9 \xff"),  # obs-text (latin-1)
            ("Cookie", "a=\xe9"),
            ("Authorization", "Bearer abc"),
            ("Content-Length", "0"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Empty", ""),
            ("Pragma", "no-cache"),
        ]
    ),
    max_size=3,
)
hostile_headers = st.sampled_from(
    [
        ("Content-Length", "5"),
        ("Content-Length", "00"),
        ("Transfer-Encoding", "chunked"),
        ("X-Ctl", "a\x01b"),
        ("X-Del", "a\x7fb"),
        ("X@Y", "1"),
        ("X-Nul", "\x00"),
    ]
)
filler_counts = st.sampled_from([0] * 40 + [100, 118, 119, 120, 121, 122, 127, 140])
long_lines = st.sampled_from([8180, 8190, 8191, 8192, 8193, 8194, 8200])
big_counts = st.integers(3, 5)
colons = st.sampled_from([": "] * 6 + [":", ":\t", ":  "])
tails = st.sampled_from([""] * 8 + [" ", "\t"])
# A line that is no HTTP header line, and where it goes (index into the lines).
odd_lines = st.sampled_from(
    [
        "NoColonHere",
        " folded",  # obs-fold
        "\tX-Tab: 1",
        "X-Space : 1",  # whitespace before the colon
        ": no name",
        "X-Lf: 1\nTransfer-Encoding: chunked",  # a bare LF
        "X-Cr: 1\rX-Cr2: 2",  # a bare CR
        "LF",  # every line ends with a bare LF
    ]
)
mutation_kinds = st.sampled_from(
    [
        "method",
        "http",
        "upgrade",
        "connection",
        "key",
        "version",
        "drop",
        "repeat",
        "header",
        "line",
        "request line",
        "long target",
        "leading",
    ]
)
fields = st.sampled_from(["host", "upgrade", "connection", "key", "version", "protocol"])
positions = st.integers(1, 1000)
target_lengths = st.integers(8150, 8200)
bad_request_lines = st.sampled_from(
    [
        "GET {target}  {version}",
        "GET /a b {version}",
        "GET /caf\xe9 {version}",
        " GET {target} {version}",
        "GET {target}",
        "GET /a\nb {version}",
    ]
)


def _case(draw: st.DrawFn, name: str) -> str:
    style = draw(case_styles)
    if style == "lower":
        return name.lower()
    if style == "upper":
        return name.upper()
    if style == "random":
        bits = draw(case_bits)
        return "".join(c.upper() if bits >> i & 1 else c.lower() for i, c in enumerate(name))
    return name


@st.composite
def heads(draw: st.DrawFn) -> tuple[bytes, bytes, Facts, list[int]]:
    """A request head, the bytes after it, what the test knows about it, and cut points."""
    # Half the heads are upgrades a real client could send (varied only in what must not
    # matter: case, whitespace, order, token lists, extra headers); the other half are
    # the same with one to three hostile mutations, so that each fault is seen alone.
    mutations = (
        set(draw(st.lists(mutation_kinds, min_size=1, max_size=3)))
        if draw(st.booleans())
        else set()
    )
    method = draw(methods) if "method" in mutations else "GET"
    target = draw(targets)
    version = draw(http_versions) if "http" in mutations else "HTTP/1.1"
    values: dict[str, list[str]] = {
        "host": [draw(hosts)],
        "upgrade": [draw(upgrades if "upgrade" in mutations else good_upgrades)],
        "connection": [draw(connections if "connection" in mutations else good_connections)],
        "key": [draw(keys if "key" in mutations else valid_keys)],
        "version": [draw(versions) if "version" in mutations else "13"],
        "protocol": draw(protocol_headers) if draw(st.booleans()) else [],
        "extensions": [draw(extensions)] if draw(rare(4)) else [],
        "origin": draw(origins),
    }
    if "drop" in mutations:
        values[draw(fields)] = []
    if "repeat" in mutations:
        field = draw(fields)
        values[field] = values[field] * 2
    lines = [(_case(draw, names[field]), value) for field, vs in values.items() for value in vs]
    lines += draw(usual_headers)
    if "header" in mutations:
        lines.append(draw(hostile_headers))
    if draw(rare(8)):
        # Near websockets' 8 KiB line limit (the line is name, ": ", value, CRLF).
        lines.append(("X-Long", "v" * (draw(long_lines) - len("X-Long: ") - 2)))
    if draw(rare(16)):
        lines += [("X-Big", "b" * 4000)] * draw(big_counts)  # near the 16 KiB head
    order = draw(st.permutations(range(len(lines))))
    rendered = [lines[i][0] + draw(colons) + lines[i][1] + draw(tails) for i in order]
    odd = draw(odd_lines) if "line" in mutations else None
    malformed = odd is not None
    if odd is not None and odd != "LF":
        rendered.insert(draw(positions) % (len(rendered) + 1), odd)
    request_line = f"{method} {target} {version}"
    if "request line" in mutations:
        malformed = True
        request_line = draw(bad_request_lines).format(target=target, version=version)
    elif "long target" in mutations:  # near websockets' 8 KiB request line
        request_line = f"{method} /{'t' * draw(target_lengths)} {version}"
    rendered += [f"X-{i}: v" for i in range(draw(filler_counts))]  # near websockets' 128
    leading = "leading" in mutations
    eol = "\n" if odd == "LF" else "\r\n"
    text = ("\r\n" if leading else "") + eol.join([request_line, *rendered]) + eol + eol
    head = text.encode("latin-1")
    rest = draw(rests)
    upgrade_values = [v for name, v in lines if name.lower() == "upgrade"]
    asks = bool(upgrade_values) and "websocket" in upgrade_values[-1].strip().lower()
    path = target.partition("?")[0]
    facts = Facts(
        method=method,
        path=path,
        version=version,
        probe=request_line == f"{method} {target} {version}"
        and method in ("GET", "HEAD")
        and not asks
        and (path in HEALTH_PATHS or path in PAGES),
        leading_blank=leading,
        head_size=len(head),
        malformed=malformed or version not in ("HTTP/1.1", "HTTP/1.0"),
        asks=asks,
    )
    cuts = draw(cut_points)
    return head, rest, facts, cuts


# After the head, in the same bytes: a ping (a 101 is followed by its pong), a second
# request (no HTTP any more: a protocol error, 1002), a ping and a close, or nothing.
rests = st.sampled_from(
    [
        b"",
        PING,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        PING + encode(Opcode.CLOSE, b"\x03\xe8bye", mask=b"\x01\x02\x03\x04"),
    ]
)
cut_points = st.lists(st.integers(1, 999), max_size=6)  # per mille of the bytes


def segments_of(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c * len(data) // 1000 for c in cuts} - {0})
    return [data[a:b] for a, b in itertools.pairwise([0, *points, len(data)])]


def expected(facts: Facts, head: bytes, rest: bytes) -> set[Outcome]:
    if facts.leading_blank:
        # 0. RFC 9112 2.2: empty lines before the request line are ignored (websockets
        # closes): the request is judged as the same request without them.
        stripped = head[2:]
        return expected(
            replace(facts, leading_blank=False, head_size=len(stripped)), stripped, rest
        )
    ws, request, exc = through_websockets(head, rest)
    return intended(facts, ws, request, exc)


# ---- the property ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    loop = asyncio.new_event_loop()

    async def make() -> Hub:
        # Abuse limits off: thousands of handshakes from one address test the handshake.
        hub = Hub(Settings(port=0, handshake_rate="0", message_rate="0", byte_rate="0"))
        hub.ready = True
        return hub

    yield loop.run_until_complete(make())
    loop.close()


def valid(**changes: str) -> bytes:
    fields = {
        "Host": "example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
        **changes,
    }
    lines = ["GET /call HTTP/1.1"] + [f"{k}: {v}" for k, v in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def facts_of(head: bytes, probe: bool = False) -> Facts:
    method, target, version = head.split(b"\r\n")[0].decode("latin-1").split(" ")
    return Facts(method, target.partition("?")[0], version, probe, False, len(head))


# Every answer but the 101 and the pages (``http.response``): websockets' refusal headers plus
# Cache-Control (a refusal describes this moment), in one order for probes and refusals.
PLAIN = ("date", "content-type", "content-length", "cache-control", "connection")


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(heads())
@example((valid(), PING, facts_of(valid()), [1, 2, 3, 500, 990]))
@example(
    (valid(**{"Sec-WebSocket-Protocol": "bearer.x, signaling.v2"}), b"", facts_of(valid()), [])
)
def test_server_handshake_agrees_with_websockets(
    hub: Hub, case: tuple[bytes, bytes, Facts, list[int]]
) -> None:
    head, rest, facts, cuts = case
    ours = through_server(hub, segments_of(head + rest, cuts))
    allowed = expected(facts, head, rest)
    assert ours in allowed, (head, rest, ours, allowed)
    page = facts.probe and facts.path in PAGES and ours.status == 200  # web/assets.py's
    if isinstance(ours.status, int) and ours.status != 101 and not page:
        assert ours.names[:5] == PLAIN, (head, ours)


@pytest.mark.parametrize(
    "head",
    [
        valid(Upgrade="h2c"),
        valid(Connection="keep-alive"),
        valid(**{"Sec-WebSocket-Key": "AAAA"}),
        valid(**{"Sec-WebSocket-Protocol": "a b"}),
        valid(**{"X": "v" * 9000}),
        valid().replace(b"GET /call ", b"GET /" + b"x" * 9000 + b" "),
        valid().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    ],
    ids=["upgrade h2c", "no upgrade token", "short key", "bad list", "431", "414", "505"],
)
def test_refusals_carry_websockets_headers_plus_cache_control(hub: Hub, head: bytes) -> None:
    ours = through_server(hub, [head])
    ws, _, _ = through_websockets(head, b"")
    assert isinstance(ws.status, int) and ws.status >= 400 and ours == ws
    assert set(ours.names) == set(ws.names) | {"cache-control"}
    assert ours.names[:5] == PLAIN


def test_the_reference_accepts_what_a_browser_sends(hub: Hub) -> None:
    """The property is not vacuous: a valid upgrade is a 101 with the RFC accept value on
    both paths, v2 echoed, and a ping after it answered."""
    head = valid(**{"Sec-WebSocket-Protocol": "bearer.abc, signaling.v2"})
    ours = through_server(hub, [head + PING])
    pong = b"\x8a\x02hi"
    assert ours == Outcome(101, "signaling.v2", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", after=pong)
    assert ours in expected(facts_of(head), head, PING)
