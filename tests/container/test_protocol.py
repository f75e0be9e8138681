"""The containerized server over real sockets: HTTP endpoints, protocol v1 and v2 with resume."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from tests.container.conftest import MakePeer, Running
from tests.support.http import http_get, metric_value
from tests.support.waiting import wait_until

CLIENT_JS = Path(__file__).resolve().parents[2] / "clients" / "js"

# The first test also builds the image (session fixture), which pytest-timeout counts.
pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_health_ready_and_metrics(shared_server: Running) -> None:
    status, body = http_get(f"{shared_server.http}/healthz")
    assert (status, body.strip()) == (200, "ok")
    status, _ = http_get(f"{shared_server.http}/readyz")
    assert status == 200
    status, text = http_get(shared_server.metrics_url)
    assert status == 200
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert any(name.startswith("signaling_") for name in names), sorted(names)


def v2_connections(running: Running) -> float | None:
    """The server's count of open signaling.v2 connections, from its /metrics."""
    status, text = http_get(running.metrics_url)
    assert status == 200, text[:300]
    return metric_value(text, "signaling_connections_open", protocol="v2")


async def v1_flow(running: Running, peers: MakePeer) -> None:
    """create, join (and a miss), signal: what the seed's clients do."""
    a, b = await peers(running), await peers(running)
    created = await a.create()
    assert set(created) == {"type", "roomId", "myId"}
    assert re.fullmatch(r"\d{4}", created["roomId"]) and UUID.fullmatch(created["myId"])
    joined = await b.join(created["roomId"])
    assert joined["roomId"] == created["roomId"] and joined["myId"] != created["myId"]
    assert set(joined) == {"type", "roomId", "myId"}

    payload = {"type": "offer", "sdp": "v=0\r\n"}
    await b.send({"type": "signal", "payload": payload})
    assert await a.recv() == {"type": "signal", "senderId": b.my_id, "payload": payload}
    await b.silent(0.3)  # the sender does not hear itself
    await a.send({"type": "signal", "payload": "answer"})
    assert await b.recv() == {"type": "signal", "senderId": a.my_id, "payload": "answer"}

    c = await peers(running)
    taken = str((int(created["roomId"]) + 1) % 10000).zfill(4)
    await c.send({"type": "join", "roomId": "0000" if taken == created["roomId"] else taken})
    missing = await c.recv()
    # Another test's room could exist with that id; what matters is a well-formed answer.
    assert missing["type"] in ("error", "room_joined"), missing
    if missing["type"] == "error":
        assert missing["code"] == "room_not_found" and missing["message"] == "Room not found"


async def test_v1_create_join_signal(shared_server: Running, peers: MakePeer) -> None:
    await v1_flow(shared_server, peers)


async def test_v2_peer_joined_and_resume_exactly_once(
    shared_server: Running, peers: MakePeer
) -> None:
    a, b = await peers(shared_server, v2=True), await peers(shared_server, v2=True)
    created = await a.create()
    room = created["roomId"]
    assert created["peers"] == [] and isinstance(created["seq"], int) and created["resumeToken"]
    joined = await b.join(room)
    assert joined["peers"] == [a.my_id] and joined["resumeToken"]
    assert await a.recv() == {"type": "peer_joined", "peerId": b.my_id, "seq": joined["seq"]}

    await a.send({"type": "signal", "payload": "before"})
    before = await b.recv()
    assert before["payload"] == "before" and before["senderId"] == a.my_id
    last_seen = b.seq

    assert await asyncio.to_thread(v2_connections, shared_server) == 2  # a and b
    b.drop()  # no leave, no close frame: the TCP connection just dies
    await asyncio.to_thread(
        wait_until, lambda: v2_connections(shared_server) == 1, what="the server to see the drop"
    )
    missed = [f"missed-{n}" for n in range(3)]
    for text in missed:
        await a.send({"type": "signal", "payload": text})
    await a.send({"type": "signal", "to": b.my_id, "payload": "for-b"})

    b2 = await peers(shared_server, v2=True)
    await b2.send(
        {
            "type": "resume",
            "roomId": room,
            "peerId": b.my_id,
            "resumeToken": b.token,
            "lastSeq": last_seen,
        }
    )
    resumed = await b2.recv()
    assert resumed["type"] == "resumed", resumed
    assert resumed["roomId"] == room and resumed["myId"] == b.my_id
    assert resumed["peers"] == [a.my_id]

    replay = [await b2.recv() for _ in range(4)]
    assert [m["payload"] for m in replay] == [*missed, "for-b"], replay
    assert all(m["type"] == "signal" and m["senderId"] == a.my_id for m in replay)
    seqs = [m["seq"] for m in replay]
    assert seqs == sorted(set(seqs)) and seqs[0] > last_seen
    await b2.silent()  # exactly once: nothing replayed twice, nothing extra

    await a.send({"type": "signal", "payload": "live"})
    live = await b2.recv()
    assert live["payload"] == "live" and live["seq"] > seqs[-1]
    await b2.send({"type": "signal", "payload": "back"})
    back = await a.recv()
    assert back["senderId"] == b.my_id and back["payload"] == "back"

    await b2.send({"type": "leave"})
    assert await b2.recv() == {"type": "left", "roomId": room}
    left = await a.recv()
    assert left["type"] == "peer_left" and left["peerId"] == b.my_id


def test_image_carries_the_demo_page_and_the_browser_client(shared_server: Running) -> None:
    """The static files are package data: the installed wheel in the image serves them."""
    status, page = http_get(f"{shared_server.http}/")
    assert status == 200 and '<script type="module" src="/demo.js">' in page
    status, module = http_get(f"{shared_server.http}/client/signaling.js")
    assert status == 200 and "export class SignalingClient" in module
    # Served from symlinks to clients/js in the source tree: the image has the real files.
    for name in ("signaling.js", "mesh.js", "signaling.d.ts"):
        status, body = http_get(f"{shared_server.http}/client/{name}")
        assert status == 200 and body == (CLIENT_JS / name).read_text(), name
