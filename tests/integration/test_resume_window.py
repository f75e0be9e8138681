"""A resume replays up to the room's whole journal window into the client's send buffer.

If the window were as big as the send buffer, a client resuming over a slow link would
be cut as a slow consumer by its own replay as soon as the room said anything more while
the replay drained. The window is therefore at most half the send buffer (a start-up
check) and the defaults keep that margin; this plays the resuming client that reads
nothing until its whole replay, and a quarter of a send buffer of live traffic, is queued.
"""

from __future__ import annotations

import json
import socket

from signaling.config import Settings
from signaling.core.events import SignalRelayed, event_size
from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.raw import RawClient
from tests.support.rooms import detached
from tests.support.waiting import eventually

SLOW_LINK_KERNEL_BYTES = 32 * 1024  # Linux doubles it: 64 KiB queued in the kernel
PAD = 16_000  # characters of payload per signal: the window fills before the event cap


def payload(tag: str, i: int) -> str:
    return json.dumps({"n": f"{tag}-{i}", "pad": "x" * PAD})


def signal(tag: str, i: int) -> str:
    return '{"type": "signal", "payload": ' + payload(tag, i) + "}"


def journaled(text: str) -> int:
    """What the journal counts for a signal with this payload text."""
    return event_size(SignalRelayed(0, "", text, None, 0.0))


def slow_link(server: Server, client: RawClient) -> None:
    """Make the server's socket to ``client`` hold what it would on a slow link.

    On loopback the kernel grows a socket's send buffer to megabytes (its autotuning
    follows the link's bandwidth-delay product), so a replay never waits in the server's
    own buffer there. Over a slow link that kernel queue stays small: pin it."""
    port = client.sock.getsockname()[1]
    (conn,) = [
        c for c in server.hub.connections if c.transport.get_extra_info("peername")[1] == port
    ]
    sock = conn.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SLOW_LINK_KERNEL_BYTES)


async def attached(server: Server, room: str, peer_id: str | None) -> None:
    def done() -> bool:
        actor = server.hub.supervisor.actor(room)
        member = actor.state.members.get(peer_id or "") if actor is not None else None
        return member is not None and member.attached

    await eventually(done, what=f"{peer_id} attached again")


async def barrier(a: Client) -> None:
    """Until the room has handled everything ``a`` sent before (its refusal comes after)."""
    await a.send({"type": "signal", "to": "nobody", "payload": 0})
    assert (await a.expect("error"))["code"] == "peer_not_found"


async def test_a_slow_reader_survives_a_full_window_replay_and_live_traffic(
    start_server: StartServer,
) -> None:
    defaults = Settings()
    window, buffer = defaults.journal_max_bytes, defaults.send_buffer_bytes
    # The byte rate is about senders, not this: the sender here is honest but fast.
    server = await start_server(byte_rate="0")
    a, b = await Client.open(server, True, name="a"), await Client.open(server, True, name="b")
    room = (await a.create())["roomId"]
    await b.join(room)
    await a.recv_type("peer_joined")
    last_seen = b.seq
    b.drop()
    await detached(server, room, b.my_id)

    # Missed signals that fill the journal's window for the room up to the last one that
    # fits: room_created, two joins and b's detachment are in the window too.
    used, missed = 4 * journaled(""), 0
    while used + journaled(payload("m", missed)) <= window:
        used += journaled(payload("m", missed))
        await a.send(signal("m", missed))
        missed += 1
    await barrier(a)

    slow = await RawClient.open(server.port, v2=True, rcvbuf=4096)
    slow_link(server, slow)
    resume = {"type": "resume", "roomId": room, "peerId": b.my_id, "resumeToken": b.token}
    await slow.send_many([json.dumps(resume | {"lastSeq": last_seen})])
    await attached(server, room, b.my_id)  # the replay is queued: now the room talks on
    # The room keeps talking while the replay is still queued: a quarter send buffer.
    live = (buffer // 4) // (PAD + 100)
    for i in range(live):
        await a.send(signal("l", i))
    await barrier(a)  # everything for `slow` is written (or was cut) by now

    assert server.hub.metrics.slow_consumers == 0, "the resuming client was cut"
    resumed = await slow.next_text()
    assert resumed["type"] == "resumed" and resumed["myId"] == b.my_id, resumed
    got = [(await slow.next_text())["payload"]["n"] for _ in range(missed + live)]
    expected = [f"m-{i}" for i in range(missed)] + [f"l-{i}" for i in range(live)]
    assert got == expected, "the replay and the live signals, in order, exactly once"
    assert server.hub.metrics.resumes == {"ok": 1, "failed": 0}
    slow.close()
    await a.close()
