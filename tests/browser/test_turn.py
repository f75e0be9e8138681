"""TURN for real: Debian's coturn with use-auth-secret, credentials only from the server.

Two Chromium pages forced to ``iceTransportPolicy: "relay"`` can reach each other only
through the TURN relay, so a DataChannel between them proves the credentials the server
handed out are the ones coturn accepts; with a wrong shared secret they get no relay
candidate and cannot connect. A short TTL shows fresh credentials arriving before the old
ones expire, checked against coturn itself (test_turn_refresh.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.browser.conftest import TURN_SECRET as SECRET
from tests.browser.conftest import turn_env
from tests.browser.demo import MESH_STATE, wait_full_mesh
from tests.support import coturn as turnserver
from tests.support.server import spawn_server

pytestmark = pytest.mark.slow


def relay_call(base: str, new_page: Any) -> tuple[Any, Any]:
    a, b = new_page(), new_page()
    a.goto(base + "/?relay=1")
    a.click("#create")
    a.wait_for_function("() => demo.client.roomId !== null")
    room = a.evaluate("demo.client.roomId")
    b.goto(f"{base}/?relay=1&room={room}")
    b.wait_for_function("() => demo.client.roomId !== null && demo.mesh.peers.size === 1")
    a.wait_for_function("() => demo.mesh.peers.size === 1")
    return a, b


# The pair ICE selected, once the stats report it: the DataChannel can open a moment before
# getStats() marks a pair selected/nominated, so poll the stats (bounded: a failure guard).
SELECTED_PAIR = """async () => {
  const [peer] = demo.mesh.peers.values();
  for (let i = 0; i < 200; i++) {
    const stats = [...(await peer.pc.getStats()).values()];
    const transport = stats.find((s) => s.type === "transport" && s.selectedCandidatePairId);
    const pair = transport
      ? stats.find((s) => s.id === transport.selectedCandidatePairId)
      : stats.find((s) => s.type === "candidate-pair" && s.nominated && s.state === "succeeded");
    const local = pair && stats.find((s) => s.id === pair.localCandidateId);
    const remote = pair && stats.find((s) => s.id === pair.remoteCandidateId);
    if (local && remote) return [local.candidateType, remote.candidateType];
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}"""


def test_relay_only_pages_connect_with_the_servers_credentials(
    coturn: turnserver.Coturn, new_page: Any
) -> None:
    with spawn_server(turn_env(coturn, SECRET), metrics=False) as server:
        a, b = relay_call(server.http, new_page)
        wait_full_mesh((a, b), 1)
        for page, other in ((a, b), (b, a)):
            servers = page.evaluate("demo.client.iceServers")
            (turn,) = servers
            assert turn["urls"] == [coturn.url]
            expiry, _, peer_id = turn["username"].partition(":")
            assert peer_id == page.evaluate("demo.client.myId")
            assert int(expiry) > time.time()
            config = page.evaluate(
                "[...demo.mesh.peers.values()][0].pc.getConfiguration().iceTransportPolicy"
            )
            assert config == "relay"
            types = page.evaluate("[...demo.mesh.peers.values()][0].candidateTypes")
            assert types and set(types) == {"relay"}, types
            assert page.evaluate(SELECTED_PAIR) == ["relay", "relay"]
            page.fill("#message", "through the relay")
            page.press("#message", "Enter")
            other.wait_for_function("() => demo.chat.some((m) => m.text === 'through the relay')")


def test_relay_only_pages_do_not_connect_with_a_wrong_secret(
    coturn: turnserver.Coturn, new_page: Any
) -> None:
    with spawn_server(turn_env(coturn, "not-the-turn-servers-secret"), metrics=False) as server:
        a, b = relay_call(server.http, new_page)
        # Both sides finish gathering: coturn refused every allocation, so no candidate.
        gathered = "() => [...demo.mesh.peers.values()][0].pc.iceGatheringState === 'complete'"
        for page in (a, b):
            page.wait_for_function(gathered)
        for page in (a, b):
            state = page.evaluate(MESH_STATE)
            (peer,) = state["peers"]
            assert peer["candidates"] == [], json.dumps(state)
            assert peer["connection"] != "connected"
            assert peer["channel"] != "open"
        assert a.evaluate("demo.chat") == [] and b.evaluate("demo.chat") == []
