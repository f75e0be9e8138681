"""Token authentication end to end, with real keys: HS256, RS256, ES256, a JWKS file.

The token travels the three ways clients can send it (Authorization header, ``token``
query parameter, ``bearer.<jwt>`` subprotocol); a missing or bad one is a 401 at the
handshake; claims restrict rooms and creation; ``exp`` closes a live connection.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from signaling.transport.server import Server
from tests.integration.conftest import StartServer
from tests.support.client import Client
from tests.support.keys import SECRET, claims, ec_pair, hs_token, rsa_pair


async def open_with(server: Server, token: str, how: str, v2: bool = False) -> Client:
    url = f"ws://127.0.0.1:{server.port}/"
    if how == "header":
        return await Client.open(url, v2, additional_headers={"Authorization": f"Bearer {token}"})
    if how == "query":
        return await Client.open(f"{url}?token={token}", v2)
    assert how == "subprotocol"
    protos = [Subprotocol("signaling.v2")] if v2 else []
    from websockets.asyncio.client import connect

    ws = await connect(url, subprotocols=[*protos, Subprotocol("bearer." + token)])
    return Client(ws)


@pytest.mark.parametrize("how", ["header", "query", "subprotocol"])
async def test_hs256_token_in_each_place(start_server: StartServer, how: str) -> None:
    server = await start_server(jwt_secret=SECRET)
    a = await open_with(server, hs_token(claims()), how)
    room = (await a.create())["roomId"]
    b = await open_with(server, hs_token(claims()), how, v2=True)
    if how == "subprotocol":
        assert b.ws.subprotocol == "signaling.v2"  # the token entry is never selected
    await b.join(room)


async def test_missing_or_bad_token_is_401(start_server: StartServer) -> None:
    server = await start_server(jwt_secret=SECRET)
    url = f"ws://127.0.0.1:{server.port}/"
    for target in (url, f"{url}?token=nonsense", f"{url}?token={hs_token(claims(ttl=-5))}"):
        with pytest.raises(InvalidStatus) as info:
            await Client.open(target)
        assert info.value.response.status_code == 401
    wrong_key = hs_token(claims(), secret="another-secret-0123456789abcdef0123456789")
    with pytest.raises(InvalidStatus):
        await open_with(server, wrong_key, "header")
    assert server.hub.metrics.rejected["unauthorized"] == 4


@pytest.mark.parametrize("pair", [rsa_pair, ec_pair], ids=["RS256", "ES256"])
async def test_public_key_file(start_server: StartServer, tmp_path: Path, pair: Any) -> None:
    keys = pair()
    pem = tmp_path / "key.pem"
    pem.write_bytes(keys.public_pem)
    server = await start_server(jwt_public_key_file=str(pem), jwt_audience="signaling")
    a = await open_with(server, keys.token(claims(aud="signaling")), "header")
    await a.create()
    with pytest.raises(InvalidStatus):  # wrong audience
        await open_with(server, keys.token(claims(aud="other")), "header")
    with pytest.raises(InvalidStatus):  # a key the server does not know
        await open_with(server, pair().token(claims(aud="signaling")), "header")


async def test_jwks_file(start_server: StartServer, tmp_path: Path) -> None:
    r, e = rsa_pair(), ec_pair()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [r.jwk("rsa-1"), e.jwk("ec-1")]}))
    server = await start_server(jwt_jwks_file=str(jwks), jwt_issuer="https://id.example")
    ok = claims(iss="https://id.example")
    await (await open_with(server, r.token(ok, kid="rsa-1"), "query")).create()
    await (await open_with(server, e.token(ok, kid="ec-1"), "query")).create()
    with pytest.raises(InvalidStatus):
        await open_with(server, r.token(claims(iss="https://evil"), kid="rsa-1"), "query")


async def test_room_and_create_claims(start_server: StartServer) -> None:
    server = await start_server(jwt_secret=SECRET)
    owner = await open_with(server, hs_token(claims()), "header")
    room = (await owner.create())["roomId"]
    other = (await (await open_with(server, hs_token(claims()), "header")).create())["roomId"]

    guest = await open_with(server, hs_token(claims(room=room)), "header")
    await guest.send({"type": "join", "roomId": other})
    assert (await guest.recv())["code"] == "unauthorized"
    await guest.send({"type": "create"})
    assert (await guest.recv())["code"] == "unauthorized"
    await guest.join(room)  # its own room is fine

    viewer = await open_with(server, hs_token(claims(create=False)), "header")
    await viewer.send({"type": "create"})
    assert (await viewer.recv())["code"] == "unauthorized"
    await viewer.join(other)


async def test_expiry_closes_a_live_connection(start_server: StartServer) -> None:
    server = await start_server(jwt_secret=SECRET)
    short = await open_with(server, hs_token({"exp": int(time.time()) + 4}), "header")
    long = await open_with(server, hs_token(claims()), "header")
    room = (await short.create())["roomId"]
    await long.join(room)
    # Nothing to do but wait for the server: the token runs out during the connection.
    msg = await short.expect("error", timeout=10)
    assert msg["code"] == "unauthorized"
    assert await short.closed() == (1008, "token expired")
    assert server.hub.metrics.rejected["token_expired"] == 1
    await long.send({"type": "signal", "payload": "alone now"})
    assert not long.ws.close_code


async def test_tokens_never_reach_the_logs(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await start_server(jwt_secret=SECRET)
    good, expired = hs_token(claims()), hs_token(claims(ttl=-5))
    await (await open_with(server, good, "query")).create()
    with pytest.raises(InvalidStatus):
        await open_with(server, expired, "query")
    # The server's records (the test's own websockets client logs what it sends).
    server_side = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    assert any(r.name == "websockets.server" for r in server_side)
    text = "\n".join(r.getMessage() + repr(r.__dict__) for r in server_side)
    for token in (good, expired):
        assert token.split(".")[2] not in text
        assert token.split(".")[1] not in text


async def test_jwks_rotation_on_reload(start_server: StartServer, tmp_path: Path) -> None:
    """SIGHUP (``Server.reload``) reads the JWKS again: a new key works, a removed one
    stops working, and a broken file keeps the keys in service."""
    old, new = rsa_pair(), ec_pair()
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [old.jwk("old")]}))
    server = await start_server(jwt_jwks_file=str(jwks))
    kept = await open_with(server, old.token(claims(), kid="old"), "header")
    with pytest.raises(InvalidStatus):
        await open_with(server, new.token(claims(), kid="new"), "header")
    jwks.write_text(json.dumps({"keys": [new.jwk("new")]}))
    server.reload()
    await open_with(server, new.token(claims(), kid="new"), "header")
    with pytest.raises(InvalidStatus):
        await open_with(server, old.token(claims(), kid="old"), "header")
    await kept.create()  # a connection opened under the old key is not dropped
    jwks.write_text("{broken")
    server.reload()
    await open_with(server, new.token(claims(), kid="new"), "header")
