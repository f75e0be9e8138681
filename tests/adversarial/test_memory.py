"""Memory per connection is bounded by the configuration, whatever bytes arrive.

A real server process (``python -m signaling``, abuse rate limits off so that only the
wire bounds act) faces one connection per trick from issue 7. Each is closed (1009, or
dropped as a slow consumer when it never reads) and the server's peak resident memory,
read from outside in ``/proc/PID/status`` (VmHWM), grows by less than a few MiB over
a warmed-up baseline. README "Errors and limits" states the bound these tests hold.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from signaling.telemetry.logs import FAULT_INTERVAL
from tests.adversarial.wsframes import CONT, HANDSHAKE, PING, TEXT, encode, text
from tests.support.server import ServerProcess, spawn_server

MIB = 1 << 20
BUDGET = 4 * MIB  # "a few MiB", for every trick together, over the warmed-up peak
GUARD_S = 20.0  # failure guard on one socket operation

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc"
)


PAGE = os.sysconf("SC_PAGE_SIZE")


def rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class PeakRss:
    """The server's peak resident memory while a block runs: the kernel's high-water
    mark (updated lazily, when memory is unmapped) and samples of the current RSS taken
    by a thread every half millisecond (memory returned with madvise escapes the mark)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.0005)  # a sampling period, not a wait for anything

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, hwm(self.pid), rss(self.pid))


class Wire:
    """A blocking raw WebSocket client: hand-made frames out, server frames in."""

    def __init__(self, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(GUARD_S)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""

    def upgrade(self) -> Wire:
        self.sock.sendall(HANDSHAKE)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return self

    def frame(self) -> tuple[int, bytes] | None:
        """The next server frame (opcode, payload); None at EOF."""
        while True:
            buf = self.buf
            if len(buf) >= 2:
                n, head = buf[1] & 0x7F, 2
                if n == 126:
                    n, head = (int.from_bytes(buf[2:4], "big"), 4) if len(buf) >= 4 else (-1, 0)
                elif n == 127:
                    n, head = (int.from_bytes(buf[2:10], "big"), 10) if len(buf) >= 10 else (-1, 0)
                if n >= 0 and len(buf) >= head + n:
                    self.buf = buf[head + n :]
                    return buf[0] & 0x0F, buf[head : head + n]
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def close_code(self) -> int | None:
        """Read until the server's close frame; its code (None if the TCP connection
        ended without one)."""
        try:
            while (got := self.frame()) is not None:
                if got[0] == 8:
                    return int.from_bytes(got[1][:2], "big")
        except ConnectionResetError:
            pass
        return None

    def flood(self, chunk: bytes, limit: int) -> int:
        """Send ``chunk`` again and again, never reading, until the server drops the
        connection; returns the bytes sent (``limit`` is a failure guard)."""
        sent = 0
        try:
            while sent < limit:
                self.sock.sendall(chunk)
                sent += len(chunk)
        except (ConnectionResetError, BrokenPipeError):
            return sent
        raise AssertionError(f"still connected after {sent} bytes")

    def close(self) -> None:
        self.sock.close()


def message(obj: object) -> bytes:
    return text(json.dumps(obj))


@pytest.fixture(scope="module")
def proc() -> Iterator[ServerProcess]:
    env = {
        "SIGNALING_MESSAGE_RATE": "0",
        "SIGNALING_BYTE_RATE": "0",
        "SIGNALING_CREATE_RATE": "0",
        "SIGNALING_HANDSHAKE_RATE": "0",
        "SIGNALING_CONNECTIONS_PER_ADDRESS": "0",
        "SIGNALING_ROOMS_PER_ADDRESS": "0",
        "SIGNALING_MAX_MESSAGE_BYTES": str(64 * 1024),
        "SIGNALING_SEND_BUFFER_BYTES": str(1 * MIB),
    }
    with spawn_server(env) as server:
        yield server


def warm_up(port: int) -> None:
    """Everything a legitimate client does, at the largest sizes, a few times over."""
    for _ in range(3):
        a, b = Wire(port).upgrade(), Wire(port).upgrade()
        a.sock.sendall(message({"type": "create"}))
        room = json.loads(a.frame()[1])["roomId"]  # type: ignore[index]
        b.sock.sendall(message({"type": "join", "roomId": room}))
        assert json.loads(b.frame()[1])["type"] == "room_joined"  # type: ignore[index]
        big = {"type": "signal", "payload": "x" * (64 * 1024 - 100)}
        for _ in range(20):
            b.sock.sendall(message(big))
        for _ in range(20):
            got = a.frame()
            assert got is not None and got[0] == 1
        a.close()
        b.close()


TRICKS: dict[str, Callable[[int], None]] = {}


def trick(fn: Callable[[int], None]) -> Callable[[int], None]:
    TRICKS[fn.__name__] = fn
    return fn


@trick
def endless_empty_continuations(port: int) -> None:
    w = Wire(port).upgrade()
    w.sock.sendall(encode(TEXT, b"[", fin=False) + encode(CONT, b"", fin=False) * 2000)
    assert w.close_code() == 1009
    w.close()


@trick
def one_byte_fragments(port: int) -> None:
    w = Wire(port).upgrade()
    w.sock.sendall(encode(TEXT, b"[", fin=False) + encode(CONT, b"1", fin=False) * (64 * 1024 // 8))
    assert w.close_code() == 1009
    w.close()


@trick
def pings_never_read(port: int) -> None:
    w = Wire(port, rcvbuf=4096).upgrade()
    sent = w.flood(encode(PING, b"p" * 125) * 512, limit=400 * MIB)
    assert sent < 400 * MIB
    w.close()


@trick
def distinct_error_texts(port: int) -> None:
    w = Wire(port).upgrade()
    for n in range(0, 5000, 100):
        w.sock.sendall(
            b"".join(message({"type": f"t{m}-{os.urandom(8).hex()}"}) for m in range(n, n + 100))
        )
        for _ in range(100):
            got = w.frame()
            assert got is not None and b"unknown_type" in got[1]
    w.close()


@trick
def deep_json(port: int) -> None:
    w = Wire(port).upgrade()
    deep = '{"type":"signal","payload":' + "[" * 30000 + "]" * 30000 + "}"
    for _ in range(40):
        w.sock.sendall(text(deep))
    for _ in range(40):
        got = w.frame()
        assert got is not None and b"nested too deeply" in got[1]
    w.close()


@trick
def frame_length_two_to_the_63(port: int) -> None:
    w = Wire(port).upgrade()
    w.sock.sendall(b"\x81\xff" + (1 << 63).to_bytes(8, "big") + b"mask")
    assert w.close_code() == 1009
    w.close()


@trick
def oversized_messages(port: int) -> None:
    w = Wire(port).upgrade()
    w.sock.sendall(encode(TEXT, b"x" * (64 * 1024 + 1)))
    assert w.close_code() == 1009
    w.close()


@trick
def endless_request_head(port: int) -> None:
    w = Wire(port)
    w.sock.sendall(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n" * 0)
    w.sock.sendall(b"a" * (64 * 1024))
    reply = w.sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 431"), reply
    w.close()


@trick
def pipelined_probes_never_read(port: int) -> None:
    w = Wire(port, rcvbuf=4096)
    sent = w.flood(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 1000, limit=400 * MIB)
    assert sent < 400 * MIB
    w.close()


def test_every_trick_is_closed_and_the_server_stays_within_a_few_mib(
    proc: ServerProcess,
) -> None:
    started = time.monotonic()
    pid = proc.proc.pid
    with PeakRss(pid) as warm:  # the peak of legitimate traffic at the largest sizes
        warm_up(proc.port)
    baseline = warm.peak
    growth = {}
    for name, fn in TRICKS.items():
        with PeakRss(pid) as peak:
            for _ in range(3):
                fn(proc.port)
        growth[name] = peak.peak - baseline
    report = {k: f"{v / MIB:.2f} MiB" for k, v in growth.items()}
    print(f"baseline peak {baseline / MIB:.1f} MiB; growth per trick: {report}")
    assert max(growth.values()) < BUDGET, report

    # Thousands of client faults, and the log holds no error, no traceback, and per cause
    # one line per FAULT_INTERVAL (with its count), not one per fault.
    log = proc.log()
    assert "Traceback" not in log and " ERROR " not in log, log[-3000:]
    causes = Counter(re.findall(r" cause=(\S+)", log))
    assert {"close_1009", "slow_consumer", "http_431"} <= set(causes), log[-3000:]
    allowed = 1 + int((time.monotonic() - started) // FAULT_INTERVAL)
    assert max(causes.values()) <= allowed, causes
