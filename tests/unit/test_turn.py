"""TURN REST credentials: the exact scheme coturn's use-auth-secret checks."""

from __future__ import annotations

import json

import pytest

from signaling.core.turn import (
    IcePolicy,
    credential,
    ice_servers,
    ice_servers_json,
    ice_servers_message,
    with_ice_servers,
)

POLICY = IcePolicy(("turn:127.0.0.1:3478?transport=udp",), ("stun:127.0.0.1:3478",), "north", 3600)


def test_credential_is_base64_hmac_sha1_of_the_username() -> None:
    # Vector computed with: printf %s 1700003600:alice | openssl dgst -sha1 -hmac north -binary
    # | base64
    assert credential("north", "1700003600:alice") == "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_username_is_expiry_colon_peer_id_with_the_injected_clock() -> None:
    stun, turn = ice_servers(POLICY, "alice", now=1_700_000_000.0)
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    assert turn["urls"] == ["turn:127.0.0.1:3478?transport=udp"]
    assert turn["username"] == "1700003600:alice"
    assert turn["credential"] == "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_expiry_is_never_shorter_than_the_ttl() -> None:
    (_, turn) = ice_servers(POLICY, "p", now=1_700_000_000.4)
    assert int(turn["username"].split(":")[0]) >= 1_700_000_000.4 + 3600


def test_another_secret_gives_another_password() -> None:
    other = IcePolicy(POLICY.turn_urls, (), "south", 3600)
    (turn,) = ice_servers(other, "alice", now=1_700_000_000.0)
    assert turn["credential"] != "wjwSXO2ch1B6VaLTLMy2Avn5O9o="


def test_policies_without_turn_or_at_all() -> None:
    assert not IcePolicy().enabled
    assert ice_servers(IcePolicy(), "p", 0.0) == []
    stun_only = IcePolicy((), ("stun:s",), "", 60)
    assert stun_only.enabled and not stun_only.refreshing
    assert ice_servers(stun_only, "p", 0.0) == [{"urls": ["stun:s"]}]
    assert POLICY.refreshing
    assert 0 < POLICY.refresh_after < POLICY.ttl


def test_rendering_splices_valid_json() -> None:
    servers = ice_servers_json(POLICY, "alice", 1_700_000_000.0)
    reply = with_ice_servers('{"type":"room_created","roomId":"1234","seq":1}', servers)
    decoded = json.loads(reply)
    assert decoded["roomId"] == "1234"
    assert decoded["iceServers"] == ice_servers(POLICY, "alice", 1_700_000_000.0)
    message = json.loads(ice_servers_message(servers))
    assert message == {"type": "ice_servers", "iceServers": decoded["iceServers"]}
    with pytest.raises(ValueError):
        with_ice_servers("[1]", servers)
