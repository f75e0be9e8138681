"""Hostile clients against a server: in-process servers, and a check that nothing a
client sent produced an ERROR line or a traceback."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.integration.conftest import server, start_server

__all__ = ["server", "start_server"]


@pytest.fixture(autouse=True)
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Client input never causes an ERROR line or a traceback (issue 7)."""
    caplog.set_level(logging.INFO)
    yield
    bad = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]
    assert not bad, bad
