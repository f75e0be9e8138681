"""Real Chromium (Debian's, through Playwright's ``executable_path``) against the real server.

Never ``playwright install``: the browser is the system's ``chromium`` package, which
``.ci/run`` installs. Without it these tests skip with a reason, except under CI, where a
missing browser is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import coturn as turnserver
from tests.support.server import REPO_ROOT

CHROMIUM = os.environ.get("SIGNALING_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Headless flags from the developers' guide. WebRtcHideLocalIpsWithMdns off: pages on one
# machine reach each other over loopback host candidates. Playwright adds --no-sandbox
# (chromiumSandbox=False), so the tests also run as root.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def _require_browser() -> None:
    if Path(CHROMIUM).exists():
        return
    message = f"Debian's chromium is not installed ({CHROMIUM}); .ci/run installs it"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API keeps an event loop running in
    this thread while it is open, which would break the asyncio tests of other modules."""
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Pages in separate browser contexts (separate users), closed after the test."""
    contexts: list[Any] = []

    def make() -> Any:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.page_errors = errors
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


TURN_SECRET = "coturn-shared-secret-for-tests"


@pytest.fixture(scope="module")
def coturn() -> Iterator[turnserver.Coturn]:
    if not turnserver.available():
        message = "Debian's coturn is not installed; .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with turnserver.coturn(TURN_SECRET) as running:
        yield running


def turn_env(coturn: turnserver.Coturn, secret: str, ttl: int = 3600) -> dict[str, str]:
    return {
        "SIGNALING_TURN_URLS": coturn.url,
        "SIGNALING_TURN_SECRET": secret,
        "SIGNALING_TURN_TTL_S": str(ttl),
    }
