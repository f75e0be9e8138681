"""Soak: the operators' load tool against the real server, bounded in count and time.

``signaling-loadtest`` runs as its own process against ``python -m signaling`` on
loopback, each with a fixed number of signals per peer, so the verdict is exact: every
signal must reach every other member of its room exactly once. A deliberately faulty
relay proves the verdict can say no.
"""

from __future__ import annotations

import asyncio
import json
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from websockets.asyncio.server import ServerConnection, serve

from tests.support.http import http_get, metric_value
from tests.support.server import REPO_ROOT, spawn_server
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def loadtest(url: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the CLI; return (exit status, JSON report, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "signaling.loadtest", url, "--json", "-", "-q", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    body = proc.stdout[proc.stdout.index("{") :] if "{" in proc.stdout else "{}"
    return proc.returncode, json.loads(body), proc.stderr


@pytest.mark.parametrize(
    ("protocol", "peers", "load"),
    [
        ("1", "2", ("--window", "8")),
        ("2", "4", ("--window", "4")),
        ("1", "3", ("--rate", "6000")),
    ],
    ids=["v1-pairs-closed-loop", "v2-rooms-of-4-closed-loop", "v1-rooms-of-3-fixed-rate"],
)
def test_every_signal_reaches_every_peer_exactly_once(
    protocol: str, peers: str, load: tuple[str, ...]
) -> None:
    per_peer, rooms = 400, 20
    with spawn_server() as server:
        status, report, err = loadtest(
            server.url,
            "--rooms", str(rooms), "--peers", peers, "--protocol", protocol, *load,
            "--max-per-peer", str(per_peer), "--duration", "60", "--warmup", "0",
            "--drain", "30", "--source-cidr", "127.4.0.0/24",
        )  # fmt: skip
    assert status == 0, (report, err)
    fanout = int(peers) - 1
    expected = rooms * int(peers) * per_peer * fanout
    assert report["sent"] == rooms * int(peers) * per_peer
    assert report["delivered_total"] == report["expected_total"] == expected
    assert report["exactly_once"] and report["missing"] == 0
    assert report["duplicated_or_reordered"] == 0 and report["errors"] == {}
    assert report["latency_samples"] > 0


class FaultyRelay:
    """A seed-protocol relay that, on purpose, drops or repeats every ``every``-th signal."""

    def __init__(self, fault: str, every: int = 50) -> None:
        self.fault, self.every = fault, every
        self.members: dict[str, list[ServerConnection]] = {}
        self.count = 0

    async def handle(self, ws: ServerConnection) -> None:
        room = ""
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "create":
                room = str(1000 + len(self.members))
                self.members[room] = [ws]
                await ws.send(json.dumps({"type": "room_created", "roomId": room, "myId": room}))
            elif msg["type"] == "join":
                room = msg["roomId"]
                self.members[room].append(ws)
                await ws.send(json.dumps({"type": "room_joined", "roomId": room, "myId": "x"}))
            elif msg["type"] == "signal":
                self.count += 1
                frame = json.dumps({"type": "signal", "senderId": "x", "payload": msg["payload"]})
                copies = 1
                if self.count % self.every == 0:
                    copies = 0 if self.fault == "drop" else 2
                for other in self.members[room]:
                    if other is not ws:
                        for _ in range(copies):
                            await other.send(frame)


@pytest.fixture
async def faulty(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, str]]:
    """(the fault, the faulty relay's URL)"""
    relay = FaultyRelay(request.param)
    async with serve(relay.handle, "127.0.0.1", 0) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        yield relay.fault, f"ws://127.0.0.1:{port}/"


@pytest.mark.parametrize("faulty", ["drop", "duplicate"], indirect=True)
async def test_the_verdict_catches_a_relay_that_drops_or_repeats(
    faulty: tuple[str, str],
) -> None:
    fault, url = faulty
    status, report, err = await asyncio.to_thread(
        # Open loop: a closed loop's window would stall on the lost signals until the
        # duration's bound (30 s of a CI run); at a fixed rate the count bounds the run.
        loadtest, url, "--rooms", "4", "--max-per-peer", "100", "--duration", "30",
        "--warmup", "0", "--drain", "1", "--rate", "2000",
    )  # fmt: skip
    assert status == 1, (report, err)
    assert not report["exactly_once"]
    if fault == "drop":
        assert report["missing"] > 0 and report["duplicated_or_reordered"] == 0, report
    else:
        assert report["duplicated_or_reordered"] > 0 and report["missing"] == 0, report


def test_a_deployment_that_cannot_be_reached_is_a_setup_error() -> None:
    with spawn_server() as server:
        url = server.url
    status, report, err = loadtest(url, "--rooms", "1", "--connect-timeout", "5")
    assert status == 2 and report == {}
    assert "connections failed" in err


def test_signals_refused_by_the_message_limit_free_their_window_slot() -> None:
    """One closed-loop pair pushes far past a per-connection message limit. Refused
    signals are not relayed: the tool must not wait for them (it stalled with its whole
    window refused, measuring 0 deliveries); it counts them and fails the run."""
    per_peer = 200
    # Strikes off: how many refusals the pair collects before a 1008 is not the subject.
    env = {"SIGNALING_MESSAGE_RATE": "100/s", "SIGNALING_RATE_LIMIT_STRIKES": "0"}
    with spawn_server(env) as server:
        status, report, err = loadtest(
            server.url,
            "--rooms", "1", "--peers", "2", "--window", "16",
            "--max-per-peer", str(per_peer), "--duration", "60", "--warmup", "0",
            "--drain", "30",
        )  # fmt: skip
    assert status == 1, (report, err)
    assert report["rejected"] > 0 and report["missing"] == 0, report
    assert report["sent"] == 2 * per_peer, report
    assert (
        report["delivered_total"] == report["expected_total"] == report["sent"] - report["rejected"]
    ), report
    assert any("rate_limited" in error for error in report["errors"]), report


def test_idle_connections_are_held_and_a_connection_the_server_closes_fails_the_run() -> None:
    """``--idle`` sockets beside the relaying rooms, kept open by ``--hold``: idle ones in
    rooms stay, roomless ones meet the server's roomless timeout during the hold; the
    tool counts what it still holds and the run fails naming the server's close."""
    env = {"SIGNALING_ROOMLESS_TIMEOUT_S": "1"}
    relaying, in_rooms, roomless = 2 * 2, 6, 5
    with spawn_server(env) as server:
        cmd = [sys.executable, "-m", "signaling.loadtest", server.url, "--json", "-", "-q"]
        args = ["--rooms", "2", "--max-per-peer", "50", "--warmup", "0", "--hold", "90"]
        in_rooms_args = ["--idle", str(in_rooms), "--idle-room-size", "2"]
        held_ok = subprocess.Popen(
            [*cmd, *args, *in_rooms_args, "--source-cidr", "127.4.2.0/24"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        dropped = subprocess.Popen(
            [*cmd, *args, "--idle", str(roomless), "--source-cidr", "127.4.3.0/24"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for proc in (held_ok, dropped):
                assert proc.stderr is not None
                assert "holding" in proc.stderr.readline()  # after the verdict, all held
            # The roomless ones time out (the server's sweep); everything else stays.
            open_now = relaying * 2 + in_rooms
            wait_until(
                lambda: (
                    metric_value(
                        http_get(server.metrics_url)[1], "signaling_connections_open", protocol="v1"
                    )
                    == open_now
                ),
                what=f"{open_now} open connections",
                timeout=30,
            )
        finally:
            for proc in (held_ok, dropped):
                proc.send_signal(signal.SIGTERM)
        reports = []
        for proc in (held_ok, dropped):
            out, err = proc.communicate(timeout=30)
            reports.append((proc.returncode, json.loads(out[out.index("{") :]), err))
    status, report, err = reports[0]
    assert status == 0, (report, err)
    assert report["connections"] == report["held"] == relaying + in_rooms, report
    assert report["idle"] == in_rooms and report["exactly_once"], report
    status, report, err = reports[1]
    assert status == 1, (report, err)
    assert report["connections"] == relaying + roomless, report
    assert report["held"] == relaying, report
    assert report["exactly_once"], report  # the relaying rooms were not disturbed
    assert report["errors"] == {"closed by server (1008)": roomless}, report


def test_wss_with_a_private_ca(tmp_path: Path) -> None:
    """``wss://`` end to end: the server's TLS, the tool verifying it with ``--cafile``."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    ca.cert_pem.write_to_path(str(ca_file))
    env = {"SIGNALING_TLS_CERT_FILE": str(cert_file), "SIGNALING_TLS_KEY_FILE": str(key_file)}
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with spawn_server(env, tls=client_ctx) as server:
        url = f"wss://localhost:{server.port}/"
        status, report, err = loadtest(
            url, "--rooms", "4", "--protocol", "2", "--max-per-peer", "100",
            "--duration", "60", "--warmup", "0", "--cafile", str(ca_file),
            "--source-cidr", "127.4.1.0/24",
        )  # fmt: skip
        refused, _, err_refused = loadtest(url, "--rooms", "1", "--warmup", "0")
    assert status == 0, (report, err)
    assert report["exactly_once"] and report["delivered_total"] == 4 * 2 * 100
    assert refused == 2 and "CERTIFICATE_VERIFY_FAILED" in err_refused  # not trusted


@pytest.mark.parametrize("pacing_us", [0, 2000])
def test_loop_pacing_waits_only_when_on_and_loses_nothing(pacing_us: int) -> None:
    """Under steady traffic a paced loop waits between writing turns (the counters say how
    often and how long) and still delivers every signal exactly once, in order; with pacing
    off (0) it never waits. 2 ms makes the difference certain on any machine: the tool's
    turns come far closer together than that."""
    per_peer, rooms = 300, 10
    with spawn_server({"SIGNALING_LOOP_PACING_US": str(pacing_us)}) as server:
        status, report, err = loadtest(
            server.url,
            "--rooms", str(rooms), "--peers", "2", "--window", "16",
            "--max-per-peer", str(per_peer), "--duration", "60", "--warmup", "0",
            "--drain", "30", "--source-cidr", "127.4.1.0/24",
        )  # fmt: skip
        _, text = http_get(server.metrics_url, timeout=10.0)
    assert status == 0, (report, err)
    assert report["delivered_total"] == report["expected_total"] == rooms * 2 * per_peer
    assert report["exactly_once"] and report["duplicated_or_reordered"] == 0
    waits = metric_value(text, "signaling_loop_pacing_waits_total")
    waited = metric_value(text, "signaling_loop_pacing_wait_seconds_total")
    assert waits is not None and waited is not None, text
    if pacing_us:
        assert waits > 0 and waited > 0.0
        # Each wait is the rest of one window (plus the kernel's timer slack), never more.
        assert waited / waits < 2 * pacing_us / 1e6 + 0.05
    else:
        assert waits == 0 and waited == 0.0
