"""The listening socket's options (``transport/server.py``), on real sockets."""

from __future__ import annotations

import socket

import pytest

from signaling.transport.server import defer_accept


@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux only")
def test_defer_accept_sets_the_option_from_the_handshake_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) == 0
        defer_accept(s, 2.5)
        # The kernel keeps it as SYN-ACK retransmissions: read back, it is at least what
        # was asked, rounded up to the next retransmission time.
        assert s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT) >= 3


def test_defer_accept_leaves_other_sockets_alone() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        defer_accept(s, 10.0)  # no TCP option on a Unix socket: nothing, no error
