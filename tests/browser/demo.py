"""Reading the demo page's state from a test (the page exposes ``window.demo``)."""

from __future__ import annotations

import json
from typing import Any

FULL_MESH = """(n) => {
  const peers = [...demo.mesh.peers.values()];
  return peers.length === n && peers.every((p) => p.channel !== null
    && p.channel.readyState === "open" && p.pc.connectionState === "connected");
}"""
MESH_STATE = """() => ({
  me: demo.client.myId, state: demo.client.state, negotiations: demo.mesh.negotiations,
  errors: demo.errors,
  peers: [...demo.mesh.peers.values()].map((p) => ({
    id: p.id, polite: p.polite, signaling: p.pc.signalingState,
    connection: p.pc.connectionState, ice: p.pc.iceConnectionState,
    channel: p.channel?.readyState, offers: p.offers, candidates: p.candidateTypes })),
})"""


def wait_full_mesh(pages: Any, n: int) -> None:
    """Every page has ``n`` connected peers with open channels (or say what is stuck)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for page in pages:
        try:
            page.wait_for_function(FULL_MESH, arg=n)
        except PlaywrightTimeout:
            states = [json.dumps(p.evaluate(MESH_STATE), indent=1) for p in pages]
            raise AssertionError("no full mesh:\n" + "\n".join(states)) from None
