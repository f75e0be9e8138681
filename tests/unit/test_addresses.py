"""Client addresses: the socket peer, or forwarded headers only from trusted proxies."""

from __future__ import annotations

import pytest

from signaling.transport.addresses import client_address, parse_networks

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.1, fd00::/8")


def test_without_trusted_proxies_headers_are_ignored() -> None:
    assert client_address("127.0.0.2", (), x_forwarded=["1.2.3.4"]) == "127.0.0.2"
    assert client_address("127.0.0.2", (), forwarded=["for=1.2.3.4"]) == "127.0.0.2"


def test_untrusted_peer_cannot_forge_its_address() -> None:
    assert client_address("203.0.113.9", PROXIES, x_forwarded=["1.2.3.4"]) == "203.0.113.9"


def test_trusted_proxy_names_the_client() -> None:
    assert client_address("10.1.2.3", PROXIES, x_forwarded=["198.51.100.7"]) == "198.51.100.7"


def test_rightmost_untrusted_hop_wins_over_client_written_entries() -> None:
    # The client wrote "6.6.6.6"; our ingress (10.0.0.5) saw 198.51.100.7.
    got = client_address("10.1.2.3", PROXIES, x_forwarded=["6.6.6.6, 198.51.100.7", "10.0.0.5"])
    assert got == "198.51.100.7"


def test_only_proxies_in_the_chain_give_the_last_proxy() -> None:
    assert client_address("10.1.2.3", PROXIES, x_forwarded=["10.0.0.9"]) == "10.0.0.9"
    assert client_address("10.1.2.3", PROXIES) == "10.1.2.3"


def test_forwarded_header_wins_and_handles_ports_quotes_and_v6() -> None:
    fwd = ['for="[2001:db8::1]:4711";proto=https, for=192.168.1.1']
    assert client_address("10.0.0.1", PROXIES, forwarded=fwd, x_forwarded=["9.9.9.9"]) == (
        "2001:db8::/64"
    )
    assert client_address("10.0.0.1", PROXIES, forwarded=["for=198.51.100.7:1234"]) == (
        "198.51.100.7"
    )


def test_garbage_in_the_chain_stops_at_the_last_trusted_hop() -> None:
    assert client_address("10.0.0.1", PROXIES, forwarded=["for=unknown"]) == "10.0.0.1"
    assert client_address("10.0.0.1", PROXIES, x_forwarded=["not-an-ip"]) == "10.0.0.1"


def test_ipv4_mapped_peer_is_normalised() -> None:
    assert client_address("::ffff:127.0.0.3", ()) == "127.0.0.3"
    assert client_address(None, ()) == "unknown"


def test_bad_cidr_is_named() -> None:
    with pytest.raises(ValueError, match="nope"):
        parse_networks("10.0.0.0/8,nope")


def test_an_ipv6_client_is_keyed_by_its_slash_64() -> None:
    """One subscriber picks any of its /64's addresses per connection: each would be a
    fresh budget if IPv6 clients were keyed by the full address."""
    a = client_address("2001:db8:1:2:aaaa::1", ())
    b = client_address("2001:db8:1:2:bbbb:cccc:dddd:eeee", ())
    assert a == b == "2001:db8:1:2::/64"
    assert client_address("2001:db8:1:3::1", ()) != a  # the next subscriber
    assert client_address("::1", ()) == "::/64"
    assert client_address("10.0.0.1", PROXIES, x_forwarded=["2001:db8:1:2::7"]) == a
