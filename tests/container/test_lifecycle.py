"""Operating the container: graceful drain on SIGTERM, the hardened runtime of the Helm chart."""

from __future__ import annotations

import asyncio

import pytest

from tests.container.conftest import MakePeer, StartContainer
from tests.container.test_protocol import v1_flow
from tests.support.http import http_get

# The first test also builds the image (session fixture), which pytest-timeout counts.
pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

SHUTDOWN_TIMEOUT_S = 5


async def test_sigterm_drains_clients_with_1001_and_exits_0(
    start_container: StartContainer, peers: MakePeer
) -> None:
    running = await asyncio.to_thread(
        start_container, env={"SIGNALING_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S)}
    )
    a, b = await peers(running), await peers(running)
    room = (await a.create())["roomId"]
    await b.join(room)
    c = await peers(running, v2=True)
    await c.create()
    idle = await peers(running)  # connected, in no room
    connected = [a, b, c, idle]

    await asyncio.to_thread(running.wrapped.kill, signal="SIGTERM")
    codes = [(await peer.closed(timeout=30))[0] for peer in connected]
    assert codes == [1001] * len(connected), codes

    result = await asyncio.to_thread(running.wrapped.wait, timeout=60)  # failure guard
    logs = running.logs()
    assert result["StatusCode"] == 0, logs
    # Prompt, not by the timeout: every client answered the close, none was forced.
    assert f"drained {len(connected)} connections (0 forced)" in logs, logs
    assert running.state()["OOMKilled"] is False


async def test_hardened_runtime_like_the_helm_chart(
    start_container: StartContainer, peers: MakePeer
) -> None:
    running = await asyncio.to_thread(
        start_container,
        tmpfs={"/tmp": "size=16m"},
        user="10001",
        read_only=True,
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        mem_limit="256m",
        pids_limit=128,
    )
    host_config = running.wrapped.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True
    assert host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert host_config["Tmpfs"] == {"/tmp": "size=16m"}

    # The image's own HEALTHCHECK command works under these restrictions.
    health_cmd = running.wrapped.image.attrs["Config"]["Healthcheck"]["Test"][1:]
    code, output = await asyncio.to_thread(running.wrapped.exec_run, health_cmd)
    assert code == 0, output
    code, output = await asyncio.to_thread(
        running.wrapped.exec_run,
        ["/opt/venv/bin/python", "-c", "import os; print(os.getuid(), os.access('/', os.W_OK))"],
    )
    assert code == 0 and output.decode().split() == ["10001", "False"], output

    await v1_flow(running, peers)
    status, text = await asyncio.to_thread(http_get, running.metrics_url)
    assert status == 200 and "signaling_" in text
