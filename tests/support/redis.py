"""A real ``redis-server`` on a loopback port, for the Redis journal's tests.

``RedisServer`` runs Debian's ``redis-server`` (``.ci/run`` installs it) without
persistence, so ``kill()`` then ``start()`` is a Redis that lost everything (the case the
journal's epochs exist for), and ``stop()``/``start()`` on the same port is an outage the
server must ride out. Without the binary the tests skip, except under CI (``CI`` set) or
with ``SIGNALING_REQUIRE_REDIS=1``, where a missing Redis is a failure: the suite must
never pass by not running.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.ports import ATTEMPTS, PortTaken, free_port, listening_ports
from tests.support.waiting import wait_until


def redis_binary() -> str:
    """The ``redis-server`` path, or skip (fail under CI) when it is not installed."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI") or os.environ.get("SIGNALING_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _answers_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


class RedisServer:
    """One ``redis-server`` process; restartable on the same port."""

    def __init__(self, port: int | None = None) -> None:
        self.binary = redis_binary()
        self.port = port or free_port()
        self._movable = port is None  # a port chosen here, until it first served
        self.dir = Path(tempfile.mkdtemp(prefix="signaling-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def log(self) -> str:
        path = self.dir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Start (again) and wait until it answers PING; the first time, on another port
        if the one chosen was taken in between."""
        for attempt in range(ATTEMPTS):
            try:
                self._start()
            except PortTaken:
                if not self._movable or attempt == ATTEMPTS - 1:
                    raise
                self.port = free_port()
                continue
            self._movable = False
            return

    def _start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        logged = len(self.log())
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
                "--protected-mode",
                "yes",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                log = self.log()
                if "Address already in use" in log[logged:]:  # this start's lines
                    raise PortTaken(log)
                raise RuntimeError(f"redis-server exited with {proc.returncode}:\n{log}")
            # Its own listener, not another suite's Redis on a port taken in between.
            return self.port in listening_ports(proc.pid) and _answers_ping(self.port)

        wait_until(up, what="redis-server PING", ignore=(OSError,), diag=self.log)

    def kill(self) -> None:
        """SIGKILL: gone at once, every connection reset, its data lost."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def flush(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as s:
            s.sendall(b"FLUSHALL\r\n")
            assert s.recv(16).startswith(b"+OK")

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.close()
