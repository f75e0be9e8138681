"""Bad input gets a coded error and the connection stays usable; limits protect others."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import connect

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.http import http_get
from tests.support.raw import RawClient
from tests.support.rooms import members
from tests.support.server import spawn_server
from tests.support.waiting import eventually

Make = Callable[..., Awaitable[Client]]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ('{"type":"signal","payload":NaN}', "bad_json"),
        (b"\x00\x01binary", "bad_message"),
        ("[]", "bad_message"),
        ('{"payload":1}', "bad_message"),
        ('{"type":"join"}', "bad_message"),
        ('{"type":"join","roomId":1234}', "bad_message"),
        ('{"type":"teleport"}', "unknown_type"),
        ('{"type":"signal","payload":"x"}', "not_in_room"),
    ],
)
async def test_error_codes_and_the_connection_stays_usable(
    clients: Make, frame: str | bytes, code: str
) -> None:
    a = await clients()
    await a.send(frame)
    err = await a.recv()
    assert err["type"] == "error" and err["code"] == code and err["message"]
    await a.create()  # still usable


async def test_v2_field_types_are_checked(clients: Make) -> None:
    a = await clients(v2=True)
    await a.create()
    for bad in (
        {"type": "signal", "payload": 1, "to": 5},
        {"type": "signal", "payload": 1, "traceparent": "nope"},
        {"type": "signal"},
    ):
        await a.send(bad)
        assert (await a.recv())["code"] == "bad_message", bad


async def test_oversized_frame_closes_with_1009(start_server: StartServer) -> None:
    server = await start_server(max_message_bytes=1024)
    a = await Client.open(server, max_size=None)
    other = await Client.open(server)
    room = (await other.create())["roomId"]
    await a.join(room)
    await a.send({"type": "signal", "payload": "x" * 2000})
    await asyncio.wait_for(a.ws.wait_closed(), 3)
    assert a.ws.close_code == 1009
    await other.silent()
    await other.send({"type": "signal", "payload": "fine"})  # the server is unharmed
    b = await Client.open(server)
    await b.join(room)
    await other.send({"type": "signal", "payload": "after"})
    assert (await b.recv())["payload"] == "after"
    await other.close()
    await b.close()


async def test_full_mailbox_answers_overloaded_and_drops_nothing_silently(
    start_server: StartServer,
) -> None:
    server = await start_server(mailbox_size=4)
    receiver = await Client.open(server)
    room = (await receiver.create())["roomId"]
    sender = await RawClient.open(server.port)
    await sender.send_many([json.dumps({"type": "join", "roomId": room})])
    assert (await sender.next_text())["type"] == "room_joined"
    total = 200
    await sender.send_many([json.dumps({"type": "signal", "payload": n}) for n in range(total)])
    # Every signal is answered one way or the other: relayed to the receiver, or refused
    # to the sender with `overloaded`. Read both sides until all are accounted for.
    got: list[int] = []
    errors: list[str] = []

    async def relayed() -> None:
        while True:
            got.append((await receiver.recv(timeout=30))["payload"])

    async def refused() -> None:
        while True:
            errors.append((await sender.next_text(timeout=30))["code"])

    readers = [asyncio.create_task(relayed()), asyncio.create_task(refused())]
    try:
        await eventually(lambda: len(got) + len(errors) >= total, what="an answer to every signal")
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
    overloaded, delivered = len(errors), len(got)
    assert overloaded + delivered == total, (overloaded, delivered)
    assert set(errors) == {"overloaded"}, errors
    assert overloaded >= 1 and delivered >= 4
    assert got == sorted(got), "relayed signals keep their order"
    assert server.hub.metrics.errors["overloaded"] == overloaded
    sender.close()
    await receiver.close()


def test_a_client_that_does_not_read_is_disconnected_alone() -> None:
    """Run against a separate server process, so the test's own readers never compete
    with the server for one event loop."""
    # 6.4 MB in a few seconds is over the default byte rate: this test is about the
    # slow-consumer cut-off, so the sender's byte limit is off here.
    env = {
        "SIGNALING_SEND_BUFFER_BYTES": str(256 * 1024),
        "SIGNALING_JOURNAL_MAX_BYTES": str(128 * 1024),  # at most half the send buffer
        "SIGNALING_BYTE_RATE": "0",
    }
    with spawn_server(env) as proc:
        asyncio.run(_slow_consumer_scenario(proc.port))
        metrics = http_get(proc.metrics_url)[1]
    assert "signaling_slow_consumer_disconnects_total 1.0" in metrics


async def _slow_consumer_scenario(port: int) -> None:
    url = f"ws://127.0.0.1:{port}/"
    async with connect(url) as sender_ws, connect(url, max_queue=None) as reader_ws:
        sender, reader = Client(sender_ws, "sender"), Client(reader_ws, "reader")
        room = (await sender.create())["roomId"]
        await reader.join(room)
        lazy = await RawClient.open(port, rcvbuf=4096)
        await lazy.send_many([json.dumps({"type": "join", "roomId": room})])
        assert (await lazy.next_text())["type"] == "room_joined"  # in the room; reads no more
        total, batch, payload = 400, 10, "x" * 16_000
        got: list[int] = []
        for start in range(0, total, batch):  # the reader keeps up; `lazy` never reads
            for n in range(start, start + batch):
                await sender.send({"type": "signal", "payload": {"n": n, "pad": payload}})
            got += [(await reader.recv(timeout=10))["payload"]["n"] for _ in range(batch)]
        assert got == list(range(total)), "the reading peer got everything, in order"
        assert await lazy.is_closed_by_server(timeout=10)
        await sender.silent()  # the sender was never blamed
        await reader.send({"type": "signal", "payload": "still here"})
        assert (await sender.recv())["payload"] == "still here"
        lazy.close()


async def test_dead_peer_is_found_by_pings(start_server: StartServer) -> None:
    server: Server = await start_server(ping_interval=0.2, ping_timeout=0.3)
    alive = await Client.open(server, ping_interval=None)
    room = (await alive.create())["roomId"]
    dead = await RawClient.open(server.port)
    await dead.send_many([json.dumps({"type": "join", "roomId": room})])
    assert (await dead.next_text())["type"] == "room_joined"
    # `dead` never answers pings (its pongs are never flushed); `alive` does.
    assert await dead.is_closed_by_server()
    await members(server, room, {alive.my_id})  # the room committed the dead peer's removal
    await alive.send({"type": "signal", "payload": 1})  # still connected, many pings later
    await alive.silent(0.1)
    assert alive.ws.close_code is None
    dead.close()
    await alive.close()
