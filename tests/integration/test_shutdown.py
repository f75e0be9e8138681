"""Graceful shutdown: SIGTERM/SIGINT drain with 1001, readiness flips, the port closes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import subprocess

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.http import ahttp_get
from tests.support.raw import RawClient
from tests.support.server import ServerProcess, spawn_server


async def _close_code(client: Client, timeout: float = 10.0) -> int | None:
    return (await client.closed(timeout))[0]


async def _wait_exit(proc: ServerProcess, timeout: float = 30.0) -> int:
    """Exit status; ``timeout`` is a failure guard (whether the drain was prompt is read
    from the server's log: how many connections it had to force)."""
    try:
        return await asyncio.to_thread(proc.proc.wait, timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running {timeout}s after the signal:\n{proc.log()}")


async def _signal_drains(proc: ServerProcess, sig: signal.Signals) -> None:
    a, b, idle = [await Client.open(proc, v2=v2) for v2 in (False, True, False)]
    room = (await a.create())["roomId"]
    await b.join(room)
    await b.send({"type": "signal", "payload": "hello"})
    assert (await a.recv())["payload"] == "hello"
    proc.proc.send_signal(sig)
    codes = await asyncio.gather(*(_close_code(x) for x in (a, b, idle)))
    assert codes == [1001, 1001, 1001]
    assert all(x.ws.close_reason == "server shutting down" for x in (a, b, idle))
    assert await _wait_exit(proc) == 0, proc.log()


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
    port = server.port
    base = f"http://127.0.0.1:{port}"
    stubborn = await RawClient.open(port, v2=True)  # will never answer the close frame
    await stubborn.send_many([json.dumps({"type": "create"})])
    room = (await stubborn.next_text())["roomId"]
    polite = await Client.open(server)
    await polite.join(room)
    assert (await ahttp_get(base + "/readyz"))[0] == 200

    shutdown = asyncio.create_task(server.shutdown())
    assert await _close_code(polite) == 1001
    assert not shutdown.done(), "still draining: one client has not closed"
    assert await ahttp_get(base + "/readyz") == (503, "draining\n")
    assert await ahttp_get(base + "/healthz") == (200, "ok\n")
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"ws://127.0.0.1:{port}/", open_timeout=5)
    assert refused.value.response.status_code == 503
    assert not shutdown.done()

    # Bounded: the drain ends although the stubborn client never answers, by force.
    await asyncio.wait_for(shutdown, 30)
    assert await stubborn.is_closed_by_server(), "the stubborn client was aborted"
    assert "drained 1 connections (1 forced)" in caplog.text
    with pytest.raises(OSError):
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
        writer.close()
    stubborn.close()
