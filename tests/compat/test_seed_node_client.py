"""The seed README's own Node test script, run unchanged against the new server.

`test-two-clients.js` is the README's code block byte-for-byte, so it hardcodes
`ws://localhost:8080` and never exits by itself: we start the server on port 8080 bound
to all interfaces (whether Node resolves `localhost` to ::1 or 127.0.0.1 it must connect),
let the script run until it has printed everything (at least ~2 s), kill it and check
what it printed.
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
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import spawn_server

COMPAT_DIR = Path(__file__).resolve().parent
SCRIPT = COMPAT_DIR / "test-two-clients.js"
SEED_PORT = 8080  # hardcoded in the seed's script
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
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
    """Read a child's stdout on a thread so we can poll without blocking."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        for line in self._stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

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


def _run_seed_script(node: str, min_runtime: float = 2.0, max_runtime: float = 15.0) -> list[str]:
    proc = subprocess.Popen(
        [node, SCRIPT.name],
        cwd=COMPAT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    collector = _LineCollector(proc)
    start = time.monotonic()
    try:
        while time.monotonic() - start < max_runtime:
            if proc.poll() is not None:
                break  # the script never exits on its own: something went wrong
            elapsed = time.monotonic() - start
            done = any(line.startswith('A recv: {"type":"signal"') for line in collector.snapshot())
            if done and elapsed >= min_runtime:
                time.sleep(0.3)  # anything stray that follows the signal
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        collector.join(timeout=5)
    return collector.snapshot()


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
        lines = _run_seed_script(node)
        server_log = server.log()
    finally:
        server_cm.__exit__(None, None, None)

    output = "\n".join(lines)
    context = f"node output:\n{output}\n\nserver log:\n{server_log}"

    assert "A open" in lines, context
    assert "B open" in lines, context
    assert not any(line in ("A close", "B close") for line in lines), context

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
