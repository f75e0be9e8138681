"""The seed README's own Node test script, run unchanged against the new server.

`test-two-clients.js` is the README's code block byte-for-byte, so it hardcodes
`ws://localhost:8080` and never exits by itself: we start the server on port 8080 bound
to all interfaces (whether Node resolves `localhost` to ::1 or 127.0.0.1 it must connect),
let the script run until A has printed the relayed signal, then stop the server: the
script prints `A close` and `B close` once the server's close frames arrive, which come
after everything the server sent before. Then we kill the script and check its output:
events in order, no waiting for a quiet period.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerProcess, spawn_server

COMPAT_DIR = Path(__file__).resolve().parent
SCRIPT = COMPAT_DIR / "test-two-clients.js"
SEED_PORT = 8080  # hardcoded in the seed's script
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
RELAYED = 'A recv: {"type":"signal"'  # the last line the script prints on its own
EOF = "\x00EOF"  # the collector's end-of-output marker
EXPECTED_PAYLOAD = json.dumps(
    {"type": "dummy", "text": "hello from B"}, separators=(",", ":")
)  # what JSON.stringify({ type: 'dummy', text: 'hello from B' }) produces


def _require_node() -> str:
    node = shutil.which("node")
    problem = None
    if node is None:
        problem = "`node` is not on PATH"
    elif not (COMPAT_DIR / "node_modules" / "ws" / "package.json").is_file():
        problem = "npm `ws` not installed: run `make compat-deps` (npm ci in tests/compat)"
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{problem} (CI is set, so this is not skipped)")
        pytest.skip(problem)
    assert node is not None
    return node


def _port_in_use(port: int) -> str | None:
    """Describe who already accepts connections on `port` on loopback, if anybody."""
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((addr, port)) == 0:
                return f"[{addr}]:{port}"
    return None


class _LineCollector:
    """Read a child's stdout on a thread; wait for lines without blocking the reader."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append(EOF)
            self._changed.notify_all()

    def snapshot(self) -> list[str]:
        with self._changed:
            return [line for line in self.lines if line is not EOF]

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 30.0) -> bool:
        """Until ``done(lines)`` holds (True) or the script exits or the guard ends (False)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: done(self.lines) or EOF in self.lines, timeout
            ) and done(self.lines)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)


def _recv_lines(lines: list[str], who: str) -> list[dict[str, Any]]:
    prefix = f"{who} recv: "
    out = []
    for line in lines:
        if line.startswith(prefix):
            msg = json.loads(line[len(prefix) :])
            assert isinstance(msg, dict), line
            out.append(msg)
    return out


def _run_seed_script(node: str, server: ServerProcess) -> tuple[list[str], list[str]]:
    """(lines printed while the server ran, lines printed after it was stopped)."""
    proc = subprocess.Popen(
        [node, SCRIPT.name],
        cwd=COMPAT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    collector = _LineCollector(proc)
    try:
        collector.wait_for(lambda lines: any(x.startswith(RELAYED) for x in lines))
        during = collector.snapshot()
        server.terminate()  # closes both clients (1001) after everything sent before
        collector.wait_for(lambda lines: {"A close", "B close"} <= set(lines))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        collector.join(timeout=5)
    return during, collector.snapshot()[len(during) :]


def test_seed_two_clients_script_runs_unchanged() -> None:
    node = _require_node()
    busy = _port_in_use(SEED_PORT)
    if busy is not None:
        pytest.fail(
            f"port {SEED_PORT} is already in use ({busy}); the seed's test-two-clients.js "
            f"hardcodes ws://localhost:{SEED_PORT}, so free that port and rerun"
        )

    # HOST empty = the server default: all interfaces, dual-stack, so `localhost`
    # works whether Node picks ::1 or 127.0.0.1.
    try:
        server_cm = spawn_server(env={"HOST": ""}, port=SEED_PORT)
        server = server_cm.__enter__()
    except (RuntimeError, TimeoutError) as err:
        pytest.fail(
            f"server did not start on port {SEED_PORT} with HOST='' (all interfaces): {err}"
        )
    try:
        lines, after_stop = _run_seed_script(node, server)
        server_log = server.log()
    finally:
        server_cm.__exit__(None, None, None)

    output = "\n".join(lines) + "\n--- server stopped ---\n" + "\n".join(after_stop)
    context = f"node output:\n{output}\n\nserver log:\n{server_log}"

    assert "A open" in lines, context
    assert "B open" in lines, context
    # The server closed nobody while it ran; stopping it closed both, and nothing else
    # (no stray message) came before the close frames.
    assert not any(line in ("A close", "B close") for line in lines), context
    assert sorted(after_stop) == ["A close", "B close"], context

    created = [line for line in lines if line.startswith("Room created: ")]
    assert len(created) == 1, context
    room_id = created[0].removeprefix("Room created: ")
    assert re.fullmatch(r"\d{4}", room_id), context

    a_msgs = _recv_lines(lines, "A")
    b_msgs = _recv_lines(lines, "B")

    # A: room_created, then B's signal -- nothing else (a v1 client sees no v2 messages).
    assert len(a_msgs) == 2, context
    room_created, signal = a_msgs
    assert set(room_created) == {"type", "roomId", "myId"}, context
    assert room_created["type"] == "room_created", context
    assert room_created["roomId"] == room_id, context
    assert UUID_RE.match(room_created["myId"]), context

    # B: room_joined for the same room, and never its own signal.
    assert len(b_msgs) == 1, context
    (room_joined,) = b_msgs
    assert room_joined == {
        "type": "room_joined",
        "roomId": room_id,
        "myId": room_joined["myId"],
    }, context
    assert UUID_RE.match(room_joined["myId"]), context
    assert room_joined["myId"] != room_created["myId"], context

    expected_signal = {
        "type": "signal",
        "senderId": room_joined["myId"],
        "payload": EXPECTED_PAYLOAD,
    }
    assert signal == expected_signal, context
    # The payload is the very string B sent, not a re-parsed object.
    assert isinstance(signal["payload"], str), context
