"""Wait for an event, never for a duration.

A test waits for the thing it needs (a message, a log line, a metric value, a socket
state) to happen. Where no notification exists (another process's state, the server's
in-memory state) these helpers poll a predicate. The deadline is only a failure guard:
it is generous, it fires only when the test fails anyway, and its expiry is reported with
what was last seen; it never decides a passing test's outcome.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

GUARD_S = 10.0  # default failure guard: far above any expected wait on a loaded 2-core box


def wait_until(
    predicate: Callable[[], T],
    *,
    what: str = "condition",
    timeout: float = GUARD_S,
    interval: float = 0.05,
    ignore: tuple[type[BaseException], ...] = (),
    diag: Callable[[], str] | None = None,
) -> T:
    """Block until ``predicate()`` is truthy and return its value (threads, subprocesses).

    Exceptions listed in ``ignore`` count as "not yet" (a port not listening yet).
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            result = predicate()
        except ignore as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            extra = f"\n{diag()}" if diag else ""
            raise TimeoutError(f"no {what} within {timeout:.0f}s (last: {last!r}){extra}")
        time.sleep(interval)


async def eventually(
    predicate: Callable[[], T],
    *,
    what: str = "condition",
    timeout: float = GUARD_S,
    interval: float = 0.005,
) -> T:
    """Await until ``predicate()`` is truthy and return its value.

    For state of an in-process server on the same event loop: each poll yields to the
    loop, so the server makes progress between checks.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := predicate()):
        if loop.time() >= deadline:
            raise AssertionError(f"no {what} within {timeout:.0f}s (last: {result!r})")
        await asyncio.sleep(interval)
    return result
