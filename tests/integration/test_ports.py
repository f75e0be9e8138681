"""How whoever starts the server learns its ports: ``SIGNALING_PORT_FILE`` with
``PORT=0``, and ``spawn_server`` (tests/support/server.py) which relies on it instead of
a port that was free a moment before (another process can take that one in between)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import coturn, ports, redis
from tests.support import server as support
from tests.support.http import http_get
from tests.support.server import spawn_server
from tests.support.waiting import wait_until


@pytest.fixture
def taken() -> Iterator[int]:
    """A loopback port another process holds (listening), like a parallel suite's."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


def test_the_port_file_names_the_ports_the_kernel_picked() -> None:
    with spawn_server() as server:
        assert server.port_file is not None
        ports = json.loads(server.port_file.read_text())
        assert ports == {"port": server.port, "metrics_port": server.metrics_port}
        assert server.port != 0 and server.env["PORT"] == "0"
        assert http_get(server.http + "/readyz")[0] == 200
        assert http_get(server.metrics_url)[0] == 200
        assert server.terminate() == 0
        assert not server.port_file.exists()  # removed at a clean exit


def test_spawn_server_never_uses_a_port_someone_took(
    taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port handed out as free is taken before the server binds it: the public port
    is never handed out (PORT=0), the admin port is chosen again."""
    handed: list[int] = []
    real = ports.free_port

    def racy() -> int:
        port = taken if not handed else real()  # the first one is taken meanwhile
        handed.append(port)
        return port

    monkeypatch.setattr(support, "free_port", racy)
    with spawn_server() as server:
        assert taken not in (server.port, server.metrics_port)
        assert server.metrics_port == handed[-1] and len(handed) == 2
        assert http_get(server.metrics_url)[0] == 200


def test_an_admin_port_that_is_given_and_taken_is_no_retry(taken: int) -> None:
    with (
        pytest.raises(RuntimeError, match=f"SIGNALING_METRICS_PORT_NUMBER {taken}") as info,
        spawn_server({"SIGNALING_METRICS_PORT_NUMBER": str(taken)}),
    ):
        pass
    assert not isinstance(info.value, ports.PortTaken)  # the caller's port: no retry


def test_an_unwritable_port_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "signaling"],
        env={
            **os.environ,
            "PORT": "0",
            "HOST": "127.0.0.1",
            "SIGNALING_METRICS_PORT_NUMBER": "0",
            "SIGNALING_PORT_FILE": str(tmp_path / "missing" / "ports.json"),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot write the port file: SIGNALING_PORT_FILE" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_the_file_appears_once_signals_are_handled(tmp_path: Path) -> None:
    """A reader that sees the file may stop the server at once: SIGTERM drains (exit 0)."""
    path = tmp_path / "ports.json"
    env = {**os.environ, "PORT": "0", "HOST": "127.0.0.1", "SIGNALING_METRICS_PORT_NUMBER": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "signaling"],
        env={**env, "SIGNALING_PORT_FILE": str(path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: path.exists() or proc.poll() is not None, what="the port file")
        assert json.loads(path.read_text())["metrics_port"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_redis_whose_port_was_taken_starts_on_another(
    taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed = iter([taken])
    monkeypatch.setattr(redis, "free_port", lambda: next(handed, None) or ports.free_port())
    server = redis.RedisServer()
    try:
        server.start()
        assert server.port != taken
        assert server.port in ports.listening_ports(server.proc.pid if server.proc else 0)
    finally:
        server.close()


def test_a_coturn_sharing_its_port_starts_on_another(monkeypatch: pytest.MonkeyPatch) -> None:
    """coturn binds with SO_REUSEPORT: a port someone else holds the same way is shared
    without an error, and STUN answers come from either."""
    if not coturn.available():
        pytest.skip("coturn is not installed")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        shared = other.getsockname()[1]
        handed = iter([shared])
        monkeypatch.setattr(coturn, "free_port", lambda: next(handed, None) or ports.free_port())
        with coturn.coturn("secret") as turn:
            assert turn.port != shared
            assert not ports.held_by_others(turn.port, turn.pid)
