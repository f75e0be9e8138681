"""OpenTelemetry spans recorded by a real server, read back from an in-memory exporter."""

from __future__ import annotations

import itertools
import json
import secrets

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import TraceFlags

from signaling.telemetry.tracing import Tracing
from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client

PAYLOAD = '{"sdp":"v=0 secret-sdp-body","candidates":[1, 2, 3]}'


async def traced(
    start_server: StartServer, ratio: float = 1.0, **settings: object
) -> tuple[Server, InMemorySpanExporter]:
    """A server whose spans all land in the returned in-memory exporter."""
    exporter = InMemorySpanExporter()
    tracing = Tracing.from_processor(SimpleSpanProcessor(exporter), ratio=ratio)
    return await start_server(tracing=tracing, **settings), exporter


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def new_traceparent(flags: str = "01") -> tuple[str, int, int]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-{flags}", int(trace_id, 16), int(span_id, 16)


def signal(payload: str = PAYLOAD, traceparent: str | None = None) -> str:
    """A signal as raw text, so the payload's exact JSON text is known."""
    extra = "" if traceparent is None else f',"traceparent":"{traceparent}"'
    return f'{{"type":"signal","payload":{payload}{extra}}}'


async def room_of_three(server: Server) -> tuple[str, Client, Client, Client]:
    """A v2 sender, a v2 recipient and a v1 recipient in one room, notices consumed."""
    sender, v2, v1 = (
        await Client.open(server, v2=True),
        await Client.open(server, v2=True),
        await Client.open(server),
    )
    room = (await sender.create())["roomId"]
    await v2.join(room)
    await v1.join(room)
    assert (await sender.recv())["type"] == "peer_joined"
    assert (await sender.recv())["type"] == "peer_joined"
    assert (await v2.recv())["type"] == "peer_joined"
    return room, sender, v2, v1


def traceparent_of(span: ReadableSpan) -> str:
    ctx = span.get_span_context()
    assert ctx is not None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


async def test_one_relay_span_per_signal_with_sizes_but_no_payload(
    start_server: StartServer,
) -> None:
    server, exporter = await traced(start_server)
    room, sender, v2, v1 = await room_of_three(server)
    n = 4
    for _ in range(n):
        await sender.send(signal())
        got2, got1 = await v2.recv(), await v1.recv()
        assert got2["payload"] == got1["payload"] == json.loads(PAYLOAD)
    relays = spans(exporter, "signal.relay")
    assert len(relays) == n
    for span in relays:
        attrs = dict(span.attributes or {})
        assert attrs == {
            "signaling.room_id": room,
            "signaling.sender_id": sender.my_id,
            "signaling.fanout": 2,
            "signaling.payload_size": len(PAYLOAD),
        }
        assert not any("secret-sdp-body" in str(v) for v in attrs.values())
        assert span.parent is None  # no client context: a root span
        assert span.end_time is not None and span.start_time is not None
        assert span.start_time <= span.end_time
    # directed: fanout 1
    await sender.send(f'{{"type":"signal","to":"{v1.my_id}","payload":"x"}}')
    assert (await v1.recv())["payload"] == "x"
    last = spans(exporter, "signal.relay")[-1]
    assert (last.attributes or {})["signaling.fanout"] == 1
    assert (last.attributes or {})["signaling.payload_size"] == len('"x"')


async def test_v2_recipients_get_the_server_span_v1_recipients_nothing(
    start_server: StartServer,
) -> None:
    server, exporter = await traced(start_server)
    _, sender, v2, v1 = await room_of_three(server)

    await sender.send(signal())  # no client context: the server's root span
    fwd2, fwd1 = await v2.recv(), await v1.recv()
    (root,) = spans(exporter, "signal.relay")
    assert fwd2["traceparent"] == traceparent_of(root)
    assert set(fwd1) == {"type", "senderId", "payload"}

    tp, trace_id, parent_span_id = new_traceparent()
    await sender.send(signal(traceparent=tp))
    fwd2, fwd1 = await v2.recv(), await v1.recv()
    child = spans(exporter, "signal.relay")[-1]
    ctx = child.get_span_context()
    assert ctx is not None and child.parent is not None
    assert ctx.trace_id == trace_id
    assert child.parent.span_id == parent_span_id and child.parent.is_remote
    assert ctx.span_id != parent_span_id
    assert ctx.trace_flags & TraceFlags.SAMPLED
    version, fwd_trace, fwd_span, _ = fwd2["traceparent"].split("-")
    assert (version, int(fwd_trace, 16), int(fwd_span, 16)) == ("00", trace_id, ctx.span_id)
    assert fwd2["traceparent"] == traceparent_of(child)
    assert set(fwd1) == {"type", "senderId", "payload"}

    # a v1 sender cannot pass context: its traceparent field is not read
    await v1.send(signal(traceparent=new_traceparent()[0]))
    assert (await sender.recv())["senderId"] == v1.my_id
    fwd2 = await v2.recv()
    from_v1 = spans(exporter, "signal.relay")[-1]
    assert from_v1.parent is None and fwd2["traceparent"] == traceparent_of(from_v1)


async def test_lifecycle_spans(start_server: StartServer) -> None:
    server, exporter = await traced(start_server, room_timeout_ms=300)
    a, b, c = (
        await Client.open(server, v2=True),
        await Client.open(server, v2=True),
        await Client.open(server, v2=True),
    )
    room = (await a.create())["roomId"]
    await b.join(room)
    await b.send({"type": "leave"})
    assert (await b.recv())["type"] == "left"
    await c.send(
        {"type": "resume", "roomId": room, "peerId": a.my_id, "resumeToken": a.token, "lastSeq": 0}
    )
    assert (await c.recv())["type"] == "resumed"
    assert (await c.closed())[0] == 4000  # the room expires after its last activity

    by_name = {
        name: spans(exporter, name)
        for name in ("room.created", "room.joined", "room.leave", "room.resume", "room.expire")
    }
    assert {name: len(found) for name, found in by_name.items()} == dict.fromkeys(by_name, 1)
    for name, peer in [
        ("room.created", a.my_id),
        ("room.joined", b.my_id),
        ("room.leave", b.my_id),
        ("room.resume", a.my_id),
    ]:
        attrs = by_name[name][0].attributes or {}
        assert attrs["signaling.room_id"] == room and attrs["signaling.peer_id"] == peer, name
    seqs = [(by_name[n][0].attributes or {})["signaling.seq"] for n in by_name]
    assert seqs == [2, 3, 4, 5, 6]  # seq 1 is the room's creation event
    expire = by_name["room.expire"][0].attributes or {}
    assert expire["signaling.room_id"] == room and "signaling.peer_id" not in expire
    assert spans(exporter, "signal.relay") == []
    for client in (a, b):
        await client.close()


async def test_ratio_zero_records_only_sampled_client_contexts(start_server: StartServer) -> None:
    server, exporter = await traced(start_server, ratio=0.0)
    _, sender, v2, v1 = await room_of_three(server)
    for _ in range(20):
        await sender.send(signal())
        assert "traceparent" not in await v2.recv()
        await v1.recv()
    assert exporter.get_finished_spans() == ()  # not even lifecycle spans

    unsampled, _, _ = new_traceparent("00")
    await sender.send(signal(traceparent=unsampled))
    assert "traceparent" not in await v2.recv()
    await v1.recv()
    assert exporter.get_finished_spans() == ()

    sampled, trace_id, parent_span_id = new_traceparent("01")
    await sender.send(signal(traceparent=sampled))
    fwd2, fwd1 = await v2.recv(), await v1.recv()
    (span,) = exporter.get_finished_spans()
    ctx = span.get_span_context()
    assert span.name == "signal.relay" and ctx is not None and span.parent is not None
    assert ctx.trace_id == trace_id and span.parent.span_id == parent_span_id
    assert fwd2["traceparent"] == traceparent_of(span)
    assert "traceparent" not in fwd1


async def test_disabled_tracing_forwards_no_traceparent(start_server: StartServer) -> None:
    server = await start_server()
    assert server.hub.tracing.tracer is None
    _, sender, v2, _ = await room_of_three(server)
    await sender.send(signal(traceparent=new_traceparent()[0]))
    assert "traceparent" not in await v2.recv()


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",
        "00-" + "1" * 32 + "-" + "0" * 16 + "-01",
        "ff-" + "1" * 32 + "-" + "2" * 16 + "-01",
    ],
)
async def test_invalid_client_context_does_not_force_sampling(
    start_server: StartServer, traceparent: str
) -> None:
    server, exporter = await traced(start_server, ratio=0.0)
    _, sender, v2, _ = await room_of_three(server)
    await sender.send(signal(traceparent=traceparent))
    reply = await v2.recv()
    assert reply.get("type") in ("signal", "error")
    assert spans(exporter, "signal.relay") == []


async def test_relays_are_sampled_at_the_ratio_with_one_draw_each(
    start_server: StartServer,
) -> None:
    """Draws alternate below and above the ratio, so exactly every other relay is
    traced; a second draw per decision (a bug once) would trace none of them."""
    exporter = InMemorySpanExporter()
    base = Tracing.from_processor(SimpleSpanProcessor(exporter))
    draws = itertools.cycle([0.4, 0.6])
    tracing = Tracing(base.tracer, 0.5, rng=lambda: next(draws), provider=base.provider)
    server = await start_server(tracing=tracing)
    a, b = await Client.open(server), await Client.open(server)
    room = (await a.create())["roomId"]
    await b.join(room)
    exporter.clear()
    for n in range(10):
        await a.send({"type": "signal", "payload": n})
        assert (await b.recv())["payload"] == n
    assert len(spans(exporter, "signal.relay")) == 5
    await a.close()
    await b.close()
