"""Every counter, gauge and histogram holds exactly what a scripted scenario implies.

Each value is read twice: from the hot-path ``Metrics`` attributes and from the Prometheus
text exposition that a scrape would see, parsed back with ``prometheus_client.parser``.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from signaling.core.errors import ERROR_CODES
from signaling.core.wire import MESSAGE_TYPES
from signaling.telemetry.metrics import Metrics
from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.waiting import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
# Label names the signaling_* families may use: closed sets only (plus histogram "le").
CLOSED_LABELS = {"protocol", "type", "code", "result", "backend", "le", "kind", "reason"}
CLOSED_LABELS = {"protocol", "type", "code", "result", "backend", "le", "kind", "reason"}


def scrape(server: Server) -> tuple[Samples, set[str], set[str]]:
    """(samples by (name, labels), every label value, label names of signaling_* samples)."""
    text = generate_latest(server.hub.metrics.registry()).decode()
    samples: Samples = {}
    values: set[str] = set()
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
            values.update(s.labels.values())
            if s.name.startswith("signaling_"):
                names.update(s.labels)
    return samples, values, names


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def histogram(samples: Samples, name: str, **labels: str) -> tuple[float, float, float]:
    """(count, sum, cumulative count of the le="1.0" bucket or NaN when there is none)."""
    le1 = samples.get((name + "_bucket", frozenset({**labels, "le": "1.0"}.items())), float("nan"))
    inf = value(samples, name + "_bucket", **labels, le="+Inf")
    count = value(samples, name + "_count", **labels)
    assert inf == count
    return count, value(samples, name + "_sum", **labels), le1


def assert_counts(m: Metrics, samples: Samples, expected: dict[str, dict[str, int]]) -> None:
    """Labelled counters and gauges: attribute and exposition both equal ``expected``."""
    attrs = {
        "connections_open": m.connections_open,
        "connections_opened": m.connections_opened,
        "messages_received": m.received,
        "protocol_errors": dict(m.errors),
        "resumes": m.resumes,
    }
    label = {
        "connections_open": "protocol",
        "connections_opened": "protocol",
        "messages_received": "type",
        "protocol_errors": "code",
        "resumes": "result",
    }
    for metric, want in expected.items():
        assert attrs[metric] == want, metric
        sample = "signaling_" + metric + ("" if metric == "connections_open" else "_total")
        got = {k: value(samples, sample, **{label[metric]: k}) for k in want}
        assert got == want, metric


async def test_scenario_sets_every_metric_exactly(start_server: StartServer) -> None:
    server = await start_server()
    m = server.hub.metrics
    n_signals = 5

    a1, b1 = await Client.open(server), await Client.open(server)
    a2, b2 = await Client.open(server, v2=True), await Client.open(server, v2=True)
    await eventually(lambda: sum(m.connections_open.values()) == 4)

    room1 = (await a1.create())["roomId"]
    room2 = (await a2.create())["roomId"]
    await b1.send({"type": "join", "roomId": "no-such-room"})
    assert (await b1.recv())["code"] == "room_not_found"
    await b1.join(room1)
    joined = await b2.join(room1)
    assert len(joined["peers"]) == 2  # a room of three: a1 (v1), b1 (v1), b2 (v2)

    for n in range(n_signals):
        await a1.send({"type": "signal", "payload": {"n": n}})
        assert (await b1.recv())["payload"] == {"n": n}
        assert (await b2.recv())["payload"] == {"n": n}

    await a1.send("{not json")
    assert (await a1.recv())["code"] == "bad_json"
    await a1.send({"type": "teleport"})
    assert (await a1.recv())["code"] == "unknown_type"
    await b1.send({"type": "leave"})  # a v2-only type from a v1 client
    assert (await b1.recv())["code"] == "unknown_type"

    await a2.send({"type": "leave"})
    assert (await a2.recv())["type"] == "left"
    await a2.send({"type": "signal", "payload": "x"})
    assert (await a2.recv())["code"] == "not_in_room"

    resume = {"type": "resume", "roomId": room1, "peerId": b2.my_id, "lastSeq": b2.seq}
    await a2.send({**resume, "resumeToken": "wrong"})
    assert (await a2.recv())["code"] == "resume_failed"
    c2 = await Client.open(server, v2=True)
    await c2.send({**resume, "resumeToken": b2.token})
    assert (await c2.recv())["type"] == "resumed"
    assert (await b2.closed())[0] == 4001  # taken over
    await eventually(lambda: m.connections_open["v2"] == 2)

    samples, label_values, label_names = scrape(server)
    # -- connections: 2 v1 + 3 v2 opened, the taken-over one closed
    expected: dict[str, dict[str, int]] = {
        "connections_open": {"v1": 2, "v2": 2},
        "connections_opened": {"v1": 2, "v2": 3},
        "messages_received": {
            "create": 2,
            "join": 3,
            "signal": n_signals + 1,
            "leave": 1,
            "resume": 2,
            "invalid": 3,
        },
        "protocol_errors": {
            **dict.fromkeys(ERROR_CODES, 0),
            "room_not_found": 1,
            "bad_json": 1,
            "unknown_type": 2,
            "not_in_room": 1,
            "resume_failed": 1,
        },
        "resumes": {"ok": 1, "failed": 1},
    }
    assert set(expected["messages_received"]) == {*MESSAGE_TYPES, "invalid"}
    assert_counts(m, samples, expected)

    # -- rooms
    assert (m.rooms_created, m.rooms_live, m.rooms_expired) == (2, 2, 0)
    assert value(samples, "signaling_rooms_created_total") == 2
    assert value(samples, "signaling_rooms_live") == 2
    assert value(samples, "signaling_rooms_expired_total") == 0
    assert value(samples, "signaling_actor_restarts_total") == 0 == m.actor_restarts
    assert value(samples, "signaling_slow_consumer_disconnects_total") == 0 == m.slow_consumers
    # room_members: observed at 2 creates (1 member each) and 2 joins (2, then 3 members)
    assert histogram(samples, "signaling_room_members")[:2] == (4, 1 + 1 + 2 + 3)
    assert sum(m.room_members.counts) == 4 and m.room_members.sum == 7
    assert value(samples, "signaling_room_members_bucket", le="1.0") == 2
    assert value(samples, "signaling_room_members_bucket", le="2.0") == 3

    # -- relays: N signals, each to the 2 other members
    assert m.signals_delivered == 2 * n_signals
    assert value(samples, "signaling_signals_delivered_total") == 2 * n_signals
    assert histogram(samples, "signaling_relay_fanout")[:2] == (n_signals, 2 * n_signals)
    assert value(samples, "signaling_relay_fanout_bucket", le="1.0") == 0
    assert value(samples, "signaling_relay_fanout_bucket", le="2.0") == n_signals
    count, total, under_1s = histogram(samples, "signaling_relay_duration_seconds")
    assert count == n_signals == sum(m.relay_duration.counts)
    assert under_1s == n_signals and 0 < total < n_signals
    assert total == m.relay_duration.sum

    # -- room actors: every envelope that reached a mailbox was drained exactly once
    # 2 creates + 2 joins + N signals + 1 leave + 2 resumes (the missing-room join and the
    # not-in-room signal never reach a mailbox)
    count, total, _ = histogram(samples, "signaling_mailbox_depth")
    assert 0 < count <= total == 2 + 2 + n_signals + 1 + 2
    assert (count, total) == (sum(m.mailbox_depth.counts), m.mailbox_depth.sum)
    count, total, under_1s = histogram(
        samples, "signaling_journal_append_duration_seconds", backend="memory"
    )
    # one append per batch with events; the failed resume appends nothing
    assert 0 < count <= 2 + 2 + n_signals + 1 + 1 and under_1s == count
    assert count == sum(m.journal_append.counts) and total == m.journal_append.sum

    # -- bounded labels: no room or peer id anywhere in the exposition
    ids = {room1, room2, *(c.my_id for c in (a1, b1, a2, b2, c2) if c.my_id)}
    assert len(ids) == 6
    assert not ids & label_values
    assert label_names <= CLOSED_LABELS

    for client in (a1, b1, a2, c2):
        await client.close()
    await eventually(lambda: sum(m.connections_open.values()) == 0)
    samples, _, _ = scrape(server)
    for protocol in ("v1", "v2"):
        assert value(samples, "signaling_connections_open", protocol=protocol) == 0
        assert m.connections_open[protocol] == 0
    assert value(samples, "signaling_connections_opened_total", protocol="v2") == 3
    assert value(samples, "signaling_rooms_live") == 2  # rooms outlive their members


async def test_expiry_moves_rooms_live_to_rooms_expired(start_server: StartServer) -> None:
    server = await start_server(room_timeout_ms=150)
    m = server.hub.metrics
    a, b = await Client.open(server), await Client.open(server, v2=True)
    await a.create()
    await b.create()
    assert m.rooms_live == 2
    for client in (a, b):
        assert (await client.closed())[0] == 4000  # closed by the server when its room expires
    await eventually(lambda: m.rooms_expired == 2)
    samples, _, _ = scrape(server)
    assert value(samples, "signaling_rooms_live") == 0 == m.rooms_live
    assert value(samples, "signaling_rooms_expired_total") == 2
    assert value(samples, "signaling_rooms_created_total") == 2
