"""TLS at the server: a trustme CA, a real wss:// client, https health, SIGHUP reload.

The reload must not drop a connection: a client connected before it keeps relaying,
while a client connected after it sees the new certificate.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.server import spawn_server
from tests.support.waiting import wait_until


def write_cert(ca: trustme.CA, cert_file: Path, key_file: Path) -> None:
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert.private_key_pem.write_to_path(str(key_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    for extra in cert.cert_chain_pems[1:]:
        with cert_file.open("ab") as f:
            f.write(extra.bytes())


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def files(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    write_cert(ca, cert_file, key_file)
    yield cert_file, key_file


def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def wss(server: Server, ctx: ssl.SSLContext, v2: bool = False) -> Client:
    return await Client.open(f"wss://localhost:{server.port}/", v2, ssl=ctx)


def peer_cert(client: Client) -> bytes:
    sslobj = client.ws.transport.get_extra_info("ssl_object")
    der = sslobj.getpeercert(binary_form=True)
    assert der is not None
    return bytes(der)


async def test_wss_relay_https_health_and_reload_without_dropping(
    start_server: StartServer, ca: trustme.CA, files: tuple[Path, Path]
) -> None:
    cert_file, key_file = files
    server = await start_server(tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    ctx = client_context(ca)
    a = await wss(server, ctx)
    room = (await a.create())["roomId"]
    b = await wss(server, ctx, v2=True)
    await b.join(room)
    await a.send({"type": "signal", "payload": {"sdp": "offer"}})
    assert (await b.recv())["payload"] == {"sdp": "offer"}
    before = peer_cert(a)

    def health() -> int:
        url = f"https://localhost:{server.port}/healthz"
        with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
            return int(resp.status)

    assert await asyncio.to_thread(health) == 200

    # Renewal: new files in place, then what SIGHUP does.
    write_cert(ca, cert_file, key_file)
    server.reload()
    c = await wss(server, ctx)
    assert peer_cert(c) != before
    await c.join(room)
    # The connections made before the reload were not dropped.
    await b.send({"type": "signal", "payload": "after reload"})
    assert (await a.recv())["payload"] == "after reload"
    assert (await c.recv())["payload"] == "after reload"
    assert peer_cert(a) == before

    # A broken renewal keeps the working certificate.
    key_file.write_text("not a key")
    server.reload()
    d = await wss(server, ctx)
    assert peer_cert(d) == peer_cert(c)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_plain_ws_and_old_tls_are_refused(
    start_server: StartServer, ca: trustme.CA, files: tuple[Path, Path]
) -> None:
    cert_file, key_file = files
    server = await start_server(tls_cert_file=str(cert_file), tls_key_file=str(key_file))
    with pytest.raises(Exception):  # noqa: B017 - any failure: it is not a WebSocket
        await Client.open(f"ws://127.0.0.1:{server.port}/")
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(old)
    try:
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    except ValueError:  # pragma: no cover
        pytest.skip("local OpenSSL cannot offer TLS 1.1")
    with pytest.raises(ssl.SSLError):
        await wss(server, old)


def test_sighup_reloads_the_server_process(ca: trustme.CA, files: tuple[Path, Path]) -> None:
    """The real signal, to a real process started like production."""
    cert_file, key_file = files
    env = {"SIGNALING_TLS_CERT_FILE": str(cert_file), "SIGNALING_TLS_KEY_FILE": str(key_file)}
    ctx = client_context(ca)

    def served_cert(port: int) -> bytes:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="localhost") as tls,
        ):
            der = tls.getpeercert(binary_form=True)
            assert der is not None
            return bytes(der)

    with spawn_server(env, tls=ctx) as proc:
        first = served_cert(proc.port)
        write_cert(ca, cert_file, key_file)
        proc.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: served_cert(proc.port) != first, what="the new certificate")
        wait_until(lambda: "TLS certificate reloaded" in proc.log(), what="reload logged")
