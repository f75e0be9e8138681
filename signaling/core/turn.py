"""TURN REST credentials, as coturn's ``use-auth-secret`` checks them.

Why the signaling server hands them out: behind symmetric NATs a call only connects through
TURN, and TURN must not be an open relay. The TURN REST scheme needs no shared database:
the username is ``expiry:peerId`` (``expiry`` in Unix seconds) and the password is the
base64 HMAC-SHA1 of the username with a secret shared with the TURN server, which can
therefore check it, and its expiry, on its own.

Pure: the wall clock is an argument (``now``), so tests pick any instant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """What a v2 client is told about ICE servers (from the ``SIGNALING_TURN_*`` settings)."""

    turn_urls: tuple[str, ...] = ()
    stun_urls: tuple[str, ...] = ()
    secret: str = ""
    ttl: int = 3600

    @property
    def enabled(self) -> bool:
        """Whether replies carry ``iceServers`` at all."""
        return bool(self.stun_urls or (self.turn_urls and self.secret))

    @property
    def refreshing(self) -> bool:
        """Whether credentials expire, so clients need fresh ones (``ice_servers``)."""
        return bool(self.turn_urls and self.secret)

    @property
    def refresh_after(self) -> float:
        """Seconds after issuing credentials to send fresh ones: a quarter TTL early."""
        return self.ttl * 0.75


def credential(secret: str, username: str) -> str:
    """The TURN password for ``username``: base64(HMAC-SHA1(secret, username))."""
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode("ascii")


def ice_servers(policy: IcePolicy, peer_id: str, now: float) -> list[dict[str, Any]]:
    """The RTCIceServer list for ``peer_id`` at Unix time ``now``; valid ``ttl`` seconds."""
    servers: list[dict[str, Any]] = []
    if policy.stun_urls:
        servers.append({"urls": list(policy.stun_urls)})
    if policy.turn_urls and policy.secret:
        username = f"{math.ceil(now) + policy.ttl}:{peer_id}"
        servers.append(
            {
                "urls": list(policy.turn_urls),
                "username": username,
                "credential": credential(policy.secret, username),
            }
        )
    return servers


def ice_servers_json(policy: IcePolicy, peer_id: str, now: float) -> str:
    """``ice_servers`` as the JSON text spliced into replies."""
    return json.dumps(ice_servers(policy, peer_id, now), separators=(",", ":"))


def ice_servers_message(servers_json: str) -> str:
    """The v2 ``ice_servers`` message carrying fresh credentials."""
    return f'{{"type":"ice_servers","iceServers":{servers_json}}}'


def with_ice_servers(reply: str, servers_json: str) -> str:
    """A rendered v2 reply object (``room_created``, ``room_joined``, ``resumed``) plus
    its ``iceServers`` field."""
    if not reply.endswith("}"):
        raise ValueError("not a JSON object")
    return f'{reply[:-1]},"iceServers":{servers_json}}}'
