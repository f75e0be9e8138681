"""Where separately built parts meet: admission accounting, the session state machine
and the room-entry protocol, checked from outside on the integrated server."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin, Subprotocol

from signaling.transport.server import Server
from tests.adversarial.wsframes import encode, text
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.keys import SECRET, claims, hs_token
from tests.support.raw import RawClient
from tests.support.waiting import eventually

HOME = "127.0.0.1"


async def client(server: Server, address: str = HOME, v2: bool = False, **kw: Any) -> Client:
    return await Client.open(server, v2, name=address, local_addr=(address, 0), **kw)


def held(server: Server, address: str = HOME) -> tuple[int, int]:
    table = server.hub.admission.addresses
    return table.connections_held(address), table.rooms_held(address)


async def released(server: Server, address: str = HOME, rooms: int = 0) -> None:
    await eventually(lambda: held(server, address) == (0, rooms), what=f"{address} released")
    adm = server.hub.admission
    await eventually(lambda: adm.websockets == 0 and adm.sockets == 0, what="sockets released")


async def test_takeover_resume_releases_both_sockets(start_server: StartServer) -> None:
    server = await start_server()
    a = await client(server, v2=True)
    room = (await a.create())["roomId"]
    b = await client(server, "127.0.0.5", v2=True)
    await b.join(room)
    await a.expect("peer_joined")
    # b resumes from a new socket while the old one still looks alive: takeover (4001).
    b2 = await client(server, "127.0.0.6", v2=True)
    await b2.send(
        {"type": "resume", "roomId": room, "peerId": b.my_id, "resumeToken": b.token, "lastSeq": 0}
    )
    await b2.expect("resumed")
    assert (await b.closed())[0] == 4001
    # The old socket's end (a disconnect) must not detach the peer its successor holds.
    await eventually(lambda: len(server.hub.connections) == 2, what="old socket gone")
    await a.send({"type": "signal", "payload": "after takeover"})
    assert (await b2.expect("signal"))["payload"] == "after takeover"
    for c in (a, b2):
        await c.close()
    await released(server, HOME, rooms=1)
    assert held(server, "127.0.0.5") == (0, 0) and held(server, "127.0.0.6") == (0, 0)


async def test_expiry_releases_rooms_and_connections(start_server: StartServer) -> None:
    server = await start_server(room_timeout_ms=300, resume_grace_ms=60_000)
    a = await client(server, v2=True)
    room = (await a.create())["roomId"]
    b = await client(server, v2=False)
    await b.join(room)
    c = await client(server, v2=True)
    await c.join(room)
    c.drop()  # detached, inside its grace period when the room expires
    assert (await a.closed())[0] == 4000
    assert (await b.closed())[0] == 4000
    await released(server)


async def test_refused_create_leaves_the_client_in_its_room(start_server: StartServer) -> None:
    server = await start_server(rooms_per_address=1)
    a = await client(server)
    room = (await a.create())["roomId"]
    b = await client(server, "127.0.0.7")
    await b.join(room)
    await a.send({"type": "create"})
    assert (await a.recv())["code"] == "rate_limited"
    await a.send({"type": "signal", "payload": "still here"})
    assert (await b.recv())["payload"] == "still here"


async def test_an_ipv6_scanner_cannot_rotate_through_its_slash_64(
    start_server: StartServer,
) -> None:
    """Behind a trusted proxy, each connection claims another address of one /64: the
    failed-join guard still sees one client."""
    server = await start_server(trusted_proxies="127.0.0.0/8", failed_join_rate="3/10min")

    async def join_from(address: str) -> dict[str, Any]:
        c = await client(server, additional_headers={"X-Forwarded-For": address})
        await c.send({"type": "join", "roomId": "1000"})
        reply = await c.recv()
        await c.close()
        return reply

    codes = [(await join_from(f"2001:db8:7:7::{n:x}"))["code"] for n in range(1, 6)]
    assert codes == ["room_not_found"] * 3 + ["rate_limited"] * 2
    assert (await join_from("2001:db8:7:8::1"))["code"] == "room_not_found"  # next /64


def test_a_port_in_use_exits_2_naming_it_without_a_traceback() -> None:
    """`make run` next to another server on 8080 (the Node seed, say)."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for env, named in (
            ({"PORT": str(port), "SIGNALING_METRICS_PORT_NUMBER": "0"}, f"PORT {port}"),
            (
                {"PORT": "0", "SIGNALING_METRICS_PORT_NUMBER": str(port)},
                f"SIGNALING_METRICS_PORT_NUMBER {port}",
            ),
        ):
            proc = subprocess.run(
                [sys.executable, "-m", "signaling"],
                env={**os.environ, "HOST": "127.0.0.1", **env},
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert proc.returncode == 2, proc.stderr
            assert f"cannot listen: {named}" in proc.stderr, proc.stderr
            assert "Traceback" not in proc.stderr, proc.stderr


async def test_a_room_bound_creator_can_resume_the_room_it_created(
    start_server: StartServer,
) -> None:
    """A token bound to a room that may also create (``create: true``) gets a room with a
    fresh id; after a network blip its holder must get that room back by resume token."""
    server = await start_server(jwt_secret=SECRET)
    token = hs_token(claims(room="4242", create=True))
    headers = {"Authorization": f"Bearer {token}"}
    a = await client(server, v2=True, additional_headers=headers)
    created = await a.create()
    a.drop()
    back = await client(server, v2=True, additional_headers=headers)
    await back.send(
        {
            "type": "resume",
            "roomId": created["roomId"],
            "peerId": created["myId"],
            "resumeToken": created["resumeToken"],
            "lastSeq": created["seq"],
        }
    )
    assert (await back.recv())["type"] == "resumed"
    # The claim still holds for entering other rooms.
    await back.send({"type": "join", "roomId": "1000"})
    assert (await back.recv())["code"] == "unauthorized"


async def test_handshakes_refused_after_admission_give_their_slot_back(
    start_server: StartServer,
) -> None:
    """Admission counts the connection before websockets checks the upgrade headers: a
    400 from websockets must still give the address's slot back."""
    server = await start_server(connections_per_address=2, handshake_rate="1000/s")
    bad = (
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"  # no Sec-WebSocket-Key
    )
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(bad)
        assert (await reader.read()).startswith(b"HTTP/1.1 400")
        writer.close()
    await released(server)
    a, b = await client(server), await client(server)  # both slots are free
    await a.create()
    await b.close()
    await a.close()


async def test_the_message_limit_is_the_same_on_the_fast_and_the_generic_frame_path(
    start_server: StartServer,
) -> None:
    """Whole short text frames take the fast path; fragmented, 64-bit-length and binary
    frames go through websockets. Each counts once against the same bucket: the 4th
    message under a 3/min rate is refused whichever way it came."""

    msg = b'{"type":"nonsense"}'  # answered every time, so every message has a reply
    ways = {
        "fast": text(msg),
        "fragmented": encode(1, msg[:7], fin=False) + encode(0, msg[7:]),
        "64-bit length": text(msg, length_form=64),
        "binary": encode(2, msg),
    }
    for name, frame in ways.items():
        server = await start_server(message_rate="3/min")
        raw = await RawClient.open(server.port)
        await raw.send_bytes(frame * 4)
        codes = [(await raw.next_text()).get("code") for _ in range(4)]
        assert codes[3] == "rate_limited" and "rate_limited" not in codes[:3], (name, codes)
        raw.close()


async def test_tls_jwt_origins_and_trusted_proxies_together(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Everything on at once, as behind an ingress: wss://, a token in the browser's
    subprotocol list, an Origin allow-list, and the client address from X-Forwarded-For
    of a trusted proxy (127.0.0.1 here) keying the failed-join guard."""
    ca = trustme.CA()
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    issued = ca.issue_cert("localhost", "127.0.0.1")
    issued.private_key_pem.write_to_path(str(key))
    issued.cert_chain_pems[0].write_to_path(str(cert))
    server = await start_server(
        tls_cert_file=str(cert),
        tls_key_file=str(key),
        jwt_secret=SECRET,
        allowed_origins="https://app.example",
        trusted_proxies="127.0.0.1/32",
        failed_join_rate="2/10min",
    )
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    url = f"wss://localhost:{server.port}/"
    token = hs_token(claims())

    async def browser(user: str, origin: str = "https://app.example", jwt: str = token) -> Client:
        ws = await connect(
            url,
            ssl=ctx,
            origin=Origin(origin),
            subprotocols=[Subprotocol("signaling.v2"), Subprotocol(f"bearer.{jwt}")],
            additional_headers={"X-Forwarded-For": user},
        )
        assert ws.subprotocol == "signaling.v2"
        return Client(ws, user)

    for origin, jwt, status in (
        ("https://evil.example", token, 403),
        ("https://app.example", "not-a-jwt", 401),
    ):
        with pytest.raises(InvalidStatus) as info:
            await browser("198.51.100.7", origin, jwt)
        assert info.value.response.status_code == status
    scanner = await browser("198.51.100.7")
    codes = []
    for _ in range(3):
        await scanner.send({"type": "join", "roomId": "1000"})
        codes.append((await scanner.recv())["code"])
    assert codes == ["room_not_found", "room_not_found", "rate_limited"]
    host = await browser("198.51.100.8")  # another user behind the same proxy
    room = (await host.create())["roomId"]
    guest = await browser("198.51.100.9")
    await guest.join(room)
    await host.send({"type": "signal", "payload": {"sdp": "v=0"}})
    assert (await guest.expect("signal"))["payload"] == {"sdp": "v=0"}
    table = server.hub.admission.addresses
    assert table.connections_held("198.51.100.7") == 1
    assert table.connections_held("127.0.0.1") == 0  # the proxy itself is never charged
