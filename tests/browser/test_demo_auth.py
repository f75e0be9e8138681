"""With JWT auth on, the browser client presents its token as a ``bearer.<jwt>``
subprotocol (browsers cannot set headers): with a token the demo page enters a room;
without one the server refuses the handshake and the page says it is closed."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from tests.support.server import spawn_server

pytestmark = pytest.mark.slow
SECRET = "a-browser-test-secret-of-at-least-32-bytes"


def test_token_from_the_page_is_accepted_and_required(new_page: Any) -> None:
    token = jwt.encode({"exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    with spawn_server({"SIGNALING_JWT_SECRET": SECRET}, metrics=False) as server:
        with_token = new_page()
        with_token.goto(f"{server.http}/?token={token}")
        with_token.click("#create")
        with_token.wait_for_function("() => demo.client.roomId !== null")
        assert with_token.evaluate("demo.client.state") == "open"
        assert "token" not in with_token.url  # an invitation link carries no token

        without = new_page()
        without.goto(server.http + "/")
        without.click("#create")
        without.wait_for_function("() => demo.client.state === 'closed'")
        assert without.evaluate("demo.client.roomId") is None
        assert without.is_visible("#error")
