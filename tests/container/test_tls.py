"""TLS in the container: wss:// from outside, and the image's HEALTHCHECK still healthy."""

from __future__ import annotations

import asyncio
import os
import ssl
from pathlib import Path

import pytest
import trustme

from tests.container.conftest import MakePeer, StartContainer
from tests.container.test_protocol import v1_flow
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]


async def test_tls_serves_wss_and_the_healthcheck_stays_healthy(
    start_container: StartContainer, peers: MakePeer, tmp_path: Path
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1", "::1")
    tls_dir = tmp_path / "tls"
    tls_dir.mkdir()
    cert.private_key_pem.write_to_path(str(tls_dir / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(tls_dir / "tls.crt"))
    os.chmod(tls_dir, 0o755)
    for f in tls_dir.iterdir():
        os.chmod(f, 0o644)  # the image runs as uid 10001
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    running = await asyncio.to_thread(
        start_container,
        env={
            "SIGNALING_TLS_CERT_FILE": "/tls/tls.crt",
            "SIGNALING_TLS_KEY_FILE": "/tls/tls.key",
        },
        tls=client_ctx,
        volumes=[(str(tls_dir), "/tls", "ro")],
    )
    await v1_flow(running, peers)

    # The image's own HEALTHCHECK command, and Docker's verdict from running it.
    health_cmd = running.wrapped.image.attrs["Config"]["Healthcheck"]["Test"][1:]
    code, output = await asyncio.to_thread(running.wrapped.exec_run, health_cmd)
    assert code == 0, output

    def healthy() -> bool:
        status = running.state().get("Health", {}).get("Status")
        assert status != "unhealthy", running.state()
        return bool(status == "healthy")

    await asyncio.to_thread(
        wait_until, healthy, what="docker health status healthy", timeout=60, interval=0.5
    )
