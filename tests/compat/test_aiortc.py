"""A real WebRTC session negotiated through the server.

Two aiortc peers exchange offer/answer through `signal` messages (aiortc gathers all
candidates before it produces a description, so the SDP carries the ICE candidates) and
then talk over a DataChannel in both directions. ICE is pinned to loopback: no STUN
servers and only 127.0.0.1 host candidates, so no traffic leaves the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from tests.support.client import Client
from tests.support.server import ServerProcess

TIMEOUT = 30.0
FROM_A = "hello from A (answerer) \u2713"
FROM_B = "hello from B (offerer) \u2713"


@pytest.fixture(autouse=True)
def loopback_only_ice(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioice skips loopback when it lists host addresses; use nothing but loopback."""

    def loopback(use_ipv4: bool = True, use_ipv6: bool = True) -> list[str]:
        return ["127.0.0.1"] if use_ipv4 else []

    monkeypatch.setattr(aioice.ice, "get_host_addresses", loopback)


async def next_signal(client: Client) -> dict[str, Any]:
    """The next relayed `signal`, skipping v2 presence notifications."""
    while True:
        msg = await client.recv(timeout=TIMEOUT)
        if msg["type"] in ("peer_joined", "peer_left"):
            assert client.subprotocol is not None, f"v1 client got {msg}"
            continue
        assert msg["type"] == "signal", msg
        return msg


async def negotiate_and_chat(server: ServerProcess, a_v2: bool, b_v2: bool) -> None:
    a = await Client.open(server, a_v2, name="A")
    b = await Client.open(server, b_v2, name="B")
    pc_a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc_b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    loop = asyncio.get_running_loop()
    at_a: asyncio.Future[str] = loop.create_future()
    at_b: asyncio.Future[str] = loop.create_future()
    try:
        await a.send({"type": "create"})
        created = await a.recv_type("room_created")
        await b.send({"type": "join", "roomId": created["roomId"]})
        joined = await b.recv_type("room_joined")
        a_id, b_id = created["myId"], joined["myId"]

        @pc_a.on("datachannel")
        def on_datachannel(channel: RTCDataChannel) -> None:
            @channel.on("message")
            def on_message(message: str | bytes) -> None:
                if not at_a.done():
                    at_a.set_result(str(message))
                    channel.send(FROM_A)

        channel_b = pc_b.createDataChannel("chat")

        @channel_b.on("open")
        def on_open() -> None:
            channel_b.send(FROM_B)

        @channel_b.on("message")
        def on_reply(message: str | bytes) -> None:
            if not at_b.done():
                at_b.set_result(str(message))

        # B (the joiner, who knows A is there) offers.
        await pc_b.setLocalDescription(await pc_b.createOffer())
        offer: dict[str, Any] = {
            "type": "signal",
            "payload": {"type": pc_b.localDescription.type, "sdp": pc_b.localDescription.sdp},
        }
        if b_v2:
            offer["to"] = a_id
        await b.send(offer)

        got_offer = await next_signal(a)
        assert got_offer["senderId"] == b_id, got_offer
        assert got_offer["payload"] == offer["payload"], "offer SDP changed in transit"
        assert ("seq" in got_offer) == a_v2, got_offer
        await pc_a.setRemoteDescription(RTCSessionDescription(**got_offer["payload"]))
        await pc_a.setLocalDescription(await pc_a.createAnswer())
        answer: dict[str, Any] = {
            "type": "signal",
            "payload": {"type": pc_a.localDescription.type, "sdp": pc_a.localDescription.sdp},
        }
        if a_v2:
            answer["to"] = b_id
        await a.send(answer)

        got_answer = await next_signal(b)
        assert got_answer["senderId"] == a_id, got_answer
        assert got_answer["payload"] == answer["payload"], "answer SDP changed in transit"
        await pc_b.setRemoteDescription(RTCSessionDescription(**got_answer["payload"]))

        assert await asyncio.wait_for(at_a, TIMEOUT) == FROM_B
        assert await asyncio.wait_for(at_b, TIMEOUT) == FROM_A
        assert pc_a.connectionState == "connected"
        assert pc_b.connectionState == "connected"
    finally:
        for pc in (pc_a, pc_b):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pc.close(), 10)
        await a.close()
        await b.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("a_v2", "b_v2"),
    [(False, False), (True, True), (False, True)],
    ids=["v1-v1", "v2-v2", "v1-v2"],
)
async def test_datachannel_both_ways_through_server(
    server: ServerProcess, a_v2: bool, b_v2: bool
) -> None:
    await asyncio.wait_for(negotiate_and_chat(server, a_v2, b_v2), TIMEOUT)
