"""The client's address: the socket's peer, or what a trusted proxy says it is.

Per-address limits are only as good as the address. Behind an ingress or a PaaS router
every socket comes from the proxy, so the proxy's ``X-Forwarded-For`` or ``Forwarded``
header has to be believed, but only when the immediate peer *is* one of the configured
proxies (``SIGNALING_TRUSTED_PROXIES``); from anyone else those headers are forged.

The header is read from the right: each hop appends the address it saw, so the
rightmost entries were written by our own proxies and the first entry from the right
that is not a trusted proxy is the client. Entries further left were written by the
client and are ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# One IPv6 subscriber (a home, a phone, a cloud VM) is given a whole /64 and can pick any
# of its 2^64 addresses per connection: keyed per address, every per-address limit would
# be a per-connection one. So an IPv6 client is keyed by its /64, like one IPv4 address.
IPV6_PREFIX = 64


def parse_networks(raw: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.1"`` -> networks; raises ValueError naming a bad entry."""
    nets: list[Network] = []
    for part in raw.split(","):
        item = part.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or CIDR") from None
    return tuple(nets)


def _ip(text: str) -> Address | None:
    text = text.strip().strip('"')
    if not text:
        return None
    if text.startswith("["):  # [v6]:port or [v6]
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # v4:port
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: Address, trusted: Sequence[Network]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def forwarded_for(values: Iterable[str]) -> list[str]:
    """The ``for=`` entries of RFC 7239 ``Forwarded`` header values, in order."""
    out: list[str] = []
    for value in values:
        for element in value.split(","):
            for pair in element.split(";"):
                key, eq, val = pair.strip().partition("=")
                if eq and key.strip().lower() == "for":
                    out.append(val.strip())
    return out


def x_forwarded_for(values: Iterable[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def client_address(
    peer: str | None,
    trusted: Sequence[Network],
    *,
    forwarded: Sequence[str] = (),
    x_forwarded: Sequence[str] = (),
) -> str:
    """The address per-address limits are keyed by.

    ``peer`` is the socket's remote host (None for a non-IP transport, which gets the
    shared key ``"unknown"``). ``forwarded`` and ``x_forwarded`` are all values of those
    headers in order; ``Forwarded`` wins when both are present.
    """
    ip = _ip(peer) if peer else None
    if ip is None:
        return peer or "unknown"
    if not trusted or not _trusted(ip, trusted):
        return _key(ip)
    chain = forwarded_for(forwarded) if forwarded else x_forwarded_for(x_forwarded)
    for entry in reversed(chain):
        hop = _ip(entry)
        if hop is None:
            # Unparseable (``unknown``, an obfuscated identifier): stop trusting the
            # chain here and key by the last proxy that spoke.
            return _key(ip)
        if not _trusted(hop, trusted):
            return _key(hop)
        ip = hop
    return _key(ip)


def _key(ip: Address) -> str:
    """An IPv4 address as it is; an IPv6 address as its /64 (see ``IPV6_PREFIX``)."""
    if ip.version == 4:
        return str(ip)
    return str(ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False))
