"""Graceful shutdown: SIGTERM/SIGINT drain with 1001, readiness flips, the port closes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from tests.integration.conftest import Client, StartServer
from tests.integration.rawclient import RawClient
from tests.support.server import ServerProcess, http_get, spawn_server

V2 = [Subprotocol("signaling.v2")]


async def _open(port: int, v2: bool = False) -> Client:
    ws = await connect(f"ws://127.0.0.1:{port}/", subprotocols=V2 if v2 else None, open_timeout=5)
    return Client(ws)


async def _close_code(client: Client, timeout: float = 5.0) -> int | None:
    await asyncio.wait_for(client.ws.wait_closed(), timeout)
    return client.ws.close_code


async def _wait_exit(proc: ServerProcess, timeout: float) -> tuple[int, float]:
    """Exit status and seconds until the process exited."""
    started = time.monotonic()
    try:
        status = await asyncio.to_thread(proc.proc.wait, timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running {timeout}s after the signal:\n{proc.log()}")
    return status, time.monotonic() - started


async def _signal_drains(proc: ServerProcess, sig: signal.Signals) -> None:
    a, b, idle = await _open(proc.port), await _open(proc.port, v2=True), await _open(proc.port)
    room = (await a.create())["roomId"]
    await b.join(room)
    await b.send({"type": "signal", "payload": "hello"})
    assert (await a.recv())["payload"] == "hello"
    proc.proc.send_signal(sig)
    codes = await asyncio.gather(*(_close_code(x) for x in (a, b, idle)))
    assert codes == [1001, 1001, 1001]
    assert all(x.ws.close_reason == "server shutting down" for x in (a, b, idle))
    status, elapsed = await _wait_exit(proc, 5)
    assert status == 0, proc.log()
    assert elapsed < 5


def test_sigterm_closes_every_client_with_1001_and_exits_0() -> None:
    with spawn_server({"SIGNALING_SHUTDOWN_TIMEOUT_S": "5"}) as proc:
        asyncio.run(_signal_drains(proc, signal.SIGTERM))
        log = proc.log()
    assert "received SIGTERM: draining" in log
    assert "drained 3 connections (0 forced)" in log


def test_sigint_also_drains_and_exits_0() -> None:
    with spawn_server({"SIGNALING_SHUTDOWN_TIMEOUT_S": "5"}) as proc:
        asyncio.run(_signal_drains(proc, signal.SIGINT))
        log = proc.log()
    assert "received SIGINT: draining" in log
    assert "drained 3 connections (0 forced)" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log


async def test_draining_is_observable_and_bounded(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="signaling")
    server = await start_server(shutdown_timeout=2)
    port, loop = server.port, asyncio.get_running_loop()
    base = f"http://127.0.0.1:{port}"
    stubborn = await RawClient.open(port, v2=True)  # will never answer the close frame
    await stubborn.send_many([json.dumps({"type": "create"})])
    room = (await stubborn.next_text())["roomId"]
    polite = await _open(port)
    await polite.join(room)
    assert (await asyncio.to_thread(http_get, base + "/readyz"))[0] == 200

    started = loop.time()
    shutdown = asyncio.create_task(server.shutdown())
    assert await _close_code(polite, 1) == 1001
    assert not shutdown.done(), "still draining: one client has not closed"
    assert await asyncio.to_thread(http_get, base + "/readyz") == (503, "draining\n")
    assert await asyncio.to_thread(http_get, base + "/healthz") == (200, "ok\n")
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{port}/", open_timeout=2)
    assert refused.value.response.status_code == 503
    assert not shutdown.done()

    await asyncio.wait_for(shutdown, 4)
    elapsed = loop.time() - started
    assert 1.8 <= elapsed <= 3.0, elapsed
    assert await stubborn.is_closed_by_server(timeout=1), "the stubborn client was aborted"
    assert "drained 1 connections (1 forced)" in caplog.text
    with pytest.raises(OSError):
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2)
        writer.close()
    stubborn.close()
