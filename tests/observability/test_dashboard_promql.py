"""Every dashboard query, evaluated by a real Prometheus scraping the real server under load.

The server runs as `python -m signaling` (tests/support/server.py); Prometheus is the
distribution binary with a generated config scraping the admin port every second. A
background thread keeps WebSocket traffic flowing (create, join, relay, leave, bad frames)
so that rate() windows and histogram_quantile() over rate() have samples to work on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus, WebSocketException

from tests.observability.dashboard import (
    JOB_MATCHER,
    PanelQuery,
    allowed_metric,
    load_dashboard,
    panel_queries,
    selectors,
    to_promql,
    variable_query,
)
from tests.support.alerts import ALERTS_PATH, alert_rules
from tests.support.client import Client
from tests.support.http import http_get
from tests.support.prometheus import (
    JOB,
    Prometheus,
    required_binary,
    run_prometheus,
)
from tests.support.server import ServerProcess, spawn_server
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RATE_WINDOW = "1m"  # what $__rate_interval becomes; the test keeps traffic flowing inside it
MIN_SAMPLES = 6  # scrapes (1 s apart) to wait for before evaluating rate() panels
WAIT = 60.0  # bound on every wait
V2 = "signaling.v2"
EXPECT_TIMEOUT = 5.0  # for one reply from the server


# --- traffic ----------------------------------------------------------------------------------


@dataclass
class TrafficStats:
    rounds: int = 0
    signals_sent: int = 0
    failed: int = 0
    stage: str = ""
    last_failures: deque[str] = field(default_factory=lambda: deque(maxlen=3))


async def _round(url: str, n: int, stats: TrafficStats) -> None:
    """One room's life: create, two joiners (one v2), relays, errors, resumes, leave, close."""
    stats.stage = "connect"
    owner = await Client.open(url)
    guest = await Client.open(url)
    guest_v2 = await Client.open(url, True)
    # Its own address: the failed-join guard it trips refuses every join from there.
    stray = await Client.open(url, local_addr=("127.0.0.2", 0))
    clients = [owner, guest, guest_v2, stray]
    try:
        stats.stage = "create"
        await owner.send({"type": "create"})
        room_id = (await owner.expect("room_created"))["roomId"]
        stats.stage = "join"
        await guest.send({"type": "join", "roomId": room_id})
        await guest.expect("room_joined")
        await guest_v2.send({"type": "join", "roomId": room_id})
        v2_joined = await guest_v2.expect("room_joined")
        stats.stage = "signal"
        members = (owner, guest, guest_v2)
        sent = dict.fromkeys(members, 0)
        for k in range(5):
            sender = members[k % len(members)]
            payload = {"type": "candidate", "candidate": f"candidate:{n}-{k}", "sdpMid": "0"}
            await sender.send({"type": "signal", "payload": payload})
            sent[sender] += 1
            stats.signals_sent += 1
        # Everyone else receives each signal; wait for them so every relay completed.
        for receiver in members:
            for _ in range(sum(sent.values()) - sent[receiver]):
                await receiver.expect("signal")
        # Protocol errors of several codes, from a client in no room.
        stats.stage = "errors"
        await stray.send("{not json")
        await stray.expect("error")
        # Two failed joins per round against SIGNALING_FAILED_JOIN_RATE=2/s: some are
        # room_not_found, the rest rate_limited (the brute-force guard at work, for the
        # stray's address only: the other clients keep joining).
        for _ in range(2):
            await stray.send({"type": "join", "roomId": "no-such-room"})
            await stray.expect("error")
        # A page from another site: refused at the handshake (403, origin).
        stats.stage = "origin"
        try:
            await Client.open(url, origin="https://elsewhere.example")
            raise AssertionError("a foreign Origin was accepted")
        except InvalidStatus as exc:
            assert exc.response.status_code == 403
        stats.stage = "errors"
        await stray.send({"type": "signal", "payload": {}})
        await stray.expect("error")
        await stray.send({"type": "teleport"})
        await stray.expect("error")
        # v2 only: take guest_v2's session over from a new socket (resume ok), try a forged
        # token (resume failed), then leave in order.
        stats.stage = "resume"
        resumer = await Client.open(url, True)
        clients.append(resumer)
        await resumer.send(
            {
                "type": "resume",
                "roomId": room_id,
                "peerId": v2_joined["myId"],
                "resumeToken": v2_joined["resumeToken"],
                "lastSeq": guest_v2.seq,
            }
        )
        await resumer.expect("resumed")
        forger = await Client.open(url, True)
        clients.append(forger)
        await forger.send(
            {
                "type": "resume",
                "roomId": room_id,
                "peerId": v2_joined["myId"],
                "resumeToken": "forged",
                "lastSeq": 0,
            }
        )
        await forger.expect("error")
        stats.stage = "leave"
        await resumer.send({"type": "leave"})
        await resumer.expect("left")
        stats.stage = "done"
    finally:
        for c in clients:
            await c.close()


async def _drive(url: str, stop: threading.Event, stats: TrafficStats) -> None:
    deadline = time.monotonic() + 4 * WAIT
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        n += 1
        try:
            await _round(url, n, stats)
            stats.rounds += 1
        except (TimeoutError, WebSocketException, OSError, KeyError, AssertionError) as exc:
            stats.failed += 1
            stats.last_failures.append(f"round {n} at {stats.stage}: {exc!r}"[:500])
            await asyncio.sleep(0.5)  # load pacing, not a wait: no spinning against refusals
        await asyncio.sleep(0.1)  # load pacing, not a wait: a steady rate for rate() panels


@contextlib.contextmanager
def traffic(url: str) -> Iterator[TrafficStats]:
    stats = TrafficStats()
    stop = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(_drive(url, stop, stats)), name="traffic", daemon=True
    )
    thread.start()
    try:
        yield stats
    finally:
        stop.set()
        thread.join(timeout=30)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # Short room timeout so rooms also expire during the test (rooms_expired_total moves).
    # All traffic comes from 127.0.0.1: the per-address limits that would refuse a round
    # (creates, rooms held, handshakes, resumes) are raised; the failed-join guard is
    # tightened and an origin allow-list set, so the abuse-limit panels have data.
    env = {
        "ROOM_TIMEOUT_MS": "2000",
        "SIGNALING_ALLOWED_ORIGINS": "https://dashboard.example",
        "SIGNALING_FAILED_JOIN_RATE": "2/s",
        "SIGNALING_CREATE_RATE": "1000/s",
        "SIGNALING_ROOMS_PER_ADDRESS": "0",
        "SIGNALING_FAILED_RESUME_RATE": "1000/s",
        "SIGNALING_HANDSHAKE_RATE": "1000/s",
        # A 10 ms pacing window: the rounds' writing turns come closer together than that,
        # so the loop certainly waits and the headroom panel has data (100 µs by default).
        "SIGNALING_LOOP_PACING_US": "10000",
        "SIGNALING_MAX_CONNECTIONS": "1000",
    }
    with spawn_server(env) as srv:
        yield srv


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    return required_binary("prometheus", "PROMETHEUS_BIN")


@dataclass
class Scraped:
    prom: Prometheus
    stats: TrafficStats
    server: ServerProcess


@pytest.fixture(scope="module")
def scraped(
    prometheus_bin: str, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scraped]:
    """Server under traffic, Prometheus scraping it, with MIN_SAMPLES scrapes of history."""
    workdir: Path = tmp_path_factory.mktemp("prometheus")
    target = f"127.0.0.1:{server.metrics_port}"
    # The shipped alert rules, with every `for:` at 0s: an alert fires at the first
    # evaluation its condition holds instead of minutes later.
    rules = workdir / "alerts.yaml"
    rules.write_text(re.sub(r"(?m)^(\s+for:) \S+$", r"\1 0s", ALERTS_PATH.read_text()))
    with (
        traffic(server.url) as stats,
        run_prometheus(prometheus_bin, workdir, [target], rule_files=[rules]) as prom,
    ):

        def target_up() -> bool:
            targets = prom.target_health()
            return any(
                t["scrapeUrl"].startswith(f"http://{target}/") and t["health"] == "up"
                for t in targets
            )

        wait_until(
            target_up,
            what=f"target {target} up",
            timeout=WAIT,
            interval=0.25,
            ignore=(OSError, ValueError, KeyError),
            diag=lambda: f"{prom.target_health()}\n{prom.log()}\n{server.log()[-3000:]}",
        )

        def enough_history() -> bool:
            samples = prom.vector(
                f'count_over_time(signaling_signals_delivered_total{{job="{JOB}"}}[{RATE_WINDOW}])'
            )
            moving = prom.vector(
                f'increase(signaling_signals_delivered_total{{job="{JOB}"}}[{RATE_WINDOW}])'
            )
            return (
                bool(samples) and samples[0][1] >= MIN_SAMPLES and bool(moving) and moving[0][1] > 0
            )

        wait_until(
            enough_history,
            what=f"{MIN_SAMPLES} scrapes with signals flowing",
            timeout=WAIT,
            interval=0.25,
            ignore=(OSError, ValueError, KeyError),
            diag=lambda: f"traffic: {stats}\nserver log:\n{server.log()[-3000:]}",
        )
        yield Scraped(prom, stats, server)


# --- tests ------------------------------------------------------------------------------------


def _queries() -> list[PanelQuery]:
    return panel_queries(load_dashboard())


def test_server_exports_every_dashboard_metric(server: ServerProcess) -> None:
    """Straight from /metrics: each metric a panel reads exists from start-up."""
    status, body = http_get(server.metrics_url)
    assert status == 200, body[:500]
    exported = {
        sample.name for fam in text_string_to_metric_families(body) for sample in fam.samples
    }
    wanted = {s.metric for q in _queries() for s in selectors(q.expr)}
    missing = sorted(wanted - exported)
    signaling_exported = sorted(n for n in exported if n.startswith("signaling_"))
    assert not missing, f"dashboard reads {missing}; server exports {signaling_exported}"


def test_every_server_metric_is_known_to_the_dashboard_tests(server: ServerProcess) -> None:
    """A new signaling_* metric must be added to tests/observability/dashboard.py, whose
    coverage test then asks for a panel: no metric reaches /metrics unseen by operators."""
    status, body = http_get(server.metrics_url)
    assert status == 200, body[:500]
    unknown = sorted(
        sample.name
        for fam in text_string_to_metric_families(body)
        for sample in fam.samples
        if sample.name.startswith("signaling_")
        and not sample.name.endswith("_created")  # prometheus_client's counter timestamps
        and not allowed_metric(sample.name)
    )
    assert not unknown, f"exported but not in dashboard.py's lists: {unknown}"


def test_traffic_reached_the_server(scraped: Scraped) -> None:
    stats = scraped.stats
    assert stats.rounds >= 3, f"traffic: {stats}"
    assert stats.failed <= stats.rounds // 10, f"too many failed rounds: {stats}"


def test_variable_queries_find_the_job_and_instance(scraped: Scraped) -> None:
    """label_values(metric, label) is answered by /api/v1/label/<label>/values?match[]=..."""
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    expected = {"job": JOB, "instance": f"127.0.0.1:{scraped.server.metrics_port}"}
    for name, want in expected.items():
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable_query(variables[name]))
        assert match, name
        selector = to_promql(match.group(1), job=JOB)
        body = scraped.prom.api(f"label/{match.group(2)}/values", {"match[]": selector})
        assert body.get("status") == "success", body
        assert want in body["data"], f"{name}: {body['data']}"


@pytest.mark.parametrize("instance_filter", [".*", "exact"])
def test_every_panel_query_returns_data(scraped: Scraped, instance_filter: str) -> None:
    """Each panel expression parses and returns >= 1 series, with All and with one instance."""
    # Grafana formats one selected value as an escaped regex inside a PromQL string literal.
    exact = re.escape(f"127.0.0.1:{scraped.server.metrics_port}").replace("\\", "\\\\")
    instance = ".*" if instance_filter == ".*" else exact
    failures: list[str] = []
    queries = _queries()
    assert len(queries) >= 20
    for q in queries:
        assert JOB_MATCHER in q.expr
        promql = to_promql(q.expr, rate_interval=RATE_WINDOW, job=JOB, instance=instance)
        body = scraped.prom.query(promql)
        if body.get("status") != "success":
            failures.append(f"{q.name}: {body.get('errorType')}: {body.get('error')}\n  {promql}")
        elif not body["data"]["result"]:
            failures.append(f"{q.name}: no series\n  {promql}")
    assert not failures, "panel queries failing:\n" + "\n".join(failures)


def _value(prom: Prometheus, expr: str) -> float:
    series = prom.vector(expr)
    assert len(series) == 1, f"{expr}: {series}"
    return series[0][1]


def _panel_expr(title: str, legend_index: int = 0) -> str:
    matches = [q for q in _queries() if q.panel_title == title]
    assert matches, f"no panel {title!r}"
    return to_promql(matches[legend_index].expr, rate_interval=RATE_WINDOW, job=JOB)


def test_key_panels_show_the_traffic(scraped: Scraped) -> None:
    """The at-a-glance numbers reflect what the traffic did, not just "some series"."""
    prom = scraped.prom
    assert _value(prom, _panel_expr("Signals delivered / s")) > 0
    p99 = _value(prom, _panel_expr("Relay latency p99"))
    assert math.isfinite(p99) and 0 < p99 <= 1.0, p99
    assert _value(prom, _panel_expr("Instances")) == 1
    assert _value(prom, _panel_expr("Protocol errors / s")) > 0
    by_code = dict(
        (labels.get("code", ""), v)
        for labels, v in prom.vector(_panel_expr("Protocol errors / s by code"))
    )
    assert by_code.get("bad_json", 0) > 0, by_code
    assert by_code.get("room_not_found", 0) > 0, by_code
    by_type = dict(
        (labels.get("type", ""), v)
        for labels, v in prom.vector(_panel_expr("Messages received / s by type"))
    )
    assert by_type.get("signal", 0) > 0 and by_type.get("create", 0) > 0, by_type
    by_protocol = dict(
        (labels.get("protocol", ""), v)
        for labels, v in prom.vector(_panel_expr("Connections opened / s by protocol"))
    )
    assert by_protocol.get("v1", 0) > 0 and by_protocol.get("v2", 0) > 0, by_protocol
    assert _value(prom, _panel_expr("Rooms created / expired per s", 0)) > 0
    # ROOM_TIMEOUT_MS=2000: each round's room expires two seconds after its clients leave.
    assert _value(prom, _panel_expr("Rooms created / expired per s", 1)) > 0
    by_result = dict(
        (labels.get("result", ""), v)
        for labels, v in prom.vector(_panel_expr("Resumes / s by result"))
    )
    assert by_result.get("ok", 0) > 0 and by_result.get("failed", 0) > 0, by_result
    fanout_mean = _value(prom, _panel_expr("Fan-out (recipients per signal)", 3))
    assert 1.5 <= fanout_mean <= 2.5, fanout_mean  # 3 members: 2 recipients per signal
    rss = _value(prom, _panel_expr("Resident memory per instance"))
    assert rss > 1 << 20, rss
    limited = dict(
        (labels.get("kind", ""), v)
        for labels, v in prom.vector(_panel_expr("Rate-limited requests / s by limit"))
    )
    assert limited.get("failed_joins", 0) > 0, limited
    assert limited.get("messages", 1) == 0, limited  # nothing else was limited
    rejected = dict(
        (labels.get("reason", ""), v)
        for labels, v in prom.vector(_panel_expr("Connections rejected / s by reason"))
    )
    assert rejected.get("origin", 0) > 0, rejected


def test_alerting_panels_show_the_traffic(scraped: Scraped) -> None:
    """Loop headroom moves under traffic; ready and the cap share read what the server is."""
    prom = scraped.prom
    headroom = _value(prom, _panel_expr("Loop headroom (spare share of a core)", 0))
    assert 0 < headroom <= 1.0, headroom
    assert _value(prom, _panel_expr("Loop headroom (spare share of a core)", 1)) > 0
    assert _value(prom, _panel_expr("Instances", 1)) == 1  # ready
    # SIGNALING_MAX_CONNECTIONS=1000 and a handful of clients open at a time.
    used = _value(prom, _panel_expr("Connections used of the server cap"))
    assert 0 <= used < 0.05, used
    assert _value(prom, "max(signaling_connections_limit)") == 1000


# --- alert rules ------------------------------------------------------------------------------

# The traffic answers about a third of its messages with errors (bad JSON, unknown types,
# failed joins, forged resumes) at tens of messages a second: over the 10% threshold.
FIRING = {"SignalingProtocolErrorsHigh"}
# Nothing the test does comes near these.
QUIET = {
    "SignalingInstanceDown",
    "SignalingInstanceNotReady",
    "SignalingJournalFailing",
    "SignalingActorRestarts",
    "SignalingSlowConsumerDisconnects",
    "SignalingConnectionsNearLimit",
    "SignalingLoopSaturated",
}


def _rules(prom: Prometheus) -> dict[str, dict[str, Any]]:
    body = prom.api("rules", {"type": "alert"})
    assert body.get("status") == "success", body
    return {rule["name"]: rule for group in body["data"]["groups"] for rule in group["rules"]}


def test_alert_rules_evaluate_against_the_real_server(scraped: Scraped) -> None:
    """Prometheus loads every shipped rule, evaluates it against the server's real series
    without error, fires the one whose condition the traffic creates and no other."""
    prom = scraped.prom
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= FIRING | QUIET

    def evaluated() -> bool:
        rules = _rules(prom)
        return set(rules) == names and all(
            not r["lastEvaluation"].startswith("0001-") for r in rules.values()
        )

    wait_until(
        evaluated,
        what="every rule evaluated",
        timeout=WAIT,
        interval=0.25,
        diag=lambda: f"{_rules(prom)}\n{prom.log()}",
    )

    def fired() -> bool:
        return all(_rules(prom)[name]["state"] == "firing" for name in FIRING)

    wait_until(
        fired,
        what=f"{sorted(FIRING)} firing",
        timeout=WAIT,
        interval=0.25,
        diag=lambda: f"{_rules(prom)}\ntraffic: {scraped.stats}",
    )
    rules = _rules(prom)
    unhealthy = {n: r.get("lastError") for n, r in rules.items() if r["health"] != "ok"}
    assert not unhealthy, unhealthy
    for name in QUIET:
        assert rules[name]["state"] == "inactive", (name, rules[name]["alerts"])
    (alert,) = rules["SignalingProtocolErrorsHigh"]["alerts"]
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["instance"] == f"127.0.0.1:{scraped.server.metrics_port}"
    assert alert["annotations"]["summary"].endswith("are answered with an error")
