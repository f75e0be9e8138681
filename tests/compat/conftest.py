"""Shared fixtures for the wire-compatibility tests.

Every test here talks to the real `python -m signaling` subprocess (see
`tests/support/server.py`) over real sockets, the way the seed's clients do, with
the peers of `tests/support/client.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import ServerProcess, spawn_server

# Fields and message types that only a `signaling.v2` client may ever see.
V2_ONLY_TYPES = frozenset({"peer_joined", "peer_left"})
V2_ONLY_FIELDS = frozenset({"seq", "peers", "resumeToken"})


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with spawn_server() as srv:
        yield srv
